"""The no-op stamp: proof, from stats alone, that ninja would run nothing for the goals asked, so a no-op build
need not start ninja (which parses every ninja file of the workspace) nor run the checks before it.

A stamp is a snapshot of everything ninja's decision reads, taken by a build whose ninja then ran nothing:
  - "meta" files, whose content ninja reads (the ninja binary, build.ninja and its subninjas, .ninja_log and
    .ninja_deps): their mtime, ctime, size and inode. ctime moves on any write, and nobody can set it;
  - every file node named by the ninja files, and every dependency recorded in .ninja_deps: mtime or missing,
    as ninja sees them (its decision compares nothing else of a node);
  - the directories whose entries the build's own checks before ninja look at (engine/output_checks.prepare):
    aot-out/, every directory above a target directory, and each target directory, whose artifacts and
    aliases are not ninja nodes. A link put in place, an alias or artifact deleted or renamed, all change
    the directory's ctime.
It also names the goals that ninja was asked for; it holds for those and any subset of them.

A build writes one only when the snapshot taken before its checks and ninja equals the one taken after them,
ninja exited 0 and no action reported anything: nothing changed, so nothing ran, on exactly that state. A
later build whose snapshot equals the stamp would see the same files and the same logs, and ninja would
again decide to do nothing. Whatever this module cannot read (a manifest with a variable in a path, another
deps log format, a damaged stamp) means no stamp, so the build runs ninja as before.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aotbuild import __version__, layout

STAMP_FILE = f"{layout.STATE_DIR}/noop-stamp"
RETIRED_FILE = f"{STAMP_FILE}.retired"
FORMAT = 1
MISSING = -(1 << 63)  # a node's "mtime" when it does not exist (no filesystem stores a time this old)
_DIGEST = 16
# A directory changed this recently may change again within the same tick of the filesystem's clock and keep
# its ctime: such a snapshot is not stamped (the next no-op build stamps). Clock ticks are 1-10 ms.
RACY_NS = 50_000_000

Sig = tuple[int, int, int, int]  # mtime_ns, ctime_ns, size, inode


@dataclass(frozen=True)
class Snapshot:
    """The state one build's ninja ran on. `manifests` pairs each ninja file with the nodes it names, so that
    the next snapshot re-reads only the ninja files that changed."""

    meta: tuple[tuple[str, Sig | None], ...]  # path (absolute, or relative to aot-out/) -> its signature
    manifests: tuple[tuple[str, tuple[str, ...]], ...]  # ninja file -> its nodes, relative to aot-out/
    deps: tuple[str, ...]  # every path .ninja_deps names as a dependency
    mtimes: bytes  # array('q'): each manifest's nodes in order, then deps
    dirs: tuple[str, ...]  # relative to aot-out/ ("." for itself)
    dir_ctimes: bytes  # array('q')

    def same_state(self, other: Snapshot) -> bool:
        return (self.meta, self.mtimes, self.dirs, self.dir_ctimes) == (
            other.meta, other.mtimes, other.dirs, other.dir_ctimes)


def _sig(path: str, out_fd: int) -> Sig | None:
    try:
        st = os.stat(path, dir_fd=out_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _mtimes(paths: Iterable[str], out_fd: int, into: array) -> None:
    """Append each path's mtime (MISSING when absent) to `into`. Other errors (a permission, a time beyond
    64 bits, or a real file dated MISSING) raise: the caller then proves nothing."""
    stat = os.stat
    append = into.append
    for path in paths:
        try:
            mtime = stat(path, dir_fd=out_fd).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            append(MISSING)
            continue
        if mtime == MISSING:
            raise ValueError(f"{path}: an mtime of {MISSING} ns")
        append(mtime)


def _ctimes(dirs: Iterable[str], out_fd: int) -> bytes:
    stat = os.stat
    values = array("q")
    append = values.append
    for path in dirs:
        try:
            append(stat(path, dir_fd=out_fd).st_ctime_ns)
        except (FileNotFoundError, NotADirectoryError):
            append(MISSING)
    return values.tobytes()


def _meta_paths(binary: str) -> list[str]:
    builddir = layout.NINJA_BUILDDIR
    return [binary, f"{builddir}/.ninja_log", f"{builddir}/.ninja_deps"]


def take(out_dir: Path, binary: str, dirs: Sequence[str], previous: Snapshot | None = None) -> Snapshot | None:
    """Snapshot the state ninja would see now; None where a ninja file or the deps log cannot be read here.
    Node lists of ninja files whose signature did not change since `previous` are reused, not re-parsed."""
    from aotbuild.ninja import logs
    from aotbuild.ninja.nodes import NodeError, file_nodes, recorded_dependencies

    started = time.time_ns()
    known = dict(previous.manifests) if previous is not None else {}
    known_sigs = dict(previous.meta) if previous is not None else {}
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        meta: list[tuple[str, Sig | None]] = [(p, _sig(p, fd)) for p in _meta_paths(binary)]
        if meta[0][1] is None:
            return None
        manifests: list[tuple[str, tuple[str, ...]]] = []
        pending = [layout.NINJA_FILE]
        while pending:
            name = pending.pop(0)
            sig = _sig(name, fd)
            if sig is None:
                return None  # ninja fails on a missing subninja: nothing to prove
            meta.append((name, sig))
            if name in known and known_sigs.get(name) == sig and name != layout.NINJA_FILE:
                manifests.append((name, known[name]))
                continue
            with open(name, encoding="utf-8", errors="surrogateescape", opener=_opener(fd)) as f:
                nodes, includes = file_nodes(f.read(), name)
            manifests.append((name, tuple(nodes)))
            pending.extend(includes)
        deps_name = meta[2][0]
        if previous is not None and known_sigs.get(deps_name) == meta[2][1] and meta[2][1] is not None:
            deps = previous.deps
        else:
            deps = tuple(recorded_dependencies(out_dir / deps_name))
        mtimes = array("q")
        for _, nodes in manifests:
            _mtimes(nodes, fd, mtimes)
        _mtimes(deps, fd, mtimes)
        ctimes = _ctimes(dirs, fd)
        if dirs and max(array("q", ctimes)) >= started - RACY_NS:
            return None
        return Snapshot(tuple(meta), tuple(manifests), deps, mtimes.tobytes(), tuple(dirs), ctimes)
    except (NodeError, logs.FormatError, OSError, ValueError, OverflowError, UnicodeError):
        return None
    finally:
        os.close(fd)


def _opener(dir_fd: int):  # noqa: ANN202 - open()'s opener protocol
    return lambda path, flags: os.open(path, flags, dir_fd=dir_fd)


def _encode(snapshot: Snapshot, goals: Sequence[str]) -> bytes:
    payload = marshal.dumps((FORMAT, __version__, tuple(sorted(goals)), snapshot.meta, snapshot.manifests,
                             snapshot.deps, snapshot.mtimes, snapshot.dirs, snapshot.dir_ctimes))
    return payload + hashlib.blake2b(payload, digest_size=_DIGEST).digest()


def write(out_dir: Path, snapshot: Snapshot, goals: Sequence[str]) -> None:
    """Record `snapshot` as a state on which ninja runs nothing for `goals`. No fsync: a stamp lost in a crash
    only costs one ninja run; a torn one fails its digest."""
    from aotbuild.fsutil import replace_unsynced

    replace_unsynced(out_dir / STAMP_FILE, _encode(snapshot, goals))


def retire(out_dir: Path) -> None:
    """Before ninja runs: a build that fails or is interrupted leaves no stamp behind. The retired one is kept
    aside only for its lists of nodes (read_retired), which spare the next snapshot parsing every ninja file."""
    try:
        os.replace(out_dir / STAMP_FILE, out_dir / RETIRED_FILE)
    except FileNotFoundError:
        pass


def read_retired(out_dir: Path) -> Snapshot | None:
    """The retired stamp's snapshot: never a proof, only node lists whose ninja files' signatures say whether
    they still hold."""
    found = read(out_dir, RETIRED_FILE)
    return found[1] if found else None


def read(out_dir: Path, name: str = STAMP_FILE) -> tuple[frozenset[str], Snapshot] | None:
    """The goals and snapshot of the stamp; None when there is none, or it is damaged or of another aotbuild."""
    try:
        with open(out_dir / name, "rb") as f:
            data = f.read()
        payload, digest = data[:-_DIGEST], data[-_DIGEST:]
        if hashlib.blake2b(payload, digest_size=_DIGEST).digest() != digest:
            return None
        fmt, version, goals, meta, manifests, deps, mtimes, dirs, dir_ctimes = marshal.loads(payload)
        if fmt != FORMAT or version != __version__:
            return None
        return frozenset(goals), Snapshot(meta, manifests, deps, mtimes, dirs, dir_ctimes)
    except (OSError, ValueError, EOFError, TypeError):
        return None


def holds(out_dir: Path, binary: str, goals: Iterable[str], stamp: tuple[frozenset[str], Snapshot] | None) -> bool:
    """Whether `stamp` proves that ninja would run nothing for `goals` now: same binary, goals among the
    stamped ones, and every file as it was (cheap checks first)."""
    if stamp is None:
        return False
    stamped_goals, snap = stamp
    if not stamped_goals.issuperset(goals) or not snap.meta or snap.meta[0][0] != binary:
        return False
    try:
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        if any(_sig(path, fd) != sig for path, sig in snap.meta):
            return False
        mtimes = array("q")
        for _, nodes in snap.manifests:
            _mtimes(nodes, fd, mtimes)
        _mtimes(snap.deps, fd, mtimes)
        return mtimes.tobytes() == snap.mtimes and _ctimes(snap.dirs, fd) == snap.dir_ctimes
    except (OSError, ValueError, OverflowError):
        return False
    finally:
        os.close(fd)


def checked_dirs(target_dirs: Iterable[str]) -> list[str]:
    """The directories whose entries output_checks.prepare looks at for these target directories (relative to
    aot-out/): aot-out/ itself, every directory above a target directory, and the target directories."""
    dirs: dict[str, None] = {".": None}
    for target in target_dirs:
        parts = target.split("/")
        for i in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:i]), None)
        dirs[target] = None
    return list(dirs)
