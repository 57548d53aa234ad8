"""End to end: build example_project/ for real, then edit it the ways users do and check what reruns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from .conftest import TARGETS, aotbuild, artifact_digests, copy_example, make_tiny, torch_tripwire

pytestmark = pytest.mark.torch



def actions(run) -> set[tuple[str, str]]:
    return {(a["label"], a["action"]) for a in run.report["actions"]}


@pytest.fixture
def warm_copy(cold, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A fresh checkout of the example built from the warm cache (no compiles)."""
    _, env = cold
    ws = copy_example(tmp_path / "ws")
    run = aotbuild(["build", "//..."], ws, env)
    assert run.code == 0, run.output
    assert set(run.report["targets"].values()) <= {"action-cache hit", "artifact-cache hit"}
    return ws, env


def test_every_target_has_artifacts_and_manifest(cold) -> None:
    ws, _ = cold
    for label in TARGETS:
        package, name = label[2:].split(":")
        d = ws / "aot-out" / package / f"@{name}"
        manifest = (d / "manifest.json").read_text()
        for ext in ("so", "pt2"):
            alias = d / f"{name}.{ext}"
            assert alias.is_symlink() and alias.resolve().exists()
            digest = hashlib.sha256(alias.read_bytes()).hexdigest()
            assert digest in manifest and alias.resolve().name == f"{name}-{digest[:16]}.{ext}"


def test_noop_build_runs_no_action_and_imports_no_torch(cold, tmp_path: Path) -> None:
    ws, env = cold
    tripwire, marker = torch_tripwire(tmp_path)
    run = aotbuild(["build", "//..."], ws, {**env, **tripwire})
    assert run.code == 0, run.output
    assert "no work to do" in run.stdout
    assert run.report["actions"] == []
    assert set(run.report["targets"].values()) == {"up to date"}
    assert not marker.exists(), marker.read_text()


def test_fresh_checkout_with_warm_cache_is_torch_free_and_byte_identical(cold, tmp_path: Path) -> None:
    ws, env = cold
    tripwire, marker = torch_tripwire(tmp_path)
    fresh = copy_example(tmp_path / "elsewhere" / "checkout")
    run = aotbuild(["build", "//..."], fresh, {**env, **tripwire})
    assert run.code == 0, run.output
    assert not marker.exists(), marker.read_text()
    assert {o for o in run.report["targets"].values()} == {"artifact-cache hit"}
    assert artifact_digests(fresh) == artifact_digests(ws)


def test_comment_edit_reexports_only_that_target_and_skips_compile(warm_copy) -> None:
    ws, env = warm_copy
    before = artifact_digests(ws)
    with open(ws / "models" / "cnn.py", "a") as f:
        f.write("\n# A comment changes no graph.\n")
    run = aotbuild(["build", "//..."], ws, env)
    assert run.code == 0, run.output
    assert actions(run) == {("//models:cnn", "export")}
    assert run.report["targets"]["//models:cnn"] == "exported"
    assert artifact_digests(ws) == before


def test_real_model_change_rebuilds_that_target_only(warm_copy) -> None:
    ws, env = warm_copy
    before = artifact_digests(ws)
    cnn = ws / "models" / "cnn.py"
    cnn.write_text(cnn.read_text().replace("width: int = 8", "width: int = 12"))
    run = aotbuild(["build", "//..."], ws, env)
    assert run.code == 0, run.output
    assert actions(run) == {("//models:cnn", "export"), ("//models:cnn", "compile")}
    assert run.report["targets"]["//models:cnn"] == "compiled"
    after = artifact_digests(ws)
    assert {k for k in after if "cnn" in k}.isdisjoint(before)
    assert {k: v for k, v in after.items() if "/@cnn/" not in k} == {k: v for k, v in before.items() if "/@cnn/" not in k}


def test_helper_module_change_rebuilds_its_importers(warm_copy) -> None:
    ws, env = warm_copy
    layers = ws / "models" / "layers.py"
    layers.write_text(layers.read_text().replace("silu(x) * self.scale", "silu(x) * self.scale * 0.5"))
    run = aotbuild(["build", "//..."], ws, env)
    assert run.code == 0, run.output
    # mlp*.py use ScaledSiLU (graph changes); classifier.py imports layers.py too but its graph is unchanged.
    assert actions(run) == {(t, a) for t in ("//models:mlp", "//models:mlp_dynamic") for a in ("export", "compile")} \
        | {(f"//vision:{t}", "export") for t in ("classifier", "classifier_dynamic", "classifier_finetuned")}
    assert run.report["targets"]["//vision:classifier"] == "exported"


def test_build_file_change_rebuilds_that_target_only(warm_copy) -> None:
    ws, env = warm_copy
    build_file = ws / "models" / "BUILD.aot.yaml"
    ninja_before = (ws / "aot-out" / ".aotbuild" / "build.ninja").stat().st_mtime_ns
    build_file.write_text(build_file.read_text().replace("x: {shape: [8, 64], dtype: float32}",
                                                         "x: {shape: [4, 64], dtype: float32}"))
    run = aotbuild(["build", "//..."], ws, env)
    assert run.code == 0, run.output
    assert (ws / "aot-out" / ".aotbuild" / "build.ninja").stat().st_mtime_ns > ninja_before
    assert actions(run) == {("//models:mlp", "export"), ("//models:mlp", "compile")}
    assert '"8"' not in (ws / "aot-out" / "models" / "@mlp" / "manifest.json").read_text()


BAD_MODELS = '''
import torch


class DataDependent(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # Python control flow on a tensor value: torch.export must reject this
            return x * 2
        return x - 1


def raises():
    raise ValueError("factory exploded on purpose")


class Tiny(torch.nn.Module):
    def forward(self, x):
        return torch.relu(x) + 1
'''

BAD_BUILD = '''
targets:
  good:
    model: pkg.bad_models:Tiny
    inputs: {x: {shape: [4, 4], dtype: float32}}
  missing_module:
    model: pkg.nowhere:Model
    inputs: {x: {shape: [4, 4], dtype: float32}}
  factory_raises:
    model: pkg.bad_models:raises
    inputs: {x: {shape: [4, 4], dtype: float32}}
  export_rejects:
    model: pkg.bad_models:DataDependent
    inputs: {x: {shape: [4, 4], dtype: float32}}
  bad_field:
    model: pkg.bad_models:Tiny
    inputs: {x: {shape: [4, 4], dtype: float32}}
    optoins: {}
'''


def test_failures_are_reported_per_target_and_keep_going_builds_the_rest(cold, tmp_path: Path) -> None:
    _, env = cold
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "WORKSPACE.aot.yaml").write_text("")
    (ws / "pkg" / "bad_models.py").write_text(BAD_MODELS)
    (ws / "pkg" / "BUILD.aot.yaml").write_text(BAD_BUILD)
    run = aotbuild(["build", "//pkg:all"], ws, env)
    assert run.code == 2 and "pkg/BUILD.aot.yaml:18" in run.stderr and "unknown key 'optoins'" in run.stderr
    assert not (ws / "aot-out" / "pkg" / "@good" / "manifest.json").exists()  # without -k nothing is built

    run = aotbuild(["build", "-k", "//pkg:all"], ws, env)
    assert run.code == 2, run.output
    assert run.report["targets"]["//pkg:good"] == "compiled"
    assert (ws / "aot-out" / "pkg" / "@good" / "good.so").exists()
    failures = run.report["failures"]
    assert "no such module" in failures["//pkg:missing_module"] and "pkg.nowhere" in failures["//pkg:missing_module"]
    assert "factory exploded on purpose" in failures["//pkg:factory_raises"]
    assert "torch.export rejected the model" in failures["//pkg:export_rejects"]
    for label in ("missing_module", "factory_raises", "export_rejects"):
        assert (ws / "aot-out" / "pkg" / f"@{label}" / "export.log").exists()
        assert not (ws / "aot-out" / "pkg" / f"@{label}" / "graph.json").exists()

    # With the BUILD error fixed, only the action failures remain: exit code 1.
    (ws / "pkg" / "BUILD.aot.yaml").write_text(BAD_BUILD.replace("    optoins: {}\n", ""))
    run = aotbuild(["build", "-k", "//pkg:all"], ws, env)
    assert run.code == 1, run.output
    # The same model under a second label is never compiled twice: its artifacts come from the cache.
    assert run.report["targets"]["//pkg:bad_field"] == "artifact-cache hit"
    assert run.report["targets"]["//pkg:good"] == "up to date"


def test_query_lists_outputs_and_discovered_dependencies(cold) -> None:
    ws, env = cold
    run = aotbuild(["query", "//vision:classifier", "--output", "json"], ws, env)
    assert run.code == 0, run.output
    (row,) = json.loads(run.stdout)
    assert row["outputs"]["so"].endswith("vision/@classifier/classifier.so")
    # Imported across packages, the checkpoint, and installed distributions (by their version stamps).
    assert {"models/layers.py", "vision/classifier.py", "vision/classifier_weights.pt"} <= set(row["deps"])
    assert "aot-out/.aotbuild/dists/torch" in row["deps"]
    assert (ws / "aot-out/.aotbuild/dists/torch").read_text().startswith("torch==2.")


def test_an_input_no_parameter_takes_is_a_build_file_error_exit_2(tmp_path: Path) -> None:
    ws = make_tiny(tmp_path / "ws")
    (ws / "m" / "BUILD.aot.yaml").write_text(
        "targets:\n  a: {model: m.tiny:Tiny, inputs: {xx: {shape: [2, 4], dtype: float32}}}\n")
    run = aotbuild(["build", "//..."], ws, {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert "input 'xx' matches no parameter" in run.stderr, run.output
    assert run.code == 2  # as for any error in a BUILD file, whichever step finds it
