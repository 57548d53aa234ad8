"""The no-op stamp: proof, from stats alone, that ninja would run nothing for the goals asked (see how-it-works)."""

from __future__ import annotations

import marshal
import os
import time
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aotbuild import __version__, layout
from aotbuild.planning.plan_index import Plan
from aotbuild.workspace.labels import Label

STAMP_FILE = f"{layout.STATE_DIR}/noop-stamp"
FORMAT = 1
# A directory changed this recently may change again within the same tick of the filesystem's clock and keep
# its ctime: such a snapshot is not stamped. Filesystems keeping whole seconds wait two of them.
RACY_NS = 50_000_000
COARSE_RACY_NS = 2_000_000_000
MISSING = -1
# ninja appends to its log for any edge it runs: an edge that reports no event still moves the snapshot.
LOGS = (f"{layout.NINJA_BUILDDIR}/.ninja_log", f"{layout.NINJA_BUILDDIR}/.ninja_deps")
STAT_ERRORS = (OSError, ValueError, OverflowError)

Sig = tuple[int, int, int, int]  # mtime_ns, ctime_ns, size, inode: ctime moves on any write, and cannot be set back


@dataclass(frozen=True)
class Paths:
    """What a snapshot looks at, relative to aot-out/ (or absolute)."""

    goals: tuple[str, ...]
    files: tuple[str, ...]  # whole signatures
    nodes: tuple[str, ...]  # mtimes
    dirs: tuple[str, ...]  # ctimes: they move when an artifact, alias or link (no ninja node) comes or goes


@dataclass(frozen=True)
class Snapshot:
    paths: Paths
    sigs: tuple[Sig | None, ...]  # of paths.files
    mtimes: bytes  # array('q') of paths.nodes, MISSING where absent
    ctimes: bytes  # array('q') of paths.dirs


def _chain_kinds(goal_kind: str) -> list:  # noqa: ANN202 - rules.Kind, imported on use
    from aotbuild import rules

    wanted, order = {goal_kind}, []
    for kind in reversed(rules.kinds()):  # a kind comes after those it reads from: walk back from the goal
        if kind.name in wanted:
            wanted.update(kind.after)
            order.append(kind)
    return order[::-1]


def paths_for(out_dir: Path, plan: Plan, labels: Sequence[Label], goals: Sequence[str], goal_kind: str) -> Paths:
    """What ninja's decision for `goals` (of kind `goal_kind`) and the checks before it read, from the plan and
    the rule kinds, never ninja's files: each kind's edge up to the goal, the generator edges, discovered deps."""
    from aotbuild import rules
    from aotbuild.planning.ninja_files import package_file

    kinds = _chain_kinds(goal_kind)
    with_targets = [p for p, e in plan.packages.items() if e.targets]
    files = [plan.ninja, layout.NINJA_FILE, layout.PLAN_FILE, *LOGS]
    files += [package_file(p, ext) for p in with_targets for ext in ("ninja", "specs")]
    nodes = dict.fromkeys([layout.TOOLCHAIN_FILE, *(layout.from_out(f) for f in plan.build_files)])
    spec_files = [k.spec_file for k in rules.kinds()]  # one spec edge writes them all
    dirs = {".": None}  # aot-out/, every directory above a target directory, and the target directories
    for label in labels:
        target_dir = layout.TargetPaths(label).dir
        parts = target_dir.split("/")
        dirs.update(dict.fromkeys("/".join(parts[:i]) for i in range(1, len(parts) + 1)))
        names = [*spec_files]
        for kind in kinds:
            names += [kind.goal, *kind.by_products, *kind.inputs, *kind.implicit]
            if kind.discovered:
                names.append(kind.discovered)
                # A sidecar missing or unreadable raises: what the export depends on is unknown, so no stamp.
                nodes.update(dict.fromkeys((out_dir / target_dir / kind.discovered).read_text().splitlines()))
        nodes.update(dict.fromkeys(name if name.startswith(f"{layout.STATE_DIR}/") else f"{target_dir}/{name}"
                                   for name in names))
        nodes.update(dict.fromkeys(layout.from_out(w) for w in plan.packages[label.package].watched))
    return Paths(tuple(goals), tuple(files), tuple(nodes), tuple(dirs))


def _sig(path: str, fd: int) -> Sig | None:
    try:
        st = os.stat(path, dir_fd=fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _values(paths: Iterable[str], fd: int, field: str) -> bytes:
    """array('q') of each path's `field`, MISSING where it does not exist. Other errors raise."""
    stat = os.stat
    values = array("q")
    for path in paths:
        try:
            values.append(getattr(stat(path, dir_fd=fd), field))
        except (FileNotFoundError, NotADirectoryError):
            values.append(MISSING)
    return values.tobytes()


def _now(out_dir: Path, paths: Paths) -> Snapshot:
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sigs = tuple(_sig(p, fd) for p in paths.files)
        return Snapshot(paths, sigs, _values(paths.nodes, fd, "st_mtime_ns"), _values(paths.dirs, fd, "st_ctime_ns"))
    finally:
        os.close(fd)


def take(out_dir: Path, paths: Paths) -> Snapshot | None:
    """The state now; None where it cannot be stamped (a directory changed within a clock tick)."""
    started = time.time_ns()
    snap = _now(out_dir, paths)
    ctimes = array("q", snap.ctimes)
    racy = RACY_NS if any(value % 1_000_000_000 for value in ctimes) else COARSE_RACY_NS
    return None if ctimes and max(ctimes) >= started - racy else snap


def moved(out_dir: Path, snap: Snapshot) -> list[tuple[str, object, object]]:
    """The entries that differ now: (path, recorded, now)."""
    now = _now(out_dir, snap.paths)
    found: list[tuple[str, object, object]] = [
        (p, a, b) for p, a, b in zip(snap.paths.files, snap.sigs, now.sigs) if a != b]
    for paths, was, is_now in ((snap.paths.nodes, snap.mtimes, now.mtimes), (snap.paths.dirs, snap.ctimes, now.ctimes)):
        if was != is_now:
            found += [(p, a, b) for p, a, b in zip(paths, array("q", was), array("q", is_now)) if a != b]
    return found


def holds(out_dir: Path, snap: Snapshot | None, goals: Iterable[str]) -> bool:
    """Whether `snap` proves ninja would run nothing for `goals` now: goals among its own, every entry as it was."""
    if snap is None or not set(snap.paths.goals).issuperset(goals):
        return False
    try:
        return _now(out_dir, snap.paths) == snap
    except STAT_ERRORS:
        return False


def _dump(snap: Snapshot) -> bytes:
    """marshal (the fastest reader of 100,000 strings) and a CRC, telling a torn (unsynced) file from a whole one."""
    p = snap.paths
    payload = marshal.dumps((FORMAT, __version__, p.goals, p.files, p.nodes, p.dirs, snap.sigs, snap.mtimes,
                             snap.ctimes))
    return payload + zlib.crc32(payload).to_bytes(4, "little")


def read(out_dir: Path) -> Snapshot | None:
    """The stamp; None when there is none, or it is damaged or of another aotbuild."""
    try:
        data = (out_dir / STAMP_FILE).read_bytes()
    except OSError:
        return None
    payload = data[:-4]
    if len(data) < 4 or zlib.crc32(payload).to_bytes(4, "little") != data[-4:]:
        return None
    try:
        fmt, version, goals, files, nodes, dirs, sigs, mtimes, ctimes = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    if (fmt, version) != (FORMAT, __version__) or len(mtimes) != 8 * len(nodes) or len(ctimes) != 8 * len(dirs):
        return None
    return Snapshot(Paths(goals, files, nodes, dirs), sigs, mtimes, ctimes)


def begin(out_dir: Path, plan: Plan, labels: Sequence[Label], goals: Sequence[str], goal_kind: str
          ) -> Snapshot | None:
    """Before the checks and ninja of a build that may stamp: the state; None when it cannot be listed."""
    try:
        return take(out_dir, paths_for(out_dir, plan, labels, goals, goal_kind))
    except STAT_ERRORS:
        return None


def finish(out_dir: Path, before: Snapshot) -> None:
    """After ninja exited 0 and no action ran: stamp `before` if the state (ninja's log included) is still that."""
    from aotbuild.fsutil import replace_unsynced

    try:
        after = take(out_dir, before.paths)
    except STAT_ERRORS:
        return
    if after == before:
        replace_unsynced(out_dir / STAMP_FILE, _dump(before))
