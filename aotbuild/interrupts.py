"""Interrupting a build: the first SIGINT/SIGTERM/SIGHUP stops ninja and every action's group, a second kills."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType

from aotbuild.errors import AotbuildError
from aotbuild.text import plural

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 10.0  # after ninja exits, how long an action group may take to clean up before it is killed


class Interrupted(AotbuildError):
    """The build was stopped by a signal; every action it started has ended. Exit code 128 + signal."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}; every running action was stopped")


@dataclass
class _State:
    signals: list[int] = field(default_factory=list)
    groups: set[int] = field(default_factory=set)  # process groups of ninja's actions seen so far


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc; empty where it is unavailable)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: parse after its last ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _send(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


@contextlib.contextmanager
def forwarded(proc: subprocess.Popen) -> Iterator[_State]:
    """While the block runs, the first signal stops ninja and its actions gently, a second one kills them.

    ninja starts each action in a process group of its own, so a signal to the CLI (or its group) alone would
    never reach a running compile. On leaving after an interrupt, waits until every action group is gone
    (killing stragglers after GRACE_S) and raises Interrupted."""
    state = _State()

    def handle(signum: int, frame: FrameType | None) -> None:
        state.signals.append(signum)
        for pid in children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                state.groups.add(os.getpgid(pid))
        state.groups.discard(os.getpgrp())
        first = len(state.signals) == 1
        if first:
            print(f"\naotbuild: {signal.Signals(signum).name}: stopping {plural(len(state.groups), 'running action')}; "
                  "press Ctrl-C again to kill them", file=sys.stderr, flush=True)
        for pgid in state.groups:
            _send(pgid, signum if first else signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum if first else signal.SIGKILL)

    previous = {s: signal.signal(s, handle) for s in SIGNALS}
    try:
        yield state
        if state.signals:
            proc.wait()
            _wait_for_groups(state)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if state.signals:
        raise Interrupted(state.signals[0])


def _wait_for_groups(state: _State) -> None:
    """ninja waits for its direct children only; their own children (the compiler) may linger a moment."""
    deadline = time.monotonic() + GRACE_S
    while any(_group_alive(g) for g in state.groups):
        if time.monotonic() > deadline or len(state.signals) > 1:
            for pgid in state.groups:
                _send(pgid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)
