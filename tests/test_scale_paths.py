"""Issue 10, the no-op and edit paths at scale: one spec edge per target that still rewrites only the spec that
changed, the pre-ninja output checks, and re-planning that reads the index once."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import ninja
import pytest

from aotbuild import layout, rules
from aotbuild.engine import context as engine
from aotbuild.engine import output_checks
from aotbuild.layout import TargetPaths
from aotbuild.planning.ninja_files import package_file
from aotbuild.workspace.labels import Label

from .conftest import aotbuild, write

TARGET = "{model: m.f:g, inputs: {x: {shape: [2], dtype: float32}}, kwargs: {s: \"it's $HOME \\\\n\"}"
LABEL = Label("pkg", "a")


def plain_ninja(ws: Path, *outputs: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(ninja.BIN_DIR) / "ninja"), "-C", str(ws / "aot-out"), "-f", layout.NINJA_FILE,
                           *outputs], capture_output=True, text=True)


def spec_paths() -> list[str]:
    return [TargetPaths(LABEL).file(rules.kind(name).spec_file) for name in ("export", "compile", "verify")]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write(root / "WORKSPACE.aot.yaml", "")
    write(root / "pkg" / "BUILD.aot.yaml", f"targets:\n  a: {TARGET}, tolerance: {{atol: 0.001, rtol: 0.001}}}}\n")
    return root


def test_one_spec_edge_per_target_rewrites_only_the_spec_that_changed(ws: Path) -> None:
    assert aotbuild(["query", "//..."], ws).code == 0
    text = (ws / "aot-out" / package_file("pkg")).read_text()
    spec_edges = [line for line in text.splitlines() if line.startswith("build ") and ": aot_spec" in line]
    assert spec_edges == [f"build {' '.join(spec_paths())}: aot_spec {package_file('pkg', 'specs')}"]
    proc = plain_ninja(ws, *spec_paths())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = ws / "aot-out"
    spec = json.loads((out / spec_paths()[0]).read_text())
    assert spec["label"] == str(LABEL) and spec["kwargs"] == {"s": "it's $HOME \\n"}  # quoting survives sh
    before = {p: (out / p).stat().st_mtime_ns for p in spec_paths()}

    time.sleep(0.05)  # past the file system's timestamp granularity: a rewrite would show
    build_file = ws / "pkg" / "BUILD.aot.yaml"
    build_file.write_text(build_file.read_text().replace("atol: 0.001", "atol: 0.002"))
    assert aotbuild(["query", "//..."], ws).code == 0
    proc = plain_ninja(ws, *spec_paths())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[1/1] spec //pkg:a" in proc.stdout  # one edge ran: the target's spec edge
    after = {p: (out / p).stat().st_mtime_ns for p in spec_paths()}
    export_spec, compile_spec, verify_spec = spec_paths()
    assert json.loads((out / verify_spec).read_text())["tolerance"]["atol"] == 0.002
    assert after[verify_spec] != before[verify_spec]
    # Unchanged specs keep their mtime, so restat keeps the export and compile that read them up to date.
    assert after[export_spec] == before[export_spec] and after[compile_spec] == before[compile_spec]
    assert "no work to do" in plain_ninja(ws, *spec_paths()).stdout


def test_a_spec_file_with_other_content_is_rewritten(ws: Path) -> None:
    assert aotbuild(["query", "//..."], ws).code == 0
    assert plain_ninja(ws, *spec_paths()).returncode == 0
    out = ws / "aot-out"
    good = (out / spec_paths()[1]).read_text()
    (out / spec_paths()[1]).write_text(good + "trailing\n")  # the same first line, then more
    (out / spec_paths()[0]).unlink()  # reruns the edge
    assert plain_ninja(ws, *spec_paths()).returncode == 0
    assert (out / spec_paths()[1]).read_text() == good
    assert json.loads((out / spec_paths()[0]).read_text())["label"] == str(LABEL)


def _built_target(out: Path, label: Label) -> Path:
    paths = TargetPaths(label)
    target = out / paths.dir
    target.mkdir(parents=True)
    for name in ("manifest.json", "verified.json", f"{label.name}-0123.so", f"{label.name}-0123.pt2"):
        (target / name).write_text("{}")
    for ext in output_checks.ARTIFACTS:
        (target / paths.alias(ext)).symlink_to(f"{label.name}-0123.{ext}")
    return target


def test_prepare_drops_the_done_markers_of_a_target_missing_an_artifact(tmp_path: Path) -> None:
    out = tmp_path / "aot-out"
    intact, broken = _built_target(out, Label("p", "a")), _built_target(out, Label("p", "b"))
    (broken / "b-0123.pt2").unlink()  # the alias now dangles
    assert output_checks.prepare(out, [Label("p", "a"), Label("p", "b")], full=False) == []
    assert (intact / "manifest.json").exists() and (intact / "verified.json").exists()
    assert not (broken / "manifest.json").exists() and not (broken / "verified.json").exists()


def test_prepare_removes_a_symlink_standing_for_a_target_directory(tmp_path: Path) -> None:
    out = tmp_path / "aot-out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "p").mkdir(parents=True)
    (out / "p" / "@a").symlink_to(elsewhere)
    warnings = output_checks.prepare(out, [Label("p", "a")], full=False)
    assert len(warnings) == 1 and f"{out}/p/@a was a symlink to {elsewhere}" in warnings[0]
    assert not os.path.lexists(out / "p" / "@a") and elsewhere.is_dir()


def test_replanning_reads_the_index_once(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, out = ws, ws / layout.OUT_DIR
    engine.ensure_plan(root, out)
    reads = []
    real = engine.read_plan
    monkeypatch.setattr(engine, "read_plan", lambda out_dir: reads.append(out_dir) or real(out_dir))
    write(ws / "pkg" / "BUILD.aot.yaml", f"targets:\n  a: {TARGET}}}\n  b: {TARGET}}}\n")
    assert "//pkg:b" in engine.ensure_plan(root, out).targets
    assert len(reads) == 1
    # Another command planned meanwhile (plan.json replaced): then the index is read again under the lock.
    reads.clear()
    seen = engine.signature(str(out / layout.PLAN_FILE))
    plan = engine.read_plan(out)
    stale = engine.staleness(plan, root, out)
    (out / layout.PLAN_FILE).write_bytes((out / layout.PLAN_FILE).read_bytes() + b" ")
    assert engine.replan(root, out, (seen, plan, stale)).targets == plan.targets
    assert len(reads) == 2
