"""The progress line on a terminal: elapsed time, what each running action is doing, counts that only go up,
and everything else ninja prints passed through unchanged."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import ninja
import pytest

from aotbuild import layout
from aotbuild.ninja import progress, runner

# What ninja 1.13 printed on a pseudo-terminal with progress.NINJA_STATUS for the build below (-j 2 -k 0).
STREAM = (b"\r\x1d1 0\x1dcompile //m:a\x1b[K\r\x1d2 0\x1dcompile //m:b\x1b[K\r\x1d2 1\x1dcompile //m:a\x1b[K\r\n"
          b"out-a\r\n\r\x1d3 1\x1dspec m/@c/compile.json\x1b[K\r\x1d3 2\x1dspec m/@c/compile.json\x1b[K"
          b"\r\x1d4 2\x1dexport //m:d\x1b[K\r\x1d4 3\x1dexport //m:d\x1b[K\r\n\x1b[31mFAILED: [code=1] \x1b[0md \r\n"
          b"echo failing; exit 1\r\nfailing\r\n\r\x1d4 4\x1dcompile //m:b\x1b[K\r\n"
          b"ninja: build stopped: cannot make progress due to previous errors.\r\n")
SHOWN = (b"out-a\n\x1b[31mFAILED: [code=1] \x1b[0md \necho failing; exit 1\nfailing\n"
         b"ninja: build stopped: cannot make progress due to previous errors.\n")


def test_status_prints_are_taken_out_and_the_rest_is_shown() -> None:
    state = parser = progress.Progress()
    assert parser.feed(STREAM) + parser.flush() == SHOWN
    assert (state.started, state.finished, state.done, +state.running) == (4, 4, 3, progress.Counter())


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16])
def test_any_chunking_of_the_stream_gives_the_same_result(size: int) -> None:
    state = parser = progress.Progress()
    shown = b"".join(parser.feed(STREAM[i:i + size]) for i in range(0, len(STREAM), size)) + parser.flush()
    assert shown == SHOWN and (state.started, state.finished, state.done) == (4, 4, 3)


def test_the_line_names_what_runs_by_verb_and_counts_finished_actions_only() -> None:
    state = progress.Progress()
    lines = []
    for started, finished, description in [(1, 0, "compile //m:b"), (2, 0, "export //m:c"), (3, 0, "compile //m:a"),
                                           (4, 0, "spec m/@d/export.json"), (4, 1, "spec m/@d/export.json"),
                                           (4, 2, "compile //m:b"), (4, 3, "export //m:c")]:
        state.status(started, finished, description)
        lines.append(state.line(65.0, 200))
    assert lines[2] == "[1m05s] 0 actions done · compiling //m:a, //m:b · exporting //m:c"
    assert lines[4] == lines[3] == lines[2]  # spec files are no actions: neither shown nor counted
    assert lines[5] == "[1m05s] 1 action done · compiling //m:a · exporting //m:c"
    assert lines[6] == "[1m05s] 2 actions done · compiling //m:a"
    assert state.line(65.0, 20) == "[1m05s] 2 actions d…"  # never wraps the terminal


def test_the_line_says_on_which_cluster_node_an_action_runs() -> None:
    where = {"//m:a": "10.0.0.7/3fa2c1"}  # the executor broker's map, updated while the build runs
    state = progress.Progress(where=where)
    state.status(1, 0, "compile //m:a")
    state.status(2, 0, "compile //m:b")
    assert state.line(3.0, 200) == "[3s] 0 actions done · compiling //m:a on 10.0.0.7/3fa2c1, //m:b"
    where.pop("//m:a")
    assert state.line(3.0, 200) == "[3s] 0 actions done · compiling //m:a, //m:b"


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (59.9, "59s"), (65, "1m05s"), (3600 + 125, "1h02m")])
def test_elapsed_text(seconds: float, text: str) -> None:
    assert progress.elapsed_text(seconds) == text


BUILD = """rule s
  command = sleep $t && echo out-$out
  description = compile //m:$out
rule f
  command = echo failing; exit 1
  description = export //m:$out
build a: s
  t = 0.2
build b: s
  t = 1.6
build c: s a
  t = 0.1
build d: f
"""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(drawn: str) -> list[str]:
    return [part for part in drawn.split("\r\x1b[K") if part.startswith("[")]


def test_run_ninja_on_a_terminal_draws_the_line_and_passes_failures_through(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / layout.STATE_DIR).mkdir()
    (tmp_path / layout.NINJA_FILE).write_text(BUILD)
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setattr(progress, "REDRAW_S", 0.1)  # redrawn every 0.1 s of silence: [1s] well before b ends
    monkeypatch.setenv("TERM", "xterm")
    rc = runner.run_ninja(str(Path(ninja.BIN_DIR) / "ninja"), tmp_path, ["a", "b", "c", "d"], jobs=2,
                          keep_going=True, explain=False, env={})
    assert rc == 1
    drawn = terminal.getvalue()
    lines = _lines(drawn)
    assert any(re.fullmatch(r"\[0s\] 0 actions done · compiling //m:a, //m:b", line) for line in lines), lines
    # Redrawn while b runs and ninja prints nothing: the time moves on its own.
    assert any(line.startswith("[1s] ") and line.endswith("compiling //m:b") for line in lines), lines
    done = [int(re.match(r"\[\w+\] (\d+) action", line)[1]) for line in lines]
    assert done == sorted(done) and done[-1] == 4, lines  # counts never go down
    # ninja's own text, once the progress line's redraws (between whole lines) are taken out.
    text = re.sub(r"\r\x1b\[K(\[[^\r\n]*)?", "", drawn)
    assert "FAILED: [code=1] \x1b[0md \necho failing; exit 1\nfailing\n" in text, drawn
    assert "out-b\n" in drawn and drawn.endswith("\r\x1b[K")  # the line is cleared for the summary
    assert "Entering directory" not in drawn


RESTAT_BUILD = """rule keep
  command = test -e $out || touch $out
  description = export //m:$out
  restat = 1
rule s
  command = touch $out
  description = compile //m:$out
build x1: keep src1
build y1: s x1
build x2: keep src2
build y2: s x2
"""


def test_without_a_terminal_the_count_of_finished_actions_only_goes_up(tmp_path: Path,
                                                                       capfd: pytest.CaptureFixture) -> None:
    (tmp_path / layout.STATE_DIR).mkdir()
    (tmp_path / layout.NINJA_FILE).write_text(RESTAT_BUILD)
    binary = str(Path(ninja.BIN_DIR) / "ninja")
    for name in ("src1", "src2"):
        (tmp_path / name).touch()
    assert runner.run_ninja(binary, tmp_path, ["y1", "y2"], jobs=1, keep_going=False, explain=False, env={}) == 0
    capfd.readouterr()
    later = (tmp_path / "y2").stat().st_mtime + 10
    for name in ("src1", "src2"):  # the x edges run again, leave their outputs as they are: restat prunes y
        os.utime(tmp_path / name, (later, later))
    assert runner.run_ninja(binary, tmp_path, ["y1", "y2"], jobs=1, keep_going=False, explain=False, env={}) == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split("] ", 1)[1] for line in lines] == ["export //m:x1", "export //m:x2"], lines
    counts = [int(re.match(r"\[(\d+) done\] ", line)[1]) for line in lines]  # ninja's [1/4], [2/3] shrank
    assert counts == [1, 2], lines


def test_a_ninja_status_the_user_set_is_kept(tmp_path: Path, capfd: pytest.CaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / layout.STATE_DIR).mkdir()
    (tmp_path / layout.NINJA_FILE).write_text(RESTAT_BUILD)
    for name in ("src1", "src2"):
        (tmp_path / name).touch()
    monkeypatch.setenv("NINJA_STATUS", "<%f of %t> ")
    binary = str(Path(ninja.BIN_DIR) / "ninja")
    assert runner.run_ninja(binary, tmp_path, ["y1"], jobs=1, keep_going=False, explain=False, env={}) == 0
    assert "<1 of 2> export //m:x1" in capfd.readouterr().out


@pytest.mark.parametrize("description, shown", [("verify //m:a", "verifying //m:a"), ("bench //m:a", "benching //m:a"),
                                                ("spec m/@a/verify.json", None), ("plan", None)])
def test_any_rule_described_as_a_verb_and_a_label_is_an_action(description: str, shown: str | None) -> None:
    state = progress.Progress()
    state.status(1, 0, description)
    assert state.line(0, 200) == "[0s] 0 actions done" + (f" · {shown}" if shown else "")
    state.status(1, 1, description)
    assert state.done == (1 if shown else 0)
