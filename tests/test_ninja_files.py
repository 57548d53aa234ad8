"""The per-package ninja files: edges written exactly as ninja's own Writer writes them, and file names that
no two packages share."""

from __future__ import annotations

import io

import ninja
import pytest

from aotbuild.planning.ninja_files import edge_text, package_file, package_id
from aotbuild.ninja.graph import Edge

EDGES = [
    Edge("r", ("out",)),
    Edge("r", ("a/b.json",), ("in 1", "x:y"), ("$ odd",), ("imp out",), (("spec", "a/b c"), ("label", "//a:b"))),
    Edge("phony", ("goal",), ("p", "q", "r")),
    Edge("r", ("o1", "o2"), (), ("i",), (), (("v", "1"),)),
]


@pytest.mark.parametrize("edge", EDGES)
def test_edges_match_ninja_writer_byte_for_byte(edge: Edge) -> None:
    text = io.StringIO()
    ninja.Writer(text, width=1 << 30).build(list(edge.outputs), edge.rule, inputs=list(edge.inputs),
                                            implicit=list(edge.implicit),
                                            implicit_outputs=list(edge.implicit_outputs),
                                            variables=list(edge.variables))
    assert edge_text(edge) == text.getvalue()


def test_package_file_names_are_distinct_and_need_no_escaping() -> None:
    packages = ["", "root", "a", "a/b", "a~b", "a.b", "@root", "group0/pkg0"]
    # '~' and '@' are not valid in package names: the ones that hold them here could never be planned.
    valid = [p for p in packages if "~" not in p and "@" not in p]
    assert len({package_id(p) for p in valid}) == len(valid)
    assert package_file("") == ".aotbuild/pkgs/@root.ninja"
    assert package_file("group0/pkg0") == ".aotbuild/pkgs/group0~pkg0.ninja"
