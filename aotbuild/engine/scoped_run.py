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
from aotbuild.engine import noop_stamp, replan_leeway, stat_compare
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
    owner_of: dict[str, int]  # each stamped node (and missing one) -> its owner (Snapshot.owners)
    stamped_dirs: frozenset[str]
    log_before: bytes = b""  # .ninja_log before ninja ran
    deps_before: bytes = b""  # and .ninja_deps


def find(out_dir: Path, binary: str, stamp: Stamp | None, replanned: Sequence[str], packages: Iterable[str],
         goals: dict[Label, str], started: stat_compare.Started | None = None) -> Scope | None:
    """The scope for a build of `goals` after re-planning the packages `replanned` (of the workspace's
    `packages`), or None when ninja must run on everything. `started`: noop_stamp.prefetch's, for holds."""
    if stamp is None or not replanned:
        return None
    _, snap = stamp
    excluded = set(snap.excluded)
    in_scope = set(replanned) | {p for p in packages if package_file(p) in excluded}
    files = frozenset(package_file(p) for p in in_scope)
    found = noop_stamp.read_producers(out_dir)
    if found is None:
        return None
    producers, section = found
    outside = [goal for label, goal in goals.items() if label.package not in in_scope]
    # A goal outside the scope must be made by a file outside it, or ninja's decision for it could change.
    made_in_scope = [goal for i, name in enumerate(snap.owner_files) if name in files
                     for goal in producers["goals"].get(i, ())]
    if not set(outside).isdisjoint(made_in_scope):
        return None
    dirs = _package_dirs(snap.dirs, in_scope)
    if not noop_stamp.holds(out_dir, binary, outside, stamp, files, dirs, started):
        return None
    labels = [label for label in goals if label.package in in_scope]
    scope = Scope(files, dirs, labels, [goals[label] for label in labels], stamp, producers, section,
                  _owners(snap), frozenset(snap.dirs))
    try:
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        if not _self_contained(scope, fd):
            return None
        log = replan_leeway.read_bytes(noop_stamp.meta_paths(binary)[1], fd)
        deps = replan_leeway.read_bytes(noop_stamp.meta_paths(binary)[2], fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    # The deps log is the stamped one (holds compared its signature), so the stamp's counts are its own.
    if deps_log.recompacts(*snap.deps_records):
        return None
    return replace(scope, log_before=log, deps_before=deps)


def _package_dirs(stamped: Iterable[str], packages: set[str]) -> frozenset[str]:
    """The stamped directories these packages alone own: their target directories, and each package's own
    directory (aot-out/ for the root package) unless another package's stamped directories lie under it.
    Such a directory may change only if everything under it is the scope's: a link put in its place would
    otherwise hide the other package's files behind it, and removing the link (output_checks) lose them."""
    stamped = list(stamped)
    dirs = set()
    for path in stamped:
        parent, _, name = path.rpartition("/")
        if name.startswith(layout.TARGET_PREFIX) and parent in packages:
            dirs.add(path)
    for package in packages:
        own = package or "."
        prefix = f"{package}/" if package else ""
        if own in stamped and all(path in dirs or path == own or not path.startswith(prefix) for path in stamped):
            dirs.add(own)
    return frozenset(dirs)


def _owners(snap: noop_stamp.Snapshot) -> dict[str, int]:
    owner_of = dict(zip(snap.nodes, array("i", snap.owners)))
    owner_of.update(zip(snap.missing, array("i", snap.missing_owners)))
    return owner_of


def _self_contained(scope: Scope, out_fd: int) -> bool:
    """Whether ninja on the scope's files alone decides for their goals what it would decide on every file:
    their edges read nothing that another file's edge makes unless the stamp proves that edge current (its
    decision visits it), and make nothing that another file's edge makes or reads."""
    from aotbuild.ninja.nodes import NodeError, file_graph

    for name in scope.files:
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
        if not all(_ours(output, scope) for output in made):
            return False
        if any(_made_unproven(node, scope) for _, _, inputs in edges for node in inputs if node not in made):
            return False
    return True


def _read_elsewhere(node: str, scope: Scope) -> bool:
    """Whether the decision reaches this stamped node (or missing one) from outside the scope's files."""
    owner = scope.owner_of.get(node)
    return owner is not None and (owner < 0 or scope.stamp[1].owner_files[owner] not in scope.files)


def _made_unproven(node: str, scope: Scope) -> bool:
    """Whether an edge that the decision for the stamped goals does not visit, of a file outside the scope
    (or two edges), makes `node`: ninja on every file would first bring it up to date; the stamp proves
    nothing of it."""
    made_by = scope.producers["unvisited"].get(node)
    return made_by is not None and (made_by < 0 or scope.stamp[1].owner_files[made_by] not in scope.files)


def _ours(output: str, scope: Scope) -> bool:
    """Whether nothing outside the scope makes `output`, reads it, or keeps it in a directory of its own: no
    stamped node of another file, no output of another file's unvisited edge, not in a stamped directory
    outside the scope's (where outputs left to their directory are: every other visited output is stamped)."""
    if _read_elsewhere(output, scope) or _made_unproven(output, scope):
        return False
    where = output.rpartition("/")[0] or "."
    return where in scope.dirs or where not in scope.stamped_dirs


def still_holds(out_dir: Path, binary: str, scope: Scope) -> bool:
    """Right before ninja starts: whether ninja will still not recompact .ninja_deps. The checks before ninja
    (the cache pass) may have recorded deps since find; ninja decides when it loads the log."""
    try:
        deps = (out_dir / noop_stamp.meta_paths(binary)[2]).read_bytes()
    except FileNotFoundError:
        deps = b""
    except OSError:
        return False
    before = len(scope.deps_before)
    if not deps.startswith(scope.deps_before):
        return False
    tail = deps_log.scan(deps, before, None if before else 0)
    return tail is not None and not deps_log.recompacts(*_counts(scope, tail))


def _counts(scope: Scope, tail: deps_log.Scan) -> tuple[int, int]:
    """.ninja_deps's deps records and outputs with deps, from the stamp's and those of `tail`, the records
    added since find. Not knowing which outputs the added records are for, no more outputs: the counts only
    err towards a recompaction, which sends a build to ninja on everything."""
    total, unique = scope.stamp[1].deps_records if scope.deps_before else (0, len(set(tail.outputs)))
    return total + len(tail.outputs), unique


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
    except OSError:
        os.close(fd)
        return False
    try:
        if not log.startswith(scope.log_before):
            return False
        # Every edge ninja ran wrote its outputs' lines to the build log, and to the deps log only their deps:
        # the build log tells what ran, and the deps log must only have grown, by whole records.
        before = len(scope.deps_before)
        if not deps.startswith(scope.deps_before):
            return False
        tail = deps_log.scan(deps, before, None if before else 0)
        if tail is None:
            return False
        written = replan_leeway.appended_outputs(log[len(scope.log_before):])
        if written is None or not all(_ours(name.decode("utf-8", "surrogateescape"), scope) for name in written):
            return False
        if replan_leeway.manifest_crc(fd) != snap.manifest_crc:
            return False
        current = {path: noop_stamp.file_sig(path, fd) for path in (log_path, deps_path, layout.NINJA_FILE)}
    finally:
        os.close(fd)
    meta = tuple((path, current.get(path, sig)) for path, sig in snap.meta)
    kept = replace(snap, meta=meta, log_prefix=replan_leeway.prefix_of(log), excluded=tuple(sorted(scope.files)),
                   deps_records=_counts(scope, tail))
    try:
        noop_stamp.write(out_dir, goals, kept, scope.producers_section)
    except OSError:  # a full disk: no stamp, the next build runs ninja on everything
        return False
    return True
