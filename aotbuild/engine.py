"""The build engine: make sure the plan is current, run ninja on the selected goals, summarize what happened."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import layout, settings, toolchain
from .errors import UserError
from .fsutil import atomic_write, write_if_changed
from .hashing import pretty_json
from .labels import Label
from .layout import TargetPaths
from .ninja_runner import is_up_to_date, restat, run_ninja
from .plan_index import Plan, is_current, read_plan
from .remote_summary import check_remote_url, summarize
from .selection import select
from .sharding import shard
from .workspace import WORKSPACE_FILE, current_package, discover_packages, find_root

LAST_BUILD_FILE = "last-build.json"  # in the cache root, beside v1/
# How a target's result came about, from the most to the least work done.
OUTCOMES = ("failed", "compiled", "artifact-cache hit", "exported", "action-cache hit", "verified",
            "verify-cache hit", "up to date")


@dataclass(frozen=True)
class BuildRequest:
    patterns: list[str]
    goal: str  # a rule kind name: "compile" for build, "verify" for test
    jobs: int | None = None
    keep_going: bool = False
    explain: bool = False
    cache_dir: str | None = None
    remote_cache: str | None = None  # --remote-cache; None: the variable or WORKSPACE cache.remote decides
    remote_upload: bool = False
    remote_required: bool = False
    shard: tuple[int, int] | None = None  # (K, N) of --shard K/N


@dataclass
class BuildResult:
    outcomes: dict[str, str] = field(default_factory=dict)  # label -> one of OUTCOMES
    failures: dict[str, str] = field(default_factory=dict)  # label -> message (with log path)
    config_errors: list[str] = field(default_factory=list)
    ninja_rc: int = 0
    seconds: float = 0.0
    events: list[dict] = field(default_factory=list)
    context: Context | None = None  # the workspace as this build saw it, for reports that follow
    labels: list[Label] = field(default_factory=list)  # the buildable targets selected

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


def open_workspace(cwd: Path, cache_flag: str | None) -> Context:
    """Find the workspace and make sure its plan is current; a no-op run reads plan.json and stats files only."""
    root = find_root(cwd)
    out_dir = root / layout.OUT_DIR
    plan = ensure_plan(root, out_dir)
    cache = settings.cache_dir(settings.environ(), cache_flag, plan.cache_dir, root)
    return Context(root, out_dir, cache, current_package(root, cwd), plan)


def ensure_plan(root: Path, out_dir: Path) -> Plan:
    plan = read_plan(out_dir)
    # WORKSPACE.aot.yaml can change `ignore`, so it is checked before packages are discovered with it.
    if is_current(plan, root, out_dir, None):
        assert plan is not None
        build_files = [WORKSPACE_FILE] + [layout.build_file(p) for p in discover_packages(root, tuple(plan.ignore))]
        if is_current(plan, root, out_dir, build_files):
            return plan
    return replan(root, out_dir)


def replan(root: Path, out_dir: Path) -> Plan:
    # Imported here: YAML parsing and the ninja writer cost more than a whole no-op build.
    from .loading import load_workspace
    from .planner import write_plan

    write_toolchain(out_dir)
    plan = write_plan(load_workspace(root), out_dir)
    # ninja remembers build.ninja's mtime from its own last regeneration; tell it about ours, or its
    # generator edge would plan once more.
    restat(plan.ninja, out_dir, layout.NINJA_FILE, layout.PLAN_FILE)
    return plan


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
    return min((e["outcome"] for e in events), key=OUTCOMES.index), None


def build(request: BuildRequest, cwd: Path) -> BuildResult:
    started = time.monotonic()
    ctx = open_workspace(cwd, request.cache_dir)
    plan = ctx.plan
    selection = select(plan, request.patterns, ctx.current_package)
    labels = shard(selection.labels, *request.shard) if request.shard else selection.labels
    result = BuildResult(config_errors=selection.errors, context=ctx, labels=labels)
    if selection.errors and not request.keep_going:
        raise UserError("\n".join(selection.errors))
    import filelock  # here, not at the top: query and plan never need it

    # One build per workspace at a time: two ninjas must not share .ninja_log/.ninja_deps or output files.
    lock = filelock.FileLock(str(ctx.out_dir / layout.STATE_DIR / "build.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        print("aotbuild: waiting for another build in this workspace to finish", file=sys.stderr)
        lock.acquire()
    try:
        _run(ctx, request, labels, result)
    finally:
        lock.release()
    result.seconds = time.monotonic() - started
    record_cache_use(ctx.cache_dir, result)
    return result


def _run(ctx: Context, request: BuildRequest, labels: list[Label], result: BuildResult) -> None:
    plan = ctx.plan
    write_toolchain(ctx.out_dir)
    goals = {str(label): plan.targets[str(label)]["goals"][request.goal] for label in labels}
    _force_missing_artifacts(ctx, labels)
    events_file = ctx.out_dir / layout.STATE_DIR / f"events-{os.getpid()}.jsonl"
    events_file.unlink(missing_ok=True)
    settings.remote_down_file(events_file).unlink(missing_ok=True)
    if goals:
        remote = check_remote_url(settings.remote_url(settings.environ(), request.remote_cache, plan.remote_cache))
        if remote is None and (request.remote_upload or request.remote_required):
            flag = "--remote-upload" if request.remote_upload else "--remote-required"
            raise UserError(f"{flag} needs a remote cache\n  fix: pass --remote-cache URL, set "
                            f"{settings.REMOTE_VAR}, or add cache: {{remote: URL}} to {WORKSPACE_FILE}")
        env = {settings.CACHE_DIR_VAR: str(ctx.cache_dir), settings.EVENTS_VAR: str(events_file),
               **settings.remote_env(remote, request.remote_upload, request.remote_required)}
        sys.stdout.flush()
        result.ninja_rc = run_ninja(plan.ninja, ctx.out_dir, list(goals.values()), jobs=request.jobs,
                                    keep_going=request.keep_going, explain=request.explain, env=env)
    if events_file.exists():
        result.events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
        events_file.unlink()
    settings.remote_down_file(events_file).unlink(missing_ok=True)
    by_label: dict[str, list[dict]] = {}
    for event in result.events:
        by_label.setdefault(event["label"], []).append(event)
    for label in map(str, labels):
        outcome, failure = _outcome(by_label.get(label, []))
        if failure is None and result.ninja_rc and not is_up_to_date(plan.ninja, ctx.out_dir, goals[label]):
            # No failure of its own, yet not done: its action crashed, or ninja stopped before reaching it.
            outcome, failure = "failed", _crash_report(ctx.out_dir / goals[label]) or (
                "not completed: the build stopped before this target was done "
                "(see the errors above; -k builds everything that can be built)")
        result.outcomes[label] = outcome
        if failure:
            result.failures[label] = failure
    if result.ninja_rc and not result.failures:
        # ninja failed before any action ran (a missing input, a broken build.ninja): say so, never stay silent.
        result.failures["(ninja)"] = f"ninja exited with code {result.ninja_rc}; see its output above"


def _crash_report(goal: Path) -> str | None:
    """An action killed by a signal reports nothing, but faulthandler leaves 'Fatal Python error' in its log."""
    for log in sorted(goal.parent.glob("*.log")):
        text = log.read_text(errors="replace")
        if "Fatal Python error" in text:
            where = [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]
            detail = f" in {where[0]}" if where else ""
            return f"{log.stem} crashed: {text.split('Fatal Python error: ')[1].splitlines()[0]}{detail} (log: {log})"
    return None


def _force_missing_artifacts(ctx: Context, labels: list[Label]) -> None:
    """Artifacts are not ninja outputs (their names carry digests), so a deleted one would go unnoticed:
    dropping the manifest makes ninja re-run the compile, which links them back from the cache."""
    for label in labels:
        paths = TargetPaths(label)
        target_dir = ctx.out_dir / paths.dir
        manifest = ctx.out_dir / paths.manifest
        if manifest.exists() and not all(os.path.exists(target_dir / paths.alias(ext)) for ext in ("so", "pt2")):
            manifest.unlink()


def record_cache_use(cache_dir: Path, result: BuildResult) -> None:
    """Hits and misses of this build, for `aotbuild cache stats`."""
    if not result.events:
        return
    usage = {"hits": sum(e["hits"] for e in result.events), "misses": sum(e["misses"] for e in result.events),
             "corrupt": result.corrupt, "actions": len(result.events), "remote": summarize(result.events),
             "outcomes": dict(Counter(result.outcomes.values()))}
    atomic_write(cache_dir / LAST_BUILD_FILE, pretty_json(usage))


def summary_line(result: BuildResult, what: str = "targets") -> str:
    counts = Counter(result.outcomes.values())
    parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts[o]]
    errors = f", {len(result.config_errors)} with errors in BUILD files" if result.config_errors else ""
    return (f"aotbuild: {len(result.outcomes)} {what}: {', '.join(parts) or 'nothing to do'}{errors} "
            f"in {result.seconds:.2f}s")


