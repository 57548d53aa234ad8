"""Issue 10, a first plan's fixed costs: the planning lock without the filelock package's import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import filelock
import pytest

from aotbuild.engine.context import exclusive

from .conftest import write


def test_the_plan_lock_excludes_another_holder_and_is_released(tmp_path: Path) -> None:
    path = tmp_path / "plan.lock"
    with exclusive(path):
        # An older aotbuild took this lock with the filelock package: the same flock, so they exclude each other.
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(str(path), timeout=0).acquire()
    with filelock.FileLock(str(path), timeout=0):
        pass


def test_a_first_plan_imports_neither_filelock_nor_torch(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / "WORKSPACE.aot.yaml", "")
    write(ws / "m" / "BUILD.aot.yaml", "targets:\n  a: {model: m.f:g, inputs: {x: {shape: [2], dtype: float32}}}\n")
    probe = ("import runpy, sys; sys.argv = ['aotbuild', 'plan']\n"
             "try:\n    runpy.run_module('aotbuild', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('filelock', 'torch') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ws, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (ws / "aot-out" / ".aotbuild" / "toolchain.json").is_file()
    assert proc.stdout.strip().splitlines()[-1] == "[]"
