"""Interrupting a build: the first SIGINT/SIGTERM/SIGHUP stops ninja and every action's group, a second kills."""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from aotbuild.errors import AotbuildError
from aotbuild.text import plural

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 10.0  # after ninja exits, how long an action group may take to clean up before it is killed


class Interrupted(AotbuildError):
    """The build was stopped by a signal; every action it started has ended. Exit code 128 + signal."""

    def __init__(self, signum: int) -> None:
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}; every running action was stopped")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc; empty where it is unavailable)."""
    found = []
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            stat = Path(path).read_bytes()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: parse after its last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(path.split("/")[2]))
    return found


def _send(pgid: int, signum: int) -> bool:
    """Signal a process group (0 only checks it); False once the group is gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


@contextlib.contextmanager
def forwarded(proc: subprocess.Popen) -> Iterator[None]:
    """While the block runs, the first signal stops ninja and its actions gently, a second one kills them.

    ninja starts each action in a process group of its own, so a signal to the CLI (or its group) alone would
    never reach a running compile. On leaving after an interrupt, waits until every action group is gone
    (killing stragglers after GRACE_S) and raises Interrupted."""
    signals: list[int] = []
    groups: set[int] = set()  # process groups of ninja's actions seen so far

    def handle(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)
        for pid in children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(pid))
        groups.discard(os.getpgrp())
        first = len(signals) == 1
        if first:
            print(f"\naotbuild: {signal.Signals(signum).name}: stopping {plural(len(groups), 'running action')}; "
                  "press Ctrl-C again to kill them", file=sys.stderr, flush=True)
        for pgid in groups:
            _send(pgid, signum if first else signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum if first else signal.SIGKILL)

    previous = {s: signal.signal(s, handle) for s in SIGNALS}
    try:
        yield
        if signals:
            proc.wait()
            _wait_for_groups(groups, signals)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if signals:
        raise Interrupted(signals[0])


def _wait_for_groups(groups: set[int], signals: list[int]) -> None:
    """ninja waits for its direct children only; their own children (the compiler) may linger a moment."""
    deadline = time.monotonic() + GRACE_S
    while any(_send(g, 0) for g in groups):
        if time.monotonic() > deadline or len(signals) > 1:
            for pgid in groups:
                _send(pgid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)
