"""CUDA targets on a machine without a GPU (this CI's), and the guard against statically linked C++ runtimes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aotbuild.actions.elf_deps import links_shared_cxx_runtime, needed_libraries
from aotbuild import layout
from aotbuild.reports.outcomes import NEEDS_GPU
from aotbuild.workspace.labels import named_explicitly, parse_label
from aotbuild.layout import TargetPaths

from .conftest import EXAMPLE, GPU_PACKAGE, TARGETS, aotbuild, torch_tripwire

GPU_TARGETS = ["//gpu:cnn_dynamic", "//gpu:mlp"]
# Any use of libstdc++ will do (the loader's crash was in std::regex; the check is on the link): this one
# compiles in a tenth of a second.
CXX_SOURCE = '#include <stdexcept>\nvoid f(const char* s) { throw std::runtime_error(s); }\n'
no_gpu = pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="these tests need a machine without a GPU")


@pytest.mark.parametrize("patterns,named", [
    (["//..."], set()),
    (["//gpu:all"], set()),
    (["//gpu/..."], set()),
    (["//gpu:mlp"], {"//gpu:mlp"}),
    (["//gpu:mlp", "//...", "-//gpu:mlp"], set()),
    (["//models:mlp", "//gpu:all"], {"//models:mlp"}),
])
def test_named_explicitly(patterns: list[str], named: set[str]) -> None:
    assert named_explicitly(patterns, None) == named


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_static_libstdcxx_is_detected(tmp_path: Path) -> None:
    (tmp_path / "a.cpp").write_text(CXX_SOURCE)
    for name, flags in (("shared.so", []), ("static.so", ["-static-libstdc++"])):
        subprocess.run(["g++", "-shared", "-fPIC", *flags, "a.cpp", "-o", name], cwd=tmp_path, check=True)
    assert "libstdc++.so.6" in needed_libraries(tmp_path / "shared.so")
    assert links_shared_cxx_runtime(tmp_path / "shared.so")
    assert not links_shared_cxx_runtime(tmp_path / "static.so")
    assert "libc.so.6" in needed_libraries(tmp_path / "static.so")


def _with_gpu_package(cold: tuple[Path, dict[str, str]], dest: Path) -> Path:
    ws = dest / "ws"
    shutil.copytree(cold[0], ws, symlinks=True)
    shutil.copytree(EXAMPLE / GPU_PACKAGE, ws / GPU_PACKAGE)
    return ws


@no_gpu
@pytest.mark.torch
def test_wildcard_skips_uncached_cuda_targets_and_naming_one_fails(cold, tmp_path: Path) -> None:
    ws, env = _with_gpu_package(cold, tmp_path), cold[1]
    tripwire, marker = torch_tripwire(tmp_path)
    run = aotbuild(["build", "//..."], ws, {**env, **tripwire})
    assert run.code == 0, run.output
    assert run.report["targets"] == {**{t: "up to date" for t in TARGETS}, **{t: NEEDS_GPU for t in GPU_TARGETS}}
    assert "2 CUDA targets skipped" in run.stderr and "FAILED" not in run.output
    assert not marker.exists(), "a skipped CUDA target must not import torch"

    # Skipped before ninja: no action of theirs ran (it could only fail), now or on the next build.
    assert run.report["actions"] == [] and not (ws / "aot-out" / layout.STATE_DIR / "gpu-targets.log").exists()
    run = aotbuild(["build", "//..."], ws, {**env, **tripwire})
    assert run.code == 0 and run.report["actions"] == [] and run.report["targets"]["//gpu:mlp"] == NEEDS_GPU
    # That no-op stamped (the skipped targets, never exported, are no part of the stamp): the next is answered.
    run = aotbuild(["build", "//..."], ws, {**env, **tripwire})
    assert run.code == 0 and run.report["noop_stamp"] and run.report["targets"]["//gpu:mlp"] == NEEDS_GPU

    run = aotbuild(["test", "//gpu:all", "--junit-xml", str(tmp_path / "j.xml")], ws, env)
    assert run.code == 0, run.output
    assert "SKIPPED //gpu:mlp" in run.stdout
    assert 'skipped="2"' in (tmp_path / "j.xml").read_text()

    run = aotbuild(["build", "//gpu:mlp"], ws, env)
    assert run.code == 1
    assert "needs a CUDA GPU" in run.stderr and "AOTBUILD_GPU_ARCH" in run.output
    assert run.report["targets"] == {"//gpu:mlp": "failed"}


@no_gpu
@pytest.mark.torch
def test_bench_times_the_cpu_targets_and_reports_the_cuda_ones_skipped(cold, tmp_path: Path) -> None:
    ws, env = _with_gpu_package(cold, tmp_path), cold[1]
    run = aotbuild(["bench", "//...", "--warmup", "1", "--repeats", "3"], ws, env, report=False)
    assert run.code == 0, run.output
    lines = run.stdout.splitlines()
    assert [line.split()[0] for line in lines if line.startswith("//")] == sorted(TARGETS)
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in lines if line.startswith("skipped")] == [
        f"skipped {label}" for label in GPU_TARGETS]
    assert "Traceback" not in run.output


def _seed_as_gpu_runner(ws: Path, cache: Path, cuda_label: str, cpu_label: str) -> dict:
    """Store what a GPU runner's build of `cuda_label` would leave in the cache, under the keys this machine
    derives for it. Its content is `cpu_label`'s artifacts (no GPU here to compile real ones): this checks the
    keys and the torch-free path from cache to aot-out, not CUDA code."""
    script = f"""
import json, sys
from pathlib import Path
from aotbuild.actions import export, compile as compile_action
from aotbuild.actions.runtime import ActionContext
from aotbuild.cache.local import LocalStore
from aotbuild.workspace.labels import parse_label
from aotbuild.layout import TargetPaths

out, store = Path({str(ws / 'aot-out')!r}), LocalStore(Path({str(cache)!r}))
def ctx(label, action):
    spec = out / TargetPaths(parse_label(label)).file(action + ".json")
    return ActionContext(action, out, out.parent, spec.parent, json.loads(spec.read_text()), store, None, 0.0)
cpu_result, cpu_state = export._cached_result(ctx({cpu_label!r}, "export"))
export._record(ctx({cuda_label!r}, "export"), cpu_result, cpu_state)
graph = {{"graph_hash": cpu_result["graph_hash"]}}
entry = store.get_action(compile_action.compile_key(ctx({cpu_label!r}, "compile"), graph))
store.put_action(compile_action.compile_key(ctx({cuda_label!r}, "compile"), graph), entry)
print(json.dumps(entry))
"""
    import ninja

    # Spec files are outputs of the build's own edges: have ninja write the four this needs.
    specs = [TargetPaths(parse_label(label)).file(f"{action}.json") for label in (cuda_label, cpu_label)
             for action in ("export", "compile")]
    subprocess.run([str(Path(ninja.BIN_DIR) / "ninja"), "-C", str(ws / "aot-out"), "-f", layout.NINJA_FILE, *specs],
                   capture_output=True, check=True)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@no_gpu
@pytest.mark.torch
def test_cuda_artifact_in_the_cache_materializes_without_a_gpu(cold, tmp_path: Path) -> None:
    ws, env = _with_gpu_package(cold, tmp_path), {**cold[1], "AOTBUILD_GPU_ARCH": "9.0"}
    assert aotbuild(["plan"], ws, env).code == 0  # writes toolchain.json keyed for arch 9.0
    entry = _seed_as_gpu_runner(ws, Path(env["AOTBUILD_CACHE_DIR"]), "//gpu:mlp", "//models:mlp")
    tripwire, marker = torch_tripwire(tmp_path)
    run = aotbuild(["build", "//gpu:all"], ws, {**env, **tripwire})
    assert run.code == 0, run.output
    assert run.report["targets"] == {"//gpu:mlp": "artifact-cache hit", "//gpu:cnn_dynamic": NEEDS_GPU}
    assert not marker.exists()
    paths = TargetPaths(parse_label("//gpu:mlp"))
    manifest = json.loads((ws / "aot-out" / paths.file("manifest.json")).read_text())
    assert manifest["device"] == "cuda" and manifest["gpu_arch"] == "9.0"
    assert manifest["artifacts"]["so"]["sha256"] == entry["so"]["sha256"]
    assert os.path.samefile(ws / "aot-out" / paths.dir / paths.alias("so"),
                            Path(env["AOTBUILD_CACHE_DIR"]) / "v1/cas" / entry["so"]["sha256"][:2] / entry["so"]["sha256"])

    # Another declared arch is another key: nothing to fetch, and named, it fails clearly.
    run = aotbuild(["build", "//gpu:mlp"], ws, {**env, "AOTBUILD_GPU_ARCH": "8.0"})
    assert run.code == 1 and "needs a CUDA GPU" in run.stderr


TINY_MODEL = """
import torch

class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x).relu()
"""


@pytest.mark.torch
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_compiler_linking_libstdcxx_statically_fails_the_compile(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "m").mkdir(parents=True)
    (ws / "WORKSPACE.aot.yaml").write_text("")
    (ws / "m" / "__init__.py").write_text("")
    (ws / "m" / "tiny.py").write_text(TINY_MODEL)
    (ws / "m" / "BUILD.aot.yaml").write_text(
        "targets:\n  tiny:\n    model: m.tiny:Tiny\n    inputs:\n      x: {shape: [2, 4], dtype: float32}\n")
    # Named g++ so inductor treats it as GCC, as the GPU machine's /opt/gcc/bin/g++ wrapper is.
    wrapper = tmp_path / "bin" / "g++"
    wrapper.parent.mkdir()
    gxx = shutil.which("g++")  # adds the flag when linking only, as such wrappers do (it breaks header builds)
    wrapper.write_text(f'#!/bin/sh\ncase " $* " in *" -shared "*) exec {gxx} "$@" -static-libstdc++ ;; esac\n'
                       f'exec {gxx} "$@"\n')
    wrapper.chmod(0o755)
    env = {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache"), "CXX": str(wrapper)}
    run = aotbuild(["build", "//m:tiny"], ws, env)
    assert run.code == 1, run.output
    assert f"CXX={wrapper}" in run.stderr and "links no shared C++ runtime" in run.stderr
    assert "fix: point CXX (and CC) at a plain compiler, e.g. CXX=/usr/bin/g++" in run.output
    assert not list((ws / "aot-out" / TargetPaths(parse_label("//m:tiny")).dir).glob("*.so")), "no artifact"
    entries = [json.loads(p.read_text())["payload"] for p in (tmp_path / "cache/v1/ac").rglob("*") if p.is_file()]
    assert entries and not [e for e in entries if "so" in e], "nothing compiled may enter the artifact cache"
