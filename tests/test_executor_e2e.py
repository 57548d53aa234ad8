"""Builds through a real two-node Ray cluster and nginx: byte-identical artifacts, exports, routing, refusals
(faults: test_executor_faults_e2e.py)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from aotbuild import cpu_levels

from .conftest import SAME_ARCHITECTURE, TARGETS, TINY_MODEL, Run, aotbuild, artifact_digests, copy_example, make_tiny, write
from .ray_cluster import SIMULATED_ISA

pytestmark = [pytest.mark.torch,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs ray[client] (.ci/setup)")]


def _build(ws: Path, cluster, nginx, cache: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """A build through the cluster, with a fresh remote prefix (the nodes' own caches persist per session)."""
    return aotbuild(["build", *args, "--executor", cluster.url, "--remote-cache", nginx.url(nginx.new_prefix())],
                    ws, {"AOTBUILD_CACHE_DIR": str(cache), **(env or {})})


def _compiles(run: Run) -> dict[str, dict]:
    return _ran(run, "compile")


def _ran(run: Run, action: str) -> dict[str, dict]:
    return {a["label"]: a.get("executor") for a in run.report["actions"] if a["action"] == action}


def _tiny(tmp_path: Path, tiny_cache: dict[str, str], n: int | None = None) -> tuple[Path, Path]:
    """The tiny workspace and a copy of the session's cache of it (its exports hit); `n`: a model no cache has."""
    ws = make_tiny(tmp_path / "ws")
    if n is not None:
        write(ws / "m" / "BUILD.aot.yaml", f"targets:\n  a: {{model: m.tiny:Tiny, kwargs: {{n: {n}}}, "
                                           f"inputs: {{x: {{shape: [2, {n}], dtype: float32}}}}}}\n")
    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache["AOTBUILD_CACHE_DIR"], cache)
    return ws, cache


def _reference(tmp_path: Path, tiny_cache: dict[str, str]) -> dict[str, str]:
    """The tiny workspace's artifacts as the session's local build made them (a cache hit: no compile)."""
    ws = make_tiny(tmp_path / "reference")
    assert aotbuild(["build", "//m:a", "--remote-cache", ""], ws, tiny_cache).code == 0
    return artifact_digests(ws)


def test_the_example_builds_on_the_cluster_byte_identical_to_a_local_build(cold, ray_cluster, nginx_server,
                                                                           tmp_path: Path) -> None:
    local_ws, _ = cold
    ws = copy_example(tmp_path / "ws")
    run = _build(ws, ray_cluster, nginx_server, tmp_path / "cache", "//...")
    assert run.code == 0, run.output
    outcomes = run.report["targets"]
    assert outcomes == {**{t: "compiled" for t in TARGETS}, **{t: outcomes[t] for t in SAME_ARCHITECTURE}}
    # The architecture's second weights re-package here, from the refit record the node's compile stored.
    repackaged = [t for t in SAME_ARCHITECTURE if outcomes[t] == "re-packaged"]
    assert len(repackaged) == 1 and _compiles(run)[repackaged[0]] is None, run.output
    # Only the head has this machine's CPU ISA: the second node says it has another.
    assert {e["node"] for t, e in _compiles(run).items() if t not in repackaged} == {ray_cluster.names["head"]}
    assert artifact_digests(ws) == artifact_digests(local_ws)
    # No export of these targets had run anywhere: each first export runs here, discovering what it reads.
    assert all(e["node"] is None and "first export" in e["local_because"] for e in _ran(run, "export").values())


EXPORT_OUTPUTS = ("graph.json", "reference.json", "reference_io.pt", "graph.deps")


def test_an_edited_models_export_runs_on_a_node_and_writes_what_a_local_export_writes(
        ray_cluster, nginx_server, tiny_cache, tmp_path: Path) -> None:
    ws, cache = _tiny(tmp_path, tiny_cache)  # the cache knows what //m:a's export reads
    local, local_cache = _tiny(tmp_path / "local", tiny_cache)
    for w in (ws, local):  # an edit that keeps the graph: the export misses, the compile hits
        write(w / "m" / "tiny.py", TINY_MODEL + "# edited\n")
    local_run = aotbuild(["build", "//m:a", "--remote-cache", ""], local, {"AOTBUILD_CACHE_DIR": str(local_cache)})
    assert local_run.code == 0 and local_run.report["targets"]["//m:a"] == "artifact-cache hit", local_run.output
    run = _build(ws, ray_cluster, nginx_server, cache, "//m:a")
    assert run.code == 0, run.output
    assert _ran(run, "export")["//m:a"]["node"] in ray_cluster.names.values(), run.output
    assert run.report["targets"]["//m:a"] == "artifact-cache hit"
    # graph.json, the references and the dependency list (relative to aot-out/: no scratch path of the node).
    for name in EXPORT_OUTPUTS:
        assert (ws / "aot-out/m/@a" / name).read_bytes() == (local / "aot-out/m/@a" / name).read_bytes(), name
    assert artifact_digests(ws) == artifact_digests(local)
    # A second build is a no-op: the depfile names this checkout's files.
    again = _build(ws, ray_cluster, nginx_server, cache, "//m:a")
    assert again.code == 0 and not _ran(again, "export"), again.output


def test_an_export_importing_a_module_its_recorded_list_lacks_runs_here_after_the_node_fails(
        ray_cluster, nginx_server, tiny_cache, tmp_path: Path) -> None:
    ws, cache = _tiny(tmp_path, tiny_cache)
    write(ws / "m" / "helper.py", "SCALE = 1\n")  # new: no recorded list names it, so it is not shipped
    write(ws / "m" / "tiny.py", "from m.helper import SCALE  # noqa: F401\n" + TINY_MODEL)
    run = _build(ws, ray_cluster, nginx_server, cache, "//m:a")
    assert run.code == 0, run.output
    assert "exported on this machine, not the cluster: on node" in run.output and "helper" in run.output
    assert _ran(run, "export")["//m:a"]["node"] is None and run.report["targets"]["//m:a"] == "artifact-cache hit"
    # This export's list names the helper: the next edit's export runs on a node, shipping it.
    write(ws / "m" / "helper.py", "SCALE = 1  # edited\n")
    run = _build(ws, ray_cluster, nginx_server, cache, "//m:a")
    assert run.code == 0 and _ran(run, "export")["//m:a"]["node"] in ray_cluster.names.values(), run.output


REGISTERED_OUTPUT = """import dataclasses

import torch
import torch.utils._pytree as pytree


@dataclasses.dataclass
class Out:
    y: torch.Tensor


pytree.register_dataclass(Out, serialized_type_name="m.typed.Out")


class Typed(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(5, 3)

    def forward(self, x):
        return Out(self.lin(x).relu())
"""


def test_a_model_whose_outputs_need_its_module_compiles_on_a_node_given_its_sources(
        ray_cluster, nginx_server, tmp_path: Path) -> None:
    ws = make_tiny(tmp_path / "ws")
    write(ws / "m" / "typed.py", REGISTERED_OUTPUT)
    write(ws / "m" / "BUILD.aot.yaml", "targets:\n  t: {model: m.typed:Typed, inputs: {x: {shape: [2, 5], "
                                       "dtype: float32}}}\n")
    run = _build(ws, ray_cluster, nginx_server, tmp_path / "cache", "//m:t")
    assert run.code == 0 and run.report["targets"]["//m:t"] == "compiled", run.output
    assert _ran(run, "export")["//m:t"]["node"] is None  # a first export
    # The node imported m.typed (to load the program) from the files the export's list named, shipped.
    assert _ran(run, "compile")["//m:t"]["node"] == ray_cluster.names["head"], run.output


def test_a_target_keyed_for_the_second_nodes_isa_compiles_there(ray_cluster, nginx_server, tiny_cache,
                                                               tmp_path: Path) -> None:
    ws, cache = _tiny(tmp_path, tiny_cache)
    run = _build(ws, ray_cluster, nginx_server, cache, "//m:a", env={"AOTBUILD_CPU_ISA": SIMULATED_ISA})
    assert run.code == 0, run.output
    executor = _compiles(run)["//m:a"]
    assert executor["node"] == ray_cluster.names["second"] and executor["queue_s"] >= 0
    assert '"cpu_isa": "x86_64:simulated-isa"' in (ws / "aot-out" / "m" / "@a" / "manifest.json").read_text()


def test_a_target_no_node_can_serve_fails_naming_its_need_and_the_nodes(ray_cluster, nginx_server, tiny_cache,
                                                                       tmp_path: Path) -> None:
    ws, cache = _tiny(tmp_path, tiny_cache)
    run = _build(ws, ray_cluster, nginx_server, cache, "//m:a", env={"AOTBUILD_CPU_ISA": "x86_64:nowhere"})
    assert run.code == 1
    failure = run.report["failures"]["//m:a"]
    assert "no node of the cluster can run it: they need aotbuild_cpu_isa:x86_64:nowhere" in failure
    assert all(f"node {name} (1 CPU, 0 GPUs" in failure for name in ray_cluster.names.values()), failure


def test_a_portable_target_compiles_on_a_node_whatever_cpu_isa_the_client_keys(ray_cluster, nginx_server,
                                                                              tiny_cache, tmp_path: Path) -> None:
    if "x86-64-v3" not in cpu_levels.host_levels():
        pytest.skip("needs an x86-64-v3 CPU")
    ws, cache = _tiny(tmp_path, tiny_cache)  # the export hits: cpu_isa is in the compile spec only
    write(ws / "m" / "BUILD.aot.yaml", "targets:\n  a: {model: m.tiny:Tiny, cpu_isa: x86-64-v3, "
                                       "inputs: {x: {shape: [2, 4], dtype: float32}}}\n")
    # No node has this CPU ISA (a native target fails, above), and both run x86-64-v3.
    run = _build(ws, ray_cluster, nginx_server, cache, "//m:a", "--executor-required",
                 env={"AOTBUILD_CPU_ISA": "x86_64:nowhere"})
    assert run.code == 0 and run.report["targets"]["//m:a"] == "compiled", run.output
    assert _compiles(run)["//m:a"]["node"] in ray_cluster.names.values()
    assert '"cpu_isa": "portable:x86-64-v3"' in (ws / "aot-out" / "m" / "@a" / "manifest.json").read_text()


def test_cuda_targets_without_a_gpu_are_skipped_under_a_wildcard_and_fail_when_named(ray_cluster, nginx_server,
                                                                                     tmp_path: Path) -> None:
    if shutil.which("nvidia-smi"):
        pytest.skip("needs a machine without a GPU")
    ws = copy_example(tmp_path / "ws", gpu=True)
    run = _build(ws, ray_cluster, nginx_server, tmp_path / "cache", "//gpu/...")
    assert run.code == 0 and "CUDA targets skipped" in run.stderr, run.output
    run = _build(ws, ray_cluster, nginx_server, tmp_path / "cache", "//gpu:mlp")
    # Named, it fails as without an executor: with no GPU arch declared here, no node can be chosen for it.
    assert run.code == 1 and "needs a CUDA GPU" in run.report["failures"]["//gpu:mlp"], run.output
    assert "a CUDA target needs AOTBUILD_GPU_ARCH here" in _ran(run, "export")["//gpu:mlp"]["local_because"]
    # With one declared, its export goes to the cluster, which has no node with that GPU: then it fails here too.
    run = _build(ws, ray_cluster, nginx_server, tmp_path / "cache", "//gpu:mlp", env={"AOTBUILD_GPU_ARCH": "9.0"})
    assert run.code == 1 and "needs a CUDA GPU" in run.report["failures"]["//gpu:mlp"], run.output
    assert "no node of the cluster can run it: they need aotbuild_gpu_arch:9.0 and a GPU" in run.output
    # Under a wildcard too they go to the cluster (not only looked up): skipped, as no node has that GPU.
    run = _build(ws, ray_cluster, nginx_server, tmp_path / "cache", "//gpu/...", env={"AOTBUILD_GPU_ARCH": "9.0"})
    assert run.code == 0 and "CUDA targets skipped" in run.stderr, run.output
    assert all(e["node"] is None and "no node of the cluster" in e["local_because"]
               for e in _ran(run, "export").values()) and _ran(run, "export"), run.output


def test_a_node_with_another_toolchain_refuses_and_the_compile_runs_here(ray_cluster, nginx_server, tiny_cache,
                                                                         tmp_path: Path) -> None:
    ws, cache = _tiny(tmp_path, tiny_cache)
    # In the compile key (an inductor variable) but not in the nodes' environment: every node must refuse.
    env = {"TORCHINDUCTOR_MAX_AUTOTUNE": "0"}
    run = _build(ws, ray_cluster, nginx_server, cache, "//m:a", "--executor-required", env=env)
    assert run.code == 1
    failure = run.report["failures"]["//m:a"]
    assert failure.count("refused: toolchain differs: compile.env") == 2 and "--executor-required" in run.output
    run = _build(ws, ray_cluster, nginx_server, cache, "//m:a", env=env)
    assert run.code == 0 and "compiled on this machine, not the cluster: node" in run.output, run.output
    assert _compiles(run)["//m:a"]["node"] is None
