"""Engine helpers that turn what actions leave behind into what the user is told."""

from __future__ import annotations

from pathlib import Path

from aotbuild.engine.ninja_pass import _crash_report
from aotbuild.reports.outcomes import BuildResult, summary_line

FAULTHANDLER_LOG = """some warning
Fatal Python error: Segmentation fault

Current thread 0x00007f57ad7ac140 (most recent call first):
  File "/venv/torch/export/pt2_archive/_package.py", line 1045 in _load_aoti
  File "/repo/aotbuild/actions/verify.py", line 70 in run_checks
"""


def test_a_crashed_action_is_named_with_its_signal_and_frame(tmp_path: Path) -> None:
    (tmp_path / "verify.log").write_text(FAULTHANDLER_LOG)
    report = _crash_report(tmp_path / "verified.json")
    assert report is not None
    assert report.startswith('verify crashed: Segmentation fault in File "/venv/torch/export/pt2_archive/_package.py"')
    assert str(tmp_path / "verify.log") in report


def test_no_crash_report_without_a_fatal_error(tmp_path: Path) -> None:
    (tmp_path / "export.log").write_text("Traceback (most recent call last):\nValueError: x\n")
    assert _crash_report(tmp_path / "graph.json") is None


def test_summary_counts_outcomes_in_order_and_exit_codes() -> None:
    result = BuildResult(outcomes={"//a:x": "compiled", "//a:y": "up to date", "//a:z": "compiled"}, seconds=1.5)
    assert summary_line(result) == "aotbuild: 3 targets: 2 compiled, 1 up to date in 1.50s"
    assert result.exit_code == 0
    result.failures["//a:x"] = "boom"
    assert result.exit_code == 1
    result.events.append({"outcome": "failed", "exit_code": 3})
    assert result.exit_code == 3
    result.config_errors.append("bad BUILD")
    assert result.exit_code == 2


def test_actions_that_found_build_file_mistakes_exit_2_and_others_1() -> None:
    result = BuildResult(outcomes={"//a:x": "failed", "//a:y": "failed"}, seconds=1.0)
    result.failures.update({"//a:x": "export: input 'xx' matches no parameter", "//a:y": "export: boom"})
    result.events.append({"outcome": "failed", "exit_code": 2, "in_build_file": True})
    assert result.exit_code == 2
    result.events.append({"outcome": "failed", "exit_code": 2})  # a factory that raised: not the BUILD file's
    assert result.exit_code == 1
