"""Rules: each kind of action, declared as data once as `KIND` in rules/<kind>.py; this derives its ninja rule."""

from __future__ import annotations

import functools
import graphlib
import importlib
import pkgutil
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aotbuild import layout
from aotbuild.goals import BUILD_GOAL, TEST_GOAL  # noqa: F401 - the registry's names for them
from aotbuild.layout import TargetPaths
from aotbuild.workspace.labels import Label

if TYPE_CHECKING:
    from aotbuild.ninja.graph import Edge, Rule
    from aotbuild.workspace.schema import Target

# The tiny client every action's ninja command runs: it has a warm worker run `python -m <module>`.
CLIENT = Path(layout.__file__).with_name("workers") / "client.py"


@dataclass(frozen=True)
class CacheRef:
    """A field of an output file that names a cache entry: gc keeps the entries a workspace last built from."""

    file: str
    field: str
    store: str  # "ac" or "cas"


@dataclass(frozen=True)
class Kind:
    """One kind of action. File names are in the target directory (aot-out/<pkg>/@<name>/), except those
    under aot-out/.aotbuild/ (layout.STATE_DIR), which are aotbuild's own (the toolchain)."""

    name: str  # runs as `python -m aotbuild.actions.<name>`; names its log, its events and its ninja rule
    spec: Callable[[Target], dict[str, Any]]  # the spec file's content (JSON) for a target
    spec_file: str
    goal: str  # the output that means "this action is done" for the target
    inputs: tuple[str, ...]  # files it reads, in ninja's explicit inputs (its spec among them)
    implicit: tuple[str, ...] = ()  # more files it reads (every one is a declared input: no stale outputs)
    by_products: tuple[str, ...] = ()  # outputs besides its goal (restat keeps them pruned when unchanged)
    ran: str = ""  # the outcome it reports when it did the work...
    also: tuple[str, ...] = ()  # ...or less of it, in other ways...
    hit: str = ""  # ...and when its cache had the answer
    cost: int = 0  # how much work `ran` means, for ordering outcomes (most work first)
    after: tuple[str, ...] = ()  # kinds whose outputs it reads: they come first in every listing
    pools: tuple[tuple[str, int], ...] = ()  # ninja pools its edges use (name, depth)
    pool: str | None = None  # its rule's pool
    # With it, the kind writes a depfile, <goal>.d, that ninja folds into its log (deps = gcc), and the same
    # dependencies in this file, one a line, for the no-op stamp: one never comes without the other.
    discovered: str | None = None
    cache_refs: tuple[CacheRef, ...] = ()
    extra_variables: Callable[[Target], tuple[tuple[str, str], ...]] = lambda target: ()  # e.g. a GPU pool

    @property
    def rule_name(self) -> str:
        return f"aot_{self.name}"

    def rule(self, python: str) -> Rule:
        from aotbuild.ninja.graph import Rule  # planning only: the engine and actions read declarations

        # The same command with and without workers (AOTBUILD_WORKERS=0 makes the client exec the action itself),
        # so switching never makes ninja rebuild anything.
        command = f"{python} -S {shlex.quote(str(CLIENT))} aotbuild.actions.{self.name} $spec"
        return Rule(self.rule_name, command, f"{self.name} $label", restat=True, pool=self.pool,
                    depfile="$out.d" if self.discovered else None, deps="gcc" if self.discovered else None)

    def goal_path(self, label: Label) -> str:
        """The goal relative to aot-out/."""
        return TargetPaths(label).file(self.goal)

    def edges(self, target: Target) -> list[Edge]:
        from aotbuild.ninja.graph import Edge

        d = TargetPaths(target.label).dir  # once: planning 10,000 targets builds 200,000 of these paths
        return [Edge(self.rule_name, (f"{d}/{self.goal}",), tuple(_path(d, f) for f in self.inputs),
                     tuple(_path(d, f) for f in self.implicit),
                     implicit_outputs=tuple(f"{d}/{f}" for f in self.by_products),
                     variables=(("spec", f"{d}/{self.spec_file}"), ("label", str(target.label)))
                     + self.extra_variables(target))]


def _path(target_dir: str, name: str) -> str:
    """A file a kind names, relative to aot-out/: in the target's directory unless it is aotbuild's own."""
    return name if name.startswith(f"{layout.STATE_DIR}/") else f"{target_dir}/{name}"


@functools.cache
def kinds() -> tuple[Kind, ...]:
    """Every module here with a `KIND`, each after the kinds it reads from."""
    found = {}
    for module in pkgutil.iter_modules(__path__):
        kind = getattr(importlib.import_module(f"{__name__}.{module.name}"), "KIND", None)
        if isinstance(kind, Kind):
            found[kind.name] = kind
    # Sorted first, so that kinds reading from the same kinds come in a fixed order.
    order = graphlib.TopologicalSorter({name: found[name].after for name in sorted(found)}).static_order()
    ordered = [found[name] for name in order]
    check_inputs(ordered)
    return tuple(ordered)


def check_inputs(kinds: list[Kind]) -> None:
    """Every target file a kind reads is some kind's spec, goal or by-product: a misspelt input would be a
    file no edge makes, and ninja would fail on every target."""
    made = {f for k in kinds for f in (k.spec_file, k.goal, *k.by_products)}
    for k in kinds:
        for name in k.inputs + k.implicit:
            if not name.startswith(f"{layout.STATE_DIR}/") and name not in made:
                raise RuntimeError(f"rules/{k.name}.py: input {name!r} is no kind's spec, goal or by-product")


def kind(name: str) -> Kind:
    for k in kinds():
        if k.name == name:
            return k
    raise KeyError(f"no rule kind {name!r}; known: {', '.join(k.name for k in kinds())}")


def spec_files(target: Target) -> dict[str, dict[str, Any]]:
    """The per-target spec files (path relative to aot-out -> content), written by ninja's spec edges."""
    d = TargetPaths(target.label).dir  # once for all kinds
    return {f"{d}/{k.spec_file}": k.spec(target) for k in kinds()}


def outcomes() -> tuple[str, ...]:
    """Each kind's outcomes, most work first."""
    return tuple(o for k in sorted(kinds(), key=lambda k: -k.cost) for o in (k.ran, *k.also, k.hit))
