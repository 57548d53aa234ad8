"""End to end with models shaped like real ones: a registered dataclass output, .safetensors weights, and
models that must fail at build time with an error naming what to fix (tests/real_models_ws/)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aotbuild import layout
from aotbuild.cache.access import record_root
from aotbuild.workspace.labels import parse_label
from aotbuild.layout import TargetPaths

from .conftest import aotbuild, torch_tripwire

pytestmark = pytest.mark.torch

WS = Path(__file__).resolve().parent / "real_models_ws"
DC = "//models:dataclass_out"
DC_DIR = TargetPaths(parse_label(DC)).dir  # relative to aot-out/


def copy_ws(dest: Path) -> Path:
    shutil.copytree(WS, dest, ignore=shutil.ignore_patterns("aot-out", "__pycache__"))
    return dest


def fake_distribution(site: Path, version: str) -> None:
    """An installed distribution `fakedep` (dist-info and all) that the dataclass model imports."""
    for old in site.glob("fakedep-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"fakedep-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakedep\nVersion: {version}\n")
    (info / "top_level.txt").write_text("fakedep\n")
    (site / "fakedep").mkdir(exist_ok=True)
    (site / "fakedep" / "__init__.py").write_text("SCALE = 1\n")


@pytest.fixture(scope="session")
def real_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The workspace, its dataclass model tested once (built, verified) against a session cache."""
    pytest.importorskip("safetensors")
    import torch
    from safetensors.torch import save_file

    base = tmp_path_factory.mktemp("real")
    ws = copy_ws(base / "ws")
    site = base / "site"
    fake_distribution(site, "1.0")
    with open(ws / "models" / "net.py", "a") as f:
        f.write("\nimport fakedep  # an installed distribution: its version is a dependency of the export\n")
    gen = torch.Generator().manual_seed(0)
    shapes = {"proj.weight": (6, 8), "proj.bias": (6,), "head.weight": (4, 6), "head.bias": (4,)}
    save_file({k: torch.randn(s, generator=gen) for k, s in shapes.items()}, str(ws / "models" / "net.safetensors"))
    env = {"AOTBUILD_CACHE_DIR": str(base / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    run = aotbuild(["test", DC], ws, env)
    assert run.code == 0, run.output
    return ws, env


def manifest(ws: Path, label: str = DC) -> dict:
    return json.loads((ws / "aot-out" / TargetPaths(parse_label(label)).file("manifest.json")).read_text())


def test_manifest_describes_the_artifact_as_structured_json(real_ws) -> None:
    ws, _ = real_ws
    m = manifest(ws)
    assert m["requires_imports"] == ["models.outputs"]
    assert m["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 8], "keyword": False},
                           {"name": "scale", "dtype": "float32", "shape": [6], "keyword": True}]
    assert m["dims"] == {"batch": {"min": 2, "max": 16, "example": 8}}
    assert m["outputs"] == [{"name": "logits", "path": ".logits", "dtype": "float32", "shape": ["batch", 4]},
                            {"name": "hidden", "path": ".hidden", "dtype": "float32", "shape": ["batch", 6]}]
    assert m["out_spec"] == {"type": "models.outputs.Result", "context": [["logits", "hidden"], []],
                             "children": [{"leaf": 0}, {"leaf": 1}]}
    assert m["in_spec"]["type"] == "builtins.tuple"
    text = (ws / "aot-out" / DC_DIR / "manifest.json").read_text()
    assert not re.search(r"\bs\d+\b", text) and "TreeSpec" not in text and "torch." not in json.dumps(m["outputs"])


LOAD = """
import importlib, json, sys
import torch
manifest = json.load(open(sys.argv[1]))
if sys.argv[3] == "imports":
    sys.path.insert(0, sys.argv[2])
    for module in manifest["requires_imports"]:
        importlib.import_module(module)
runner = torch._inductor.aoti_load_package(sys.argv[4])
out = runner(torch.randn(5, 8), scale=torch.ones(6))
print(json.dumps({"type": f"{type(out).__module__}.{type(out).__name__}", "logits": list(out.logits.shape),
                  "hidden": list(out.hidden.shape)}))
"""


def test_pt2_loads_in_a_fresh_process_following_only_the_manifest(real_ws, tmp_path: Path) -> None:
    ws, _ = real_ws
    target = ws / "aot-out" / DC_DIR
    args = [str(target / "manifest.json"), str(ws)]
    pt2 = str(target / manifest(ws)["artifacts"]["pt2"]["file"])
    # A fresh process in another directory: nothing of the workspace is importable unless the manifest says so.
    ok = subprocess.run([sys.executable, "-c", LOAD, *args, "imports", pt2], cwd=tmp_path, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"type": "models.outputs.Result", "logits": [5, 4], "hidden": [5, 6]}
    without = subprocess.run([sys.executable, "-c", LOAD, *args, "none", pt2], cwd=tmp_path, capture_output=True,
                             text=True)
    assert without.returncode != 0 and "models.outputs.Result" in without.stderr  # the import is really needed


def test_models_that_cannot_work_fail_at_build_time_naming_the_fix(tmp_path: Path) -> None:
    ws = copy_ws(tmp_path / "ws")
    env = {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")}
    run = aotbuild(["build", "//bad:all", "-k"], ws, env)
    assert run.code != 0
    assert set(run.report["failures"]) == {f"//bad:{n}" for n in (
        "static_typo", "dynamic_typo", "missing_input", "swapped_inputs", "none_output", "int_output", "bad_option",
        "bad_option_type", "import_raises", "unnamed_output_type")}
    out = run.output
    build = "bad/BUILD.aot.yaml"
    expected = [
        rf"{build}:3, target '//bad:static_typo', field 'inputs.xx': input 'xx' matches no parameter of "
        r"forward\(x: torch.Tensor\)[^\n]*\n\s+fix: did you mean 'x'\?",
        rf"{build}:7, target '//bad:dynamic_typo', field 'inputs.inp': input 'inp' matches no parameter[^\n]*\n"
        r"\s+fix: name each input after a parameter: x",
        rf"{build}:13, target '//bad:missing_input', field 'inputs': forward\(\)'s required parameter 'mask' has "
        r"no input",
        rf"{build}:17, target '//bad:swapped_inputs', field 'inputs.mask': input 'mask' is passed positionally as "
        r"parameter 'x'[^\n]*\n\s+fix: list the inputs in forward\(\)'s order \(x, mask\), or mark 'mask' "
        r"`keyword: true`",
        rf"{build}:22, target '//bad:none_output'[^\n]*forward\(\) output '\[1\]' is NoneType \(None\), not a tensor",
        rf"{build}:26, target '//bad:int_output'[^\n]*forward\(\) output '\[1\]' is int \(7\), not a tensor",
        rf"{build}:30, target '//bad:bad_option', field 'options.aot_inductor.compile_wraper_opt_level': unknown "
        r"inductor option[^\n]*\n\s+fix: did you mean 'aot_inductor.compile_wrapper_opt_level'\?",
        rf"{build}:36, target '//bad:bad_option_type', field 'options.max_autotune': inductor option 'max_autotune' "
        r"takes true or false, found 'yes'",
        r"//bad:import_raises: export failed: target //bad:import_raises, model: importing module 'bad.boom' "
        r"\(from 'bad.boom:Net'\) raised ValueError: boom: this module is broken at \S*bad/boom.py:3",
        rf"{build}:46, target '//bad:unnamed_output_type'[^\n]*use bad.nets.Unnamed, registered as a pytree node "
        r"without a serialized name[^\n]*\n\s+fix: register it with a name, e.g. torch.export.register_dataclass"
        r"\(Unnamed, serialized_type_name='bad.nets.Unnamed'\)",
    ]
    for pattern in expected:
        assert re.search(pattern, out), f"{pattern!r} not in:\n{out}"
    # Options are refused before the model is even imported, and everything here fails before any compile.
    assert not any(a["action"] == "compile" for a in run.report["actions"])
    assert "torch._dynamo" not in out and "Traceback" not in out  # no raw torch text


def test_changing_only_the_example_size_updates_the_manifest(real_ws, tmp_path: Path) -> None:
    """issue 14: export.json is read by the compile action, so it must be an input of its edge."""
    _, env = real_ws
    ws = copy_ws(tmp_path / "ws")
    shutil.copy(real_ws[0] / "models" / "net.safetensors", ws / "models")
    shutil.copy(real_ws[0] / "models" / "net.py", ws / "models")
    assert aotbuild(["build", DC], ws, env).code == 0
    assert manifest(ws)["dims"]["batch"]["example"] == 8
    build = ws / "models" / "BUILD.aot.yaml"
    build.write_text(build.read_text().replace("example: 8", "example: 12"))
    run = aotbuild(["build", DC], ws, env)
    assert run.code == 0, run.output
    assert manifest(ws)["dims"]["batch"]["example"] == 12


AUDIT = """
import os, runpy, sys
reads = set()
def hook(event, args):
    if event == "open" and args[0] is not None and not isinstance(args[0], int):
        mode, flags = args[1], args[2]
        if (mode is None and not flags & (os.O_WRONLY | os.O_RDWR)) or (mode and "r" in mode and "+" not in mode):
            reads.add(os.path.abspath(os.fsdecode(args[0])))
log, module = sys.argv[1], sys.argv[2]
sys.argv = [module, sys.argv[3]]
sys.addaudithook(hook)
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
finally:
    open(log, "w").write("\\n".join(sorted(reads)))
"""


def _declared(ws: Path, output: str) -> set[str]:
    """The inputs of the edge producing `output`, as `ninja -t query` lists them under `input:`."""
    import ninja

    text = subprocess.run([str(Path(ninja.BIN_DIR) / "ninja"), "-C", str(ws / "aot-out"), "-f", layout.NINJA_FILE,
                           "-t", "query", output],
                          capture_output=True, text=True, check=True).stdout
    section = text.split("  input:", 1)[1].split("  outputs:", 1)[0]
    return {str((ws / "aot-out" / line.strip().removeprefix("|| ").removeprefix("| ")).resolve())
            for line in section.splitlines()[1:] if line.strip()}


@pytest.mark.parametrize("action,products,fresh_cache", [
    ("export", ("graph.json", "reference.json", "graph.json.d", "graph.deps", "reference_io.pt"), True),
    ("compile", ("manifest.json",), False),
    ("verify", ("verified.json",), True),
])
def test_every_file_an_action_reads_is_an_input_of_its_edge(real_ws, tmp_path: Path, action: str,
                                                          products: tuple[str, ...], fresh_cache: bool) -> None:
    ws, env = real_ws
    recorded = ws / "aot-out" / layout.CACHE_ROOT_FILE
    last_root = recorded.read_bytes()
    if fresh_cache:  # cache misses take the paths that read the most (a re-export from the spec files)
        record_root(ws / "aot-out", tmp_path / "cache")  # actions use the cache root the build recorded
    spec = {"export": "export.json", "compile": "compile.json", "verify": "verify.json"}[action]
    log = tmp_path / "reads.txt"
    try:
        proc = subprocess.run([sys.executable, "-c", AUDIT, str(log), f"aotbuild.actions.{action}",
                               f"{DC_DIR}/{spec}"], cwd=ws / "aot-out", capture_output=True, text=True,
                              env={**os.environ, **env})
    finally:
        recorded.write_bytes(last_root)
    target = ws / "aot-out" / DC_DIR
    assert proc.returncode == 0, proc.stderr + (target / f"{action}.log").read_text()
    out_dir = str((ws / "aot-out").resolve())
    reads_all = log.read_text().splitlines()
    assert reads_all, "the audit saw no reads: the hook is broken"
    # Distribution stamps are in the depfile; the recorded cache root says where the cache is, and moving the
    # cache changes no output.
    reads = {str(Path(p).resolve()) for p in reads_all if p.startswith(out_dir) and not p.endswith(".log")
             and "/.aotbuild/dists/" not in p and not p.endswith(layout.CACHE_ROOT_FILE)}
    own = {str((target / p).resolve()) for p in products}  # write_if_changed reads an output before writing it
    # The artifacts are no ninja outputs (their names carry digests): manifest.json, which names them with
    # their sha256, stands for them, and verify checks them against it.
    own |= {str((target / a["file"]).resolve()) for a in manifest(ws)["artifacts"].values()}
    undeclared = reads - own - _declared(ws, f"{DC_DIR}/{products[0]}")
    assert not undeclared, f"{action} reads files its edge does not declare: {sorted(undeclared)}"


def test_reinstalling_distributions_keeps_a_noop_build_a_noop(real_ws, tmp_path: Path) -> None:
    ws, env = real_ws
    assert aotbuild(["build", DC], ws, env).code == 0
    # What `pip install -e .` and `.ci/setup` do: rewrite METADATA files of unchanged versions.
    site = Path(env["PYTHONPATH"].split(os.pathsep)[0])
    for metadata in [*Path(sys.prefix).glob("lib/python*/site-packages/*.dist-info/METADATA"),
                     *site.glob("*.dist-info/METADATA")]:
        os.utime(metadata)
    tripwire, marker = torch_tripwire(tmp_path)
    run = aotbuild(["build", DC], ws, {**env, "PYTHONPATH": tripwire["PYTHONPATH"] + os.pathsep + env["PYTHONPATH"]})
    assert run.code == 0, run.output
    assert run.report["targets"] == {DC: "up to date"} and not marker.exists()


def test_upgrading_an_imported_distribution_reexports(real_ws, tmp_path: Path) -> None:
    _, env = real_ws
    ws = copy_ws(tmp_path / "ws")
    for name in ("net.safetensors", "net.py"):
        shutil.copy(real_ws[0] / "models" / name, ws / "models")
    site = tmp_path / "site"
    fake_distribution(site, "1.0")
    env = {**env, "PYTHONPATH": str(site)}
    assert aotbuild(["build", DC], ws, env).code == 0
    fake_distribution(site, "2.0")
    run = aotbuild(["build", DC], ws, env)
    assert run.code == 0, run.output
    assert ("//models:dataclass_out", "export") in {(a["label"], a["action"]) for a in run.report["actions"]}
    assert run.report["targets"][DC] == "exported"  # a new version, the same graph: no compile
    run = aotbuild(["build", DC], ws, env)
    assert run.report["targets"] == {DC: "up to date"}, run.output
