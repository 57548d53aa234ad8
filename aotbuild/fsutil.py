"""Atomic file writes: temp file + fsync + rename in the same directory, so readers never see half a file."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data` atomically; `mode` sets permissions (mkstemp's own 0600 would hide outputs).
    `durable=False` skips the fsync, for a caller that syncs the filesystem once after many writes."""
    import tempfile  # here, not at the top: a no-op build writes nothing and should not pay for it

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_if_changed(path: Path, data: bytes, durable: bool = True) -> bool:
    """Write `data` unless `path` already holds exactly it; keeping the mtime lets ninja's restat prune."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data, durable=durable)
    return True


def replace_unsynced(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` atomically (temp file + rename) but without fsync: for derived files that can always be
    regenerated (plan files). A crash may lose the new content, never leave half of it; one fsync per file
    was most of the time of planning a large workspace."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one writer per process: the pid is unique enough
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode passes through the umask; `mode` is what the caller asked for
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def replace_if_changed_unsynced(path: Path, data: bytes) -> bool:
    """write_if_changed for regenerable files: unchanged content keeps its mtime (ninja's restat prunes)."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except FileNotFoundError:
        pass
    replace_unsynced(path, data)
    return True
