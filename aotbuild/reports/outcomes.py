"""What a build did, per target and with the remote cache, and the lines that sum it up: shared by every report."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aotbuild.errors import UserError
from aotbuild.text import plural

if TYPE_CHECKING:
    from aotbuild.engine.context import Context

NEEDS_GPU = "skipped: needs a GPU"  # a CUDA target reached by a wildcard on a machine without one, not cached
UP_TO_DATE = "up to date"
SCHEMES = ("http://", "https://", "s3://")
COUNTS = ("hits", "misses", "uploads", "requests", "bytes_down", "bytes_up")


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


def check_remote_url(url: str | None) -> str | None:
    """Refuse a URL no backend speaks before any action runs (the message leaves out all but the scheme)."""
    if url is not None and not url.lower().startswith(SCHEMES):
        scheme = url.split("://", 1)[0] if "://" in url else url.split(":", 1)[0]
        raise UserError(f"remote cache: unsupported URL scheme {scheme[:20]!r}\n"
                        "  fix: use http(s)://host/prefix (Bazel's HTTP cache protocol) or s3://bucket/prefix")
    return url


def summarize(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Totals over the actions that used the remote, and their warnings without repeats; None if none did."""
    reports = [e["remote"] for e in events if e.get("remote")]
    if not reports:
        return None
    total: dict[str, Any] = {k: sum(r.get(k, 0) for r in reports) for k in COUNTS}
    total["url"] = next((r["url"] for r in reports if r.get("url")), None)
    warnings = list(dict.fromkeys(w for r in reports for w in r.get("warnings", [])))
    # Once the remote is down every later action says so; the first says it best.
    down = [w for w in warnings if w.endswith("continuing without the remote cache")]
    total["warnings"] = [w for w in warnings if w not in down[1:]]
    return total


def remote_lines(summary: dict[str, Any]) -> list[str]:
    """The build's remote-cache lines: the warnings, then one line of totals."""
    out = [f"warning: {w}" for w in summary["warnings"]]
    if summary["url"]:
        out.append(f"aotbuild: remote cache {summary['url']}: {plural(summary['hits'], 'hit')}, "
                   f"{plural(summary['misses'], 'miss')}, {plural(summary['uploads'], 'upload')}; "
                   f"{plural(summary['requests'], 'request')}, "
                   f"{summary['bytes_down'] / 1e6:.1f} MB down, {summary['bytes_up'] / 1e6:.1f} MB up")
    return out
