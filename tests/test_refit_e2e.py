"""Refit end to end: new weights re-package a structure's compiled code, with no C++ compile, into the bytes a
fresh compile gives; anything that does not check out compiles in full."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from aotbuild.actions import program_blob, refit
from aotbuild.actions.program_blob import program_tensors
from aotbuild.cache.local import LocalStore

from .conftest import aotbuild

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

MODEL = '''import torch


class Net(torch.nn.Module):
    """Linear layers, a batch norm (num_batches_tracked unused), a 0-d buffer and a lifted tensor constant."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.bn = torch.nn.BatchNorm1d(32)
        self.fc2 = torch.nn.Linear(32, 8)
        self.register_buffer("scale", torch.tensor(2.0))
        self.shift = torch.linspace(-1.0, 1.0, 8)

    def forward(self, x):
        x = x.float()  # a float32 input as it is; a float64 one converted (another graph)
        return self.fc2(torch.relu(self.bn(self.fc1(x)))) * self.scale + self.shift
'''
BUILD = """targets:
  a: {model: m.net:Net, weights: a.pt, inputs: {x: {shape: [4, 16], dtype: float32}}}
  b: {model: m.net:Net, weights: b.pt, inputs: {x: {shape: [4, 16], dtype: float32}}}
"""
# The phases of an AOTInductor compile (actions/runtime.py): none of them may run when re-packaging.
COMPILE_PHASES = {"trace_and_package", "lower", "codegen", "precompiled_header", "cxx_compile_link"}


def net() -> Any:
    namespace: dict[str, Any] = {}
    exec(MODEL, namespace)  # noqa: S102 - the test's own model source, also written into the workspace
    return namespace["Net"]()


def write_weights(path: Path, seed: int) -> dict[str, Any]:
    """A checkpoint of Net where every entry depends on `seed` (num_batches_tracked too: unused by the graph)."""
    g = torch.Generator().manual_seed(seed)
    state = net().state_dict()
    for name, t in state.items():
        if t.is_floating_point():
            t.copy_(torch.rand(t.shape, generator=g) + 0.5 if name.endswith("running_var")
                    else torch.randn(t.shape, generator=g) * 0.3)
        else:
            t.fill_(seed)
    torch.save(state, path)
    return state


def workspace(root: Path, seeds: dict[str, int]) -> Path:
    (root / "m").mkdir(parents=True)
    (root / "WORKSPACE.aot.yaml").write_text("")
    (root / "m" / "__init__.py").write_text("")
    (root / "m" / "net.py").write_text(MODEL)
    (root / "m" / "BUILD.aot.yaml").write_text(BUILD)
    for name, seed in seeds.items():
        write_weights(root / "m" / f"{name}.pt", seed)
    return root


def compile_events(run: Any) -> dict[str, dict[str, Any]]:
    return {a["label"]: a for a in run.report["actions"] if a["action"] == "compile"}


def manifest(ws: Path, name: str) -> dict[str, Any]:
    return json.loads((ws / "aot-out" / "m" / f"@{name}" / "manifest.json").read_text())


def artifacts(ws: Path, name: str) -> dict[str, str]:
    return {kind: art["sha256"] for kind, art in manifest(ws, name)["artifacts"].items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Any]:
    """Two targets of one architecture with different weights, built together into an empty cache."""
    base = tmp_path_factory.mktemp("refit")
    env = {"AOTBUILD_CACHE_DIR": str(base / "cache")}
    ws = workspace(base / "ws", {"a": 1, "b": 2})
    run = aotbuild(["build", "//m:all"], ws, env)
    assert run.code == 0, run.output
    return ws, env, run


def test_two_targets_of_one_architecture_compile_once(built) -> None:
    ws, _, run = built
    assert sorted(run.report["targets"].values()) == ["compiled", "re-packaged"], run.output
    events = compile_events(run)
    phases = {events[label]["outcome"]: set(events[label]["phases"]) for label in events}
    assert "cxx_compile_link" in phases["compiled"] and not phases["re-packaged"] & COMPILE_PHASES, phases
    assert "repackage" in phases["re-packaged"]
    a, b = manifest(ws, "a"), manifest(ws, "b")
    assert a["structure_key"] == b["structure_key"] and a["structure_hash"] == b["structure_hash"]
    assert a["weights_digest"] != b["weights_digest"] and artifacts(ws, "a") != artifacts(ws, "b")
    assert "re-packaged" in run.stdout  # the summary line names the outcome


def test_re_packaged_artifacts_pass_aotbuild_test(built) -> None:
    ws, env, _ = built
    run = aotbuild(["test", "//m:all"], ws, env)
    assert run.code == 0, run.output
    assert "PASSED //m:a" in run.stdout and "PASSED //m:b" in run.stdout


def test_new_weights_re_package_and_the_bare_so_runs_them(built, tmp_path: Path) -> None:
    _, env, _ = built
    ws = workspace(tmp_path / "ws", {"a": 1, "b": 2})
    state = write_weights(ws / "m" / "a.pt", 7)
    run = aotbuild(["test", "//m:a"], ws, env)
    assert run.code == 0, run.output
    assert run.report["targets"]["//m:a"] == "re-packaged"
    assert not set(compile_events(run)["//m:a"]["phases"]) & COMPILE_PHASES
    # The bare .so alone in a directory of its own, with the new weights inside it.
    alone = tmp_path / "alone" / "model.so"
    alone.parent.mkdir()
    shutil.copy(ws / "aot-out" / "m" / "@a" / manifest(ws, "a")["artifacts"]["so"]["file"], alone)
    model = net().eval()
    model.load_state_dict(state)
    x = torch.randn(4, 16)
    with torch.no_grad():
        want = model(x)
    got = torch._C._aoti.AOTIModelContainerRunnerCpu(str(alone), 1).run([x])[0]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_a_structure_compiled_elsewhere_re_packages_through_the_remote(nginx_server, tmp_path: Path) -> None:
    """CI compiles a and uploads; a machine with an empty local cache builds b, the same architecture with other
    weights: re-packaged from the refit record and base artifacts the remote holds, no C++ compile."""
    url = nginx_server.url(nginx_server.new_prefix())
    ci = workspace(tmp_path / "ci", {"a": 1, "b": 2})
    run = aotbuild(["build", "//m:a", "--remote-cache", url, "--remote-upload"], ci,
                   {"AOTBUILD_CACHE_DIR": str(tmp_path / "ci-cache")})
    assert run.code == 0 and run.report["targets"]["//m:a"] == "compiled", run.output
    dev = workspace(tmp_path / "dev", {"a": 1, "b": 2})
    run = aotbuild(["build", "//m:b", "--remote-cache", url], dev, {"AOTBUILD_CACHE_DIR": str(tmp_path / "dev-cache")})
    assert run.code == 0, run.output
    assert run.report["targets"]["//m:b"] == "re-packaged"
    assert not set(compile_events(run)["//m:b"]["phases"]) & COMPILE_PHASES
    assert run.report["remote"]["hits"] > 0 and run.report["remote"]["warnings"] == []


STRUCTURE_CHANGES = {  # target a's line of the BUILD file, edited
    "shape": ("[4, 16], dtype: float32", "[2, 16], dtype: float32"),
    "dtype": ("[4, 16], dtype: float32", "[4, 16], dtype: float64"),
    "option": ("float32}}}", "float32}}, options: {aot_inductor.compile_wrapper_opt_level: O0}}"),
}


@pytest.mark.parametrize("change", sorted(STRUCTURE_CHANGES))
def test_a_structure_change_compiles(built, tmp_path: Path, change: str) -> None:
    _, env, _ = built
    ws = workspace(tmp_path / "ws", {"a": 1, "b": 2})
    (ws / "m" / "BUILD.aot.yaml").write_text(BUILD.replace(*STRUCTURE_CHANGES[change], 1))
    run = aotbuild(["build", "//m:a"], ws, env)
    assert run.code == 0, run.output
    assert run.report["targets"]["//m:a"] == "compiled"
    assert "cxx_compile_link" in compile_events(run)["//m:a"]["phases"]


# -- the checks, on the record and artifacts the build stored


def named(run: Any, outcome: str) -> str:
    """The target of the first build that was `outcome` (which of a and b compiled depends on scheduling)."""
    return next(label for label, o in run.report["targets"].items() if o == outcome).rpartition(":")[2]


def stored(ws: Path, env: dict[str, str], name: str) -> tuple[LocalStore, str, dict[str, Any], Any, bytes, bytes]:
    """The cache, the structure key, its refit record, target `name`'s tensors (as a re-package reads them from
    its program archive) and its base artifacts."""
    store = LocalStore(Path(env["AOTBUILD_CACHE_DIR"]))
    key = manifest(ws, name)["structure_key"]
    record = store.get_action(key)
    assert record is not None and record["fixed"] == []  # kept in the blob: no value compiled into the code
    graph = json.loads((ws / "aot-out" / "m" / f"@{name}" / "graph.json").read_text())
    tensors = program_blob._archive_tensors(store.blob_path(graph["program"]))
    return (store, key, record, tensors, store.blob_path(record["so"]["sha256"]).read_bytes(),
            store.blob_path(record["pt2"]["sha256"]).read_bytes())


def _row(record: dict[str, Any], name: str) -> int:
    return [r["name"] for r in record["table"]].index(name)


def _edit_row(record: dict[str, Any], change: dict[str, Any], index: int = 1) -> dict[str, Any]:
    table = [dict(r) for r in record["table"]]
    table[index].update(change)
    return {**record, "table": table}


TAMPERED = {
    "blob digest": lambda r: {**r, "blob": {**r["blob"], "sha256": "0" * 64}},
    "blob offset": lambda r: {**r, "blob": {**r["blob"], "offset": r["blob"]["offset"] + 64}},
    "row moved": lambda r: _edit_row(r, {"offset": r["table"][1]["offset"] + 64}),
    "row dropped": lambda r: {**r, "table": r["table"][:-1]},
    "row source swapped": lambda r: _edit_row(r, {"source": "bn.bias"}, _row(r, "fc1.bias")),
    "fixed values changed": lambda r: {**r, "fixed": [{"name": "scale", "sha256": "0" * 64}]},
    "library name": lambda r: {**r, "library": "model/data/aotinductor/model/other.wrapper.so"},
}


def test_the_archive_holds_the_loaded_programs_tensors_with_their_ties(built) -> None:
    """What a re-package reads without deserializing the graph is what torch.export.load gives."""
    ws, env, run = built
    graph = json.loads((ws / "aot-out" / "m" / "@a" / "graph.json").read_text())
    path = LocalStore(Path(env["AOTBUILD_CACHE_DIR"])).blob_path(graph["program"])
    loaded, read = program_tensors(torch.export.load(str(path))), program_blob._archive_tensors(path)
    assert read is not None and list(read) == list(loaded) and len(read) > 3
    for name, t in loaded.items():
        assert (read[name].dtype, read[name].shape, read[name].stride()) == (t.dtype, t.shape, t.stride())
        assert torch.equal(read[name], t), name
    storages = lambda ts: [sorted(n for n in ts if ts[n].untyped_storage().data_ptr()  # noqa: E731
                                  == ts[k].untyped_storage().data_ptr()) for k in ts]
    assert storages(read) == storages(loaded)


def test_the_base_with_its_own_weights_re_packages_to_itself(built) -> None:
    ws, env, run = built
    _, _, record, tensors, so, pt2 = stored(ws, env, named(run, "compiled"))
    assert refit.repackage(record, tensors, so, pt2) == (so, pt2)


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_record_is_refused(built, case: str) -> None:
    ws, env, run = built
    _, _, record, tensors, so, pt2 = stored(ws, env, named(run, "compiled"))
    with pytest.raises(refit.Unsafe):
        refit.repackage(TAMPERED[case](record), tensors, so, pt2)


@pytest.mark.parametrize("where", ["blob", "build-id", "code"])
def test_a_damaged_base_library_is_refused(built, where: str) -> None:
    ws, env, run = built
    _, _, record, tensors, so, pt2 = stored(ws, env, named(run, "compiled"))
    from aotbuild.actions import elf_blob

    data = bytearray(so)
    text = next(s for s in elf_blob.sections(data) if s.name == ".text")
    at = {"blob": record["blob"]["offset"] + 3, "build-id": elf_blob.build_id_range(data)[0],
          "code": text.offset + 16}[where]
    data[at] ^= 0x10
    with pytest.raises(refit.Damaged):
        refit.repackage(record, tensors, bytes(data), pt2)


def test_a_tampered_record_in_the_cache_compiles_in_full_the_bytes_refit_gave(built, tmp_path: Path) -> None:
    """The target re-packaged by the first build, built again with its compile entry gone and its structure's
    record damaged: a full compile, with a warning, of exactly the bytes the refit had given."""
    ws, env, run = built
    name = named(run, "re-packaged")
    store, key, record, _, _, _ = stored(ws, env, name)
    store.put_action(key, TAMPERED["row moved"](record))
    compile_entry = manifest(ws, name)["compile_key"]
    (store.base / "ac" / compile_entry[:2] / compile_entry).unlink()
    fresh = workspace(tmp_path / "ws", {"a": 1, "b": 2})
    again = aotbuild(["build", f"//m:{name}"], fresh, env)
    assert again.code == 0, again.output
    assert again.report["targets"][f"//m:{name}"] == "compiled"
    assert "not a valid refit entry" in again.output
    assert artifacts(fresh, name) == artifacts(ws, name)  # refit = a fresh compile, byte for byte
    assert hashlib.sha256((fresh / "aot-out" / "m" / f"@{name}" / f"{name}.so").read_bytes()).hexdigest() \
        == artifacts(ws, name)["so"]
