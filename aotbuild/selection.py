"""Turn command-line patterns into the targets to build, and the BUILD-file errors those patterns run into."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import LabelError
from .labels import Label, Pattern, parse_label, parse_pattern, resolve
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
    known = [parse_label(label) for label in plan.targets] + [parse_label(label) for label in plan.broken_targets]
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


def named_explicitly(patterns: list[str], current_package: str | None) -> set[str]:
    """Labels the user wrote out by name (not reached through :all or /...): failures there are never skipped."""
    named = set()
    for pattern in map(lambda p: parse_pattern(p, current_package), patterns):
        if pattern.kind == "target" and pattern.name is not None:
            label = str(Label(pattern.package, pattern.name))
            if pattern.negative:
                named.discard(label)
            else:
                named.add(label)
    return named
