"""The cache pass's planning side, without torch: which edges it would run (the very edges the package files
the planner wrote hold), and the spec bytes it writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aotbuild import rules
from aotbuild.engine import build, cache_hits
from aotbuild.ninja import spec_edges
from aotbuild.planning.ninja_files import edge_text, package_file
from aotbuild.planning.plan_index import read_plan
from aotbuild.workspace.schema import load_config, load_package

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


def test_the_chain_is_the_edges_the_package_file_holds(tmp_path: Path) -> None:
    ws = _planned(tmp_path)
    out = ws / "aot-out"
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


def test_only_targets_without_their_artifact_go_to_the_pass(tmp_path: Path) -> None:
    ws = _planned(tmp_path)
    out = ws / "aot-out"
    plan = read_plan(out)
    for label in plan.labels:
        goal = out / plan.targets[str(label)]["goals"][rules.BUILD_GOAL]
        goal.parent.mkdir(parents=True, exist_ok=True)
        goal.write_text("{}")
    assert build.missing_artifacts(out, plan, plan.labels) == []
    (out / plan.targets[str(plan.labels[1])]["goals"][rules.BUILD_GOAL]).unlink()
    assert build.missing_artifacts(out, plan, plan.labels) == [plan.labels[1]]
