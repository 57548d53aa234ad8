"""An in-memory ninja build graph of rules, edges and pools, checked for consistency as it is built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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
    implicit_outputs: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()


class GraphError(Exception):
    """The graph is inconsistent: a programming error in a rule, never the user's."""


@dataclass
class BuildGraph:
    rules: dict[str, Rule] = field(default_factory=dict)
    pools: dict[str, int | str] = field(default_factory=dict)  # a depth, or a variable ("$x") holding it
    edges: list[Edge] = field(default_factory=list)
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
            if out in self._producers:
                raise GraphError(f"two edges produce '{out}'")
            self._producers[out] = edge
        self.edges.append(edge)

    def write_declarations(self, w: Writer) -> None:
        """Pools, then rules: what a top-level build file declares for itself and its subninjas."""
        for name, depth in sorted(self.pools.items()):
            w.pool(name, depth)
            w.newline()
        for rule in self.rules.values():
            w.rule(**asdict(rule))
            w.newline()
