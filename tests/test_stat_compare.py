"""engine/stat_compare.py: comparing many paths' stat fields, half in a forked child, or most of them in a
child started early; every answer as a serial comparison would give it."""

from __future__ import annotations

import os
from array import array
from pathlib import Path

import pytest

from aotbuild.engine import stat_compare

COUNT = stat_compare.FORK_AT + 808  # enough for a child


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stats")
    for i in range(COUNT):
        (root / f"f{i}").write_text("x")
    return root


def record(root: Path) -> tuple[list[str], bytes]:
    paths = [f"f{i}" for i in range(COUNT)]
    return paths, array("q", [os.stat(root / p).st_mtime_ns for p in paths]).tobytes()


def check(root: Path, paths: list[str], recorded: bytes, allowed=None) -> stat_compare.Check:  # noqa: ANN001
    return stat_compare.Check(paths, "st_mtime_ns", recorded, allowed)


def moved(root: Path, name: str) -> None:
    st = os.stat(root / name)
    os.utime(root / name, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_007))


def test_a_child_started_early_finds_what_moved_in_its_part_and_the_parent_in_its_own(tree: Path) -> None:
    paths, recorded = record(tree)
    fd = os.open(tree, os.O_RDONLY)
    try:
        started = stat_compare.start([check(tree, paths, recorded)], str(tree))
        assert started is not None
        assert stat_compare.same([check(tree, paths, recorded)], fd, started) is True  # nothing moved
        last = paths[-1]  # in the child's part (the last 70%)
        moved(tree, last)
        started = stat_compare.start([check(tree, paths, recorded)], str(tree))
        assert stat_compare.same([check(tree, paths, recorded)], fd, started) is False
        started = stat_compare.start([check(tree, paths, recorded)], str(tree))
        allowed = check(tree, paths, recorded, lambda i: paths[i] == last)
        assert stat_compare.same([allowed], fd, started) is None  # only an allowed path moved
        started = stat_compare.start([check(tree, paths, recorded)], str(tree))
        moved(tree, paths[0])  # in the parent's part, after the child started: the parent stats it itself
        assert stat_compare.same([allowed], fd, started) is False
        # A child started on other records is not taken.
        started = stat_compare.start([check(tree, paths, recorded)], str(tree))
        _, fresh = record(tree)
        assert stat_compare.same([check(tree, paths, fresh)], fd, started) is False
        started.cancel()
    finally:
        os.close(fd)


def test_a_vanished_path_or_a_cancel_leave_no_child_behind(tree: Path) -> None:
    paths, recorded = record(tree)
    gone = tree / paths[-2]
    os.rename(gone, tree / "elsewhere")
    fd = os.open(tree, os.O_RDONLY)
    try:
        started = stat_compare.start([check(tree, paths, recorded)], str(tree))
        assert stat_compare.same([check(tree, paths, recorded)], fd, started) is False
        for child in (started, stat_compare.start([check(tree, paths, recorded)], str(tree))):
            child.cancel()
            with pytest.raises(ChildProcessError):
                os.waitpid(child._pid, os.WNOHANG)  # reaped
    finally:
        os.rename(tree / "elsewhere", gone)
        os.close(fd)


def test_the_fork_in_same_agrees_with_a_serial_comparison(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths, recorded = record(tree)
    fd = os.open(tree, os.O_RDONLY)
    try:
        moved(tree, paths[5])
        moved(tree, paths[-5])
        for allowed in (None, lambda i: i in (5, COUNT - 5), lambda i: i == 5):
            forked = stat_compare.same([check(tree, paths, recorded, allowed)], fd)
            monkeypatch.setattr(stat_compare, "FORK_AT", 10**9)
            serial = stat_compare.same([check(tree, paths, recorded, allowed)], fd)
            monkeypatch.undo()
            assert forked == serial
    finally:
        os.close(fd)
