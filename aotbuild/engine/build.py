"""One build: the plan current, the goals of the selected targets, then the no-op stamp's answer or ninja's."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from aotbuild import layout
from aotbuild.engine import ninja_pass, noop_stamp
from aotbuild.engine.context import Context, exclusive, open_workspace, write_toolchain
from aotbuild.engine.ninja_pass import Goals
from aotbuild.errors import UserError
from aotbuild.fsutil import atomic_write
from aotbuild.goals import BUILD_GOAL, TEST_GOAL
from aotbuild.hashing import pretty_json
from aotbuild.planning import dist_stamps, input_stamps
from aotbuild.planning.ninja_files import pool_depths, write_pools
from aotbuild.rules.compile import POOL
from aotbuild.rules.export import LOCAL_POOL
from aotbuild.planning.plan_index import Plan
from aotbuild.reports.outcomes import NEEDS_GPU, UP_TO_DATE, BuildResult, check_remote_url, summarize
from aotbuild.text import plural
from aotbuild.workspace import settings
from aotbuild.workspace.discovery import WORKSPACE_FILE
from aotbuild.workspace.labels import Label, named_explicitly, select

COMPILE_POOL = POOL[0]
_SHARD = re.compile(r"([0-9]+)/([0-9]+)")
# This workspace's last build that ran anything: its use of the cache, for `cache stats` (not in the shared cache).
LAST_BUILD_FILE = f"{layout.STATE_DIR}/last-build.json"


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
    verbose: bool = False  # -v: say how the build was decided (the no-op stamp, ninja's version)
    executor: str | None = None  # --executor; None: the variable or WORKSPACE executor decides; '' turns it off
    executor_required: bool = False  # --executor-required: no local fallback after cluster faults


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4): the second of four shards (numbered from 1, as in CI matrices), for `--shard K/N`."""
    m = _SHARD.fullmatch(text.strip())
    if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UserError(f"--shard {text!r}: expected K/N with 1 <= K <= N, such as 1/4\n"
                        "  fix: give each CI job its own K and the same N")
    return int(m.group(1)), int(m.group(2))


def shard(labels: list[Label], index: int, count: int) -> list[Label]:
    """Every count-th label of the sorted selection, starting at index: balanced to one target, and the same
    on every machine that sees the same BUILD files (the selection does not depend on the cache or on timing)."""
    return sorted(labels, key=str)[index - 1::count]


def build(request: BuildRequest, cwd: Path) -> BuildResult:
    started = time.monotonic()
    ctx = open_workspace(cwd, request.cache_dir)
    selection = select(ctx.plan, request.patterns, ctx.current_package)
    labels = shard(selection.labels, *request.shard) if request.shard else selection.labels
    result = BuildResult(config_errors=selection.errors, context=ctx)
    if selection.errors and not request.keep_going:
        hint = [f"nothing was built: -k (--keep-going) builds the other {plural(len(labels), 'selected target')}"
                ] if labels else []
        raise UserError("\n".join([*selection.errors, *hint]))
    # One build per workspace at a time: two ninjas must not share .ninja_log/.ninja_deps or output files.
    with exclusive(ctx.out_dir / layout.STATE_DIR / "build.lock") as lock_fd:
        wanted = _goals(ctx, request, labels)
        # After a re-plan no stamp can hold (each records plan.json). A snapshot costs two stamp checks: a
        # build right after an edit (a stamp that failed, or a re-plan) does not stamp; the no-op after it does.
        usable = _stamp_usable(ctx, request, wanted) and not ctx.replanned
        stamp = noop_stamp.read(ctx.out_dir) if usable else None
        if noop_stamp.holds(ctx.out_dir, stamp, wanted.required):
            result.outcomes.update((str(label), NEEDS_GPU if str(label) in wanted.cache_only else UP_TO_DATE)
                                   for label in labels)
            result.noop_stamp = True
            if request.verbose:
                print("aotbuild: the no-op stamp holds: every file ninja would look at is as it was after a build "
                      "that ran nothing, so ninja was not started (`aotbuild stamp` shows what it recorded)")
        else:
            from aotbuild.cache.access import CacheAccess, record_root

            record_root(ctx.out_dir, ctx.cache_dir)
            access = CacheAccess.open(ctx.cache_dir, ctx.out_dir)
            if access.warning:
                print(f"warning: {access.warning}", file=sys.stderr)
            with access.lease() as lease_fd:
                _run(ctx, request, labels, wanted, result, usable and stamp is None, access.env(),
                     (lock_fd, *lease_fd))
            record_cache_use(ctx.out_dir, ctx.cache_dir, result)
    result.seconds = time.monotonic() - started
    return result


def _run(ctx: Context, request: BuildRequest, labels: list[Label], wanted: Goals, result: BuildResult,
         try_stamp: bool, cache_env: dict[str, str], pass_fds: tuple[int, ...]) -> None:
    """The checks, the cache pass and ninja; `try_stamp`: stamp the state if ninja runs nothing."""
    from aotbuild.engine import output_checks

    plan = ctx.plan
    (ctx.out_dir / noop_stamp.STAMP_FILE).unlink(missing_ok=True)  # no stamp outlives a build that may change things
    # CUDA targets without a GPU or an artifact: looked up in the cache, never built, no part of the stamp. A
    # build that may stamp skips them (a look-up logs their spec edges, so no no-op could ever be stamped).
    cache_only = [x for x in labels if str(x) in wanted.cache_only]
    built = [x for x in labels if str(x) not in wanted.cache_only]
    before = noop_stamp.begin(ctx.out_dir, plan, built, wanted.required, request.goal) if try_stamp else None
    for warning in output_checks.prepare(ctx.out_dir, labels, full=request.goal == TEST_GOAL):
        print(f"warning: {warning}", file=sys.stderr)
    events_file = ctx.out_dir / layout.STATE_DIR / f"events-{os.getpid()}.jsonl"  # where the actions report
    events_file.unlink(missing_ok=True)
    settings.clear_remote_marks(events_file)
    executor = settings.executor_url(settings.environ(), request.executor, plan.executor)
    if executor is not None:
        from aotbuild.executors import session

        session.check_remote(wanted.remote)
    # With an executor the remote cache carries inputs and results between this machine and the nodes.
    env = {settings.EVENTS_VAR: str(events_file), **cache_env,
           **settings.remote_env(wanted.remote, request.remote_upload or executor is not None,
                                 request.remote_required, plan.remote_verify_keys)}
    if not request.workers:
        env[settings.WORKERS_VAR] = "0"
    lookup = cache_only if before is None else []
    fetched = lookup  # without the cache pass, their exports ask the cache (and report NeedsGpuError on a miss)
    if settings.switched_on(settings.CACHE_PASS_VAR):
        _cache_pass(ctx, request, [x for x in built if str(x) not in wanted.optional], built + lookup, env)
        missed = set(missing_artifacts(ctx.out_dir, plan, lookup))
        fetched = [x for x in lookup if x not in missed]
    result.outcomes.update((str(x), NEEDS_GPU) for x in cache_only if x not in fetched)
    wanted = replace(wanted, optional=wanted.optional | {str(x) for x in fetched})
    with _executor(executor, request) as cluster:
        jobs = request.jobs if request.jobs is not None or cluster is None else cluster.slots
        # The compiles run on the cluster: as many at once as it has slots, not as this machine's memory allows.
        write_pools(ctx.out_dir, {COMPILE_POOL: max(cluster.slots, pool_depths()[COMPILE_POOL]),
                                  LOCAL_POOL[0]: (os.cpu_count() or 1) + 2} if cluster else None)
        try:
            ninja_pass.run(plan.ninja, ctx.out_dir, wanted, built + fetched, result, jobs=jobs,
                           keep_going=request.keep_going, explain=request.explain,
                           env={**env, **(cluster.env if cluster else {})}, pass_fds=pass_fds,
                           where=cluster.where if cluster else None)
        finally:
            if cluster:
                write_pools(ctx.out_dir)  # plain ninja runs compiles here
    if before is not None and not result.ninja_rc and not result.events:
        noop_stamp.finish(ctx.out_dir, before)


def _executor(url: str | None, request: BuildRequest) -> contextlib.AbstractContextManager:
    """The executor session (ninja's -j and the actions' broker), or none: Ray is imported only with one."""
    if url is None:
        return contextlib.nullcontext(None)
    from aotbuild.executors import session

    return session.opened(url, session.source_of(request.executor), request.executor_required)


def _cache_pass(ctx: Context, request: BuildRequest, required: list[Label], labels: list[Label],
                env: dict[str, str]) -> None:
    """Cache hits resolved in-process where an artifact is missing (else ninja knows best); misses warm a worker."""
    missing = missing_artifacts(ctx.out_dir, ctx.plan, labels)
    if missing:
        from aotbuild.engine.cache_hits import resolve  # torch-free, but far from free to import

        resolve(ctx.root, ctx.out_dir, ctx.plan.ninja, missing, {**os.environ, **env})
    # A target still missing is a cache miss: torch work is coming, so the worker imports torch now, not after.
    # The pass only adds artifacts: only those missing before it can be missing after.
    required_set = set(required)
    if request.workers and missing_artifacts(ctx.out_dir, ctx.plan, [x for x in missing if x in required_set]):
        from aotbuild.workers.client import prewarm

        prewarm({**os.environ, **env})


def missing_artifacts(out_dir: Path, plan: Plan, labels: list[Label]) -> list[Label]:
    """The targets of `labels` whose artifact (the build goal) is not there."""
    prefix = f"{out_dir}/"
    packages = plan.packages  # not plan.targets: building that map for 10,000 targets costs 30 ms
    return [label for label in labels
            if not os.path.exists(prefix + packages[label.package].targets[label.name]["goals"][BUILD_GOAL])]


def _goals(ctx: Context, request: BuildRequest, labels: list[Label]) -> Goals:
    """The goals, after what every build brings up to date first: the toolchain and the stamps."""
    write_toolchain(ctx.out_dir)
    dist_stamps.refresh(ctx.out_dir)  # an upgraded distribution re-runs the exports that imported it
    # An input whose content changed (whatever its mtime) gets a fresh stamp: ninja re-runs what read it.
    input_stamps.refresh(ctx.root, ctx.out_dir, settings.environ())
    packages = ctx.plan.packages
    entries = {str(label): packages[label.package].targets[label.name] for label in labels}
    goals = {label: entry["goals"][request.goal] for label, entry in entries.items()}
    cuda = {label for label, entry in entries.items() if entry.get("device", "cpu").startswith("cuda")}
    # Without a GPU, CUDA targets that a wildcard reached can only come from the cache: they run last, with
    # -k, so one that is not cached is skipped and never stops the others. Named ones fail as usual.
    optional: set[str] = set()
    toolchain = json.loads((ctx.out_dir / layout.TOOLCHAIN_FILE).read_text())
    if cuda and toolchain["host"]["gpu_arch"] is None:
        optional = cuda - named_explicitly(request.patterns, ctx.current_package)
    # Those not in aot-out/ only come from the cache: no action runs for them (see _run). Unless a cluster may
    # have their GPU: with an executor and a declared GPU arch they run, and are skipped if no node has it.
    to_cluster = toolchain["cuda"]["gpu_arch"] is not None and settings.executor_url(
        settings.environ(), request.executor, ctx.plan.executor) is not None
    cache_only = set() if to_cluster else \
        {str(x) for x in missing_artifacts(ctx.out_dir, ctx.plan, [x for x in labels if str(x) in optional])}
    optional -= cache_only
    remote = check_remote_url(settings.remote_url(settings.environ(), request.remote_cache, ctx.plan.remote_cache))
    if remote is None and (request.remote_upload or request.remote_required):
        flag = "--remote-upload" if request.remote_upload else "--remote-required"
        raise UserError(f"{flag} needs a remote cache\n  fix: pass --remote-cache URL, set "
                        f"{settings.REMOTE_VAR}, or add cache: {{remote: URL}} to {WORKSPACE_FILE}")
    required = [goal for label, goal in goals.items() if label not in optional and label not in cache_only]
    return Goals(goals, optional, required, remote, frozenset(cache_only))


def _stamp_usable(ctx: Context, request: BuildRequest, wanted: Goals) -> bool:
    """Whether the no-op stamp may answer, or be written by, this build (--explain always asks ninja)."""
    from aotbuild.ninja import logs

    refused = logs.refusal(ctx.plan.ninja, ctx.out_dir / layout.NINJA_BUILDDIR)
    if refused is not None and (request.verbose or request.explain):
        print(f"aotbuild: {refused}", file=sys.stderr)
    return (refused is None and request.goal == BUILD_GOAL and not request.explain and bool(wanted.required)
            and not wanted.optional and settings.switched_on(settings.NOOP_STAMP_VAR))


def record_cache_use(out_dir: Path, cache_dir: Path, result: BuildResult) -> None:
    """Hits and misses of this build, for `aotbuild cache stats`."""
    if not result.events:
        return
    usage = {"hits": sum(e["hits"] for e in result.events), "misses": sum(e["misses"] for e in result.events),
             "corrupt": result.corrupt, "actions": len(result.events), "remote": summarize(result.events),
             "outcomes": dict(Counter(result.outcomes.values())), "cache": str(cache_dir)}
    atomic_write(out_dir / LAST_BUILD_FILE, pretty_json(usage))


def last_build(out_dir: Path, cache_dir: Path) -> dict | None:
    """What record_cache_use wrote for this workspace, if its last build used the cache at `cache_dir`."""
    path = out_dir / LAST_BUILD_FILE
    usage = json.loads(path.read_text()) if path.exists() else None
    return usage if usage is not None and usage.get("cache") == str(cache_dir) else None

