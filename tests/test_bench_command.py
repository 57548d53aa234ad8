"""`aotbuild bench` around its timing processes: what it times, in how many processes, what it prints and
returns when targets are skipped or fail. The processes are stand-ins here; tests/test_verify_e2e.py times
real artifacts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from aotbuild import cli, layout
from aotbuild.commands import bench as bench_command
from aotbuild.engine.build import NEEDS_GPU, BuildResult

from .conftest import write


def _stats(median: float, spread: float = 0.1) -> dict[str, float]:
    return {"median_ms": median, "p10_ms": median * (1 - spread / 2), "p90_ms": median * (1 + spread / 2),
            "min_ms": median / 2, "spread": spread}


def _row(label: str, device: str = "cpu", spread: float = 0.1) -> dict:
    return {"label": label, "device": device, "threads": 2, "warmup": 1, "repeats": 5, "inputs": [[8, 64]],
            "eager": _stats(2.0, spread), "pt2": _stats(1.0), "so": _stats(0.5)}


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A build of four targets: two CPU ones built, one failed, one CUDA target skipped (no GPU here)."""
    out = tmp_path / "ws" / layout.OUT_DIR
    write(out / layout.TOOLCHAIN_FILE, json.dumps({"host": {"gpu_arch": None}}))
    for label in ("m/@a", "m/@b"):
        write(out / label / "manifest.json", json.dumps({"device": "cpu"}))
    result = BuildResult(outcomes={"//m:a": "compiled", "//m:b": "up to date", "//m:c": "failed",
                                   "//gpu:mlp": NEEDS_GPU}, failures={"//m:c": "export: boom"},
                         context=SimpleNamespace(out_dir=out, root=out.parent), ninja_rc=1)
    monkeypatch.setattr(bench_command, "build_and_report", lambda args, goal: result)
    calls: list[list[str]] = []

    def timing_process(cmd: list[str], **_: object) -> subprocess.CompletedProcess:
        calls.append(cmd)
        labels = cmd[cmd.index("aotbuild.deploy.bench") + 4:]
        lines = [json.dumps({"label": label, "error": "RuntimeError: it broke"} if label == "//m:b" else _row(label))
                 for label in labels]
        return subprocess.CompletedProcess(cmd, 0, "a model's own print\n" + "\n".join(lines) + "\n", "")

    monkeypatch.setattr(subprocess, "run", timing_process)
    return result, calls


def test_bench_times_what_was_built_in_one_process_and_reports_the_rest(built, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    result, calls = built
    args = cli.parse_args(["bench", "//...", "--warmup", "1", "--repeats", "5", "--json", str(tmp_path / "b.json")])
    code = bench_command.cmd_bench(args)
    out = capsys.readouterr().out
    assert len(calls) == 1 and calls[0][-2:] == ["//m:a", "//m:b"]  # one process for the CPU targets
    assert "//m:c" not in calls[0] and "//gpu:mlp" not in calls[0]  # failed and skipped: nothing to time
    assert "skipped //gpu:mlp: needs a GPU" in out
    assert "FAILED //m:b: bench: RuntimeError: it broke" in out
    assert [r["label"] for r in json.loads((tmp_path / "b.json").read_text())] == ["//m:a"]  # rows are kept
    row = next(line for line in out.splitlines() if line.startswith("//m:a"))
    assert row.split() == ["//m:a", "cpu", "2.000", "±5%", "1.000", "±5%", "0.500", "±5%", "4.00x", "2"]
    assert code == result.exit_code == 1  # the build's failure (//m:c) is the command's


def test_bench_with_skipped_cuda_targets_and_nothing_failed_exits_0(built, capsys: pytest.CaptureFixture) -> None:
    result, calls = built
    del result.outcomes["//m:c"], result.failures["//m:c"], result.outcomes["//m:b"]
    result.ninja_rc = 0
    assert bench_command.cmd_bench(cli.parse_args(["bench", "//..."])) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if line.startswith("//")] == ["//m:a"]
    assert "skipped //gpu:mlp" in out
    assert "FAILED" not in out and "warning" not in out


def test_a_timing_process_that_dies_fails_only_the_targets_it_did_not_report(built,
                                                                              monkeypatch: pytest.MonkeyPatch,
                                                                              capsys: pytest.CaptureFixture) -> None:
    def dies_after_the_first(cmd: list[str], **_: object) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(cmd, -11, json.dumps(_row("//m:a")) + "\n", "Fatal Python error: x\n")

    monkeypatch.setattr(subprocess, "run", dies_after_the_first)
    assert bench_command.cmd_bench(cli.parse_args(["bench", "//..."])) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("//m:a ") for line in out.splitlines())
    assert "FAILED //m:b: bench: the cpu bench process exited with code -11" in out


def test_a_wide_spread_warns_that_the_machine_was_busy() -> None:
    result = bench_command.BenchResult(rows=[_row("//m:a"), _row("//m:b", spread=3.0)])
    lines = bench_command.report_lines(result)
    assert lines[-1].startswith("warning: timings spread widely (1 of 6 columns; worst //m:b eager ms ±150%)")
    quiet = bench_command.report_lines(bench_command.BenchResult(rows=[_row("//m:a")]))
    assert not any(line.startswith("warning") for line in quiet)
