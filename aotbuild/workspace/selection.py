"""Turn command-line patterns into the targets to build, and the BUILD-file errors those patterns run into."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING

from aotbuild.errors import LabelError
from aotbuild.workspace.labels import Label, Pattern, parse_label, parse_pattern, resolve

if TYPE_CHECKING:
    from aotbuild.planning.plan_index import Plan


@dataclass(frozen=True)
class Selection:
    labels: list[Label]  # buildable targets selected
    errors: list[str]  # BUILD-file errors of selected packages or targets, each naming file and line


def _touches(pattern: Pattern, package: str) -> bool:
    return pattern.matches(Label(package, pattern.name or "_"))


def select(plan: Plan, patterns: list[str], current_package: str | None) -> Selection:
    parsed = [parse_pattern(p, current_package) for p in patterns]
    known = list(plan.labels)  # checked when planned: no need to parse 10,000 labels again
    unnamed: dict[str, list[str]] = {}  # package -> errors of targets whose very name is invalid
    for text, error in plan.broken_targets.items():
        try:
            known.append(parse_label(text))
        except LabelError:
            unnamed.setdefault(text[2:].rpartition(":")[0], []).append(error)
    positive = [pat for pat in parsed if not pat.negative]
    broken_packages = [p for p in plan.broken if any(_touches(pat, p) for pat in positive)]
    # A target with an invalid name is selected by a wildcard over its package, never by naming a sibling.
    unnamed_touched = [p for p in sorted(unnamed) if any(pat.kind != "target" and _touches(pat, p) for pat in positive)]
    errors = [plan.broken[p] for p in sorted(broken_packages)] + [e for p in unnamed_touched for e in unnamed[p]]
    packages = list(plan.packages)  # with or without targets
    try:
        if all(p.kind == "recursive" and not p.package and not p.negative for p in parsed):
            # `//...`: every known target, in resolve's order, without matching 10,000 labels one by one.
            labels = sorted(known, key=attrgetter("package", "name"))
        else:
            labels = resolve(patterns, known, current_package, packages)
    except LabelError:
        if not errors:
            raise
        # The pattern names a package whose BUILD file is broken: that error is the one worth showing.
        skipped = set(broken_packages) | set(unnamed_touched)
        kept = [str(pat) for pat in positive if not any(_touches(pat, p) for p in skipped)]
        labels = resolve(kept, known, current_package, packages) if kept else []
    if plan.broken_targets:
        errors += [plan.broken_targets[str(label)] for label in labels if str(label) in plan.broken_targets]
    entries = plan.packages  # not plan.targets: building that 10,000-entry map cost more than this whole loop
    return Selection([label for label in labels if label.name in entries[label.package].targets], errors)


def named_explicitly(patterns: list[str], current_package: str | None) -> set[str]:
    """Labels the user wrote out by name (not reached through :all or /...): failures there are never skipped."""
    named = set()
    for pattern in (parse_pattern(p, current_package) for p in patterns):
        if pattern.kind == "target":
            label = str(Label(pattern.package, pattern.name))
            if pattern.negative:
                named.discard(label)
            else:
                named.add(label)
    return named
