"""Every rename-into-place in aotbuild: temp + rename in the same directory, so no reader sees half a file."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1 << 20


def _temp_name(path: Path) -> Path:
    """A temp file beside `path`: unique per process and thread; a crashed writer's leftover is overwritten."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def unlink_quiet(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _create_new(path: Path, mode: int) -> int:
    """Create `path` afresh: a leftover of a crashed writer, or a symlink another user of a shared directory
    planted at this predictable name, is unlinked first, never written through."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags, mode)
    except FileExistsError:
        unlink_quiet(path)
        return os.open(path, flags, mode)


@contextlib.contextmanager
def _renamed_onto(dest: Path) -> Iterator[Path]:
    """A temp path beside `dest` for the block to create: renamed onto `dest` if the block succeeds, else removed."""
    tmp = _temp_name(dest)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        unlink_quiet(tmp)
        raise


def atomic_write(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data` atomically, durably (fsync before the rename) unless `durable=False`, for a
    caller that syncs the filesystem once after many writes (the CLI's cache pass)."""
    with _renamed_onto(path) as tmp:
        try:
            fd = _create_new(tmp, mode)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = _create_new(tmp, mode)
        os.fchmod(fd, mode)  # O_CREAT's mode passes through the umask; `mode` is what the caller asked for
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())


def replace_unsynced(path: Path, data: bytes, mode: int = 0o644) -> None:
    """atomic_write without fsync, for files that can always be regenerated (plan files): a crash may lose
    them, never halve them, and one fsync per file was most of the time of planning a large workspace."""
    atomic_write(path, data, mode, durable=False)


def write_if_changed(path: Path, data: bytes, durable: bool = True) -> bool:
    """Write `data` unless `path` already holds exactly it; keeping the mtime lets ninja's restat prune."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except FileNotFoundError:
        pass
    atomic_write(path, data, durable=durable)
    return True


def replace_if_changed_unsynced(path: Path, data: bytes) -> bool:
    return write_if_changed(path, data, durable=False)


def create_if_missing(path: Path, data: bytes) -> bool:
    """Write `data` at `path` unless a file is there already (first writer wins, among threads and processes
    alike); True if this call created it. The file appears whole, with the time of creation as its mtime."""
    tmp = _temp_name(path)
    atomic_write(tmp, data, durable=False)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        unlink_quiet(tmp)


def atomic_symlink(link: Path, target: str | Path) -> None:
    """Point `link` at `target` by renaming a new link over it: readers see the old or the new one, never none."""
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    with _renamed_onto(link) as tmp:
        unlink_quiet(tmp)
        os.symlink(target, tmp)


def copy_stream(src: BinaryIO, dst: Any, limit: int | None = None) -> int:
    """Copy in CHUNK pieces (never the whole file in memory); returns the bytes copied."""
    n = 0
    while limit is None or n < limit:
        chunk = src.read(CHUNK if limit is None else min(CHUNK, limit - n))
        if not chunk:
            break
        dst.write(chunk)
        n += len(chunk)
    return n


class PendingFile:
    """A temp file being written; commit() makes it durable and renames it onto its destination."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: BinaryIO = os.fdopen(_create_new(path, 0o644), "wb")

    def commit(self, dest: Path, mode: int = 0o644, durable: bool = True) -> None:
        """`durable=False` skips the fsync, for content whose every reader verifies it (cache blobs)."""
        self.file.flush()
        if durable:
            os.fsync(self.file.fileno())
        self.file.close()
        os.chmod(self.path, mode)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, dest)


@contextlib.contextmanager
def pending_file(directory: Path, name: str) -> Iterator[PendingFile]:
    """A new temp file in `directory` (on the destination's filesystem, so the rename is atomic), for content
    whose destination may only be known once written (a digest); removed on exit unless committed."""
    with temp_path(directory, name) as path:
        pending = PendingFile(path)
        with pending.file:
            yield pending


@contextlib.contextmanager
def temp_path(directory: Path, name: str) -> Iterator[Path]:
    """A unique path in `directory` for a callee to create the file at; removed on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    path = _temp_name(directory / name)
    try:
        yield path
    finally:
        unlink_quiet(path)


def link_or_copy(src: Path, dst: Path, mode: int = 0o444) -> None:
    """Place `src` at `dst` atomically: a hard link where possible (free, and read-only like a cache blob),
    else a durable copy with `mode` (across filesystems)."""
    with _renamed_onto(dst) as tmp:
        unlink_quiet(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            with open(src, "rb") as s, open(tmp, "wb") as d:
                copy_stream(s, d)
                d.flush()
                os.fsync(d.fileno())
            os.chmod(tmp, mode)


def check_writable(directory: Path) -> None:
    """Raise OSError unless a file can be created in `directory` (a probe, removed again)."""
    probe = _temp_name(directory / "probe")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.unlink(probe)
