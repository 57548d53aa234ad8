"""Every input form with dims, built and verified for real against the .so and the .pt2 (one compile, shared by
two targets), plus the messages of targets that fail before compiling: an eager reference run that fails, and a
cache object among forward()'s outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import aotbuild, write

pytestmark = pytest.mark.torch

MODEL = '''import torch


class Forms(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)  # the weights are part of the graph: the same ones every export
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, pixels, noise, batch, ones, scale, flag=False, name="plain", pair=None):
        assert isinstance(scale, float) and isinstance(flag, bool) and name is None and pair[1] == "x"
        x = pixels.float() / 255 + noise + batch["ids"].float() * batch["mask"].float()
        x = x + batch["extras"][0].float().unsqueeze(1) * batch["extras"][1]
        x = self.lin(x) * ones.float() * scale + pair[0].float().sum()
        return x + 1 if flag else x


class FailsEagerly(torch.nn.Module):
    """Traces, but its eager forward refuses a batch of one (as a fast path refusing an all-padding row does)."""

    def forward(self, x):
        if not torch.compiler.is_exporting() and x.shape[0] == 1:
            raise ValueError("no fast path for a single row")
        return x * 2


class DynamicCache:  # a cache object, as transformers returns with use_cache=True: no pytree registered
    def __init__(self, t):
        self.t = t


class ReturnsCache(torch.nn.Module):
    def forward(self, x):
        return x + 1, DynamicCache(x)
'''

GENERATOR = '''import torch


def prefix_mask(shape, dtype, generator):
    """Each row valid up to a random length of at least one: a key-padding mask with no all-padding row."""
    lengths = torch.randint(1, shape[-1] + 1, (shape[0], 1), generator=generator)
    return (torch.arange(shape[-1]) < lengths).to(dtype)
'''

FORMS = """
    inputs:
      pixels: {shape: [b, 3], dtype: uint8, low: 0, high: 256}
      noise: {shape: [b, 3], dtype: float32, low: -0.5, high: 0.5}
      batch:
        dict:
          ids: {shape: [b, 3], dtype: int64, low: 0, high: 10}
          mask: {shape: [b, 3], dtype: bool, generator: m.gen:prefix_mask}
          extras: {list: [{shape: [b], dtype: int8, low: -3, high: 3}, {value: 2}]}
      ones: {shape: [b, 3], dtype: float16, value: 1}
      scale: {value: 0.5}
      flag: {value: true, keyword: true}
      name: {value: null, keyword: true}
      pair: {tuple: [{shape: [2], dtype: int16, value: -3}, {value: x}], keyword: true}
    dims:
      b: {min: 1, max: 6, example: 4}
"""

BUILD = f"""targets:
  forms:
    model: m.models:Forms{FORMS}
  weak:  # the same graph (compiled once), with a tolerance no output reaches
    model: m.models:Forms
    tolerance: {{atol: 1.0e+6, rtol: 0}}{FORMS}
  eager_fails:
    model: m.models:FailsEagerly
    inputs:
      x: {{shape: [b, 3], dtype: float32}}
    dims:
      b: {{min: 1, max: 4}}
  misnamed:
    model: m.models:FailsEagerly
    inputs:
      xx: {{shape: [2, 3], dtype: float32}}
  returns_cache:
    model: m.models:ReturnsCache
    inputs:
      x: {{shape: [2, 3], dtype: float32}}
"""


@pytest.fixture(scope="module")
def tested(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("forms")
    ws = base / "ws"
    write(ws / "WORKSPACE.aot.yaml", "")
    write(ws / "m" / "__init__.py", "")
    write(ws / "m" / "models.py", MODEL)
    write(ws / "m" / "gen.py", GENERATOR)
    write(ws / "m" / "BUILD.aot.yaml", BUILD)
    run = aotbuild(["test", "-k", "//...", "--json", str(base / "tests.json")], ws,
                   {"AOTBUILD_CACHE_DIR": str(base / "cache")})
    return ws, run, json.loads((base / "tests.json").read_text())


def test_every_input_form_with_dims_verifies_against_so_and_pt2(tested) -> None:
    ws, run, results = tested
    assert "PASSED //m:forms" in run.stdout, run.output
    verified = json.loads((ws / "aot-out/m/@forms/verified.json").read_text())
    assert {(c["case"], c["artifact"]) for c in verified["cases"]} == {
        (case, artifact) for case in ("example", "b=1 (min)", "b=3 (mid)", "b=6 (max)") for artifact in ("so", "pt2")}
    assert all(o["ok"] for c in verified["cases"] for o in c["outputs"])
    assert verified["rejected"][0]["refused"]  # b=7 is refused: the dim reached the artifact through a dict


def test_the_artifact_takes_the_tensors_only_and_names_their_dims(tested) -> None:
    ws, _, _ = tested
    manifest = json.loads((ws / "aot-out/m/@forms/manifest.json").read_text())
    assert [(i["name"], i["dtype"], i["shape"], i["keyword"]) for i in manifest["inputs"]] == [
        ("pixels", "uint8", ["b", 3], False), ("noise", "float32", ["b", 3], False),
        ("batch_ids", "int64", ["b", 3], False), ("batch_mask", "bool", ["b", 3], False),
        ("batch_extras_0", "int8", ["b"], False), ("ones", "float16", ["b", 3], False),
        ("pair_0", "int16", [2], True)]


def test_generated_values_follow_their_declarations(tested) -> None:
    import torch

    ws, _, _ = tested
    cases = torch.load(ws / "aot-out/m/@forms/reference_io.pt", weights_only=True)["cases"]
    for case in cases:
        pixels, noise, ids, mask, extras, ones, pair = case["inputs"]
        assert pixels.dtype == torch.uint8 and ids.dtype == torch.int64 and extras.dtype == torch.int8
        assert -0.5 <= noise.min() and noise.max() < 0.5  # uniform in [low, high), not standard normal
        assert 0 <= ids.min() and ids.max() < 10 and -3 <= extras.min() and extras.max() < 3
        # The generator's masks: each row a run of valid positions from the start, never empty.
        assert mask[:, 0].all() and torch.equal(mask, mask.cummin(dim=1).values)
        assert torch.equal(ones, torch.ones_like(ones)) and torch.equal(pair, torch.full((2,), -3, dtype=torch.int16))
    assert [c["inputs"][0].shape[0] for c in cases] == [4, 1, 3, 6]


def test_outputs_below_the_tolerance_warn_naming_the_target(tested) -> None:
    _, run, results = tested
    assert "PASSED //m:weak" in run.stdout, run.output
    warning = next(line for line in run.stdout.splitlines() if line.startswith("warning: //m:weak"))
    assert "atol 1e+06" in warning and "says nothing" in warning
    assert "fix:" in run.stdout and "rtol" in run.stdout
    assert not any(line.startswith("warning: //m:forms") for line in run.stdout.splitlines())
    by_label = {r["label"]: r for r in results}
    assert by_label["//m:weak"]["warnings"] and not by_label["//m:forms"]["warnings"]


def test_a_failing_eager_reference_run_names_the_step_the_case_and_a_fix(tested) -> None:
    _, run, _ = tested
    assert "FAILED //m:eager_fails: export: m/BUILD.aot.yaml:" in run.stdout, run.output
    error = next(line for line in run.output.splitlines() if line.startswith("error: //m:eager_fails:"))
    assert error.startswith("error: //m:eager_fails: eager reference run failed: m/BUILD.aot.yaml:")
    assert "field 'inputs'" in error and "input case 'b=1 (min)'" in error and "no fast path for a single row" in error
    assert "fix: make the declared inputs valid for the model on every case" in run.output


def test_a_cache_output_suggests_use_cache_false(tested) -> None:
    _, run, _ = tested
    assert "FAILED //m:returns_cache" in run.stdout, run.output
    assert "returns an object of type m.models.DynamicCache" in run.output
    fix = next(line for line in run.output.splitlines() if "use_cache=False" in line)
    assert fix.strip().startswith("fix: turn the cache output off with use_cache=False")
    assert "inputs: {use_cache: {value: false, keyword: true}}" in fix


def test_failures_found_in_build_files_by_actions_exit_2(tested) -> None:
    ws, run, _ = tested
    # eager_fails, misnamed and returns_cache all fail on what their BUILD entries declare.
    assert run.code == 2, run.output
    alone = aotbuild(["build", "//m:misnamed"], ws, {"AOTBUILD_CACHE_DIR": str(ws.parent / "cache")})
    assert alone.code == 2 and "field 'inputs.xx': input 'xx' matches no parameter" in alone.output, alone.output
