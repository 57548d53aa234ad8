"""The cache pass's planning side, without torch: which edges it would run, and that their commands are
exactly the ones ninja evaluates from the package files the planner wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aotbuild import rules
from aotbuild.engine import cache_hits, cache_pass
from aotbuild.ninja import commands, spec_edges
from aotbuild.planning.ninja_files import edge_text, package_file
from aotbuild.planning.planner import python_command
from aotbuild.planning.plan_index import read_plan
from aotbuild.workspace.loading import load_config, load_package

BUILD = """targets:
  plain: {model: m.tiny:Tiny, inputs: {x: {shape: [2, 4], dtype: float32}}}
  quoted:
    model: m.tiny:Tiny
    kwargs: {note: "it's $HOME \\"here\\""}
    inputs: {x: {shape: [batch, 4], dtype: float32}}
    dims: {batch: {min: 1, max: 8}}
    options: {aot_inductor.compile_wrapper_opt_level: O1}
"""


def _planned(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "m" / "sub").mkdir(parents=True)
    (ws / "WORKSPACE.aot.yaml").write_text("")
    (ws / "m" / "BUILD.aot.yaml").write_text(BUILD)
    (ws / "m" / "sub" / "BUILD.aot.yaml").write_text(BUILD)
    proc = subprocess.run([sys.executable, "-m", "aotbuild", "plan"], cwd=ws, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ws


def test_build_goal_is_the_rules_one() -> None:
    assert cache_pass.BUILD_GOAL == rules.BUILD_GOAL


def test_chain_commands_are_the_ones_ninja_evaluates(tmp_path: Path) -> None:
    ws = _planned(tmp_path)
    out = ws / "aot-out"
    ninja = read_plan(out).ninja
    rule_list = [kind.rule(python_command()) for kind in rules.kinds()] + [spec_edges.rule()]
    by_name = {r.name: r for r in rule_list}
    config = load_config(ws)
    checked = 0
    for package in ("m", "m/sub"):
        text = (out / package_file(package)).read_text()
        for target in load_package(ws, package, config).targets:
            chain = cache_hits.goal_chain(target)
            # The target's spec edge (all its spec files), then the export, then the compile (its goal) last.
            assert [e.rule for e in chain] == [spec_edges.NAME, "aot_export", "aot_compile"]
            for edge in chain:
                assert edge_text(edge) in text  # the very edge the package file holds
                expected = subprocess.run([ninja, "-C", str(out), "-f", ".aotbuild/build.ninja", "-t", "commands",
                                           "-s", edge.outputs[0]], capture_output=True, text=True, check=True)
                assert commands.command(by_name[edge.rule], edge, cache_hits.FILE_SCOPE) == expected.stdout.rstrip("\n")
                checked += 1
    assert checked == 12


def test_spec_bytes_are_what_the_spec_edge_writes(tmp_path: Path) -> None:
    ws = _planned(tmp_path)
    out = ws / "aot-out"
    ninja = read_plan(out).ninja
    target = load_package(ws, "m", load_config(ws)).targets[1]
    for path, content in rules.spec_files(target).items():
        subprocess.run([ninja, "-C", str(out), "-f", ".aotbuild/build.ninja", path], check=True, capture_output=True)
        assert (out / path).read_bytes() == spec_edges.file_bytes(content)


def test_nothing_missing_means_no_pass(tmp_path: Path, monkeypatch) -> None:
    ws = _planned(tmp_path)
    out = ws / "aot-out"
    plan = read_plan(out)
    for label in plan.labels:
        goal = out / plan.targets[str(label)]["goals"][rules.BUILD_GOAL]
        goal.parent.mkdir(parents=True, exist_ok=True)
        goal.write_text("{}")

    def fail(*args, **kwargs):
        raise AssertionError("the pass ran with every artifact present")

    monkeypatch.setattr(cache_hits, "resolve", fail)
    assert cache_pass.resolve_hits(ws, out, plan, plan.labels, {}) == 0
