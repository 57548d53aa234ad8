"""Change detection: the stat signature filters, the content hash decides, racily clean files are hashed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aotbuild.planning import file_state
from aotbuild.planning.file_state import read_state, verdict

LIMIT = 1 << 20


def aged(path: Path, text: str, seconds: int = 10) -> Path:
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9))
    return path


def test_an_unchanged_signature_is_trusted_without_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_state, "RACY_NS", 0)  # ctime is always recent in a test; pretend it has settled
    f = aged(tmp_path / "BUILD.aot.yaml", "targets: {}\n")
    state, data = read_state(str(f), LIMIT)
    assert data == b"targets: {}\n" and not state.racy

    def no_reading(*args):
        raise AssertionError("read although the signature did not move")

    monkeypatch.setattr(file_state, "read_state", no_reading)
    assert verdict(str(f), state, LIMIT) == (False, None)


def test_a_file_read_right_after_its_edit_is_hashed_every_time(tmp_path: Path) -> None:
    f = tmp_path / "BUILD.aot.yaml"
    f.write_text("targets: {}\n")
    state, _ = read_state(str(f), LIMIT)
    assert state.racy  # an edit in the same clock tick would keep this very signature
    assert verdict(str(f), state, LIMIT) == (False, None)
    st = f.stat()
    f.write_text("targets: {a: 1}\n"[:12])  # same size, new content
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed, new = verdict(str(f), state, LIMIT)
    assert changed and new is not None and new.digest != state.digest


def test_a_touch_moves_the_signature_but_not_the_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_state, "RACY_NS", 0)
    f = aged(tmp_path / "BUILD.aot.yaml", "targets: {}\n")
    state, _ = read_state(str(f), LIMIT)
    aged(f, "targets: {}\n", seconds=5)  # rewritten with the same bytes
    changed, new = verdict(str(f), state, LIMIT)
    assert not changed and new is not None and new.sig != state.sig and new.digest == state.digest


def test_oversized_and_missing_files_are_never_read_whole(tmp_path: Path) -> None:
    f = tmp_path / "big"
    f.write_bytes(b"x" * 100)
    state, data = read_state(str(f), 10)
    assert data is None and state.digest == "size:100"
    state, data = read_state(str(tmp_path / "absent"), 10)
    assert data is None and state.sig is None and state.digest is None
