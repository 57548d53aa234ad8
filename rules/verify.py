"""The verify rule: run an artifact on the example and range-edge inputs and compare with eager references."""

from __future__ import annotations

from aotbuild import layout
from aotbuild.layout import TargetPaths
from aotbuild.ninja.graph import Edge, Rule
from aotbuild.workers.command import action_command
from aotbuild.workspace.schema import Target

NAME = "aot_verify"


def rule(python: str) -> Rule:
    return Rule(NAME, action_command(python, "aotbuild.actions.verify", "$spec"), "verify $label", restat=True)


def spec_files(target: Target) -> dict[str, dict]:
    return {TargetPaths(target.label).file("verify.json"): target.verify_spec()}


def edges(target: Target) -> list[Edge]:
    paths = TargetPaths(target.label)
    spec = paths.file("verify.json")
    # Every file the action reads is an input: export.json (out-of-range cases), and graph.json and the
    # toolchain, which a re-export of an evicted reference needs.
    return [Edge(NAME, (paths.file("verified.json"),), (paths.manifest, paths.file("reference.json"), spec),
                 (paths.export_spec, paths.graph, layout.TOOLCHAIN_FILE),
                 variables=(("spec", spec), ("label", str(target.label))))]


def goal(target: Target) -> str:
    return TargetPaths(target.label).file("verified.json")
