"""Run the ninja binary from the `ninja` wheel on aot-out/build.ninja."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import ninja

from .errors import InfraError


def ninja_binary() -> str:
    path = Path(ninja.BIN_DIR) / "ninja"
    if not path.exists():
        raise InfraError(f"the ninja binary is missing from the ninja package ({path}); reinstall ninja")
    return str(path)


def run_ninja(out_dir: Path, goals: list[str], *, jobs: int | None, keep_going: bool, explain: bool,
              env: Mapping[str, str]) -> int:
    """Run ninja with our stdout/stderr so a terminal gets its live status line; returns its exit code."""
    cmd = [ninja_binary(), "-C", str(out_dir)]
    if jobs is not None:
        cmd += ["-j", str(jobs)]
    if keep_going:
        cmd += ["-k", "0"]
    if explain:
        cmd += ["-d", "explain"]
    return subprocess.run(cmd + goals, env={**os.environ, **env}, check=False).returncode
