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
    """Hold an flock on `path`; yields the descriptor, which ninja and every action inherit: a SIGKILLed CLI's
    lock stays held until the last of them exits. Closing it (never LOCK_UN, which would release it for the
    inheritors too) is how the CLI lets go."""
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
