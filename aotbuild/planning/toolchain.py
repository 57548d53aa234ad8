"""The toolchain fingerprint, computed without importing torch so cache hits stay torch-free."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aotbuild import __version__
from aotbuild.cpu_levels import cpu_flags
from aotbuild.fsutil import atomic_write
from aotbuild.workspace import settings


def _version_py() -> Path | None:
    """torch/version.py, found through torch's distribution metadata: no import, no sys.path lookup."""
    import importlib.metadata

    try:
        path = Path(str(importlib.metadata.distribution("torch").locate_file("torch/version.py")))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def torch_versions() -> dict[str, str | None]:
    """torch's version, git commit and CUDA version, read from torch/version.py as text. Its __version__ is
    torch.__version__ (with the +cu130 that distribution metadata may lack), which actions compare against."""
    import ast

    version_py = _version_py()
    found: dict[str, str | None] = {"torch": None, "torch_git": None, "torch_cuda": None}
    names = {"__version__": "torch", "git_version": "torch_git", "cuda": "torch_cuda"}
    for node in ast.parse(version_py.read_text()).body if version_py else ():
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id in names:
                found[names[target.id]] = node.value.value
    return found


def _output(program: str | None, *args: str) -> str:
    """What `program` prints; empty where it is not installed."""
    import subprocess  # here: only a fingerprint not cached runs one, and a no-op build need not load it

    return subprocess.run([program, *args], capture_output=True, text=True, check=False).stdout if program else ""


def find_compiler(env: Mapping[str, str]) -> str | None:
    """The compiler inductor runs: $CXX (default g++) looked up on `env`'s PATH, as a child process would."""
    return shutil.which(env.get("CXX", "g++"), path=env.get("PATH"))


def compiler_version(env: Mapping[str, str]) -> str | None:
    """First line of `$CXX --version`."""
    return next(iter(_output(find_compiler(env), "--version").splitlines()), None)


def cpu_isa(env: Mapping[str, str] | None = None) -> str:
    """The host CPU's instruction-set flags (inductor compiles CPU code with -march=native by default), unless
    $AOTBUILD_CPU_ISA declares another."""
    from aotbuild.hashing import sha256_bytes

    declared = settings.declared_cpu_isa(env) if env is not None else None
    return declared or f"{os.uname().machine}:{sha256_bytes(cpu_flags().encode())[:16]}"


def gpu_arch() -> str | None:
    """Compute capabilities of the visible GPUs, or None where there is no NVIDIA driver."""
    out = _output(shutil.which("nvidia-smi"), "--query-gpu=compute_cap", "--format=csv,noheader")
    return ",".join(sorted(set(re.findall(r"\d+\.\d+", out)))) or None


def triton_version() -> str | None:
    """Triton generates the CUDA kernels: its version changes them. Read from metadata, never imported."""
    import importlib.metadata

    for name in ("triton", "pytorch-triton"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return f"{name} {importlib.metadata.version(name)}"
    return None


def fingerprint(env: Mapping[str, str]) -> dict[str, Any]:
    """Split by use: `export` keys the action cache, `compile` (plus `cuda` for GPU targets) keys artifacts.
    `cuda.gpu_arch` is declared ($AOTBUILD_GPU_ARCH, so a CPU-only runner can fetch a GPU runner's artifacts) or
    the visible GPUs'; `host` is what this machine has, for decisions only, never in a key."""
    torch = torch_versions()
    export = {"python": ".".join(map(str, sys.version_info[:3])), "aotbuild": __version__, **torch}
    compile_ = {**export, "cxx": compiler_version(env), "cpu_isa": cpu_isa(env), "env": settings.toolchain_env(env)}
    detected = gpu_arch()
    cuda = {"cuda": torch["torch_cuda"], "gpu_arch": settings.declared_gpu_arch(env) or detected,
            "triton": triton_version()}
    return {"export": export, "compile": compile_, "cuda": cuda, "host": {"gpu_arch": detected}}


def identity(path: str | None) -> list[Any] | None:
    """Which file `path` is: its resolved path (any link on the way retargeted moves it) and stat signature."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [os.path.realpath(path), st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev]


def _stamp(env: Mapping[str, str], files: list[str]) -> list[Any]:
    """Cheap evidence that the toolchain is unchanged: interpreter, variables, CPU, compiler and key `files`."""
    compiler = find_compiler(env)
    gpus = sorted(os.listdir("/proc/driver/nvidia/gpus")) if os.path.isdir("/proc/driver/nvidia/gpus") else []
    # The flags themselves, not cpu_isa()'s digest of them: a no-op build need not load hashlib.
    return [sys.executable, sys.version, __version__, settings.toolchain_env(env), os.uname().machine, cpu_flags(),
            settings.declared_gpu_arch(env), settings.declared_cpu_isa(env), compiler, identity(compiler),
            identity(sys.executable), shutil.which("nvidia-smi"), gpus, [identity(f) for f in files]]


def cached_fingerprint(stamp_file: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """fingerprint(), recomputed only when the stamp changes: a no-op build must not spawn a compiler."""
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        saved = json.loads(stamp_file.read_text())
        if saved["stamp"] == _stamp(env, saved["files"]):
            return saved["fingerprint"]
    version_py = _version_py()  # the one key file: the compiler is in the stamp already
    files = [str(version_py)] if version_py else []
    result = fingerprint(env)
    atomic_write(stamp_file, json.dumps({"stamp": _stamp(env, files), "files": files, "fingerprint": result}).encode())
    return result
