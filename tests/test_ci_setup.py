""".ci/setup asks for the CPU build of torch: PyTorch's CPU index first, the default index only where that one
is out of reach. Run against a stand-in .venv/bin/python that records each call (nothing is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
STAND_IN = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$*" in
  *urllib*) exit "$INDEX_RC" ;;
  *importlib*) exit "$TORCH_RC" ;;
esac
exit 0
"""
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("cmake", "make", "g++")) or not (shutil.which("nginx")
                                                                      or os.access("/usr/sbin/nginx", os.X_OK)),
    reason="setup would install system packages here")


def _setup(tmp_path: Path, index_reachable: bool, torch_installed: bool) -> tuple[list[str], str]:
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "setup", tmp_path / ".ci" / "setup")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STAND_IN)
    python.chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "CALLS": str(calls), "INDEX_RC": "0" if index_reachable else "1",
           "TORCH_RC": "0" if torch_installed else "1"}
    proc = subprocess.run(["bash", str(tmp_path / ".ci" / "setup")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [line for line in calls.read_text().splitlines() if line.startswith("-m pip install")], proc.stderr


def test_torch_comes_from_the_cpu_index(tmp_path: Path) -> None:
    installs, _ = _setup(tmp_path, index_reachable=True, torch_installed=False)
    (torch,) = [line for line in installs if "torch==" in line]
    assert f"--index-url {CPU_INDEX}" in torch
    assert any(line.endswith(" numpy") for line in installs)


def test_an_unreachable_cpu_index_falls_back_to_the_default_one_and_says_so(tmp_path: Path) -> None:
    installs, stderr = _setup(tmp_path, index_reachable=False, torch_installed=False)
    (torch,) = [line for line in installs if "torch==" in line]
    assert "--index-url" not in torch and f"{CPU_INDEX} is out of reach" in stderr


def test_an_installed_torch_is_kept(tmp_path: Path) -> None:
    installs, _ = _setup(tmp_path, index_reachable=True, torch_installed=True)
    assert not any("torch==" in line for line in installs)
