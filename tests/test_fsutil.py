"""The one set of file helpers: atomic writes, symlink swaps, link-or-copy and streamed temp files."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from aotbuild import fsutil
from aotbuild.hashing import HashingWriter, sha256_bytes, sha256_file


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_with_the_mode_asked_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f.json"
    fsutil.atomic_write(path, b"one", mode=0o444)
    fsutil.atomic_write(path, b"two", mode=0o640)
    assert path.read_bytes() == b"two"
    assert path.stat().st_mode & 0o777 == 0o640
    assert _leftovers(path.parent) == []


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    path = tmp_path / "f"
    fsutil.atomic_write(path, b"old")

    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "no")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        fsutil.replace_unsynced(path, b"new")
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_write_if_changed_keeps_the_mtime_of_unchanged_content(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert fsutil.write_if_changed(path, b"x")
    os.utime(path, ns=(1, 1))
    assert not fsutil.write_if_changed(path, b"x")
    assert not fsutil.replace_if_changed_unsynced(path, b"x")
    assert path.stat().st_mtime_ns == 1
    assert fsutil.replace_if_changed_unsynced(path, b"y") and path.read_bytes() == b"y"


def test_atomic_symlink_swaps_an_existing_link(tmp_path: Path) -> None:
    link = tmp_path / "alias"
    fsutil.atomic_symlink(link, "a-1")
    fsutil.atomic_symlink(link, "a-2")
    assert os.readlink(link) == "a-2"
    assert _leftovers(tmp_path) == []


def test_link_or_copy_links_and_falls_back_to_a_read_only_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    src = tmp_path / "blob"
    src.write_bytes(b"artifact")
    fsutil.link_or_copy(src, tmp_path / "linked")
    assert os.path.samefile(src, tmp_path / "linked")

    def cross_device(a: str, b: str) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    fsutil.link_or_copy(src, tmp_path / "copied")
    copied = tmp_path / "copied"
    assert copied.read_bytes() == b"artifact" and not os.path.samefile(src, copied)
    assert copied.stat().st_mode & 0o777 == 0o444
    assert _leftovers(tmp_path) == []


def test_pending_file_is_renamed_on_commit_and_removed_otherwise(tmp_path: Path) -> None:
    with fsutil.pending_file(tmp_path / "tmp", "put") as pending:
        writer = HashingWriter(pending.file)
        writer.write(b"streamed")
        pending.commit(tmp_path / "cas" / "x", mode=0o444)
    assert writer.sha256.hexdigest() == sha256_bytes(b"streamed") == sha256_file(tmp_path / "cas" / "x")
    with pytest.raises(RuntimeError):
        with fsutil.pending_file(tmp_path / "tmp", "put") as pending:
            pending.file.write(b"half")
            raise RuntimeError("cut short")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_check_writable_raises_for_a_read_only_directory(tmp_path: Path) -> None:
    fsutil.check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OSError):
            fsutil.check_writable(tmp_path)
    finally:
        tmp_path.chmod(0o700)
