"""The export rule: model code -> exported program in the cache + graph.json (restat prunes unchanged graphs)."""

from __future__ import annotations

from aotbuild import layout
from aotbuild.actions import reference_io
from aotbuild.layout import TargetPaths
from aotbuild.ninja.graph import Edge, Rule
from aotbuild.workers.command import action_command
from aotbuild.workspace.schema import Target

NAME = "aot_export"


def rule(python: str) -> Rule:
    # deps = gcc: ninja folds the depfile (every workspace .py the model imported) into its own log.
    return Rule(NAME, action_command(python, "aotbuild.actions.export", "$spec"), "export $label", restat=True,
                depfile="$out.d", deps="gcc")


def spec_files(target: Target) -> dict[str, dict]:
    return {TargetPaths(target.label).export_spec: target.export_spec()}


def edges(target: Target) -> list[Edge]:
    paths = TargetPaths(target.label)
    # Every file the action reads is an input: compile.json for the options checked before exporting.
    implicit = [layout.TOOLCHAIN_FILE, paths.compile_spec]
    if target.weights:
        implicit.append(layout.from_out(target.weights))
    # reference.json (eager outputs for verification) and reference_io.pt (the same cases as flat tensors, for
    # C++ consumers) are by-products: restat keeps them pruned when unchanged.
    return [Edge(NAME, (paths.graph,), (paths.export_spec,), tuple(implicit),
                 implicit_outputs=(paths.file("reference.json"), paths.file(reference_io.FILE)), variables=(("spec", paths.export_spec), ("label", str(target.label))))]


def goal(target: Target) -> str:
    return TargetPaths(target.label).graph
