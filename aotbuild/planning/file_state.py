"""Has a file changed since the plan read it? Stat signatures as a fast filter, content hashes as the answer.

Like git's index: an unchanged stat signature (mtime, ctime, size, inode) means unchanged content, except for
files modified so close to when the plan read them that a later edit could share their timestamps ("racily
clean"), which are always hashed. ctime cannot be set back by users, so an edit that restores an older mtime
still changes the signature, and the content hash decides.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from aotbuild.hashing import sha256_bytes
from aotbuild.workspace.discovery import MAX_SOURCE_BYTES  # noqa: F401 - planning's name for it

# Timestamps come from a coarse clock (a jiffy, up to 10 ms); a second of margin covers it with room to spare.
RACY_NS = 1_000_000_000


def signature(path: str) -> list[int] | None:
    """[mtime_ns, ctime_ns, size, inode] of `path` (symlinks followed), or None when it is missing."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]


def digest(data: bytes) -> str:
    return sha256_bytes(data)


@dataclass(frozen=True)
class FileState:
    """What the plan saw of one file: stat signature, sha256 of the content (None: missing), and whether the
    file was modified so shortly before it was read that its signature cannot be trusted (then always hash)."""

    sig: list[int] | None
    sha256: str | None
    racy: bool = False

    def to_json(self) -> list:
        return [self.sig, self.sha256, self.racy]

    @staticmethod
    def from_json(data: list) -> FileState:
        return FileState(data[0], data[1], data[2])


def observe(sig: list[int] | None, data: bytes | None, read_at_ns: int) -> FileState:
    """The state of a file whose signature was taken, then content read, starting at `read_at_ns`."""
    racy = sig is not None and max(sig[0], sig[1]) >= read_at_ns - RACY_NS
    return FileState(sig, None if data is None else digest(data), racy)


def read_state(path: str, limit: int) -> tuple[FileState, bytes | None]:
    """The file's state and content (None when missing, unreadable, or over `limit` bytes, which are never read
    whole; then the state's sha256 field says which: None, "error:<why>" or "size:<bytes>").

    Signature first, then content: an edit in between shows up as a moved signature next time."""
    now = time.time_ns()
    sig = signature(path)
    data: bytes | None = None
    problem = None
    if sig is not None and sig[2] <= limit:
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError):
            sig = None
        except OSError as e:  # a directory, no permission: the file stays, but unreadable
            problem = f"error:{e.strerror}"
    state = observe(sig, data, now)
    if problem is not None:
        state = FileState(sig, problem, state.racy)
    elif sig is not None and (data is None or len(data) > limit):
        # Too large to hash cheaply: its size stands in for its content, so growing or shrinking it re-plans.
        state, data = FileState(sig, f"size:{max(sig[2], len(data or b''))}", state.racy), None
    return state, data


def verdict(path: str, recorded: FileState, limit: int) -> tuple[bool, FileState | None]:
    """(changed, new state): whether the content differs from `recorded`, and the state worth recording when
    the signature moved but the content did not (None when there is nothing new to record)."""
    sig = signature(path)
    if sig == recorded.sig and not recorded.racy:
        return False, None
    state, _ = read_state(path, limit)
    if state.sha256 != recorded.sha256:
        return True, state
    return False, (state if state != recorded else None)
