"""The build engine: make sure the plan is current, run ninja on the selected goals, summarize what happened."""

from __future__ import annotations

import functools
import gc
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aotbuild import layout
from aotbuild.engine import noop_memo
from aotbuild.errors import NeedsGpuError, UserError
from aotbuild.fsutil import atomic_write, write_if_changed
from aotbuild.goals import BUILD_GOAL, TEST_GOAL
from aotbuild.hashing import pretty_json
from aotbuild.planning import dist_stamps, input_stamps, toolchain
from aotbuild.planning.file_state import signature
from aotbuild.planning.plan_index import Plan, Staleness, read_plan, staleness
from aotbuild.planning.sharding import shard
from aotbuild.reports.remote_summary import check_remote_url, summarize
from aotbuild.workspace import settings
from aotbuild.workspace.discovery import WORKSPACE_FILE, current_package, find_root
from aotbuild.workspace.labels import Label
from aotbuild.workspace.selection import named_explicitly, select

NEEDS_GPU = "skipped: needs a GPU"  # a CUDA target reached by a wildcard on a machine without one, not cached
LAST_BUILD_FILE = "last-build.json"  # in the cache root, beside v1/


@functools.cache
def outcomes() -> tuple[str, ...]:
    """How a target's result came about, from the most to the least work done."""
    from aotbuild import rules

    return ("failed", *rules.outcomes(), "up to date", NEEDS_GPU)


@dataclass(frozen=True)
class BuildRequest:
    patterns: list[str]
    goal: str  # a rule kind name: BUILD_GOAL for build, TEST_GOAL for test
    jobs: int | None = None
    keep_going: bool = False
    explain: bool = False
    cache_dir: str | None = None
    remote_cache: str | None = None  # --remote-cache; None: the variable or WORKSPACE cache.remote decides
    remote_upload: bool = False
    remote_required: bool = False
    shard: tuple[int, int] | None = None  # (K, N) of --shard K/N
    workers: bool = True  # False (--no-workers): one process per action, no warm worker


@dataclass
class BuildResult:
    outcomes: dict[str, str] = field(default_factory=dict)  # label -> one of outcomes()
    failures: dict[str, str] = field(default_factory=dict)  # label -> message (with log path)
    config_errors: list[str] = field(default_factory=list)
    ninja_rc: int = 0
    seconds: float = 0.0
    events: list[dict] = field(default_factory=list)
    context: Context | None = None  # the workspace as this build saw it, for reports that follow
    # The buildable targets selected; empty where the no-op memo answered (`outcomes` names them then).
    labels: list[Label] = field(default_factory=list)

    @property
    def corrupt(self) -> list[str]:
        """Cache entries that failed their digest check during this build (removed and rebuilt)."""
        return sorted({name for e in self.events for name in e["corrupt"]})

    @property
    def exit_code(self) -> int:
        """2: bad BUILD input; 3: an artifact computes the wrong thing; 1: any other failure."""
        if self.config_errors:
            return 2
        if any(e["outcome"] == "failed" and e.get("exit_code") == 3 for e in self.events):
            return 3
        return 1 if self.ninja_rc or self.failures else 0


@dataclass(frozen=True)
class Context:
    root: Path
    out_dir: Path
    cache_dir: Path
    current_package: str | None
    plan: Plan
    replanned: bool = False  # this command re-planned (a BUILD file changed): ninja's files are new
    replanned_packages: tuple[str, ...] = ()  # the packages it re-planned, unless it re-planned everything
    memo: noop_memo.Memo | None = None  # set: `plan` is only the plan's head, and the memo has the selection
    plan_sig: list[int] | None = None  # plan.json's signature when `plan` was read or written
    early: EarlyStamp | None = None  # the no-op stamp, read as the command began (build only)


class EarlyStamp:
    """The no-op stamp, read as a build begins, and a child comparing most of its stats meanwhile
    (noop_stamp.prefetch): the build plans and selects while the child stats. End it with cancel()."""

    def __init__(self) -> None:
        self.stamp = None  # noop_stamp.read's
        self.started = None  # stat_compare.Started
        self._loaded_from: tuple[Path, list[int] | None] | None = None  # the stamp file and its signature

    def load(self, out_dir: Path) -> None:
        if self._loaded_from is None:
            noop_stamp = _noop_stamp()
            self._loaded_from = (out_dir, signature(str(out_dir / noop_stamp.STAMP_FILE)))
            self.stamp = noop_stamp.read(out_dir)
            self.started = noop_stamp.prefetch(out_dir, self.stamp)

    def current(self):  # noqa: ANN201 - noop_stamp's Stamp
        """The stamp, once the build holds the workspace lock: read again (without the child) if another
        build replaced or removed it while this one waited."""
        if self._loaded_from is not None:
            out_dir, seen = self._loaded_from
            if signature(str(out_dir / _noop_stamp().STAMP_FILE)) != seen:
                self.cancel()
                self._loaded_from = (out_dir, signature(str(out_dir / _noop_stamp().STAMP_FILE)))
                self.stamp = _noop_stamp().read(out_dir)
        return self.stamp

    def cancel(self) -> None:
        """End the child: nothing will take its answer now."""
        if self.started is not None:
            self.started.cancel()
            self.started = None


def open_workspace(cwd: Path, cache_flag: str | None, request: BuildRequest | None = None,
                   early: EarlyStamp | None = None) -> Context:
    """Find the workspace and make sure its plan is current; a no-op run reads plan.json and stats files only.
    With a `request` that a no-op memo answers (engine/noop_memo.py), not even plan.json: the Context then
    holds the plan's head and the memo, and the caller reads the plan (open_workspace again) if it needs it."""
    root = find_root(cwd)
    out_dir = root / layout.OUT_DIR
    if out_dir.is_symlink():
        raise UserError(f"{out_dir} is a symlink (to {os.readlink(out_dir)}); aotbuild writes only into an "
                        "output directory of its own, never through a link\n"
                        "  fix: `aotbuild clean` removes the link (and leaves its target alone)")
    from aotbuild.engine.foreign_links import unlink_foreign_symlinks

    for warning in unlink_foreign_symlinks(out_dir, [layout.STATE_DIR]):  # before anything is written there
        print(f"warning: {warning}", file=sys.stderr)
    if early is not None and request is not None and _stamp_usable(request):
        early.load(out_dir)
    seen = signature(str(out_dir / layout.PLAN_FILE))
    package = current_package(root, cwd)
    known = None
    key = _memo_key(request, package)
    memo = noop_memo.read(out_dir, seen, key) if key is not None else None
    if memo is not None:
        stale = staleness(memo.head, root, out_dir)
        if stale.current and not stale.moved:
            cache = settings.cache_dir(settings.environ(), cache_flag, memo.head.cache_dir, root)
            return Context(root, out_dir, cache, package, memo.head, memo=memo, early=early)
        known = (seen, stale)  # that plan.json's staleness: the same for the whole plan, not worked out again
    plan, packages = ensure_plan(root, out_dir, known)
    cache = settings.cache_dir(settings.environ(), cache_flag, plan.cache_dir, root)
    now = signature(str(out_dir / layout.PLAN_FILE))
    replanned = seen != now
    return Context(root, out_dir, cache, package, plan, replanned, packages if replanned else (), early=early,
                   plan_sig=now)


def _memo_key(request: BuildRequest | None, package: str | None) -> noop_memo.Key | None:
    """The no-op memo's key for a request it may answer: a build (no test), needing no remote."""
    if request is None or request.goal != BUILD_GOAL or request.remote_upload or request.remote_required:
        return None
    return noop_memo.key_of(request.patterns, package, request.shard, request.goal)


def ensure_plan(root: Path, out_dir: Path, known: tuple[list[int] | None, Staleness] | None = None
                ) -> tuple[Plan, tuple[str, ...]]:
    """The current plan, and the packages re-planned to make it (see replan). A no-op run reads plan.json and
    stats the BUILD files; it writes nothing unless a BUILD file's stat moved without its content changing
    (then only the index learns the new stat). `known`: a plan.json's signature and its staleness."""
    seen = signature(str(out_dir / layout.PLAN_FILE))
    plan = read_plan(out_dir)
    stale = known[1] if known is not None and known[0] == seen and plan is not None else staleness(
        plan, root, out_dir)
    if stale.current and not stale.moved:
        assert plan is not None
        return plan, ()
    return replan(root, out_dir, (seen, plan, stale))


def replan(root: Path, out_dir: Path, known: tuple[list[int] | None, Plan | None, Staleness] | None = None
           ) -> tuple[Plan, tuple[str, ...]]:
    """Re-plan what changed, under a lock: two commands planning at once would interleave their writes.
    `known`: plan.json's signature, the plan and its staleness as the caller found them before taking the lock;
    reused when plan.json has not changed since (reading a 10,000-target index again costs 40 ms).
    Returns the plan and the packages re-planned (none when nothing was, or everything)."""
    # Imported here: YAML parsing and the ninja writer cost more than a whole no-op build.
    from aotbuild.planning import plan_lock
    from aotbuild.planning.planner import update_plan, with_missing_specs

    (out_dir / layout.STATE_DIR).mkdir(parents=True, exist_ok=True)
    with plan_lock.held(out_dir / layout.STATE_DIR / "plan.lock"):
        write_toolchain(out_dir)
        if known is not None and known[0] == signature(str(out_dir / layout.PLAN_FILE)):
            _, plan, stale = known
        else:  # another command may have planned while we waited
            plan = read_plan(out_dir)
            stale = staleness(plan, root, out_dir)
        stale = with_missing_specs(out_dir, plan, stale)
        if stale.current and not stale.moved:
            assert plan is not None
            return plan, ()
        plan = update_plan(root, out_dir, plan, stale)
    from aotbuild.ninja.runner import restat

    # ninja remembers build.ninja's mtime from its own last regeneration; tell it about ours, or its
    # generator edge would plan once more.
    restat(plan.ninja, out_dir, layout.NINJA_FILE, layout.PLAN_FILE)
    return plan, () if stale.full is not None else tuple(stale.changed)


def write_toolchain(out_dir: Path) -> None:
    """Rewritten only when it changes: a new torch or compiler makes every export/compile edge dirty."""
    stamp = out_dir / layout.STATE_DIR / "toolchain-stamp.json"
    fingerprint = toolchain.cached_fingerprint(stamp, settings.environ())
    write_if_changed(out_dir / layout.TOOLCHAIN_FILE, pretty_json(fingerprint))


def _outcome(events: list[dict]) -> tuple[str, str | None]:
    if not events:
        return "up to date", None
    failed = [e for e in events if e["outcome"] == "failed"]
    if failed:
        return "failed", f"{failed[0]['action']}: {failed[0]['message']} (log: {failed[0]['log']})"
    return min((e["outcome"] for e in events), key=outcomes().index), None


def build(request: BuildRequest, cwd: Path) -> BuildResult:
    early = EarlyStamp()
    try:
        return _build(request, cwd, early)
    finally:
        early.cancel()  # its child, if nothing took its answer (a failure, a test, CUDA targets skipped)


def _build(request: BuildRequest, cwd: Path, early: EarlyStamp) -> BuildResult:
    started = time.monotonic()
    ctx = open_workspace(cwd, request.cache_dir, request, early)
    if ctx.memo is not None:
        done = _memoized_noop(ctx, request, started)
        if done is not None:
            return done
        ctx = open_workspace(cwd, request.cache_dir, None, early)  # not a no-op after all: the whole plan
    plan = ctx.plan
    selection = select(plan, request.patterns, ctx.current_package)
    labels = shard(selection.labels, *request.shard) if request.shard else selection.labels
    result = BuildResult(config_errors=selection.errors, context=ctx, labels=labels)
    if selection.errors and not request.keep_going:
        raise UserError("\n".join(selection.errors))
    from aotbuild.engine.workspace_lock import exclusive

    # One build per workspace at a time: two ninjas must not share .ninja_log/.ninja_deps or output files.
    with exclusive(ctx.out_dir / layout.STATE_DIR / "build.lock") as lock_fd:
        selected, cuda = _selected(plan, request, labels)
        goals = _goals(ctx, request, selected, cuda)
        stamp = _read_stamp(ctx, request, goals)
        if stamp is not None and not stamp[1].excluded and _noop_stamp().holds(
                ctx.out_dir, plan.ninja, goals.required, stamp, started=ctx.early.started):
            _print_noop(ctx, result, selected)
            key = _memo_key(request, ctx.current_package)
            if key is not None and not selection.errors:  # the next such build need not read plan.json
                noop_memo.remember(ctx.out_dir, ctx.plan_sig, plan, key,
                                   list(selected), list(selected.values()), sorted(cuda))
            result.seconds = time.monotonic() - started
            return result
        from aotbuild.cache.access import CacheAccess, record_root

        record_root(ctx.out_dir, ctx.cache_dir)
        access = CacheAccess.open(ctx.cache_dir, ctx.out_dir)
        if access.warning:
            print(f"warning: {access.warning}", file=sys.stderr)
        with access.lease() as lease_fd:
            _run(ctx, request, labels, goals, stamp, result, access.env(), (lock_fd, *lease_fd))
    result.seconds = time.monotonic() - started
    if access.writable:
        record_cache_use(ctx.cache_dir, result)
    return result


def _memoized_noop(ctx: Context, request: BuildRequest, started: float) -> BuildResult | None:
    """The build, where the memo's selection and the no-op stamp prove it has nothing to do; else None. Its
    result names no Label objects (result.labels is empty): a no-op has no use for them."""
    from aotbuild.engine.workspace_lock import exclusive

    memo = ctx.memo
    assert memo is not None
    with exclusive(ctx.out_dir / layout.STATE_DIR / "build.lock"):
        goals = _goals(ctx, request, dict(zip(memo.labels, memo.goals)), memo.cuda)
        stamp = _read_stamp(ctx, request, goals)
        if stamp is None or stamp[1].excluded or not _noop_stamp().holds(
                ctx.out_dir, ctx.plan.ninja, goals.required, stamp, started=ctx.early.started):
            return None
        result = BuildResult(context=ctx)
        _print_noop(ctx, result, goals.goals)
    result.seconds = time.monotonic() - started
    return result


def _print_noop(ctx: Context, result: BuildResult, labels: Iterable[str]) -> None:
    """Nothing to do, proven by stats: no cache, no checks, no ninja (engine/noop_stamp.py). What ninja prints
    when it finds nothing to do, as a no-op build always printed."""
    print(f"ninja: Entering directory `{ctx.out_dir}'\nninja: no work to do.", flush=True)
    result.outcomes.update((label, "up to date") for label in labels)


@dataclass(frozen=True)
class _Goals:
    """What a build asks ninja for, per label (str): `required` in its first pass, `optional` (CUDA targets
    a wildcard reached, on a machine without a GPU) in a second one."""

    goals: dict[str, str]
    optional: set[str]
    required: list[str]
    remote: str | None


def _selected(plan: Plan, request: BuildRequest, labels: list[Label]) -> tuple[dict[str, str], set[str]]:
    """Each label's goal, and the labels whose device is a GPU."""
    packages = plan.packages
    entries = {str(label): packages[label.package].targets[label.name] for label in labels}
    goal = request.goal
    return ({label: entry["goals"][goal] for label, entry in entries.items()},
            {label for label, entry in entries.items() if entry.get("device", "cpu").startswith("cuda")})


def _goals(ctx: Context, request: BuildRequest, goals: dict[str, str], cuda: Iterable[str]) -> _Goals:
    """The goals, after what every build brings up to date first: the toolchain and distribution stamps."""
    write_toolchain(ctx.out_dir)
    dist_stamps.refresh(ctx.out_dir)  # an upgraded distribution re-runs the exports that imported it
    # An input whose content changed (whatever its mtime) gets a fresh stamp: ninja re-runs what read it.
    input_stamps.refresh(ctx.root, ctx.out_dir, settings.environ())
    # Without a GPU, CUDA targets that a wildcard reached can only come from the cache: they run last, with
    # -k, so one that is not cached is skipped and never stops the others. Named ones fail as usual.
    cuda = set(cuda)
    named = named_explicitly(request.patterns, ctx.current_package) if cuda else set()
    optional = set() if not cuda or _host_has_gpu(ctx) else cuda - named
    remote = check_remote_url(settings.remote_url(settings.environ(), request.remote_cache, ctx.plan.remote_cache))
    if remote is None and (request.remote_upload or request.remote_required):
        flag = "--remote-upload" if request.remote_upload else "--remote-required"
        raise UserError(f"{flag} needs a remote cache\n  fix: pass --remote-cache URL, set "
                        f"{settings.REMOTE_VAR}, or add cache: {{remote: URL}} to {WORKSPACE_FILE}")
    required = [goal for label, goal in goals.items() if label not in optional]
    return _Goals(goals, optional, required, remote)


def _noop_stamp():  # noqa: ANN202 - the module, imported on first use
    from aotbuild.engine import noop_stamp

    return noop_stamp


def _stamp_usable(request: BuildRequest) -> bool:
    return request.goal == BUILD_GOAL and settings.noop_stamp_enabled(settings.environ())


def _stamp_applies(request: BuildRequest, goals: _Goals) -> bool:
    """Whether the no-op stamp may speak for this build: a build (not a test) of required goals only, stamp on."""
    return bool(goals.required) and not goals.optional and _stamp_usable(request)


def _read_stamp(ctx: Context, request: BuildRequest, goals: _Goals):  # noqa: ANN202 - noop_stamp's Stamp
    """The no-op stamp where this build may use it (_stamp_applies)."""
    if _stamp_applies(request, goals) and ctx.early is not None:
        return ctx.early.current()
    return None


def _run(ctx: Context, request: BuildRequest, labels: list[Label], wanted: _Goals, stamp,  # noqa: ANN001
         result: BuildResult, cache_env: dict[str, str], pass_fds: tuple[int, ...]) -> None:
    from aotbuild.engine import noop_stamp, output_checks
    from aotbuild.ninja.runner import is_up_to_date, run_ninja

    plan = ctx.plan
    goals, optional, required, remote = wanted.goals, wanted.optional, wanted.required, wanted.remote
    pending = None  # the no-op stamp's snapshot, taken before the checks and ninja; stamped if nothing ran
    scope = None  # ninja on the re-planned packages alone, the stamp proving the rest (engine/scoped_run.py)
    if _stamp_applies(request, wanted):
        if ctx.replanned_packages:
            from aotbuild.engine import scoped_run

            scope = scoped_run.find(ctx.out_dir, plan.ninja, stamp, ctx.replanned_packages, plan.packages,
                                    {label: goals[str(label)] for label in labels}, ctx.early.started)
        # Snapshotting costs about what the check does, twice: try only where nothing is known to have
        # changed since the last build (no stamp, or one a scoped build left: that build ran ninja), not
        # right after an edit.
        elif (stamp is None or stamp[1].excluded) and not ctx.replanned:
            dirs = noop_stamp.checked_dirs(layout.TargetPaths(label).dir for label in labels)
            pending = noop_stamp.begin(ctx.out_dir, plan.ninja, dirs, required)
    if ctx.early is not None:
        ctx.early.cancel()  # no check of the stamp follows
    if pending is None:
        noop_stamp.discard(ctx.out_dir)
    if not gc.isenabled():
        # The collector back on (cli.main turned it off) for the part that can take minutes: the cache pass may
        # make cycles (remote clients do). What the plan check made is frozen first, not to be rescanned.
        gc.freeze()
        gc.enable()
    checked = scope.labels if scope is not None else labels  # what the checks before ninja look at
    for warning in output_checks.prepare(ctx.out_dir, checked, full=request.goal == TEST_GOAL):
        print(f"warning: {warning}", file=sys.stderr)
    events_file = ctx.out_dir / layout.STATE_DIR / f"events-{os.getpid()}.jsonl"
    events_file.unlink(missing_ok=True)
    settings.remote_down_file(events_file).unlink(missing_ok=True)
    env = {settings.EVENTS_VAR: str(events_file), **cache_env,
           **settings.remote_env(remote, request.remote_upload, request.remote_required)}
    if not request.workers:
        env[settings.WORKERS_VAR] = "0"
    if settings.cache_pass_enabled(settings.environ()):
        from aotbuild.engine.cache_pass import missing_artifacts, resolve_hits

        resolve_hits(ctx.root, ctx.out_dir, plan, checked, {**os.environ, **env})  # ninja then skips those
        # A target still without its artifact after the pass is a cache miss: an export and a compile with
        # torch are coming, so the worker imports torch while the first exports start, not after.
        if request.workers and missing_artifacts(ctx.out_dir, plan, [x for x in checked if str(x) not in optional]):
            from aotbuild.workers.client import prewarm

            prewarm({**os.environ, **env})
    manifest = layout.NINJA_FILE
    if scope is not None and not scoped_run.still_holds(ctx.out_dir, plan.ninja, scope):
        scope = None  # the cache pass recorded deps enough for ninja to recompact: ninja on everything
    if scope is not None:
        required = scope.goals
        manifest = scoped_run.write_manifest(ctx.out_dir, scope)
    sys.stdout.flush()
    optional_rc = 0
    optional_log = ctx.out_dir / layout.STATE_DIR / "gpu-targets.log"
    try:
        if required:
            result.ninja_rc = run_ninja(plan.ninja, ctx.out_dir, required, jobs=request.jobs,
                                        keep_going=request.keep_going, explain=request.explain, env=env,
                                        pass_fds=pass_fds, manifest=manifest)
        optional_rc = result.ninja_rc  # not run after a failure without -k: those targets are not completed
        if optional and (request.keep_going or not result.ninja_rc):
            optional_rc = run_ninja(plan.ninja, ctx.out_dir, [goals[label] for label in sorted(optional)],
                                    jobs=request.jobs, keep_going=True, explain=request.explain, env=env,
                                    pass_fds=pass_fds, log=optional_log)
    except BaseException:  # Interrupted: no summary follows, so the events would never be read
        events_file.unlink(missing_ok=True)
        raise
    if events_file.exists():
        result.events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
        events_file.unlink()
    settings.remote_down_file(events_file).unlink(missing_ok=True)
    if pending is not None and not result.ninja_rc and not result.events:
        noop_stamp.finish(pending)
    if scope is not None and not result.ninja_rc:
        scoped_run.keep_stamp(ctx.out_dir, plan.ninja, scope)
    ran = {str(label) for label in (scope.labels if scope is not None else labels)}
    by_label: dict[str, list[dict]] = {}
    for event in result.events:
        by_label.setdefault(event["label"], []).append(event)
    for label in map(str, labels):
        events = by_label.get(label, [])
        if label in optional and any(e.get("exit_code") == NeedsGpuError.exit_code for e in events):
            result.outcomes[label] = NEEDS_GPU
            continue
        outcome, failure = _outcome(events)
        rc = optional_rc if label in optional else result.ninja_rc
        if failure is None and rc and label in ran and not is_up_to_date(plan.ninja, ctx.out_dir, goals[label]):
            # No failure of its own, yet not done: its action crashed, or ninja stopped before reaching it.
            outcome, failure = "failed", _crash_report(ctx.out_dir / goals[label]) or (
                "not completed: the build stopped before this target was done "
                "(see the errors above; -k builds everything that can be built)")
        result.outcomes[label] = outcome
        if failure:
            result.failures[label] = failure
    if optional_rc and any(label in optional for label in result.failures):
        result.ninja_rc = result.ninja_rc or optional_rc
        if optional_log.exists():  # a real failure among them: show what ninja said
            sys.stderr.write(optional_log.read_text(errors="replace"))
    if result.ninja_rc and not result.failures:
        # ninja failed before any action ran (a missing input, a broken build.ninja): say so, never stay silent.
        result.failures["(ninja)"] = f"ninja exited with code {result.ninja_rc}; see its output above"


def _host_has_gpu(ctx: Context) -> bool:
    toolchain = json.loads((ctx.out_dir / layout.TOOLCHAIN_FILE).read_text())
    return toolchain["host"]["gpu_arch"] is not None


def _crash_report(goal: Path) -> str | None:
    """An action killed by a signal reports nothing, but faulthandler leaves 'Fatal Python error' in its log."""
    for log in sorted(goal.parent.glob("*.log")):
        text = log.read_text(errors="replace")
        if "Fatal Python error" in text:
            where = [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]
            detail = f" in {where[0]}" if where else ""
            return f"{log.stem} crashed: {text.split('Fatal Python error: ')[1].splitlines()[0]}{detail} (log: {log})"
    return None


def record_cache_use(cache_dir: Path, result: BuildResult) -> None:
    """Hits and misses of this build, for `aotbuild cache stats`."""
    if not result.events:
        return
    usage = {"hits": sum(e["hits"] for e in result.events), "misses": sum(e["misses"] for e in result.events),
             "corrupt": result.corrupt, "actions": len(result.events), "remote": summarize(result.events),
             "outcomes": dict(Counter(result.outcomes.values()))}
    atomic_write(cache_dir / LAST_BUILD_FILE, pretty_json(usage))


def summary_line(result: BuildResult) -> str:
    """'aotbuild: 4 targets: 2 compiled, 1 up to date, 1 not built (error in its BUILD file) in 1.50s'.

    Targets whose BUILD entry is broken (built past with -k) count among the selected targets; a BUILD file
    unusable as a whole names no targets, so it is counted as a file."""
    from aotbuild.text import plural

    counts = Counter(result.outcomes.values())
    order = outcomes() if len(counts) > 1 else list(counts)  # one kind (a no-op's) needs no registry
    parts = [f"{counts[o]} {o}" for o in order if counts[o]]
    plan = result.context.plan if result.context is not None else None
    broken_files = set(plan.broken.values()) if plan is not None else set()
    files = sum(e in broken_files for e in result.config_errors)
    broken_targets = len(result.config_errors) - files
    if broken_targets:
        parts.append(f"{broken_targets} not built (error in {'its' if broken_targets == 1 else 'their'} BUILD file)")
    unusable = f"; {plural(files, 'BUILD file')} unusable" if files else ""
    targets = plural(len(result.outcomes) + broken_targets, "target")
    return f"aotbuild: {targets}: {', '.join(parts) or 'nothing to do'}{unusable} in {result.seconds:.2f}s"
