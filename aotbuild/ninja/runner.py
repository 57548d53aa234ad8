"""Run the ninja binary from the `ninja` wheel on aot-out/.aotbuild/build.ninja."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from aotbuild import layout
from aotbuild.interrupts import forwarded


def run_ninja(binary: str, out_dir: Path, goals: list[str], *, jobs: int | None, keep_going: bool, explain: bool,
              env: Mapping[str, str], pass_fds: tuple[int, ...] = (), log: Path | None = None,
              where: Mapping[str, str] | None = None) -> int:
    """Run ninja on `goals`; its exit code. A terminal gets our progress line, `log` (for a pass whose expected
    failures are not news) all of ninja's output. A signal to the CLI stops ninja and every action."""
    # aotbuild's build file lives in the state dir; ninja runs in aot-out/ (its cwd: `-C` would announce
    # "Entering directory", noise on the progress line).
    cmd = [binary, "-f", layout.NINJA_FILE]
    if jobs is not None:
        cmd += ["-j", str(jobs)]
    if keep_going:
        cmd += ["-k", "0"]
    if explain:
        cmd += ["-d", "explain"]
    cmd += goals
    if log is None and sys.stdout.isatty() and os.environ.get("TERM", "dumb") != "dumb":
        from aotbuild.ninja import progress

        return progress.run(cmd, out_dir, {**os.environ, **env}, pass_fds, sys.stdout, where)
    with open(log, "wb") if log is not None else contextlib.nullcontext() as out:
        # Without a terminal, ninja's status is a count of finished edges that only goes up (its default
        # `[%f/%t] ` shows a total that shrinks as restat prunes edges). A NINJA_STATUS the user set is theirs.
        proc = subprocess.Popen(cmd, cwd=out_dir, env={"NINJA_STATUS": "[%f done] ", **os.environ, **env},
                                pass_fds=pass_fds, stdout=out, stderr=None if out is None else subprocess.STDOUT)
        with forwarded(proc):
            return proc.wait()


def is_up_to_date(binary: str, out_dir: Path, goal: str) -> bool:
    """Ask ninja (dry run) whether `goal` needs no work."""
    proc = subprocess.run([binary, "-f", layout.NINJA_FILE, "-n", goal], cwd=out_dir, capture_output=True, text=True)
    return proc.returncode == 0 and "no work to do" in proc.stdout


def commands(binary: str, out_dir: Path, outputs: list[str]) -> list[str] | None:
    """The command of the edge making each of `outputs` (one output per edge), as ninja itself evaluates it
    (`ninja -t commands -s`); None where ninja does not answer exactly one line for each."""
    found: list[str] = []
    batch: list[str] = []
    for i, output in enumerate(outputs):
        batch.append(output)
        if i + 1 == len(outputs) or sum(map(len, batch)) > 500_000:  # far below the kernel's limit on arguments
            proc = subprocess.run([binary, "-f", layout.NINJA_FILE, "-t", "commands", "-s", *batch], cwd=out_dir,
                                  capture_output=True, check=False)
            lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
            if proc.returncode or len(lines) != len(batch):
                return None
            found += lines
            batch = []
    return found

