"""Comparing many files' stat fields with recorded ones, on two CPUs where there are two.

A no-op build at 10,000 targets stats about 45,000 paths: 0.1-0.15 s, nearly all of it the kernel's path
lookup, which two processes do in parallel (threads would not: each stat takes the GIL back to build its
result). So past a few thousand paths a forked child checks half of them, as git's preloaded index does for
its lstats, and says how it went in its exit code alone.

A build can also start() the child early, on most of the paths, while it plans and selects; the child then
writes the indexes of the paths that moved to a pipe, and same() takes them with the rest it stats itself.
"""

from __future__ import annotations

import os
import signal
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

FORK_AT = 8192  # below this, a fork (about 2 ms for a CLI holding a 10,000-target stamp) saves nothing
CHUNK = 4096  # compared a chunk at a time: a change is found without stat-ing everything after it
_EXIT = {True: 0, None: 1, False: 2}


@dataclass(frozen=True)
class Check:
    paths: Sequence[str]  # relative to the directory of `out_fd`
    field: str  # "st_mtime_ns" or "st_ctime_ns"
    recorded: bytes  # array('q') of the field, one per path
    allowed: Callable[[int], bool] | None = None  # given a path's index, whether it may have moved


def values(paths: Sequence[str], out_fd: int, field: str) -> bytes:
    """array('q') of `field` of paths that all exist; FileNotFoundError when one does not."""
    stat = os.stat
    if field == "st_mtime_ns":
        return array("q", [stat(path, dir_fd=out_fd).st_mtime_ns for path in paths]).tobytes()
    return array("q", [stat(path, dir_fd=out_fd).st_ctime_ns for path in paths]).tobytes()


class Started:
    """A child comparing the last part of some checks' paths since start(), for same() to take; `fresh` are
    the (check number, path index) of its part that same() stats again itself."""

    def __init__(self, checks: Sequence[Check], mine: list[tuple[Check, int, int]], fresh: list[tuple[int, int]],
                 pid: int, pipe: int) -> None:
        self.checks, self.mine, self.fresh, self._pid, self._pipe = list(checks), mine, fresh, pid, pipe
        self._moved: list[tuple[int, int]] | None = None
        self._done = False

    def moved(self) -> list[tuple[int, int]] | None:
        """(check number, path index) of each path of the child's part that moved; None if it failed."""
        if not self._done:
            self._done = True
            data = bytearray()
            try:
                while chunk := os.read(self._pipe, 1 << 16):
                    data += chunk
            finally:
                os.close(self._pipe)
            code = _reap(self._pid, kill=False)
            if code == 0 and len(data) % 16 == 0:
                flat = array("q", bytes(data))
                self._moved = list(zip(flat[::2], flat[1::2]))
        return self._moved

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            os.close(self._pipe)
            _reap(self._pid, kill=True)


def start(checks: Sequence[Check], out_dir: str, share: float = 0.7,
          fresh: Callable[[str], bool] | None = None) -> Started | None:
    """Fork a child comparing the last `share` of the checks' paths now; None where that is not worth it (few
    paths, one CPU) or not possible. The caller must end it: same(..., started) or cancel(). Paths for which
    `fresh` is true are stat-ed again by same() itself, whatever the child saw: those the caller may write
    before it asks (a build's own state files), which the child may have stat-ed before or after."""
    total = sum(len(check.paths) for check in checks)
    if total < FORK_AT or _cpus() < 2 or any(len(c.recorded) != 8 * len(c.paths) for c in checks):
        return None
    mine, theirs = _halves([(check, 0, len(check.paths)) for check in checks], int(total * (1 - share)))
    number = {id(check): n for n, check in enumerate(checks)}
    again = [] if fresh is None else [(number[id(check)], i) for check, lo, hi in theirs
                                      for i in range(lo, hi) if fresh(check.paths[i])]
    try:
        out_fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        read_end, write_end = os.pipe()
    except OSError:
        os.close(out_fd)
        return None
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for fd in (out_fd, read_end, write_end):
            os.close(fd)
        return None
    if pid == 0:  # the child: see same()
        code = 3
        try:
            os.close(read_end)
            moved = array("q")
            for check, lo, hi in theirs:
                for index in _moved(check, lo, hi, out_fd):
                    moved.extend((number[id(check)], index))
            view = memoryview(moved.tobytes())
            while view:
                view = view[os.write(write_end, view):]
            code = 0
        except BaseException:  # noqa: BLE001 - a vanished path: the parent proves nothing
            code = 3
        finally:
            os._exit(code)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(write_end)
    os.close(out_fd)
    return Started(checks, mine, again, pid, read_end)


def same(checks: Sequence[Check], out_fd: int, started: Started | None = None) -> bool | None:
    """True when every path's field is as recorded; None when only paths allowed to move moved; False
    otherwise, or an OSError (FileNotFoundError) when a path can no longer be stat-ed: either means "moved".
    With `started` (begun by start() on checks of the same paths and records), the child's part comes from it."""
    if any(len(check.recorded) != 8 * len(check.paths) for check in checks):
        return False
    if started is not None:
        if len(started.checks) != len(checks) or any(
                a.paths is not b.paths or a.recorded is not b.recorded or a.field != b.field
                for a, b in zip(started.checks, checks)):
            return False
        by_id = {id(old): new for old, new in zip(started.checks, checks)}
        result = _combine(_span(by_id[id(check)], lo, hi, out_fd) for check, lo, hi in started.mine)
        moved = started.moved()
        if result is False or moved is None:
            return False
        fresh = set(started.fresh)
        now = [(n, i) for n, i in fresh if getattr(os.stat(checks[n].paths[i], dir_fd=out_fd), checks[n].field)
               != array("q", checks[n].recorded[8 * i:8 * i + 8])[0]]
        moved = [pair for pair in moved if pair not in fresh] + now
        for number, index in moved:
            allowed = checks[number].allowed
            if allowed is None or not allowed(index):
                return False
        return None if result is None or moved else True
    spans = [(check, 0, len(check.paths)) for check in checks]
    total = sum(len(check.paths) for check in checks)
    if total < FORK_AT or _cpus() < 2:
        return _combine(_span(check, lo, hi, out_fd) for check, lo, hi in spans)
    mine, theirs = _halves(spans, total // 2)
    # No signal handler may run in the child (a ^C there would unwind into the parent's code): blocked across
    # the fork, and in the child until it exits. The parent takes them back at once.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        pid = os.fork()
    except OSError:  # no process to spare: one at a time
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return _combine(_span(check, lo, hi, out_fd) for check, lo, hi in spans)
    if pid == 0:  # the child: its half, then out, running nothing of the parent's (no atexit, no flush)
        code = 3
        try:
            code = _EXIT[_combine(_span(check, lo, hi, out_fd) for check, lo, hi in theirs)]
        except BaseException:  # noqa: BLE001 - a vanished path: the parent proves nothing
            code = 3
        finally:
            os._exit(code)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    try:
        result = _combine(_span(check, lo, hi, out_fd) for check, lo, hi in mine)
    except BaseException:
        _reap(pid, kill=True)
        raise
    code = _reap(pid, kill=result is False)
    if result is False or code not in (0, 1):
        return False
    return None if result is None or code == 1 else True


def _cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere, every CPU
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _reap(pid: int, kill: bool) -> int:
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _halves(spans: list[tuple[Check, int, int]], first: int
            ) -> tuple[list[tuple[Check, int, int]], list[tuple[Check, int, int]]]:
    """`spans` cut after `first` paths."""
    mine: list[tuple[Check, int, int]] = []
    theirs: list[tuple[Check, int, int]] = []
    for check, lo, hi in spans:
        take = max(0, min(hi - lo, first))
        if take:
            mine.append((check, lo, lo + take))
        if lo + take < hi:
            theirs.append((check, lo + take, hi))
        first -= take
    return mine, theirs


def _combine(results: Iterable[bool | None]) -> bool | None:
    moved = False
    for result in results:
        if result is False:
            return False
        moved = moved or result is None
    return None if moved else True


def _moved(check: Check, lo: int, hi: int, out_fd: int) -> Iterator[int]:
    """The indexes in [lo, hi) of the paths whose field differs from the record, compared a chunk at a time."""
    for start in range(lo, hi, CHUNK):
        end = min(start + CHUNK, hi)
        now = values(check.paths[start:end], out_fd, check.field)
        before = check.recorded[8 * start:8 * end]
        if now != before:
            yield from (start + i for i, (a, b) in enumerate(zip(array("q", now), array("q", before))) if a != b)


def _span(check: Check, lo: int, hi: int, out_fd: int) -> bool | None:
    moved = False
    for index in _moved(check, lo, hi, out_fd):
        if check.allowed is None or not check.allowed(index):
            return False
        moved = True
    return None if moved else True
