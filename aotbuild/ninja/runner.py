"""Run the ninja binary from the `ninja` wheel on aot-out/.aotbuild/build.ninja."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from aotbuild import layout
from aotbuild.engine.interrupts import forwarded


def _ninja(binary: str, out_dir: Path, manifest: str = layout.NINJA_FILE) -> list[str]:
    """ninja run from aot-out/ on aotbuild's build file, which lives in the state dir, apart from targets."""
    return [binary, "-C", str(out_dir), "-f", manifest]


def run_ninja(binary: str, out_dir: Path, goals: list[str], *, jobs: int | None, keep_going: bool, explain: bool,
              env: Mapping[str, str], pass_fds: tuple[int, ...] = (), log: Path | None = None,
              manifest: str = layout.NINJA_FILE) -> int:
    """Run ninja with our stdout/stderr so a terminal gets its live status line; returns its exit code.

    With `log`, its output goes to that file instead, for a pass whose expected failures are not news.
    `binary` is the `ninja` package's executable, recorded in the plan (importing the package costs 10 ms).
    A signal to the CLI stops ninja and every action (interrupts.forwarded), then raises Interrupted;
    `pass_fds` are inherited by ninja and its actions (the workspace lock and the cache lease). `manifest`:
    another ninja file than build.ninja, relative to aot-out/ (engine/scoped_run.py)."""
    cmd = _ninja(binary, out_dir, manifest)
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


def discovered_deps(binary: str, out_dir: Path, outputs: list[str]) -> dict[str, list[str]]:
    """The dependencies ninja recorded from depfiles (`ninja -t deps`), per output; empty if never built."""
    proc = subprocess.run([*_ninja(binary, out_dir), "-t", "deps", *outputs], capture_output=True, text=True,
                          check=False)
    found: dict[str, list[str]] = {o: [] for o in outputs}
    current = None
    for line in proc.stdout.splitlines():
        if line and not line.startswith(" "):
            current = line.split(":", 1)[0]
        elif line.strip() and current in found:
            found[current].append(line.strip())
    return found


def restat(binary: str, out_dir: Path, *outputs: str) -> None:
    """Tell ninja's log the generator edge's outputs are as new as they are now, after aotbuild re-planned by
    itself; a no-op before ninja's first run. (`ninja -t restat` cannot: it ignores builddir and looks for
    aot-out/.ninja_log.) A generator edge's command hash is never compared, only its log mtime, which must not
    be older than the BUILD files, or ninja would plan once more. Another ninja log format: left alone, which
    costs one extra (no-op) plan, never correctness."""
    from aotbuild.ninja import logs

    builddir = out_dir / layout.NINJA_BUILDDIR
    if not (builddir / logs.BUILD_LOG).exists():
        return
    try:
        logs.check_ninja(binary, builddir)
        mtime = max(os.stat(out_dir / o).st_mtime_ns for o in outputs)
        logs.append(builddir, [logs.Finished(tuple(outputs), "aotbuild plan (generator)", mtime)])
    except (logs.FormatError, FileNotFoundError):
        pass