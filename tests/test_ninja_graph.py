"""The generic ninja layer: exact output, and inconsistencies raise instead of warning."""

from __future__ import annotations

import io

import pytest

from ninja import Writer

from aotbuild.planning.ninja_files import edge_text
from aotbuild.ninja.graph import BuildGraph, Edge, GraphError, Rule


def small_graph() -> BuildGraph:
    g = BuildGraph()
    g.add_pool("heavy", 2)
    g.add_rule(Rule("cc", "gcc -c $in -o $out", "CC $out", restat=True, depfile="$out.d", deps="gcc", pool="heavy"))
    g.add_edge(Edge("cc", ("a b.o",), ("a b.c",), ("x:y.h",), implicit_outputs=("a.log",),
                    variables=(("label", "//p:a"),)))
    return g


def test_writes_exact_ninja_syntax() -> None:
    out = io.StringIO()
    g = small_graph()
    g.write_declarations(Writer(out, width=120))
    out.write("".join(map(edge_text, g.edges)))
    assert out.getvalue() == (
        "pool heavy\n  depth = 2\n\n"
        "rule cc\n  command = gcc -c $in -o $out\n  description = CC $out\n  depfile = $out.d\n"
        "  pool = heavy\n  restat = 1\n  deps = gcc\n\n"
        "build a$ b.o | a.log: cc a$ b.c | x$:y.h\n  label = //p:a\n")


def test_duplicate_output_raises() -> None:
    g = small_graph()
    with pytest.raises(GraphError, match="two edges produce 'a.log'"):
        g.add_edge(Edge("cc", ("a.log",), ("z.c",)))


def test_unknown_rule_and_pool_raise() -> None:
    g = small_graph()
    with pytest.raises(GraphError, match="unknown rule 'link'"):
        g.add_edge(Edge("link", ("app",), ("a b.o",)))
    with pytest.raises(GraphError, match="unknown pool 'gpu'"):
        g.add_rule(Rule("x", "x", "x", pool="gpu"))
    with pytest.raises(GraphError, match="duplicate rule 'cc'"):
        g.add_rule(Rule("cc", "x", "x"))
