"""Turn command-line patterns into the targets to build, and the BUILD-file errors those patterns run into."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LabelError
from .labels import Label, Pattern, parse_pattern, resolve
from .plan_index import Plan


@dataclass(frozen=True)
class Selection:
    labels: list[Label]  # buildable targets selected
    errors: list[str]  # BUILD-file errors of selected packages or targets, each naming file and line


def _touches(pattern: Pattern, package: str) -> bool:
    return pattern.matches(Label(package, pattern.name or "_"))


def select(plan: Plan, patterns: list[str], current_package: str | None) -> Selection:
    parsed = [parse_pattern(p, current_package) for p in patterns]
    broken_packages = [p for p in plan.broken if any(_touches(pat, p) for pat in parsed if not pat.negative)]
    errors = [plan.broken[p] for p in sorted(broken_packages)]
    known = plan.labels + plan.broken_labels  # checked when planned: no need to parse 10,000 labels again
    try:
        labels = resolve(patterns, known, current_package)
    except LabelError:
        if not errors:
            raise
        # The pattern names a package whose BUILD file is broken: that error is the one worth showing.
        positive = [pat for pat in parsed if not pat.negative and not any(_touches(pat, p) for p in broken_packages)]
        labels = resolve([str(p) for p in positive], known, current_package) if positive else []
    errors += [plan.broken_targets[str(label)] for label in labels if str(label) in plan.broken_targets]
    return Selection([label for label in labels if str(label) in plan.targets], errors)
