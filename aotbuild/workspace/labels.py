"""Bazel-style labels (//pkg:name), target patterns (//pkg/..., //pkg:all, -//pkg:x) and the targets they select."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING

from aotbuild.errors import LabelError

if TYPE_CHECKING:
    from aotbuild.planning.plan_index import Plan

_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
TARGET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=,@~-]*")
_WINDOWS_PATH = re.compile(r"[A-Za-z]:[\\/]")
_WILDCARD_NAMES = ("all", "*")
_HINT = ("a valid label looks like //models/vision:mlp, //models/vision (short for //models/vision:vision) or :mlp "
         "inside a package; patterns may also use //models:all, //models/... and a leading '-' to subtract")
# Long target lists in error messages bury the actual problem.
_MAX_LISTED = 5


@dataclass(frozen=True, order=True)
class Label:
    """Exactly one target: `package` is "" for the workspace root package."""

    package: str
    name: str

    def __str__(self) -> str:
        return f"//{self.package}:{self.name}"


@dataclass(frozen=True)
class Pattern:
    """A parsed target pattern; `kind` is "target", "all" or "recursive"."""

    package: str
    kind: str
    name: str | None
    negative: bool

    def matches(self, label: Label) -> bool:
        """Whether `label` is selected by this pattern, ignoring `negative`."""
        if self.kind == "target":
            return label.package == self.package and label.name == self.name
        if self.kind == "all":
            return label.package == self.package
        # Compare whole path segments so //models/... does not pick up models2.
        return self.package in ("", label.package) or label.package.startswith(self.package + "/")

    def __str__(self) -> str:
        sign = "-" if self.negative else ""
        if self.kind == "recursive":
            return f"{sign}//{self.package}/..." if self.package else f"{sign}//..."
        return f"{sign}//{self.package}:{self.name if self.kind == 'target' else 'all'}"


def _fail(text: str, what: str, problem: str) -> LabelError:
    # repr() makes tabs/newlines visible; plain quotes keep Windows paths readable.
    quoted = repr(text) if not text.isprintable() else f"'{text}'"
    return LabelError(f"invalid {what} {quoted}: {problem}; {_HINT}")


# What can be wrong with the text of a label or pattern (its sign taken off), in order: the first found is told.
_BAD_TEXT = (
    (lambda b: any(c.isspace() for c in b), "it contains whitespace"),
    (lambda b: b.startswith("-"), "only one leading '-' is allowed"),
    (lambda b: b.startswith("~"), "it looks like a home-directory path, not a label"),
    (_WINDOWS_PATH.match, "it looks like a Windows file path, not a label"),
    (lambda b: "\\" in b, "it contains a backslash; labels separate packages with '/'"),
    (lambda b: b.startswith("/") and not b.startswith("//"),
     "it looks like an absolute file path; labels start with '//' (the workspace root)"),
    (lambda b: b.startswith("///"), "it starts with '///'; the package part must not start with '/'"),
    (lambda b: b == "//", "it names no package and no target"),
)
_BAD_SEGMENTS = {
    "": "the package path has an empty segment ('//' inside it)",
    "..": "'..' is not allowed: labels cannot name anything outside the workspace and never step up a directory; "
          "write the absolute //path instead",
    ".": "'.' segments are not allowed in a package path",
    "...": "'...' is only allowed as the last package segment",
}


def _check_package(text: str, package: str, what: str) -> None:
    if package.endswith("/"):
        raise _fail(text, what, "the package path has a trailing '/'")
    for segment in package.split("/") if package else ():
        if segment in _BAD_SEGMENTS:
            raise _fail(text, what, _BAD_SEGMENTS[segment])
        if not _SEGMENT.fullmatch(segment):
            raise _fail(text, what, f"package segment '{segment}' is invalid; segments match {_SEGMENT.pattern}")


def parse_pattern(text: str, current_package: str | None = None, what: str = "target pattern") -> Pattern:
    """Parse a target pattern; relative forms are resolved against `current_package`."""
    if not isinstance(text, str):
        raise LabelError(f"expected a {what} string, got {type(text).__name__}")
    negative = text.startswith("-")
    body = text[1:] if negative else text
    if body == "":
        raise _fail(text, what, "nothing after '-'" if text else "it is empty")
    for bad, problem in _BAD_TEXT:
        if bad(body):
            raise _fail(text, what, problem)

    if body.startswith("//"):
        rest, base = body[2:], ""
    else:
        if current_package is None:
            raise _fail(text, what, "it is relative, but the current directory is not inside a workspace package; "
                                    "use an absolute label starting with '//'")
        # A bare word could mean a target or a package; refuse to guess.
        if ":" not in body and "/" not in body and body != "...":
            raise _fail(text, what, f"it is ambiguous; write ':{body}' for a target in this package")
        rest, base = body, current_package

    pkg_text, colon, name = rest.partition(":")
    if ":" in name:
        raise _fail(text, what, "it contains more than one ':'")
    recursive = pkg_text == "..." or pkg_text.endswith("/...")
    if recursive:
        pkg_text = pkg_text[:-4] if pkg_text.endswith("/...") else ""
        if colon and name not in _WILDCARD_NAMES:
            raise _fail(text, what, "'...' can only be followed by ':all' or ':*'")
    package = "/".join(part for part in (base, pkg_text) if part)
    # Checked after joining so a bad current_package cannot yield a bad Label either.
    _check_package(text, package, what)

    if recursive:
        return Pattern(package, "recursive", None, negative)
    if colon and name in _WILDCARD_NAMES:
        return Pattern(package, "all", None, negative)
    if not colon:
        name = pkg_text.rsplit("/", 1)[-1]  # //pkg/path means //pkg/path:path
    if name == "":
        raise _fail(text, what, "the target name after ':' is empty")
    if "/" in name:
        raise _fail(text, what, "target names cannot contain '/'")
    if not TARGET_NAME.fullmatch(name):
        raise _fail(text, what, f"target name '{name}' is invalid; names match {TARGET_NAME.pattern}")
    return Pattern(package, "target", name, negative)


def parse_label(text: str, current_package: str | None = None) -> Label:
    """Parse a label naming exactly one target: no '-' and no wildcards."""
    pattern = parse_pattern(text, current_package, "label")
    if pattern.negative:
        raise _fail(text, "label", "a label cannot start with '-'; that is only for target patterns")
    if pattern.kind != "target":
        raise _fail(text, "label", "wildcards (':all', ':*', '...') are for target patterns; a label names one target")
    if pattern.name == "all":
        raise _fail(text, "label", "'all' is reserved for the ':all' wildcard, not a target name")
    assert pattern.name is not None
    return Label(pattern.package, pattern.name)


def _no_match(pattern: Pattern, known: set[Label], packages: set[str], empty: set[str]) -> LabelError:
    """Why a positive pattern selects nothing: no such package, an empty one, or no such target in it."""
    if pattern.kind == "recursive":
        return LabelError(f"no packages under '{pattern}'")
    if pattern.package in empty:
        if pattern.kind == "target":
            return LabelError(f"no target '{pattern.name}' in package '//{pattern.package}': it has no targets")
        return LabelError(f"package '//{pattern.package}' has no targets: its BUILD.aot.yaml declares none (or only "
                          "invalid ones, reported above)")
    if pattern.package not in packages:
        close = difflib.get_close_matches(pattern.package, sorted(packages), n=1)
        return LabelError(f"no package '//{pattern.package}'" + (f"; did you mean '//{close[0]}'?" if close else ""))
    names = sorted(label.name for label in known if label.package == pattern.package)
    # Likely typos first, then the rest alphabetically, so the list stays short and useful.
    close = difflib.get_close_matches(pattern.name or "", names, n=_MAX_LISTED)
    listed = (close + [n for n in names if n not in close])[:_MAX_LISTED]
    message = f"no target '{pattern.name}' in package '//{pattern.package}'; it has: {', '.join(listed)}"
    if len(names) > len(listed):
        message += f" (and {len(names) - len(listed)} more)"
    return LabelError(message)


def resolve(patterns: Sequence[str], labels: Iterable[Label], current_package: str | None = None,
            all_packages: Iterable[str] | None = None) -> list[Label]:
    """Apply `patterns` left to right over the known `labels`; return sorted unique matches. `all_packages`
    names every package, those without targets too, so that an empty one is reported as empty, not missing."""
    parsed = [parse_pattern(text, current_package) for text in patterns]
    if all(p.negative for p in parsed):
        raise LabelError("only negative patterns given: there is nothing to subtract from; "
                         "add a positive pattern first, e.g. //... -//models:big")
    known = set(labels)
    packages = {label.package for label in known}
    empty = set(all_packages or ()) - packages
    selected: set[Label] = set()
    for pattern in parsed:
        matched = {label for label in known if pattern.matches(label)}
        # Negative patterns may name nothing: subtracting an absent target is harmless.
        if not pattern.negative and not matched and (pattern.kind != "recursive" or pattern.package):
            raise _no_match(pattern, known, packages, empty)
        if pattern.negative:
            selected -= matched
        else:
            selected |= matched
    # A key, not Label's generated __lt__ (the same order): sorting 10,000 labels that way took 40 ms.
    return sorted(selected, key=attrgetter("package", "name"))


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
    last: dict[str, bool] = {}  # label -> whether the last pattern naming it adds it
    for pattern in (parse_pattern(p, current_package) for p in patterns):
        if pattern.kind == "target":
            last[str(Label(pattern.package, pattern.name))] = not pattern.negative
    return {label for label, added in last.items() if added}
