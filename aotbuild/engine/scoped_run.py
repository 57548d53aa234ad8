"""A build right after re-planning a few packages: ninja runs on those packages' ninja files alone, while the
no-op stamp proves that nothing else has work.

ninja starts by reading every ninja file and both logs: about half a second at 10,000 targets, before the
one export an edited BUILD file needs. Where the last build left a stamp (engine/noop_stamp.py), and
everything but the re-planned packages' own files is still as stamped, ninja's decision for every other goal
is still "nothing to do": so this build runs ninja on a manifest of the rules and those packages' files, and
its checks before ninja only on their targets.

That is ninja's own decision for their goals too when their edges read, of what other files make, only
outputs that the stamp proves current; when what they make is made, and read, by no other file; and when
ninja will not recompact its deps log (a recompaction under a partial manifest drops the other packages'
recorded deps: ninja/deps_log.py). Anything else runs ninja on everything, as before.

Afterwards the stamp is kept for everything else, with these packages' files marked as no longer proven
(Snapshot.excluded): the next build after another edit scopes again, and the next build without one runs
ninja on everything once, which stamps everything again.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aotbuild import layout
from aotbuild.engine import noop_stamp, replan_leeway
from aotbuild.ninja import deps_log
from aotbuild.ninja.files import package_file
from aotbuild.workspace.labels import Label

SCOPED_NINJA_FILE = f"{layout.STATE_DIR}/scoped.ninja"
Stamp = tuple[frozenset[str], noop_stamp.Snapshot]


@dataclass(frozen=True)
class Scope:
    files: frozenset[str]  # the ninja files ninja runs on, relative to aot-out/
    dirs: frozenset[str]  # their packages' directories and target directories, which may change
    labels: list[Label]  # the selected targets in those packages
    goals: list[str]  # their goals
    stamp: Stamp
    producers: noop_stamp.Producers
    producers_section: bytes  # as read from the stamp, to write back unchanged
    log_before: bytes  # .ninja_log before ninja ran
    deps_before: bytes  # and .ninja_deps
    owner_of: dict[str, int]  # each stamped node (and missing one) -> its owner (Snapshot.owners)


def find(out_dir: Path, binary: str, stamp: Stamp | None, replanned: Sequence[str], packages: Iterable[str],
         goals: dict[Label, str]) -> Scope | None:
    """The scope for a build of `goals` after re-planning the packages `replanned` (of the workspace's
    `packages`), or None when ninja must run on everything."""
    if stamp is None or not replanned:
        return None
    stamped_goals, snap = stamp
    excluded = set(snap.excluded)
    in_scope = set(replanned) | {p for p in packages if package_file(p) in excluded}
    files = frozenset(package_file(p) for p in in_scope)
    found = noop_stamp.read_producers(out_dir)
    if found is None:
        return None
    producers, producers_section = found
    outside = [goal for label, goal in goals.items() if label.package not in in_scope]
    # A goal outside the scope must be made by a file outside it, or ninja's decision for it could change.
    made_outside = {i for i, name in enumerate(snap.owner_files) if name not in files}
    if any(producers.get(goal, -1) // 2 not in made_outside for goal in outside):
        return None
    dirs = _package_dirs(snap.dirs, in_scope)
    if not noop_stamp.holds(out_dir, binary, outside, stamp, files, dirs):
        return None
    try:
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        owner_of = _owners(snap)
        if not _self_contained(files, fd, producers, snap, owner_of):
            return None
        log = replan_leeway.read_bytes(noop_stamp.meta_paths(binary)[1], fd)
        deps = replan_leeway.read_bytes(noop_stamp.meta_paths(binary)[2], fd)
    finally:
        os.close(fd)
    # The deps log is the stamped one (holds compared its signature), so the stamp's counts are its own.
    if deps_log.recompacts(*snap.deps_records):
        return None
    labels = [label for label in goals if label.package in in_scope]
    return Scope(files, dirs, labels, [goals[label] for label in labels], stamp, producers, producers_section,
                 log, deps, owner_of)


def _maker(producers: noop_stamp.Producers, snap: noop_stamp.Snapshot, output: str) -> str | None:
    """The ninja file whose edge makes `output`; None if none, or more than one, does."""
    made = producers.get(output, -1)
    return snap.owner_files[made // 2] if made >= 0 else None


def _package_dirs(stamped: Iterable[str], packages: set[str]) -> frozenset[str]:
    """The stamped directories of these packages: each package's own (aot-out/ for the root package) and its
    target directories. A nested package's directories are its own."""
    dirs = {package or "." for package in packages}
    for path in stamped:
        parent, _, name = path.rpartition("/")
        if name.startswith(layout.TARGET_PREFIX) and parent in packages:
            dirs.add(path)
    return frozenset(dirs)


def _self_contained(files: frozenset[str], out_fd: int, producers: noop_stamp.Producers,
                    snap: noop_stamp.Snapshot, owner_of: dict[str, int]) -> bool:
    """Whether ninja on these files alone decides for their goals what it would decide on every file: their
    edges read nothing that another file's edge makes unless the stamp proves that edge current (its
    decision visits it), and make nothing that another file's edge makes or reads."""
    from aotbuild.ninja.nodes import NodeError, file_graph

    for name in files:
        try:
            with open(name, encoding="utf-8", errors="surrogateescape", opener=noop_stamp.opener(out_fd)) as f:
                edges, _, includes = file_graph(f.read(), name)
        except FileNotFoundError:
            continue  # the package has no targets now: nothing to run
        except (NodeError, OSError, UnicodeError):
            return False
        if includes:
            return False
        made = {output for outputs, _, _ in edges for output in outputs}
        for outputs, _, inputs in edges:
            for output in outputs:
                if _read_elsewhere(output, owner_of, snap, files) or _maker(producers, snap, output) not in (
                        None, *files):
                    return False
            for node in inputs:
                if node in made:
                    continue
                maker = producers.get(node)
                if maker is not None and (maker < 0 or (snap.owner_files[maker // 2] not in files and not maker & 1)):
                    return False
    return True


def _owners(snap: noop_stamp.Snapshot) -> dict[str, int]:
    owner_of = dict(zip(snap.nodes, array("i", snap.owners)))
    owner_of.update(zip(snap.missing, array("i", snap.missing_owners)))
    return owner_of


def _read_elsewhere(node: str, owner_of: dict[str, int], snap: noop_stamp.Snapshot, files: frozenset[str]) -> bool:
    """Whether the decision reaches this stamped node (or missing one) from outside these files."""
    owner = owner_of.get(node)
    return owner is not None and (owner < 0 or snap.owner_files[owner] not in files)


def write_manifest(out_dir: Path, scope: Scope) -> str:
    """A manifest of build.ninja's rules and pools and the scope's files, for ninja to run on; its path."""
    from aotbuild.fsutil import replace_unsynced

    text = (out_dir / layout.NINJA_FILE).read_bytes()
    header = text[:text.find(b"\nbuild ") + 1] if b"\nbuild " in text else text
    lines = [f"subninja {name}\n".encode() for name in sorted(scope.files) if (out_dir / name).exists()]
    replace_unsynced(out_dir / SCOPED_NINJA_FILE, header + b"\n" + b"".join(lines))
    return SCOPED_NINJA_FILE


def keep_stamp(out_dir: Path, binary: str, scope: Scope) -> bool:
    """After ninja ran on the scope and exited 0: stamp again what the stamp proved of everything else, with the
    scope's files excluded. Only if ninja's logs grew by records for the scope's outputs alone (no other
    ninja ran meanwhile, nothing was recompacted). Returns whether it stamped."""
    goals, snap = scope.stamp
    log_path, deps_path = noop_stamp.meta_paths(binary)[1:]
    try:
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        log = replan_leeway.read_bytes(log_path, fd)
        deps = replan_leeway.read_bytes(deps_path, fd)
        size = len(scope.log_before)
        if not log.startswith(scope.log_before) or not log.endswith(b"\n"):
            return False
        # Every edge ninja ran wrote its outputs' lines to the build log, and to the deps log only their deps:
        # the build log tells what ran, and the deps log must only have grown, by whole records.
        before = len(scope.deps_before)
        if not deps.startswith(scope.deps_before):
            return False
        tail = deps_log.scan(deps, before, None if before else 0)
        if tail is None:
            return False
        written = [line.split(b"\t")[3].decode("utf-8", "surrogateescape") if line.count(b"\t") == 4 else None
                   for line in log[size:-1].split(b"\n")] if len(log) > size else []
        if not _only_scope_outputs(written, scope):
            return False
        if replan_leeway.manifest_crc(fd) != snap.manifest_crc:
            return False
        current = {path: noop_stamp.file_sig(path, fd) for path in (log_path, deps_path, layout.NINJA_FILE)}
    finally:
        os.close(fd)
    meta = tuple((path, current.get(path, sig)) for path, sig in snap.meta)
    # More records, and (not knowing which outputs they are for) no more outputs: the counts only err towards
    # a recompaction, which sends the next edit's build to ninja on everything.
    total, unique = snap.deps_records if before else (0, len(set(tail.outputs)))
    records = (total + len(tail.outputs), unique)
    kept = replace(snap, meta=meta, log_prefix=replan_leeway.prefix_of(log), excluded=tuple(sorted(scope.files)),
                   deps_records=records)
    noop_stamp.write(out_dir, goals, kept, scope.producers_section)
    return True


def _only_scope_outputs(written: list[str | None], scope: Scope) -> bool:
    """Whether every output in `written` is one that nothing outside the scope makes, reads or keeps in a
    directory of its own."""
    _, snap = scope.stamp
    stamped_dirs = set(snap.dirs)
    for output in written:
        if output is None or _read_elsewhere(output, scope.owner_of, snap, scope.files) or _maker(scope.producers, snap, output) not in (None, *scope.files):
            return False
        where = output.rpartition("/")[0] or "."
        if where in stamped_dirs and where not in scope.dirs:
            return False
    return True
