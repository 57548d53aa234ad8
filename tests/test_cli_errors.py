"""Bad input reaches the user as a clear error with a non-zero exit code; planning never imports torch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import aotbuild, torch_tripwire, write


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write(root / "WORKSPACE.aot.yaml", "")
    write(root / "good" / "BUILD.aot.yaml", "targets:\n  a: {model: good.m:f, inputs: {x: {shape: [2], dtype: float32}}}\n")
    return root


BAD_BUILD_FILES = [
    ("targets:\n  a: {model: m:f\n", "bad/BUILD.aot.yaml:3", "malformed YAML"),
    ("targets:\n  a:\n    model: m:f\n    inputs: m:g\n    colour: red\n", "bad/BUILD.aot.yaml:5", "unknown key 'colour'"),
    ("targets:\n  a:\n    model: m:f\n    inputs: m:g\n    kwargs: 3\n", "bad/BUILD.aot.yaml:5", "expected a mapping"),
]


@pytest.mark.parametrize("text, where, problem", BAD_BUILD_FILES)
def test_bad_build_file_is_exit_2_naming_file_and_line(ws: Path, text: str, where: str, problem: str) -> None:
    write(ws / "bad" / "BUILD.aot.yaml", text)
    run = aotbuild(["build", "//bad:all"], ws)
    assert run.code == 2
    assert where in run.stderr and problem in run.stderr


def test_bad_target_with_keep_going_still_plans_the_rest(ws: Path) -> None:
    write(ws / "bad" / "BUILD.aot.yaml", "targets:\n  a:\n    model: m:f\n    inputs: m:g\n    colour: red\n")
    # Querying is planning only: the good package stays usable while another package is broken.
    run = aotbuild(["query", "//good:all"], ws)
    assert run.code == 0 and run.stdout.split() == ["//good:a"]
    run = aotbuild(["query", "//..."], ws)
    assert run.code == 2 and "unknown key 'colour'" in run.stderr and "//good:a" in run.stdout


@pytest.mark.parametrize("pattern, problem", [
    ("//good:a:b", "invalid"),
    ("//../etc:passwd", "outside the workspace"),
    ("//good/../..:x", "outside the workspace"),
    ("/etc/passwd", "invalid"),
    ("//good:nope", "no target 'nope'"),
    ("//nowhere:all", "no package"),
])
def test_bad_labels_exit_2(ws: Path, pattern: str, problem: str) -> None:
    run = aotbuild(["build", pattern], ws)
    assert run.code == 2, run.output
    assert problem in run.stderr


def test_outside_any_workspace(tmp_path: Path) -> None:
    run = aotbuild(["build", "//..."], tmp_path)
    assert run.code == 2 and "WORKSPACE.aot.yaml" in run.stderr


def test_usage_error_exit_2(ws: Path) -> None:
    assert aotbuild(["build"], ws).code == 2
    assert aotbuild(["frobnicate"], ws).code == 2


def test_relative_labels_resolve_from_the_current_package(ws: Path) -> None:
    run = aotbuild(["query", ":a"], ws / "good")
    assert run.code == 0 and run.stdout.split() == ["//good:a"]
    run = aotbuild(["query", "//...", "-//good:a"], ws)
    assert run.code == 0 and run.stdout.split() == []


def test_planning_never_imports_torch(ws: Path, tmp_path: Path) -> None:
    env, marker = torch_tripwire(tmp_path)
    run = aotbuild(["query", "//..."], ws, env)
    assert run.code == 0, run.output
    assert (ws / "aot-out" / ".aotbuild" / "build.ninja").exists()
    assert not marker.exists()


def ninja_outputs(ws: Path, *outputs: str) -> None:
    """Run plain ninja (as users may) on outputs that need no torch: spec files."""
    import ninja

    subprocess.run([str(Path(ninja.BIN_DIR) / "ninja"), "-C", str(ws / "aot-out"), "-f", ".aotbuild/build.ninja",
                    *outputs], check=True, capture_output=True)


def test_build_ninja_regenerates_when_a_build_file_changes(ws: Path) -> None:
    assert aotbuild(["query", "//..."], ws).code == 0
    ninja_file = ws / "aot-out" / ".aotbuild" / "build.ninja"
    spec = ws / "aot-out" / "good" / "@a" / "export.json"
    ninja_outputs(ws, "good/@a/export.json")
    before, spec_before = ninja_file.stat().st_mtime_ns, spec.stat().st_mtime_ns
    write(ws / "good" / "BUILD.aot.yaml", "targets:\n  a: {model: good.m:f, inputs: {x: {shape: [2], dtype: float32}}}\n"
          "  b: {model: good.m:f, inputs: {x: {shape: [3], dtype: float32}}}\n")
    run = aotbuild(["query", "//..."], ws)
    assert run.stdout.split() == ["//good:a", "//good:b"]
    assert ninja_file.stat().st_mtime_ns > before
    ninja_outputs(ws, "good/@a/export.json", "good/@b/export.json")
    assert spec.stat().st_mtime_ns == spec_before  # an unchanged target's spec keeps its mtime: it stays up to date
    assert json.loads((ws / "aot-out" / "good" / "@b" / "export.json").read_text())["label"] == "//good:b"


def test_a_directory_that_is_no_valid_package_name_is_reported_not_fatal(ws: Path) -> None:
    write(ws / "bad dir" / "BUILD.aot.yaml", "targets: {}\n")
    run = aotbuild(["query", "//good:all"], ws)
    assert run.code == 0 and run.stdout.split() == ["//good:a"]
    run = aotbuild(["query", "//..."], ws)
    assert run.code == 2 and "not a valid package name" in run.stderr


def test_a_build_error_without_keep_going_hints_at_it(ws: Path) -> None:
    write(ws / "bad" / "BUILD.aot.yaml", "targets:\n  a:\n    model: m:f\n    inputs: m:g\n    colour: red\n")
    run = aotbuild(["build", "//..."], ws)
    assert run.code == 2 and "unknown key 'colour'" in run.stderr
    assert "nothing was built: -k (--keep-going) builds the other 1 selected target" in run.stderr
    run = aotbuild(["build", "//bad:all"], ws)  # nothing else selected: -k would not help
    assert run.code == 2 and "keep-going" not in run.stderr


@pytest.mark.parametrize("args", [["query", "//..."], ["query", "//...", "--output", "json"],
                                  ["cache", "path"]])
def test_a_reader_that_goes_away_stops_the_command_as_sigpipe_does(ws: Path, args: list[str]) -> None:
    """`aotbuild query //... | head -1`: no traceback, the status of a process SIGPIPE ended."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes a byte
    try:
        proc = subprocess.run([sys.executable, "-m", "aotbuild", *args], cwd=ws, stdout=write_end,
                              stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert proc.returncode == 128 + signal.SIGPIPE, proc.stderr
    assert proc.stderr == ""


def test_query_json_names_each_targets_device(ws: Path) -> None:
    write(ws / "gpu" / "BUILD.aot.yaml", "defaults: {device: cuda}\ntargets:\n"
          "  g: {model: good.m:f, inputs: {x: {shape: [2], dtype: float32}}}\n")
    run = aotbuild(["query", "//...", "--output", "json"], ws)
    assert run.code == 0, run.output
    assert {row["label"]: row["device"] for row in json.loads(run.stdout)} == {"//good:a": "cpu", "//gpu:g": "cuda"}
