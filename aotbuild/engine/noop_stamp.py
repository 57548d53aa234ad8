"""The no-op stamp: proof, from stats alone, that ninja would run nothing for the goals asked, so a no-op build
need not start ninja (which parses every ninja file of the workspace) nor run the checks before it.

A stamp is a snapshot of everything ninja's decision reads, taken by a build whose ninja then ran nothing:
  - "meta" files, whose content ninja reads (the ninja binary, build.ninja and its subninjas, .ninja_log and
    .ninja_deps): their mtime, ctime, size and inode. ctime moves on any write, and nobody can set it;
  - every file node ninja's decision for the goals reads, and every dependency recorded in .ninja_deps: mtime
    or missing, as ninja sees them (its decision compares nothing else of a node). That is what the goals
    depend on, less the outputs that only restat edges make and nothing reads, whose existence their
    directory's ctime proves (take/_decisive);
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

Snapshotting costs a stat per node, twice, so the build (engine/build.py) tries it only where nothing is known
to have changed: no stamp was there (the last build ran ninja) and this command did not re-plan. A build right
after an edit pays nothing for the stamp; the no-op build after it stamps, and the ones after that skip ninja.
"""

from __future__ import annotations

import marshal
import os
import stat
import time
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from aotbuild import __version__, layout
from aotbuild.engine import replan_leeway, stat_compare

STAMP_FILE = f"{layout.STATE_DIR}/noop-stamp"
# Which nodes each ninja file names, keyed by the file's signature: a cache that spares parsing every ninja
# file (16 MB at 10,000 targets) for each new stamp, never a proof. Kept when the stamp is removed.
NODES_FILE = f"{layout.STATE_DIR}/noop-nodes"
FORMAT = 7
# A directory changed this recently may change again within the same tick of the filesystem's clock and keep
# its ctime: such a snapshot is not stamped (the next no-op build stamps). Clock ticks are 1-10 ms.
RACY_NS = 50_000_000
COARSE_RACY_NS = 2_000_000_000

Sig = tuple[int, int, int, int]  # mtime_ns, ctime_ns, size, inode


@dataclass(frozen=True)
class Snapshot:
    """The state one build's ninja ran on: the paths to check are split into those that exist (checked by
    mtime, or ctime for directories) and those that do not (checked by existence, without an exception each)."""

    meta: tuple[tuple[str, Sig | None], ...]  # path (absolute, or relative to aot-out/) -> its signature
    nodes: tuple[str, ...]  # the nodes of every ninja file, then the recorded deps, that exist
    mtimes: bytes  # array('q') of their mtimes
    dirs: tuple[str, ...]  # relative to aot-out/ ("." for itself), that exist
    dir_ctimes: bytes  # array('q') of their ctimes
    missing: tuple[str, ...]  # nodes, deps and dirs that do not exist
    log_prefix: tuple[int, int] = (0, 0)  # .ninja_log's size and crc32 (engine/replan_leeway.py)
    manifest_crc: int = 0  # build.ninja's crc32: a re-plan touches it (engine/replan_leeway.py)
    # The generator edge's outputs and inputs, whose mtimes a re-plan may move (empty: no leeway).
    generator: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    # Which ninja file alone the decision reads each node (and each missing one) through: array('i') of
    # indexes into owner_files, -1 for a node shared, read by deps, or reached from another file's edges.
    # A build after re-planning some packages lets their own nodes move (engine/scoped_run.py).
    owners: bytes = b""
    missing_owners: bytes = b""
    owner_files: tuple[str, ...] = ()
    # Ninja files whose nodes this stamp no longer proves: a scoped build ran ninja on them since.
    excluded: tuple[str, ...] = ()
    deps_records: tuple[int, int] = (0, 0)  # .ninja_deps's deps records, and the outputs they are for


# Kept beside the stamp for scoped builds (engine/scoped_run.py), as indexes into Snapshot.owner_files:
# - "unvisited": the outputs of the edges ninja's decision for the stamped goals does not visit -> the file
#   making each (-1: more than one does). Those of visited edges are stamped nodes, or in stamped directories.
# - "goals": each file -> the stamped goals it makes.
Producers = dict[str, dict]
# _decisive's answer, and the node lists it was given.
Decided = tuple["NodeLists", object]
# One manifest as read: its signature then, its edges (nodes.FileEdge) and its rules (name -> nodes.RESTAT|DEPS).
Manifest = tuple[Sig, tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...], dict[str, int]]


@dataclass(frozen=True)
class NodeLists:
    """What each ninja file and the deps log name, with the signature each had when read."""

    manifests: dict[str, Manifest]
    deps: tuple[Sig | None, tuple[str, ...], tuple[int, int]]  # signature, recorded deps, nodes.read_deps_log


@dataclass(frozen=True)
class Pending:
    """A snapshot taken before a build's checks and ninja, to be stamped if nothing changed by the end."""

    out_dir: Path
    binary: str
    dirs: tuple[str, ...]
    goals: tuple[str, ...]
    snapshot: Snapshot
    lists: NodeLists
    decided: Decided | None


def file_sig(path: str, out_fd: int) -> Sig | None:
    try:
        st = os.stat(path, dir_fd=out_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _split(paths: Iterable[str], out_fd: int, field: str, missing: list[str]) -> tuple[list[str], bytes]:
    """(the paths that exist, array('q') of their `field`); the others are appended to `missing`. Errors other
    than a missing file (a permission, a time beyond 64 bits) raise: the caller then proves nothing."""
    stat = os.stat
    found: list[str] = []
    values = array("q")
    for path in paths:
        try:
            values.append(getattr(stat(path, dir_fd=out_fd), field))
        except (FileNotFoundError, NotADirectoryError):
            missing.append(path)
            continue
        found.append(path)
    return found, values.tobytes()


def meta_paths(binary: str) -> list[str]:
    builddir = layout.NINJA_BUILDDIR
    return [binary, f"{builddir}/.ninja_log", f"{builddir}/.ninja_deps"]


def opener(dir_fd: int):  # noqa: ANN202 - open()'s opener protocol
    return lambda path, flags: os.open(path, flags, dir_fd=dir_fd)


def take(out_dir: Path, binary: str, dirs: Sequence[str], known: NodeLists | None = None,
         goals: Sequence[str] | None = None, decided: Decided | None = None
         ) -> tuple[Snapshot, NodeLists, Producers, Decided | None] | None:
    """Snapshot the state ninja would see now, the node lists it came from, who makes each output and what
    _decisive made of the lists (only with `goals`); None where a ninja file or the deps log cannot be read
    here. `decided`: an earlier take's, reused if the lists are the same (begin and finish of one build). Lists in `known` whose file's signature did not change are not re-read.
    With `goals`, only the nodes ninja's decision for them reads (see _decisive); else every node."""
    from aotbuild.ninja import logs
    from aotbuild.ninja.nodes import NodeError, file_graph, read_deps_log

    started = time.time_ns()
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        meta: list[tuple[str, Sig | None]] = [(p, file_sig(p, fd)) for p in meta_paths(binary)]
        if meta[0][1] is None:
            return None
        manifests: dict[str, Manifest] = {}
        pending = [layout.NINJA_FILE]
        while pending:
            name = pending.pop(0)
            sig = file_sig(name, fd)
            if sig is None or name in manifests:
                return None  # ninja fails on a missing (or twice included) ninja file: nothing to prove
            meta.append((name, sig))
            cached = known.manifests.get(name) if known is not None else None
            if cached is not None and cached[0] == sig and name != layout.NINJA_FILE:
                manifests[name] = cached
                continue
            with open(name, encoding="utf-8", errors="surrogateescape", opener=opener(fd)) as f:
                edges, rules, includes = file_graph(f.read(), name)
            manifests[name] = (sig, tuple(edges), rules)
            pending.extend(includes)
        deps_sig = meta[2][1]
        if known is not None and deps_sig is not None and known.deps[0] == deps_sig:
            deps = known.deps
        else:
            recorded, counts = read_deps_log(out_dir / meta[2][0])
            deps = (deps_sig, tuple(recorded), counts)
        missing: list[str] = []
        # Recorded dependencies (workspace sources) first: what is edited most is compared first.
        owner_of: dict[str, int] = {}
        producers: Producers = {}
        if goals is None:
            everything = list(deps[1]) + [node for _, edges, _ in manifests.values()
                                          for outputs, _, inputs in edges for node in (*outputs, *inputs)]
            generator = ((), ())
        else:
            lists = NodeLists(manifests, deps)
            if decided is None or decided[0] != lists:
                decided = (lists, _decisive(manifests, deps[1], goals, frozenset(dirs)))
            decisive = decided[1]
            if decisive is None:
                return None
            everything, left_out, generator, owner_of, producers = decisive
            everything = list(everything)
            # A link's target can vanish without its directory changing: links are stat-ed (followed, as
            # ninja does) like any node.
            everything += [node for node in left_out if _is_link(node, fd)]
        nodes, mtimes = _split(dict.fromkeys(everything), fd, "st_mtime_ns", missing)
        found_dirs, ctimes = _split(dirs, fd, "st_ctime_ns", missing)
        if found_dirs:
            values = array("q", ctimes)
            # A filesystem keeping whole seconds (ext4 with small inodes, FAT, some network mounts) could hide
            # a change made in the same second as the stamp: wait two of its seconds, not one clock tick.
            racy = RACY_NS if any(value % 1_000_000_000 for value in values) else COARSE_RACY_NS
            if max(values) >= started - racy:
                return None
        log = replan_leeway.prefix_of(replan_leeway.read_bytes(meta[1][0], fd))
        owners = array("i", [owner_of.get(node, -1) for node in nodes]).tobytes()
        missing_owners = array("i", [owner_of.get(node, -1) for node in missing]).tobytes()
        return (Snapshot(tuple(meta), tuple(nodes), mtimes, tuple(found_dirs), ctimes, tuple(missing), log,
                         replan_leeway.manifest_crc(fd), generator, owners, missing_owners, tuple(manifests),
                         (), deps[2]),
                NodeLists(manifests, deps), producers, decided)
    except (NodeError, logs.FormatError, OSError, ValueError, OverflowError, UnicodeError):
        return None
    finally:
        os.close(fd)


def _is_link(path: str, out_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path, dir_fd=out_fd).st_mode)
    except FileNotFoundError:
        return False


def _decisive(manifests: dict[str, Manifest], deps: Sequence[str], goals: Sequence[str], dirs: frozenset[str]
              ) -> tuple[list[str], list[str], tuple[tuple[str, ...], tuple[str, ...]], dict[str, int], Producers] | None:
    """The nodes whose mtime or existence ninja's decision for `goals` reads, in the order to compare them;
    the outputs left to their directory's ctime among those ninja visits; the generator edge's (outputs,
    inputs) where a re-plan may move them (replan_leeway.py; else empty); the owners of nodes (owners_of);
    and who makes each output (Producers). None if a goal is no file made by a real edge.

    ninja visits only what the goals depend on (and the manifest itself, which it first checks for a
    rebuild): the edges making them, those edges' inputs, and so on down, with each output's recorded deps.
    Of what it visits, a node left out here is one whose state is already proven another way: an output of a
    restat edge that no visited edge reads, in a directory whose ctime the stamp checks. ninja reads nothing
    of such a node but whether it exists (a restat edge's outputs are compared through the mtime in its log,
    which the stamp checks whole), and a file appearing, vanishing or being renamed changes its directory's
    ctime. Per target that leaves its spec files and graph.json to stat, not its outputs: about half the
    stats of a no-op build."""
    from aotbuild.ninja.nodes import DEPS, RESTAT

    edges: list[tuple[tuple[str, ...], str, tuple[str, ...]]] = []
    edge_files: list[int] = []  # the index in `manifests` of each edge's ninja file
    flags: dict[str, int] = {}
    producer: dict[str, int] = {}
    for file_index, (_, file_edges, rules) in enumerate(manifests.values()):
        for rule, value in rules.items():
            # Declared twice: restat only if both say so, deps if either does.
            flags[rule] = (flags[rule] & value & RESTAT) | ((flags[rule] | value) & DEPS) if rule in flags else value
        for edge in file_edges:
            for output in edge[0]:
                producer[output] = -1 if output in producer else len(edges)  # -1: made twice, assume nothing
            edges.append(edge)
            edge_files.append(file_index)
    if any(producer.get(goal, -1) < 0 or edges[producer[goal]][1] == "phony" for goal in goals):
        return None
    inputs = set(deps)
    visited: set[int] = set()
    pending = [*goals, layout.NINJA_FILE, *deps]
    while pending:
        index = producer.get(pending.pop())
        if index is None or index < 0 or index in visited:
            continue
        visited.add(index)
        inputs.update(edges[index][2])
        pending.extend(edges[index][2])

    def proven_by_its_directory(node: str) -> bool:
        index = producer[node]
        if node in inputs or index < 0 or (node.rpartition("/")[0] or ".") not in dirs:
            return False
        rule = flags.get(edges[index][1], 0)
        # A deps edge's first output is read for its mtime too (ninja's "stored deps info out of date").
        return bool(rule & RESTAT) and not (rule & DEPS and edges[index][0][0] == node)

    ordered = dict.fromkeys(deps)
    left_out: list[str] = []
    read_by_others: set[str] = set(deps)
    generator_index = producer.get(layout.NINJA_FILE, -1)
    for index in sorted(visited):
        outputs, _, edge_inputs = edges[index]
        ordered.update(dict.fromkeys(edge_inputs))
        for node in outputs:
            if proven_by_its_directory(node):
                left_out.append(node)
            else:
                ordered[node] = None
        if index != generator_index:
            read_by_others.update(edge_inputs)
    generator: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    if generator_index >= 0 and flags.get(edges[generator_index][1], 0) == RESTAT:
        outputs, _, edge_inputs = edges[generator_index]
        if read_by_others.isdisjoint(outputs) and read_by_others.isdisjoint(edge_inputs):
            generator = (outputs, edge_inputs)
    owner_of = owners_of(edges, edge_files, producer, visited, deps)
    made_goals: dict[int, list[str]] = {}
    for goal in goals:
        made_goals.setdefault(edge_files[producer[goal]], []).append(goal)
    producers = {"unvisited": {node: -1 if index < 0 else edge_files[index] for node, index in producer.items()
                               if index < 0 or index not in visited},
                 "goals": {file: tuple(made) for file, made in made_goals.items()}}
    return list(ordered), left_out, generator, owner_of, producers


def owners_of(edges: Sequence[tuple[tuple[str, ...], str, tuple[str, ...]]], edge_files: Sequence[int],
              producer: dict[str, int], visited: set[int], deps: Sequence[str]) -> dict[str, int]:
    """node -> the index of the one ninja file whose visited edges alone name it, for the nodes of the files
    whose outputs no visited edge of another file reads; a node named by several files, or recorded in
    .ninja_deps, has none. Such a node can move without changing ninja's decision for a goal outside its
    file: no edge visited for that goal reads it, or anything made from it."""
    named: dict[str, int] = {}
    read_across: set[int] = set()
    for index in visited:
        file = edge_files[index]
        outputs, _, inputs = edges[index]
        for node in (*outputs, *inputs):
            named[node] = file if named.get(node, file) == file else -1
        for node in inputs:
            made_by = producer.get(node)
            if made_by is not None and (made_by < 0 or edge_files[made_by] != file):
                read_across.add(edge_files[made_by] if made_by >= 0 else -1)
    if -1 in read_across:
        return {}  # an output made twice: ninja refuses such a manifest; prove nothing per file
    for node in deps:
        named[node] = -1
    return {node: file for node, file in named.items() if file >= 0 and file not in read_across}


def _dump(value: object) -> bytes:
    """marshal (the fastest reader of 100,000 strings) and a CRC, which tells a file torn by a crash (they are
    written without fsync) from a whole one. Both are aotbuild's own files in aot-out/."""
    payload = marshal.dumps((FORMAT, __version__, value))
    return payload + zlib.crc32(payload).to_bytes(4, "little")


def _loads(data: bytes) -> object | None:
    payload = data[:-4]
    if len(data) < 4 or zlib.crc32(payload).to_bytes(4, "little") != data[-4:]:
        return None
    try:
        fmt, version, value = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    return value if (fmt, version) == (FORMAT, __version__) else None


def _load(path: Path) -> object | None:
    try:
        with open(path, "rb") as f:
            return _loads(f.read())
    except OSError:
        return None


def _sections(out_dir: Path, both: bool = True) -> tuple[bytes, bytes] | None:
    """The stamp file: its goals and snapshot, then who makes what (read by scoped builds alone, so a no-op
    build reads the first section only). None for a file of another shape (an older format, damage)."""
    try:
        with open(out_dir / STAMP_FILE, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= os.fstat(f.fileno()).st_size - 8:
                return None
            first = f.read(size)
            return first, f.read() if both else b""
    except OSError:
        return None


def write(out_dir: Path, goals: Iterable[str], snap: Snapshot, producers: Producers | bytes) -> None:
    """Stamp; `producers` may be the section read_producers read (a scoped build keeps it as it was)."""
    from aotbuild.fsutil import replace_unsynced

    first = _dump((sorted(goals), tuple(getattr(snap, f.name) for f in fields(Snapshot))))
    second = producers if isinstance(producers, bytes) else _dump(producers)
    replace_unsynced(out_dir / STAMP_FILE, len(first).to_bytes(8, "little") + first + second)


def read(out_dir: Path) -> tuple[frozenset[str], Snapshot] | None:
    """The goals and snapshot of the stamp; None when there is none, or it is damaged or of another aotbuild."""
    sections = _sections(out_dir, both=False)
    try:
        goals, values = _loads(sections[0])  # type: ignore[index, misc]
        return frozenset(goals), Snapshot(*values)
    except (TypeError, ValueError):
        return None


def read_producers(out_dir: Path) -> tuple[Producers, bytes] | None:
    """Who makes what (Producers), as the stamp recorded it, and the section of the file it came from."""
    sections = _sections(out_dir)
    found = _loads(sections[1]) if sections is not None else None
    return (found, sections[1]) if isinstance(found, dict) and sections is not None else None


def prefetch(out_dir: Path, stamp: tuple[frozenset[str], Snapshot] | None) -> stat_compare.Started | None:
    """Start comparing most of the stamp's nodes and directories in a child now, while the build plans and
    selects (stat_compare.start); holds(..., started) takes what it found. None: holds stats them all."""
    if stamp is None:
        return None
    snap = stamp[1]
    # Before it checks the stamp, a build writes in aotbuild's state directory, and only there (a re-plan, the
    # toolchain and distribution stamps): those nodes holds stats itself.
    own = f"{layout.STATE_DIR}/"
    return stat_compare.start([stat_compare.Check(snap.nodes, "st_mtime_ns", snap.mtimes),
                               stat_compare.Check(snap.dirs, "st_ctime_ns", snap.dir_ctimes)], str(out_dir),
                              fresh=lambda path: path.startswith(own))


def holds(out_dir: Path, binary: str, goals: Iterable[str], stamp: tuple[frozenset[str], Snapshot] | None,
          scope_files: frozenset[str] = frozenset(), scope_dirs: frozenset[str] = frozenset(),
          started: stat_compare.Started | None = None) -> bool:
    """Whether `stamp` proves that ninja would run nothing for `goals` now: same binary, goals among the
    stamped ones, and every file as it was (cheap checks first).

    With `scope_files`, ninja files re-planned since (engine/scoped_run.py): those files, the nodes that only
    they name (Snapshot.owners) and the directories `scope_dirs` may have changed too. It then proves nothing
    of the goals those files make: the caller runs ninja on them. `started`: prefetch()'s child, for this
    stamp: the stats of what it compared are then the ones it took (a few milliseconds earlier)."""
    if stamp is None:
        return False
    stamped_goals, snap = stamp
    if not stamped_goals.issuperset(goals) or not snap.meta or snap.meta[0][0] != binary:
        return False
    if not scope_files.issuperset(snap.excluded) or len(snap.owners) != 4 * len(snap.nodes) or len(
            snap.missing_owners) != 4 * len(snap.missing):
        return False
    try:
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        log_path = meta_paths(binary)[1]
        moved = [path for path, sig in snap.meta if path not in scope_files and file_sig(path, fd) != sig]
        if moved and (not snap.generator[0] or not set(moved) <= {log_path, layout.NINJA_FILE}):
            return False
        if layout.NINJA_FILE in moved and replan_leeway.manifest_crc(fd) != snap.manifest_crc:
            return False  # not only touched by a re-plan: rewritten
        # A re-plan since the stamp may have moved the generator edge's files and appended its log lines.
        outputs, inputs = snap.generator
        generator = frozenset((*outputs, *inputs))
        scoped = {i for i, name in enumerate(snap.owner_files) if name in scope_files}
        owners = array("i", snap.owners)
        checks = [stat_compare.Check(snap.nodes, "st_mtime_ns", snap.mtimes,
                                     lambda i: owners[i] in scoped or snap.nodes[i] in generator),
                  stat_compare.Check(snap.dirs, "st_ctime_ns", snap.dir_ctimes,
                                     (lambda i: snap.dirs[i] in scope_dirs) if scope_dirs else None)]
        nodes = stat_compare.same(checks, fd, started)
        if nodes is False:
            return False
        if moved or nodes is None:
            log = replan_leeway.read_bytes(log_path, fd)
            if log_path in moved and not replan_leeway.only_generator_lines_appended(log, snap.log_prefix,
                                                                                      outputs):
                return False
            if not replan_leeway.generator_current(log, outputs, inputs, fd):
                return False
        # A path that was missing must still be: a cheap existence check (access() raises nothing).
        return not any(os.access(path, os.F_OK, dir_fd=fd) and owner not in scoped
                       for path, owner in zip(snap.missing, array("i", snap.missing_owners)))
    except (OSError, ValueError, OverflowError):
        return False
    finally:
        os.close(fd)


def discard(out_dir: Path) -> None:
    """Before any ninja run: no stamp outlives a build that may change something."""
    try:
        os.unlink(out_dir / STAMP_FILE)
    except FileNotFoundError:
        pass


def begin(out_dir: Path, binary: str, dirs: Sequence[str], goals: Sequence[str]) -> Pending | None:
    """Before the checks and ninja of a build for `goals` that cannot skip them: remove the stamp (a build that
    fails or is interrupted leaves none behind) and snapshot the state; None when it cannot be known."""
    discard(out_dir)
    found = _load(out_dir / NODES_FILE)
    known = NodeLists(*found) if isinstance(found, tuple) and len(found) == 2 else None  # type: ignore[arg-type]
    taken = take(out_dir, binary, dirs, known, goals)
    if taken is None:
        return None
    snapshot, lists, _, decided = taken
    if known is None or lists != known:
        from aotbuild.fsutil import replace_unsynced

        replace_unsynced(out_dir / NODES_FILE, _dump((lists.manifests, lists.deps)))
    return Pending(out_dir, binary, tuple(dirs), tuple(goals), snapshot, lists, decided)


def finish(pending: Pending) -> bool:
    """After ninja exited 0 and no action ran: stamp the snapshot if the state is still exactly the one taken
    before (then nothing changed in between, so ninja ran nothing on it). Returns whether it stamped."""
    taken = take(pending.out_dir, pending.binary, pending.dirs, pending.lists, pending.goals, pending.decided)
    if taken is None or taken[0] != pending.snapshot:
        return False
    write(pending.out_dir, pending.goals, pending.snapshot, taken[2])
    return True


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
