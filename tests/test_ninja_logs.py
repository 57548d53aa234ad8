"""ninja's build log, deps log and command evaluation, checked against the real ninja binary of the wheel."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import ninja
import pytest

from aotbuild.ninja import logs, runner

NINJA = str(Path(ninja.BIN_DIR) / "ninja")


def _ninja(cwd: Path, *args: str) -> str:
    proc = subprocess.run([NINJA, *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _log_hashes(cwd: Path) -> dict[str, str]:
    lines = (cwd / ".ninja_log").read_text().splitlines()
    assert lines[0] == "# ninja log v7"
    return {line.split("\t")[3]: line.split("\t")[4] for line in lines[1:]}


# Every length class of rapidhash: 1-3, 4-16, 17-32, 33-48, 49-95, 96, more than 96 bytes.
COMMANDS = [":", "ls", "pwd", "true", "true 12345678901", "true 123456789012", "true " + "a" * 20,
            "true " + "b" * 40, "true " + "c" * 43, "true " + "d" * 44, "true " + "e" * 80, "true " + "f" * 91,
            "true " + "g" * 300, "true 'quoted $x' \"and\" \\ back"]


def test_rapidhash_is_the_hash_ninja_logs(tmp_path: Path) -> None:
    lines = []
    for i, command in enumerate(COMMANDS):
        lines += [f"rule r{i}", f"  command = {command.replace('$', '$$')}", f"build o{i}: r{i}"]
    (tmp_path / "build.ninja").write_text("\n".join(lines) + "\n")
    _ninja(tmp_path)
    hashes = _log_hashes(tmp_path)
    assert {f"o{i}": format(logs.rapidhash(c.encode()), "x") for i, c in enumerate(COMMANDS)} == hashes


def test_ninja_answers_each_edge_s_command_once(tmp_path: Path) -> None:
    (tmp_path / ".aotbuild").mkdir()
    (tmp_path / ".aotbuild" / "build.ninja").write_text("rule r\n  command = echo $out $$HOME 'q'\nbuild a b: r\nbuild c: r\n")
    assert runner.commands(NINJA, tmp_path, ["a", "c"]) == ["echo a b $HOME 'q'", "echo c $HOME 'q'"]
    assert runner.commands(NINJA, tmp_path, ["a", "nowhere"]) is None


@pytest.mark.parametrize("path", ["a//b", "a/./b", "a/../b", "./a", "a/", "a\tb", ""])
def test_paths_the_logs_cannot_hold_are_refused(path: str) -> None:
    with pytest.raises(logs.FormatError):
        logs.check_path(path)


DEPS_RULES = """
rule gen
  command = cp $in $out && printf '%s: %s\\n' $out $$PWD/$dep > $out.d
  depfile = $out.d
  deps = gcc
  restat = 1
rule copy
  command = cp $in $out
  restat = 1
"""


def _deps_workspace(tmp_path: Path) -> Path:
    (tmp_path / "build.ninja").write_text(DEPS_RULES + "build a.out: gen a.in\n  dep = h1\n"
                                          "build b.out: gen b.in\n  dep = h1\n" "build c.out: copy a.in\n")
    for name in ("a.in", "b.in", "h1"):
        (tmp_path / name).write_text(name)
    return tmp_path


def _finished(ws: Path, output: str, command: str, inputs: list[str], deps: tuple[str, ...] | None) -> logs.Finished:
    mtimes = [os.stat(ws / p).st_mtime_ns for p in [output, *inputs, *(deps or ())]]
    return logs.Finished((output,), command, max(mtimes), deps,
                         (os.stat(ws / output).st_mtime_ns,) if deps is not None else ())


def test_appended_edges_are_up_to_date_for_ninja_and_dirty_again_on_change(tmp_path: Path) -> None:
    ws = _deps_workspace(tmp_path)
    _ninja(ws, "a.out")  # ninja's own deps log and build log come first; ours are appended to them
    (ws / "b.out").write_text("b.in")
    (ws / "c.out").write_text("a.in")
    h1 = str(ws / "h1")
    ninja_cmd = f"cp b.in b.out && printf '%s: %s\\n' b.out $PWD/h1 > b.out.d"
    logs.append(NINJA, ws, [_finished(ws, "b.out", ninja_cmd, ["b.in"], (h1,)),
                     _finished(ws, "c.out", "cp a.in c.out", ["a.in"], None)])
    assert "no work to do" in _ninja(ws, "-n")
    assert h1 in _ninja(ws, "-t", "deps", "b.out")
    os.utime(ws / "h1", ns=(os.stat(ws / "h1").st_mtime_ns + 10**9,) * 2)  # a discovered dependency changed
    explained = subprocess.run([NINJA, "-n", "-d", "explain"], cwd=ws, capture_output=True, text=True).stderr
    assert "b.out" in explained and "a.out" in explained


def test_a_wrong_command_is_not_up_to_date(tmp_path: Path) -> None:
    ws = _deps_workspace(tmp_path)
    (ws / "a.out").write_text("a.in")
    (ws / "c.out").write_text("a.in")
    logs.append(NINJA, ws, [_finished(ws, "c.out", "cp a.in c.out # not the rule", ["a.in"], None)])
    assert "command line changed for c.out" in subprocess.run(
        [NINJA, "-n", "-d", "explain", "c.out"], cwd=ws, capture_output=True, text=True).stderr


def test_other_log_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / ".ninja_log").write_text("# ninja log v6\n")
    with pytest.raises(logs.FormatError):
        logs.append(NINJA, tmp_path, [])
    (tmp_path / ".ninja_log").unlink()
    (tmp_path / ".ninja_deps").write_bytes(b"# ninjadeps\n" + struct.pack("<i", 3))
    with pytest.raises(logs.FormatError):
        logs.check_logs(tmp_path)
    (tmp_path / ".ninja_deps").write_bytes(b"# ninjadeps\n" + struct.pack("<i", 4) + b"\x10\x00")  # cut short
    with pytest.raises(logs.FormatError):
        logs.check_logs(tmp_path)


def test_deps_log_ids_read_back_what_ninja_wrote(tmp_path: Path) -> None:
    ws = _deps_workspace(tmp_path)
    _ninja(ws, "a.out", "b.out")
    ids = logs.check_logs(ws)
    assert sorted(ids.values()) == list(range(len(ids)))
    assert {"a.out", "b.out", str(ws / "h1")} <= set(ids)


def test_the_version_gate_admits_the_tested_range_only(tmp_path: Path) -> None:
    assert logs.refusal(NINJA) is None
    fake = tmp_path / "ninja"
    for version in ("1.12.1", "1.14.0", "1.1", "junk"):
        fake.write_text(f"#!/bin/sh\necho {version}\n")
        fake.chmod(0o755)
        assert logs.TESTED_PIN in logs.refusal(str(fake))
        with pytest.raises(logs.FormatError):  # every writer checks the gate itself
            logs.append(str(fake), tmp_path, [])
    assert logs.refusal(str(tmp_path / "absent")) is not None


def test_the_gate_is_the_range_pyproject_pins() -> None:
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert f'"{logs.TESTED_PIN}"' in pyproject


def test_the_version_is_asked_once_per_binary_file(tmp_path: Path) -> None:
    builddir = tmp_path / "builddir"
    builddir.mkdir()
    fake = tmp_path / "ninja"
    fake.write_text(f"#!/bin/sh\necho asked >> {tmp_path / 'asked'}\necho 1.13.1\n")
    fake.chmod(0o755)
    assert logs.refusal(str(fake), builddir) is None
    assert logs.refusal(str(fake), builddir) is None  # kept: not asked again
    assert (tmp_path / "asked").read_text() == "asked\n"
    fake.write_text(f"#!/bin/sh\necho asked >> {tmp_path / 'asked'}\necho 1.12.1\n")  # another file now
    assert logs.refusal(str(fake), builddir) is not None
    assert (tmp_path / "asked").read_text() == "asked\nasked\n"
