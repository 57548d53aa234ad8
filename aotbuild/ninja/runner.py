"""Run the ninja binary from the `ninja` wheel on aot-out/.aotbuild/build.ninja."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from aotbuild import layout
from aotbuild.interrupts import forwarded


def _ninja(binary: str, out_dir: Path) -> list[str]:
    """ninja run from aot-out/ on aotbuild's build file, which lives in the state dir, apart from targets."""
    return [binary, "-C", str(out_dir), "-f", layout.NINJA_FILE]


def run_ninja(binary: str, out_dir: Path, goals: list[str], *, jobs: int | None, keep_going: bool, explain: bool,
              env: Mapping[str, str], pass_fds: tuple[int, ...] = (), log: Path | None = None) -> int:
    """Run ninja with our stdout/stderr so a terminal gets its live status line; returns its exit code.

    With `log`, its output goes to that file instead, for a pass whose expected failures are not news.
    `binary` is the `ninja` package's executable, recorded in the plan (importing the package costs 10 ms).
    A signal to the CLI stops ninja and every action (interrupts.forwarded), then raises Interrupted;
    `pass_fds` are inherited by ninja and its actions (the workspace lock and the cache lease)."""
    cmd = _ninja(binary, out_dir)
    if jobs is not None:
        cmd += ["-j", str(jobs)]
    if keep_going:
        cmd += ["-k", "0"]
    if explain:
        cmd += ["-d", "explain"]
    if log is None and sys.stdout.isatty() and os.environ.get("TERM", "dumb") != "dumb":
        from aotbuild.ninja import progress  # our own progress line: elapsed time and what is running

        proc, terminal = progress.start(cmd + goals, {**os.environ, **env}, pass_fds)
        with forwarded(proc):
            return progress.show(proc, terminal, sys.stdout)
    if log is None:
        proc = subprocess.Popen(cmd + goals, env={**os.environ, **plain_status(os.environ), **env},
                                pass_fds=pass_fds)
        with forwarded(proc):
            return proc.wait()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd + goals, env={**os.environ, **env}, pass_fds=pass_fds, stdout=out,
                                stderr=subprocess.STDOUT)
        with forwarded(proc):
            return proc.wait()


def plain_status(environ: Mapping[str, str]) -> dict[str, str]:
    """ninja's status for a log (no terminal): a count of finished edges that only goes up. ninja's default
    `[%f/%t] ` shows a total that shrinks as restat prunes edges (`[1/8]`, then `[2/5]`). A NINJA_STATUS the
    user set is theirs."""
    return {} if "NINJA_STATUS" in environ else {"NINJA_STATUS": "[%f done] "}


def is_up_to_date(binary: str, out_dir: Path, goal: str) -> bool:
    """Ask ninja (dry run) whether `goal` needs no work."""
    proc = subprocess.run([*_ninja(binary, out_dir), "-n", goal], capture_output=True, text=True, check=False)
    return proc.returncode == 0 and "no work to do" in proc.stdout


def commands(binary: str, out_dir: Path, outputs: list[str]) -> list[str] | None:
    """The command of the edge making each of `outputs` (one output per edge), as ninja itself evaluates it
    (`ninja -t commands -s`); None where ninja does not answer exactly one line for each."""
    found: list[str] = []
    batch: list[str] = []
    for i, output in enumerate(outputs):
        batch.append(output)
        if i + 1 == len(outputs) or sum(map(len, batch)) > 500_000:  # far below the kernel's limit on arguments
            proc = subprocess.run([*_ninja(binary, out_dir), "-t", "commands", "-s", *batch], capture_output=True,
                                  check=False)
            lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
            if proc.returncode or len(lines) != len(batch):
                return None
            found += lines
            batch = []
    return found

