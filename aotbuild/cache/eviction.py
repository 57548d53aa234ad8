"""Walking and evicting a local cache: entry scans (stats, verify), and LRU gc that keeps what builds use."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aotbuild import layout
from aotbuild.cache import private_dirs
from aotbuild.cache.store import is_hex
from aotbuild.errors import CacheError

if TYPE_CHECKING:
    from aotbuild.cache.local import LocalStore

# A writer that has not touched its temp file for this long has crashed; younger ones may still be writing.
TEMP_MAX_AGE_S = 3600.0


@dataclass(frozen=True)
class Entry:
    name: str  # "cas/<digest>" or "ac/<key>"
    path: Path
    size: int
    mtime: float
    key: str  # the digest or action key, which also names the entry's lock


def scan(base: Path) -> tuple[list[Entry], list[tuple[Path, float]]]:
    """All entries under the layout dir `base`, and all temp files with their mtimes; files that vanish
    mid-scan are skipped."""
    entries: list[Entry] = []
    temps: list[tuple[Path, float]] = []
    shards = [(kind, Path(shard.path)) for kind in ("cas", "ac") for shard in _scandir(base / kind)
              if len(shard.name) == 2 and shard.is_dir(follow_symlinks=False)]
    for kind, directory in [*shards, ("tmp", base / "tmp")]:
        for e in _scandir(directory):
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if kind == "tmp" or e.name.startswith(".") or e.name.endswith(".tmp"):
                temps.append((Path(e.path), st.st_mtime))
            elif is_hex(e.name) and e.name.startswith(directory.name):  # a foreign file is never counted or deleted
                entries.append(Entry(f"{kind}/{e.name}", Path(e.path), st.st_size, st.st_mtime, e.name))
    return entries, temps


def gc(store: LocalStore, max_bytes: int | None, max_age_s: float | None, now: float | None) -> list[str]:
    """Evict least-recently-used entries beyond `max_bytes` or older than `max_age_s`; skip locked ones and
    count those a running build may use in store.skipped_in_use."""
    from aotbuild.cache.access import live_leases

    now = time.time() if now is None else now
    # Never evicted while a build runs: entries used since the oldest running build started (a program it
    # just stored, a blob it is about to link), and those its workspace's targets last used (it will
    # likely look them up again).
    leases = live_leases(store.base)
    held = {name for out_dir in leases.out_dirs for name in referenced_entries(out_dir)}
    entries, temps = scan(store.base)
    stale = [path for path, mtime in temps if now - mtime > TEMP_MAX_AGE_S]
    if stale:
        _check_temp_dir(store.base)
    for path in stale:
        remove_beneath(store.base, path)
    entries.sort(key=lambda e: e.mtime)
    total = sum(e.size for e in entries)
    removed: list[str] = []
    for e in entries:
        too_old = max_age_s is not None and now - e.mtime > max_age_s
        over = max_bytes is not None and total > max_bytes
        if not (too_old or over):
            break  # sorted oldest first and total only shrinks, so nothing later qualifies either
        if (leases.since is not None and e.mtime >= leases.since) or e.name in held:
            store.skipped_in_use += 1
            continue
        if _evict(store, e):
            total -= e.size
            removed.append(e.name)
    return removed


def target_dirs(out_dir: Path) -> Iterator[Path]:
    """Every target directory under aot-out/, without following symlinks."""
    for dirpath, dirnames, _ in os.walk(out_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for d in dirnames:
            if d.startswith(layout.TARGET_PREFIX):
                yield Path(dirpath) / d


def referenced_entries(out_dir: Path) -> set[str]:
    """Cache entries ("ac/<key>", "cas/<digest>") that the targets under `out_dir` were last built from."""
    from aotbuild import rules  # here: a no-op build imports this module and never collects

    names: set[str] = set()
    refs: dict[str, list[rules.CacheRef]] = {}  # output file -> its fields that name cache entries
    for ref in (ref for kind in rules.kinds() for ref in kind.cache_refs):
        refs.setdefault(ref.file, []).append(ref)
    for target_dir in target_dirs(out_dir):
        for file, fields in refs.items():
            try:
                doc = json.loads((target_dir / file).read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict):
                continue
            names |= {f"{ref.store}/{doc[ref.field]}" for ref in fields if isinstance(doc.get(ref.field), str)}
            for art in (doc.get("artifacts") or {}).values() if isinstance(doc.get("artifacts"), dict) else ():
                if isinstance(art, dict) and isinstance(art.get("sha256"), str):
                    names.add(f"cas/{art['sha256']}")
    return names


def _evict(store: LocalStore, e: Entry) -> bool:
    import filelock  # here: a no-op build imports this module, never evicts, and filelock costs 18 ms

    try:
        with store.lock(e.key, timeout=0):
            if os.stat(e.path, follow_symlinks=False).st_mtime != e.mtime:
                return False  # used or rewritten since the scan: no longer the oldest
            return remove_beneath(store.base, e.path)
    except (filelock.Timeout, FileNotFoundError):  # someone is building or reading it right now; or it is gone
        return False
    except OSError as err:
        raise CacheError(f"cannot evict cache entry {e.path}: {err}") from err


def _check_temp_dir(base: Path) -> None:
    """The cache's temp dir, before gc removes anything in it: a plain directory owned by you or by whoever owns
    the cache's layout dir (a group-shared cache), writable by nobody outside its group."""
    v1 = private_dirs.open_dirs(str(base.parent), (base.name,))
    if v1 is None:
        return
    try:
        owners = (os.geteuid(), os.fstat(v1).st_uid)
        tmp = private_dirs.open_beneath(v1, "tmp", str(base / "tmp"))
        try:
            private_dirs.check_trusted(tmp, str(base / "tmp"), owners, group_writable=True)
        finally:
            os.close(tmp)
    finally:
        os.close(v1)


def remove_beneath(base: Path, path: Path) -> bool:
    """Unlink `path`, a file under the layout dir `base`, through directories opened from `base` on without
    following symlinks: a shard or temp dir swapped for a link is refused, never followed. False if it is gone."""
    *dirs, name = path.relative_to(base).parts
    fd = private_dirs.open_dirs(str(base.parent), (base.name, *dirs))
    if fd is None:
        return False
    try:
        os.unlink(name, dir_fd=fd)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)


def _scandir(path: Path) -> Iterator[os.DirEntry[str]]:
    """The entries of `path` when it is a plain directory: a symlink planted in a shared cache is never walked."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            with os.scandir(path) as it:
                yield from it
    except FileNotFoundError:
        return
