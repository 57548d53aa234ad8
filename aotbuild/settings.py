"""The one place aotbuild reads environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

CACHE_DIR_VAR = "AOTBUILD_CACHE_DIR"
GPU_ARCH_VAR = "AOTBUILD_GPU_ARCH"  # the GPU arch CUDA artifacts are keyed for where none is visible (CPU-only CI)
CACHE_READONLY_VAR = "AOTBUILD_CACHE_READONLY"  # set by the CLI when the cache cannot be written
EVENTS_VAR = "AOTBUILD_EVENTS"  # set by the CLI so actions can report what they did; unset under plain ninja
# Variables that change what inductor generates, so they belong in the artifact key.
TOOLCHAIN_PREFIXES = ("TORCHINDUCTOR_", "AOT_INDUCTOR_", "AOTI_", "TORCH_COMPILE_")
TOOLCHAIN_VARS = ("CXX", "CC", "CUDA_HOME", "TORCH_CUDA_ARCH_LIST")
# Inductor variables that only move files around or change logging; keying on them would split the cache.
NOT_IN_KEY = ("TORCHINDUCTOR_CACHE_DIR", "TORCHINDUCTOR_FX_GRAPH_CACHE", "TORCHINDUCTOR_AUTOGRAD_CACHE",
              "TORCH_COMPILE_DEBUG_DIR", "TORCHINDUCTOR_COMPILE_THREADS", "AOTI_RUNTIME_CHECK_INPUTS")


def environ() -> Mapping[str, str]:
    return os.environ


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """~/.cache/aotbuild, honouring XDG_CACHE_HOME as the XDG base-directory spec says."""
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aotbuild"


def cache_dir(env: Mapping[str, str], flag: str | None, workspace_setting: str | None, root: Path) -> Path:
    """Precedence: --cache-dir, then AOTBUILD_CACHE_DIR, then WORKSPACE.aot.yaml's cache.dir, then the default."""
    if flag:
        return Path(flag).expanduser().resolve()
    if env.get(CACHE_DIR_VAR):
        return Path(env[CACHE_DIR_VAR]).expanduser().resolve()
    if workspace_setting:
        return (root / Path(workspace_setting).expanduser()).resolve()
    return default_cache_dir(env).resolve()


def action_cache_dir(env: Mapping[str, str]) -> Path:
    """The cache root an action uses: the CLI always exports it; plain ninja falls back to the default."""
    value = env.get(CACHE_DIR_VAR)
    return Path(value) if value else default_cache_dir(env)


def declared_gpu_arch(env: Mapping[str, str]) -> str | None:
    """A compute capability such as '9.0', or several comma-separated; None when not declared."""
    value = env.get(GPU_ARCH_VAR, "").strip()
    return ",".join(sorted(a.strip() for a in value.split(",") if a.strip())) or None


def events_file(env: Mapping[str, str]) -> Path | None:
    value = env.get(EVENTS_VAR)
    return Path(value) if value else None


def toolchain_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in sorted(env.items())
            if (k.startswith(TOOLCHAIN_PREFIXES) or k in TOOLCHAIN_VARS) and k not in NOT_IN_KEY}


def cache_read_only(env: Mapping[str, str]) -> bool:
    return env.get(CACHE_READONLY_VAR) == "1"
