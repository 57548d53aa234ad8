"""The toolchain fingerprint, computed without importing torch so cache hits stay torch-free."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import __version__, settings


def torch_versions() -> dict[str, str | None]:
    """torch's version, git commit and CUDA version, read from torch/version.py as text."""
    try:
        dist = importlib.metadata.distribution("torch")
    except importlib.metadata.PackageNotFoundError:
        return {"torch": None, "torch_git": None, "torch_cuda": None}
    found: dict[str, str | None] = {"torch": dist.version, "torch_git": None, "torch_cuda": None}
    # The installed distribution's own file, found through its metadata: no import, no sys.path lookup.
    version_py = Path(str(dist.locate_file("torch/version.py")))
    if version_py.is_file():
        for node in ast.parse(version_py.read_text()).body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant):
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                if isinstance(target, ast.Name) and target.id in ("git_version", "cuda"):
                    found["torch_git" if target.id == "git_version" else "torch_cuda"] = node.value.value
    return found


def compiler_version(env: Mapping[str, str]) -> str | None:
    """First line of `$CXX --version` (inductor's default is g++)."""
    cxx = env.get("CXX", "g++")
    path = shutil.which(cxx)
    if path is None:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else None


def cpu_isa() -> str:
    """The host CPU's instruction-set flags: inductor compiles CPU code with -march=native by default."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = " ".join(sorted(line.split(":", 1)[1].split()))
                break
    except OSError:
        pass
    return f"{platform.machine()}:{hashlib.sha256(flags.encode()).hexdigest()[:16]}"


def gpu_arch() -> str | None:
    """Compute capabilities of the visible GPUs, or None where there is no NVIDIA driver."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                         text=True, check=False).stdout
    caps = sorted(set(re.findall(r"\d+\.\d+", out)))
    return ",".join(caps) or None


def fingerprint(env: Mapping[str, str]) -> dict[str, Any]:
    """Split by use: `export` keys the action cache, `compile` (plus `cuda` for GPU targets) keys artifacts."""
    torch = torch_versions()
    export = {"python": ".".join(map(str, sys.version_info[:3])), "aotbuild": __version__, **torch}
    compile_ = {**export, "cxx": compiler_version(env), "cpu_isa": cpu_isa(), "env": settings.toolchain_env(env)}
    return {"export": export, "compile": compile_, "cuda": {"cuda": torch["torch_cuda"], "gpu_arch": gpu_arch()}}
