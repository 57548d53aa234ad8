"""The compiler's temp space (/tmp/aotbuild-<uid>/tmp: precompiled headers, compiler temp files), measured for
`cache stats` and reclaimed by `cache gc`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aotbuild.cache import private_dirs
from aotbuild.cache.access import live_leases
from aotbuild.cache.local import LocalStore

# Every compile of this user stages under here (actions/staging.py), whatever its cache root. BASE/tmp is no
# cache entry: a compile recreates what it needs (a few seconds for the headers), so gc empties it whole.
BASE = Path("/tmp") / f"aotbuild-{os.getuid()}"


@dataclass(frozen=True)
class Usage:
    bytes: int
    last_used: float | None  # newest mtime in the tree


def temp_lock_path() -> Path:
    """Compiles hold this lock shared while they use BASE/tmp; `cache gc` empties BASE/tmp only exclusively."""
    return BASE / "tmp.lock"


def _open_temp() -> int | None:
    """The temp space, checked to be ours and private at each level (another user may have made
    /tmp/aotbuild-<uid> or its tmp first); None if there is none yet."""
    return private_dirs.open_private(str(BASE.parent), (BASE.name, "tmp"))


def usage() -> Usage:
    fd = _open_temp()
    if fd is None:
        return Usage(0, None)
    total, newest = 0, None
    try:
        for _, _, files, dir_fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
            for name in (".", *files):  # the directory's own mtime too: the compiler's temp files come and go
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
                    total += st.st_size if name != "." else 0
    finally:
        os.close(fd)
    return Usage(total, newest)


@contextmanager
def _no_compile_staging(cache_root: Path) -> Iterator[bool]:
    """True while no compile can use the temp space: no build holds a lease on this cache, and no compile
    (plain ninja's included, any cache root) holds the temp space, which gc then keeps locked until it is done."""
    fd = -1
    with contextlib.suppress(FileNotFoundError):  # no lock file: no compile ever staged here as this user
        fd = os.open(temp_lock_path(), os.O_RDWR | os.O_NOFOLLOW)
    try:
        free = live_leases(cache_root / "v1").since is None
        if free and fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                free = False
        yield free
    finally:
        if fd >= 0:
            os.close(fd)


@dataclass(frozen=True)
class GcResult:
    removed: list[str]  # cache entries evicted
    temp_reclaimed: int  # bytes of compiler temp space removed (0: none)
    temp_kept_in_use: bool  # it should have gone but a build or compile was using it
    kept_in_use: int  # entries kept because a running build uses them


def collect(store: LocalStore, max_bytes: int | None, max_age_s: float | None, now: float | None = None) -> GcResult:
    """`cache gc`: the compiler temp space first (cheapest to recreate), then entries, least recently used first."""
    now = time.time() if now is None else now
    temp = usage()
    stats = store.stats()
    entries_bytes = stats["cas_bytes"] + stats["ac_bytes"]
    over = max_bytes is not None and entries_bytes + temp.bytes > max_bytes
    idle = max_age_s is not None and temp.last_used is not None and now - temp.last_used > max_age_s
    reclaimed, kept = 0, False
    if temp.bytes and (over or idle):
        with _no_compile_staging(store.root) as free:
            if free:
                _empty()
                reclaimed = temp.bytes - usage().bytes
            kept = not free
    budget = None if max_bytes is None else max(0, max_bytes - (temp.bytes - reclaimed))
    removed = store.gc(budget, max_age_s, now)
    return GcResult(removed, reclaimed, kept, store.skipped_in_use)


def _empty() -> None:
    """Remove what the temp space holds but keep it: a compile about to take the temp-space lock has already
    made it and points $TMPDIR there. By name under its descriptor: nothing is followed out of it."""
    fd = _open_temp()
    if fd is None:
        return
    try:
        with os.scandir(fd) as entries:
            names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for name, is_dir in names:
            if is_dir:
                shutil.rmtree(name, ignore_errors=True, dir_fd=fd)  # fd-based: safe against symlink swaps
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)
