"""One build per workspace at a time, with a lock that outlives a killed CLI for as long as its actions run."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[int]:
    """Hold an flock on `path`; yields the descriptor, which the caller passes on to ninja.

    ninja and every action inherit the descriptor, so if the CLI is SIGKILLed while they keep running, the
    lock stays held until the last of them exits and the next build waits instead of overlapping them.
    Closing (never LOCK_UN, which would release it for the inheritors too) is how the CLI lets go."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("aotbuild: waiting for another build in this workspace to finish", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)
