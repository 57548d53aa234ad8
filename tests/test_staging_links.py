"""The staging links' readers-writer lock: a compile runs only while BASE/root and BASE/site point where it needs."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from aotbuild.actions import staging


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "base"
    base.mkdir()
    monkeypatch.setattr(staging, "BASE", base)
    monkeypatch.setattr(staging, "_torch_site", lambda: tmp_path / "site-packages")
    return base


def test_links_point_at_this_compiles_cache_and_site(base: Path, tmp_path: Path) -> None:
    (base / "root").symlink_to(tmp_path / "another-cache")
    with staging._shared_links(tmp_path / "cache"):
        assert os.readlink(base / "root") == str((tmp_path / "cache").resolve())
        assert os.readlink(base / "site") == str(tmp_path / "site-packages")


def test_links_changed_while_the_lock_is_downgraded_are_set_again(base: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """flock's exclusive -> shared conversion drops the lock in between: another compile may take it there and
    point the links at its own cache. The compile must not run on those."""
    real_flock = fcntl.flock
    calls: list[int] = []

    def flock(fd: int, op: int) -> None:
        if op == fcntl.LOCK_SH and fcntl.LOCK_EX in calls and calls.count(fcntl.LOCK_SH) == 1:
            (base / "root").unlink()
            (base / "root").symlink_to(tmp_path / "rival-cache")  # the rival, inside the gap
        calls.append(op)
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    with staging._shared_links(tmp_path / "cache"):
        assert os.readlink(base / "root") == str((tmp_path / "cache").resolve())
    assert calls.count(fcntl.LOCK_EX) == 2  # it noticed, and set them again
