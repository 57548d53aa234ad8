"""What a build did, per target, and the one line that sums it up: shared by the engine and every report."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aotbuild.text import plural

if TYPE_CHECKING:
    from aotbuild.engine.context import Context

NEEDS_GPU = "skipped: needs a GPU"  # a CUDA target reached by a wildcard on a machine without one, not cached
UP_TO_DATE = "up to date"


@functools.cache
def outcomes() -> tuple[str, ...]:
    """How a target's result came about, from the most to the least work done."""
    from aotbuild import rules

    return ("failed", *rules.outcomes(), UP_TO_DATE, NEEDS_GPU)


@dataclass
class BuildResult:
    outcomes: dict[str, str] = field(default_factory=dict)  # label -> one of outcomes()
    failures: dict[str, str] = field(default_factory=dict)  # label -> message (with log path)
    config_errors: list[str] = field(default_factory=list)
    ninja_rc: int = 0
    seconds: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    context: Context | None = None  # the workspace as this build saw it, for reports that follow
    noop_stamp: bool = False  # answered by the no-op stamp: ninja was not started

    @property
    def corrupt(self) -> list[str]:
        """Cache entries that failed their digest check during this build (removed and rebuilt)."""
        return sorted({name for e in self.events for name in e["corrupt"]})

    @property
    def exit_code(self) -> int:
        """2: bad BUILD input (found when planning, or by an action); 3: an artifact computes the wrong thing;
        1: any other failure."""
        if self.config_errors:
            return 2
        failed = [e for e in self.events if e["outcome"] == "failed"]
        if any(e.get("exit_code") == 3 for e in failed):
            return 3
        # An action that found a mistake in a BUILD file (an input that matches no parameter) exits as one.
        if self.failures and failed and all(e.get("in_build_file") for e in failed):
            return 2
        return 1 if self.ninja_rc or self.failures else 0


def outcome_of(events: list[dict[str, Any]]) -> tuple[str, str | None]:
    """A target's outcome from its actions' events, and its failure message."""
    if not events:
        return UP_TO_DATE, None
    failed = [e for e in events if e["outcome"] == "failed"]
    if failed:
        return "failed", f"{failed[0]['action']}: {failed[0]['message']} (log: {failed[0]['log']})"
    return min((e["outcome"] for e in events), key=outcomes().index), None


def summary_line(result: BuildResult) -> str:
    """'aotbuild: 4 targets: 2 compiled, 1 up to date, 1 not built (error in its BUILD file) in 1.50s'."""
    counts = Counter(result.outcomes.values())
    order = outcomes() if len(counts) > 1 else list(counts)  # one kind (a no-op's) needs no registry
    parts = [f"{counts[o]} {o}" for o in order if counts[o]]
    # A target whose BUILD entry is broken (built past with -k) is counted; a BUILD file unusable as a whole
    # names no targets, so it is counted as a file.
    broken_files = set(result.context.plan.broken.values()) if result.context is not None else set()
    files = sum(e in broken_files for e in result.config_errors)
    broken_targets = len(result.config_errors) - files
    if broken_targets:
        parts.append(f"{broken_targets} not built (error in {'its' if broken_targets == 1 else 'their'} BUILD file)")
    unusable = f"; {plural(files, 'BUILD file')} unusable" if files else ""
    targets = plural(len(result.outcomes) + broken_targets, "target")
    return f"aotbuild: {targets}: {', '.join(parts) or 'nothing to do'}{unusable} in {result.seconds:.2f}s"
