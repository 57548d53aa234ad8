"""ninja's part of a build: run it on the goals, read the actions' events, and give each target its outcome."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from aotbuild import layout
from aotbuild.errors import NeedsGpuError
from aotbuild.ninja.runner import is_up_to_date, run_ninja
from aotbuild.reports.outcomes import NEEDS_GPU, BuildResult, outcome_of
from aotbuild.workspace import settings
from aotbuild.workspace.labels import Label


@dataclass(frozen=True)
class Goals:
    """What a build asks ninja for, per label (str): `required` in its first pass, `optional` (CUDA targets
    a wildcard reached, on a machine without a GPU) in a second one."""

    goals: dict[str, str]
    optional: set[str]
    required: list[str]
    remote: str | None
    cache_only: frozenset[str] = frozenset()  # CUDA targets without a GPU or an artifact: looked up, never built


@dataclass(frozen=True)
class Run:
    """How to run ninja: its binary, its flags, and what its actions inherit."""

    binary: str
    out_dir: Path
    jobs: int | None
    keep_going: bool
    explain: bool
    env: dict[str, str]
    pass_fds: tuple[int, ...]


def events_file(out_dir: Path) -> Path:
    """Where this build's actions report (settings.EVENTS_VAR): one file per CLI process."""
    return out_dir / layout.STATE_DIR / f"events-{os.getpid()}.jsonl"


def run(how: Run, wanted: Goals, result: BuildResult) -> int:
    """ninja on the required goals, then the optional ones; fills result.ninja_rc and result.events and
    returns the optional pass's exit code."""
    events = Path(how.env[settings.EVENTS_VAR])
    sys.stdout.flush()
    optional_rc = 0
    try:
        if wanted.required:
            result.ninja_rc = run_ninja(how.binary, how.out_dir, wanted.required, jobs=how.jobs,
                                        keep_going=how.keep_going, explain=how.explain, env=how.env,
                                        pass_fds=how.pass_fds)
        optional_rc = result.ninja_rc  # not run after a failure without -k: those targets are not completed
        if wanted.optional and (how.keep_going or not result.ninja_rc):
            optional_rc = run_ninja(how.binary, how.out_dir, [wanted.goals[label] for label in sorted(wanted.optional)],
                                    jobs=how.jobs, keep_going=True, explain=how.explain, env=how.env,
                                    pass_fds=how.pass_fds, log=_optional_log(how.out_dir))
    except BaseException:  # Interrupted: no summary follows, so the events would never be read
        events.unlink(missing_ok=True)
        raise
    if events.exists():
        result.events = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
        events.unlink()
    settings.clear_remote_marks(events)
    return optional_rc


def _optional_log(out_dir: Path) -> Path:
    return out_dir / layout.STATE_DIR / "gpu-targets.log"


def settle(how: Run, wanted: Goals, labels: list[Label], result: BuildResult, optional_rc: int) -> None:
    """Each target's outcome and failure, from its events and, where it reported none, ninja's own view."""
    by_label: dict[str, list[dict]] = {}
    for event in result.events:
        by_label.setdefault(event["label"], []).append(event)
    for label in map(str, labels):
        events = by_label.get(label, [])
        if label in wanted.optional and any(e.get("exit_code") == NeedsGpuError.exit_code for e in events):
            result.outcomes[label] = NEEDS_GPU
            continue
        outcome, failure = outcome_of(events)
        rc = optional_rc if label in wanted.optional else result.ninja_rc
        goal = wanted.goals[label]
        if failure is None and rc and not _made(goal, events) and not is_up_to_date(how.binary, how.out_dir, goal):
            # No failure of its own, yet not done: its action crashed, or ninja stopped before reaching it.
            outcome, failure = "failed", _crash_report(how.out_dir / goal) or (
                "not completed: the build stopped before this target was done "
                "(see the errors above; -k builds everything that can be built)")
        result.outcomes[label] = outcome
        if failure:
            result.failures[label] = failure
    if optional_rc and any(label in wanted.optional for label in result.failures):
        result.ninja_rc = result.ninja_rc or optional_rc
        if _optional_log(how.out_dir).exists():  # a real failure among them: show what ninja said
            sys.stderr.write(_optional_log(how.out_dir).read_text(errors="replace"))
    if result.ninja_rc and not result.failures:
        # ninja failed before any action ran (a missing input, a broken build.ninja): say so, never stay silent.
        result.failures["(ninja)"] = f"ninja exited with code {result.ninja_rc}; see its output above"


def _made(goal: str, events: list[dict]) -> bool:
    """Whether the action making `goal` reported success in this build. ninja's dry run may still call the
    goal stale: a stamp another action created meanwhile (a distribution imported for the first time) is newer
    than the outputs this one kept, and only the next build settles that, with a cheap cache hit."""
    from aotbuild import rules

    kind = next((k for k in rules.kinds() if goal.endswith(f"/{k.goal}")), None)
    return kind is not None and any(e["action"] == kind.name and e["outcome"] != "failed" for e in events)


def _crash_report(goal: Path) -> str | None:
    """An action killed by a signal reports nothing, but faulthandler leaves 'Fatal Python error' in its log."""
    for log in sorted(goal.parent.glob("*.log")):
        text = log.read_text(errors="replace")
        if "Fatal Python error" in text:
            where = [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]
            detail = f" in {where[0]}" if where else ""
            return f"{log.stem} crashed: {text.split('Fatal Python error: ')[1].splitlines()[0]}{detail} (log: {log})"
    return None
