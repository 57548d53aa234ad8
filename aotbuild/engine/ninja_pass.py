"""ninja's part of a build: run it on the goals, read the actions' events, and give each target its outcome."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aotbuild import layout
from aotbuild.errors import NeedsGpuError
from aotbuild.ninja.runner import is_up_to_date, run_ninja
from aotbuild.reports.outcomes import NEEDS_GPU, BuildResult, outcome_of
from aotbuild.workspace import settings
from aotbuild.workspace.labels import Label


@dataclass(frozen=True)
class Goals:
    """What a build asks ninja for, per label: `required` first, then `optional` (wildcard CUDA targets, no GPU)."""

    goals: dict[str, str]
    optional: set[str]
    required: list[str]
    remote: str | None
    cache_only: frozenset[str] = frozenset()  # CUDA targets without a GPU or an artifact: looked up, never built


def run(binary: str, out_dir: Path, wanted: Goals, labels: list[Label], result: BuildResult, **ninja: Any) -> None:
    """ninja (`ninja`: run_ninja's options) on the required goals, then the optional ones; then each outcome."""
    events = Path(ninja["env"][settings.EVENTS_VAR])
    optional_log = out_dir / layout.STATE_DIR / "gpu-targets.log"
    sys.stdout.flush()
    optional_rc = 0
    try:
        if wanted.required:
            result.ninja_rc = run_ninja(binary, out_dir, wanted.required, **ninja)
        optional_rc = result.ninja_rc  # not run after a failure without -k: those targets are not completed
        if wanted.optional and (ninja["keep_going"] or not result.ninja_rc):
            optional_rc = run_ninja(binary, out_dir, [wanted.goals[label] for label in sorted(wanted.optional)],
                                    **{**ninja, "keep_going": True}, log=optional_log)
    except BaseException:  # Interrupted: no summary follows, so the events would never be read
        events.unlink(missing_ok=True)
        raise
    if events.exists():
        result.events = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
        events.unlink()
    settings.clear_remote_marks(events)
    _settle(binary, out_dir, wanted, labels, result, optional_rc, optional_log)


def _settle(binary: str, out_dir: Path, wanted: Goals, labels: list[Label], result: BuildResult, optional_rc: int,
            optional_log: Path) -> None:
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
        if failure is None and rc and not _made(goal, events) and not is_up_to_date(binary, out_dir, goal):
            # No failure of its own, yet not done: its action crashed, or ninja stopped before reaching it.
            outcome, failure = "failed", _crash_report(out_dir / goal) or (
                "not completed: the build stopped before this target was done "
                "(see the errors above; -k builds everything that can be built)")
        result.outcomes[label] = outcome
        if failure:
            result.failures[label] = failure
    if optional_rc and any(label in wanted.optional for label in result.failures):
        result.ninja_rc = result.ninja_rc or optional_rc
        if optional_log.exists():  # a real failure among them: show what ninja said
            sys.stderr.write(optional_log.read_text(errors="replace"))
    if result.ninja_rc and not result.failures:
        # ninja failed before any action ran (a missing input, a broken build.ninja): say so, never stay silent.
        result.failures["(ninja)"] = f"ninja exited with code {result.ninja_rc}; see its output above"


def _made(goal: str, events: list[dict]) -> bool:
    """Whether the action making `goal` succeeded in this build. ninja's dry run may still call it stale: a stamp
    made meanwhile (a distribution imported for the first time) is newer than its outputs, till the next build."""
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
