"""Issue 10, a first plan's fixed costs: the planning lock without the filelock package, and the toolchain's torch
and triton found without importlib.metadata, while the fingerprint still follows what is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import filelock
import pytest

from aotbuild.planning import plan_lock, toolchain

from .conftest import write


def test_the_plan_lock_excludes_another_holder_and_is_released(tmp_path: Path) -> None:
    path = tmp_path / "plan.lock"
    with plan_lock.held(path):
        # An older aotbuild took this lock with the filelock package: the same flock, so they exclude each other.
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(str(path), timeout=0).acquire()
    with filelock.FileLock(str(path), timeout=0):
        pass


def test_a_first_plan_imports_neither_filelock_nor_importlib_metadata(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / "WORKSPACE.aot.yaml", "")
    write(ws / "m" / "BUILD.aot.yaml", "targets:\n  a: {model: m.f:g, inputs: {x: {shape: [2], dtype: float32}}}\n")
    probe = ("import runpy, sys; sys.argv = ['aotbuild', 'plan']\n"
             "try:\n    runpy.run_module('aotbuild', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('filelock', 'importlib.metadata', 'torch') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ws, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (ws / "aot-out" / ".aotbuild" / "toolchain.json").is_file()
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def fake_site(root: Path, version: str) -> Path:
    write(root / "torch" / "__init__.py", "raise ImportError('never imported by planning')\n")
    write(root / "torch" / "version.py", f"__version__ = '{version}'\ngit_version = 'abc'\ncuda = None\n")
    return root


def test_torch_is_the_one_on_sys_path_and_its_version_file_is_in_the_stamp(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(fake_site(tmp_path / "site", "9.9.9+test")))
    assert toolchain.torch_versions() == {"torch": "9.9.9+test", "torch_git": "abc", "torch_cuda": None}
    assert toolchain.torch_version_file() == tmp_path / "site" / "torch" / "version.py"
    # Another torch installed in its place changes the fingerprint's input file: the stamp moves.
    stamp = tmp_path / "toolchain-stamp.json"
    monkeypatch.setattr(toolchain, "fingerprint", lambda env: toolchain.torch_versions())
    assert toolchain.cached_fingerprint(stamp, {})["torch"] == "9.9.9+test"
    write(tmp_path / "site" / "torch" / "version.py", "__version__ = '9.9.10+test'\n")
    assert toolchain.cached_fingerprint(stamp, {})["torch"] == "9.9.10+test"


def test_a_directory_named_like_the_package_in_the_working_directory_is_not_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_site(tmp_path, "0.0.1")  # a workspace directory called torch, as `python -m aotbuild` sees it
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = toolchain.installed_package("torch")
    assert found is None or found != tmp_path / "torch"
    assert toolchain.installed_package("no_such_package_here") is None
