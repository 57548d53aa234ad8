"""Content stamps (planning/input_stamps.py): touched only when an input's content changed, whatever its mtime."""

from __future__ import annotations

import os
import time
from pathlib import Path

from aotbuild.planning import input_stamps

from .conftest import write

DAY_NS = 86_400 * 10**9


def stamp_of(out: Path, ws: Path, key: str, environ: dict[str, str] | None = None) -> Path:
    [path] = input_stamps.ensure(out, {key: input_stamps.observe(ws, key, environ or {})})
    return out / path


def age(path: Path) -> None:
    """Date a file a day back, so that it is not racily clean and a fresh mtime is visibly newer."""
    old = time.time_ns() - DAY_NS
    os.utime(path, ns=(old, old))


def test_a_touch_keeps_the_stamp_and_an_edit_with_an_older_mtime_renews_it(tmp_path: Path) -> None:
    ws, out = tmp_path / "ws", tmp_path / "ws" / "aot-out"
    write(ws / "m" / "helper.py", "K = 1\n")
    age(ws / "m" / "helper.py")
    stamp = stamp_of(out, ws, input_stamps.file_key("m/helper.py"))
    age(stamp)
    before = stamp.stat().st_mtime_ns
    os.utime(ws / "m" / "helper.py")  # touch: same content
    assert input_stamps.refresh(ws, out, {}) == []
    assert stamp.stat().st_mtime_ns == before
    st = (ws / "m" / "helper.py").stat()
    (ws / "m" / "helper.py").write_text("K = 2\n")
    os.utime(ws / "m" / "helper.py", ns=(st.st_atime_ns, st.st_mtime_ns - DAY_NS))  # older than ever
    assert input_stamps.refresh(ws, out, {}) == ["file:m/helper.py"]
    assert stamp.stat().st_mtime_ns > before
    assert input_stamps.refresh(ws, out, {}) == []  # and then it is settled


def test_a_missing_input_that_appears_renews_its_stamp(tmp_path: Path) -> None:
    ws, out = tmp_path / "ws", tmp_path / "ws" / "aot-out"
    (ws / "m").mkdir(parents=True)
    stamp = stamp_of(out, ws, input_stamps.file_key("m/opt_override.py"))
    age(stamp)
    write(ws / "m" / "opt_override.py", "SCALE = 2\n")
    age(ws / "m" / "opt_override.py")
    assert input_stamps.refresh(ws, out, {}) == ["file:m/opt_override.py"]


def test_environment_and_glob_inputs(tmp_path: Path) -> None:
    ws, out = tmp_path / "ws", tmp_path / "ws" / "aot-out"
    write(ws / "d" / "a.txt", "a")
    env_stamp = stamp_of(out, ws, "env:MODE", {"MODE": "x"})
    glob_stamp = stamp_of(out, ws, "glob:d/*.txt")
    age(env_stamp)
    age(glob_stamp)
    assert input_stamps.refresh(ws, out, {"MODE": "x"}) == []
    write(ws / "d" / "b.txt", "b")
    assert sorted(input_stamps.refresh(ws, out, {})) == ["env:MODE", "glob:d/*.txt"]


def test_a_recreated_stamp_is_never_dated_into_the_past_and_a_damaged_one_is_removed(tmp_path: Path) -> None:
    ws, out = tmp_path / "ws", tmp_path / "ws" / "aot-out"
    write(ws / "f.py", "x = 1\n")
    started = time.time_ns()
    stamp = stamp_of(out, ws, input_stamps.file_key("f.py"))
    assert stamp.stat().st_mtime_ns >= started - 10**9  # coarse clocks
    stamp.write_text("")
    input_stamps.refresh(ws, out, {})
    assert not stamp.exists()  # ninja then re-runs what named it, which writes it again


def test_racily_clean_inputs_are_hashed_again(tmp_path: Path) -> None:
    """An input modified within the clock's granularity of being hashed: an edit right after could keep the
    same signature, so its content is checked on every refresh until it is old enough."""
    ws, out = tmp_path / "ws", tmp_path / "ws" / "aot-out"
    write(ws / "f.py", "x = 1\n")
    stamp = stamp_of(out, ws, input_stamps.file_key("f.py"))
    assert '"racy": true' in stamp.read_text()
    st = (ws / "f.py").stat()
    (ws / "f.py").write_text("x = 2\n")  # same size
    os.utime(ws / "f.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert input_stamps.refresh(ws, out, {}) == ["file:f.py"]


def test_an_unchanged_input_is_hashed_once_per_process_and_an_edited_one_again(tmp_path: Path, monkeypatch) -> None:
    """An export states its inputs before and after it runs: a weights file of gigabytes is read once, yet an
    edit in between (a new ctime, whatever the mtime) is hashed again."""
    from types import SimpleNamespace

    from aotbuild.planning.file_state import RACY_NS

    hashed: list[Path] = []
    real_hash, real_now = input_stamps.sha256_file, time.time_ns
    monkeypatch.setattr(input_stamps, "sha256_file", lambda p: hashed.append(p) or real_hash(p))
    monkeypatch.setattr(input_stamps, "time", SimpleNamespace(time_ns=lambda: real_now() + 2 * RACY_NS))
    write(tmp_path / "w.bin", "a" * 100)
    key = input_stamps.file_key("w.bin")
    first = input_stamps.observe(tmp_path, key, {})
    assert input_stamps.observe(tmp_path, key, {}) == first and len(hashed) == 1
    st = (tmp_path / "w.bin").stat()
    time.sleep(0.05)  # past the file system clock's tick: the edit gets another ctime
    (tmp_path / "w.bin").write_text("b" * 100)  # same size, mtime put back
    os.utime(tmp_path / "w.bin", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert input_stamps.observe(tmp_path, key, {}).digest != first.digest and len(hashed) == 2
