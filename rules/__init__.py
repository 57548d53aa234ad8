"""Rules: what actions a target needs and how they connect. They only declare; the engine executes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aotbuild.ninja.graph import Edge, Rule
from aotbuild.workspace.schema import Target

from aotbuild.rules import compile as compile_rule
from aotbuild.rules import export as export_rule
from aotbuild.rules import verify as verify_rule


@dataclass(frozen=True)
class RuleKind:
    """One kind of action: its ninja rule (given the Python to run) and its edges for a target."""

    name: str
    pools: tuple[tuple[str, int], ...]  # ninja pools its edges use (name, depth)
    rule: Callable[[str], Rule]
    edges: Callable[[Target], list[Edge]]
    goal: Callable[[Target], str]  # the output that means "this action is done" for the target


RULES: dict[str, RuleKind] = {
    "export": RuleKind("export", (), export_rule.rule, export_rule.edges, export_rule.goal),
    "compile": RuleKind("compile", compile_rule.POOLS, compile_rule.rule, compile_rule.edges, compile_rule.goal),
    "verify": RuleKind("verify", (), verify_rule.rule, verify_rule.edges, verify_rule.goal),
}
BUILD_GOAL = "compile"  # `aotbuild build` wants artifacts
TEST_GOAL = "verify"  # `aotbuild test` wants verified artifacts


def spec_files(target: Target) -> dict[str, dict]:
    """The per-target spec files the planner writes (path relative to aot-out -> content)."""
    files: dict[str, dict] = {}
    for kind in (export_rule, compile_rule, verify_rule):
        files.update(kind.spec_files(target))
    return files
