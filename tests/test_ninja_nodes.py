"""ninja/nodes.py: the nodes it reads from ninja text and .ninja_deps are the ones ninja itself knows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import ninja
import pytest

from aotbuild.ninja import logs
from aotbuild.ninja.nodes import NodeError, canonical, file_graph, recorded_dependencies

NINJA = str(Path(ninja.BIN_DIR) / "ninja")


def file_nodes(text: str, where: str) -> tuple[list[str], list[str]]:
    """Every node one manifest file's build lines name, in order and once each; its subninja/include files."""
    edges, _, includes = file_graph(text, where)
    nodes: dict[str, None] = {}
    for outputs, _, inputs in edges:
        nodes.update(dict.fromkeys((*outputs, *inputs)))
    return list(nodes), includes

MANIFEST = """# a comment
builddir = .state
rule cc
  command = touch $out $
      && true
  depfile = $out.d
  deps = gcc
build a$ b.o | c$:d.h: cc ./src/x.c ../up/y.c | dir/../z.h || order $
    only.h |@ valid
  extra = $in
build all: phony a$ b.o
default all
subninja sub.ninja
"""
SUB = "build sub/out: cc sub/in.c\n"


def _ninja_nodes(directory: Path) -> set[str]:
    """Every node ninja's tools name: targets of all edges and every input of every edge (validations are
    no inputs to `-t inputs`, so they are not here)."""
    targets = subprocess.run([NINJA, "-C", str(directory), "-t", "targets", "all"], capture_output=True,
                             text=True, check=True).stdout
    outputs = {line.rsplit(": ", 1)[0] for line in targets.splitlines()}
    inputs = subprocess.run([NINJA, "-C", str(directory), "-t", "inputs", "--no-shell-escape", *outputs],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return outputs | set(inputs)


def test_the_nodes_are_ninja_s_own(tmp_path: Path) -> None:
    (tmp_path / "build.ninja").write_text(MANIFEST)
    (tmp_path / "sub.ninja").write_text(SUB)
    nodes, includes = file_nodes(MANIFEST, "build.ninja")
    assert includes == ["sub.ninja"]
    sub_nodes, _ = file_nodes(SUB, "sub.ninja")
    assert "a b.o" in nodes and "c:d.h" in nodes and "z.h" in nodes and "src/x.c" in nodes
    assert set(nodes) | set(sub_nodes) == _ninja_nodes(tmp_path) | {"valid"}


@pytest.mark.parametrize("line", ["build $out: cc in", "build out: cc ${src}", "build out: cc in$x"])
def test_a_variable_in_a_path_is_refused(line: str) -> None:
    with pytest.raises(NodeError, match="variable"):
        file_nodes(f"rule cc\n  command = true\n{line}\n", "f.ninja")



@pytest.mark.parametrize(("path", "expected"), [
    ("a/b", "a/b"), ("./a", "a"), ("a/./b", "a/b"), ("a/../b", "b"), ("../a", "../a"), ("../../a/../b", "../../b"),
    ("/x/./y/../z", "/x/z"), ("a/b/..", "a"), ("gen/x/", "gen/x"), ("a//b", "a/b"), ("a/..", "."), ("./", "."),
])
def test_paths_are_canonical_as_ninja_makes_them(path: str, expected: str) -> None:
    assert canonical(path) == expected


def test_recorded_dependencies_are_those_ninja_deps_shows(tmp_path: Path) -> None:
    builddir = tmp_path / ".state"
    logs.append(builddir, [
        logs.Finished(("out1",), "c1", 5, ("dep/a.h", "dep/b.h"), (5,)),
        logs.Finished(("out2",), "c2", 6, ("dep/b.h", "/abs/c.h"), (6,)),
    ])
    (tmp_path / "build.ninja").write_text("builddir = .state\nrule cc\n  command = c\n  deps = gcc\n"
                                          "  depfile = $out.d\nbuild out1: cc\nbuild out2: cc\n")
    shown = subprocess.run([NINJA, "-C", str(tmp_path), "-t", "deps"], capture_output=True, text=True,
                           check=True).stdout
    expected = {line.strip() for line in shown.splitlines() if line.startswith("    ")}
    found = recorded_dependencies(builddir / logs.DEPS_LOG)
    assert set(found) == expected == {"dep/a.h", "dep/b.h", "/abs/c.h"}
    assert len(found) == len(set(found))


def test_another_deps_log_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / logs.DEPS_LOG
    path.write_bytes(logs.DEPS_LOG_HEADER + b"\x03\x00\x00\x00")
    with pytest.raises(NodeError):
        recorded_dependencies(path)
    assert recorded_dependencies(tmp_path / "absent") == []


def test_a_planned_workspace_s_nodes_are_ninja_s(tmp_path: Path) -> None:
    from aotbuild import layout

    from .conftest import aotbuild, write

    target = "{model: m.f:g, inputs: {x: {shape: [2], dtype: float32}}, kwargs: {s: \"it's $HOME: a|b\"}}"
    write(tmp_path / "WORKSPACE.aot.yaml", "")
    for package in ("p", "p/q+r"):
        write(tmp_path / package / "BUILD.aot.yaml", f"targets:\n  a: {target}\n  b: {target}\n")
    assert aotbuild(["query", "//..."], tmp_path).code == 0
    out = tmp_path / layout.OUT_DIR
    found: set[str] = set()
    pending = [layout.NINJA_FILE]
    while pending:
        name = pending.pop()
        nodes, includes = file_nodes((out / name).read_text(), name)
        found.update(nodes)
        pending += includes
    assert "p/q+r/@a/graph.json" in found
    assert found == _ninja_nodes_of(out)


def _ninja_nodes_of(out: Path) -> set[str]:
    ninja_file = ".aotbuild/build.ninja"
    run = [NINJA, "-C", str(out), "-f", ninja_file]
    targets = subprocess.run([*run, "-t", "targets", "all"], capture_output=True, text=True, check=True).stdout
    outputs = {line.rsplit(": ", 1)[0] for line in targets.splitlines()} | {ninja_file}
    inputs = subprocess.run([*run, "-t", "inputs", "--no-shell-escape", *outputs], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    return outputs | set(inputs)


@pytest.mark.parametrize("text", [
    "rule cc\n  command = true\n  depfile = $out.d\nbuild a: cc b\n",  # read anew on every run, not logged
    "rule cc\n  command = true\nbuild a: cc b\n  dyndep = dd\n",
    "rule cc\n  command = true\n  deps = gcc\nbuild a: cc b\n  depfile = x.d\n",  # the edge's own depfile
])
def test_files_ninja_reads_anew_on_each_run_mean_no_graph(text: str) -> None:
    with pytest.raises(NodeError, match="depfile|dyndep"):
        file_graph(text, "f.ninja")


def test_rules_carry_restat_and_deps_and_an_edge_binding_either_decides_for_itself() -> None:
    from aotbuild.ninja.nodes import DEPS, RESTAT

    text = ("rule r\n  command = true\n  restat = 1\nrule d\n  command = true\n  depfile = $out.d\n  deps = gcc\n"
            "  restat = 1\nrule v\n  command = true\n  restat = $x\n"
            "build a: r i\nbuild b: r i\n  restat =\nbuild c: d i\n")
    edges, rules, _ = file_graph(text, "f.ninja")
    assert rules == {"r": RESTAT, "d": RESTAT | DEPS, "v": 0}
    assert [rule for _, rule, _ in edges] == ["r", "", "d"]
