"""The planning lock: two commands re-planning one workspace at once would interleave their writes."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if need be), released by the kernel when the descriptor
    closes, a killed process's too: `filelock`'s lock on Unix, without its import (a tenth of a first plan)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children (PEP 446)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
