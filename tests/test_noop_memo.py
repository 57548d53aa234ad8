"""The no-op memo (engine/noop_memo.py): a no-op build that the memo and the stamp answer reads no plan.json and
selects nothing, says what a no-op says, and a memo that does not match the plan or the command is not used.

The same stand-in workspace as tests/test_noop_stamp.py (packages m and n, targets a and b each).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aotbuild.engine import build as engine
from aotbuild.engine import noop_memo
from aotbuild.goals import BUILD_GOAL

from .test_noop_stamp import BUILD, Workspace, assert_fast, built, copies, python, ws  # noqa: F401 - fixtures


def memo_keys(w: Workspace) -> list[tuple]:
    found = noop_memo._load(w.out)
    return list(found["requests"]) if found else []


def in_process_build(w: Workspace, monkeypatch: pytest.MonkeyPatch, *patterns: str, cwd: Path | None = None
                     ) -> engine.BuildResult:
    for name, value in w.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "executable", str(w.python))  # the interpreter the plan was made for
    return engine.build(engine.BuildRequest(list(patterns), BUILD_GOAL), cwd or w.root)


def test_a_no_op_build_answered_by_the_memo_reads_no_plan(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_fast(ws, "build", "//...")  # the memo is written by a no-op build that worked the selection out
    assert memo_keys(ws) == [(("//...",), "", None, BUILD_GOAL)]

    def no_plan(*_: object) -> None:
        raise AssertionError("plan.json was read")

    monkeypatch.setattr(engine, "read_plan", no_plan)
    monkeypatch.setattr(engine, "select", no_plan)
    result = in_process_build(ws, monkeypatch, "//...")
    assert result.outcomes == {f"//{p}:{t}": "up to date" for p in ("m", "n") for t in ("a", "b")}
    assert result.exit_code == 0 and engine.summary_line(result).startswith("aotbuild: 4 targets: 4 up to date")


def run_in(w: Workspace, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    for log in ("actions", "ninja"):
        (w.logs / log).unlink(missing_ok=True)
    return subprocess.run([str(w.python), "-m", "aotbuild", *args], cwd=cwd, capture_output=True, text=True,
                          env=w.env)


def test_the_memo_answers_each_command_for_itself(ws: Workspace, tmp_path: Path) -> None:
    assert_fast(ws, "build", "//...")
    for _ in range(2):  # worked out, then from the memo
        assert "1 target: 1 up to date" in assert_fast(ws, "build", "//m:a").stdout
    assert (("//m:a",), "", None, BUILD_GOAL) in memo_keys(ws)
    # The same pattern from another package means other targets: `:all` in m, then in n, then m again.
    for package in ("m", "n", "m", "n"):
        report = tmp_path / f"{package}.json"
        proc = run_in(ws, ws.root / package, "build", ":all", "--report", str(report))
        assert proc.returncode == 0 and not ws.ninja_ran(), proc.stdout + proc.stderr
        assert sorted(json.loads(report.read_text())["targets"]) == [f"//{package}:a", f"//{package}:b"]
    assert {(("//m:a",), "", None, BUILD_GOAL), ((":all",), "m", None, BUILD_GOAL),
            ((":all",), "n", None, BUILD_GOAL)} <= set(memo_keys(ws))
    # A shard is part of the command.
    for _ in range(2):
        halves = [assert_fast(ws, "build", "//...", "--shard", f"{k}/2").stdout for k in (1, 2)]
        assert all("2 targets: 2 up to date" in half for half in halves)


def test_a_memo_of_another_plan_or_damaged_is_not_used(ws: Workspace) -> None:
    assert_fast(ws, "build", "//...")
    new = "  c: {model: m.tiny:Tiny, inputs: {x: {shape: [1], dtype: float32}}}\n"
    (ws.root / "n" / "BUILD.aot.yaml").write_text(BUILD + new)  # a re-plan writes another plan.json
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.actions() == ["export //n:c", "compile //n:c"], proc.stdout
    memo = ws.out / noop_memo.MEMO_FILE
    memo.write_bytes(memo.read_bytes()[:-1] + b"\0")
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and "5 targets: 5 up to date" in proc.stdout, proc.stdout + proc.stderr


def test_a_memo_never_hides_a_change(ws: Workspace) -> None:
    assert_fast(ws, "build", "//...")
    assert_fast(ws, "build", "//...")  # answered by the memo
    (ws.out / "m" / "@a" / "graph.json").unlink()
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and "export //m:a" in ws.actions(), proc.stdout + proc.stderr
    (ws.root / "m" / "BUILD.aot.yaml").write_text(BUILD.replace("[2, 5]", "[3, 5]"))
    proc = ws.run("build", "//...")
    assert proc.returncode == 0 and ws.actions() == ["export //m:b", "compile //m:b"], proc.stdout
    assert '"shape":[3,5]' in (ws.out / "m" / "@b" / "export.json").read_text()
