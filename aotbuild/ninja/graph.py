"""An in-memory ninja build graph, checked for consistency, then written with ninja's own Writer.

This layer knows rules, edges and pools, never what an action means: that lives in rules/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from ninja import Writer


@dataclass(frozen=True)
class Rule:
    name: str
    command: str
    description: str
    restat: bool = False
    depfile: str | None = None
    deps: str | None = None
    pool: str | None = None
    generator: bool = False


@dataclass(frozen=True)
class Edge:
    rule: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    implicit: tuple[str, ...] = ()
    order_only: tuple[str, ...] = ()
    implicit_outputs: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()


class GraphError(Exception):
    """The graph is inconsistent: a programming error in a rule, never the user's."""


@dataclass
class BuildGraph:
    rules: dict[str, Rule] = field(default_factory=dict)
    pools: dict[str, int] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    phonies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _producers: dict[str, Edge] = field(default_factory=dict)

    def add_pool(self, name: str, depth: int) -> None:
        if name in self.pools:
            raise GraphError(f"duplicate pool '{name}'")
        self.pools[name] = depth

    def add_rule(self, rule: Rule) -> None:
        if rule.name in self.rules:
            raise GraphError(f"duplicate rule '{rule.name}'")
        if rule.pool is not None and rule.pool not in self.pools and rule.pool != "console":
            raise GraphError(f"rule '{rule.name}' uses unknown pool '{rule.pool}'")
        self.rules[rule.name] = rule

    def add_edge(self, edge: Edge) -> None:
        if edge.rule not in self.rules:
            raise GraphError(f"edge for {edge.outputs} uses unknown rule '{edge.rule}'")
        for out in (*edge.outputs, *edge.implicit_outputs):
            if out in self._producers or out in self.phonies:
                raise GraphError(f"two edges produce '{out}'")
            self._producers[out] = edge
        self.edges.append(edge)

    def add_phony(self, name: str, inputs: tuple[str, ...]) -> None:
        if name in self.phonies or name in self._producers:
            raise GraphError(f"duplicate output '{name}'")
        self.phonies[name] = inputs

    def write_declarations(self, w: Writer) -> None:
        """Pools, then rules: what a top-level build file declares for itself and its subninjas."""
        for name, depth in sorted(self.pools.items()):
            w.pool(name, depth)
            w.newline()
        for rule in self.rules.values():
            w.rule(rule.name, rule.command, description=rule.description, depfile=rule.depfile, deps=rule.deps,
                   pool=rule.pool, restat=rule.restat, generator=rule.generator)
            w.newline()

    def write(self, stream: TextIO, header: str = "") -> None:
        w = Writer(stream, width=120)
        if header:
            w.comment(header)
            w.newline()
        self.write_declarations(w)
        for edge in self.edges:
            w.build(list(edge.outputs), edge.rule, inputs=list(edge.inputs), implicit=list(edge.implicit),
                    order_only=list(edge.order_only), implicit_outputs=list(edge.implicit_outputs),
                    variables=list(edge.variables))
        w.newline()
        for name, inputs in self.phonies.items():
            w.build(name, "phony", inputs=list(inputs))
        w.newline()
        w.default("all")  # never build everything by accident: aotbuild always names what it wants
