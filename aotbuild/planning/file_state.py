"""Has a file changed since it was read? Stat signatures as a fast filter, content digests as the answer."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from aotbuild.hashing import sha256_bytes

# Timestamps come from a coarse clock (a jiffy, up to 10 ms); a second of margin covers it with room to spare.
RACY_NS = 1_000_000_000


def stat_fields(path: str | os.PathLike, *fields: str) -> list[int] | None:
    """The `fields` of `path`'s stat (symlinks followed), or None when it is missing."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [getattr(st, field) for field in fields]


def signature(path: str) -> list[int] | None:
    """[mtime_ns, ctime_ns, size, inode] of `path`, or None when it is missing."""
    return stat_fields(path, "st_mtime_ns", "st_ctime_ns", "st_size", "st_ino")


@dataclass(frozen=True)
class FileState:
    """What was seen of an input: its stat signature (files only), a digest of its content (None: missing), and
    whether the signature is too fresh to vouch for that content next time ("racily clean": always hash it)."""

    sig: list[int] | None
    digest: str | None
    racy: bool = False

    def to_json(self) -> list:
        return [self.sig, self.digest, self.racy]


def observe(sig: list[int] | None, digest: str | None, read_at_ns: int) -> FileState:
    """The state of a file whose signature was taken, then content hashed, starting at `read_at_ns`."""
    return FileState(sig, digest, sig is not None and max(sig[0], sig[1]) >= read_at_ns - RACY_NS)


def read_state(path: str, limit: int) -> tuple[FileState, bytes | None]:
    """The file's state and content: None when missing, unreadable or over `limit` bytes (never read whole), as
    the digest then says: None, "error:<why>" or "size:<bytes>" (the size standing in for the content)."""
    now = time.time_ns()
    sig = signature(path)  # before reading: an edit while reading shows as a moved signature next time
    data, digest = None, None
    if sig is not None and sig[2] <= limit:
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError):
            sig = None
        except OSError as e:  # a directory, no permission: the file stays, but unreadable
            digest = f"error:{e.strerror}"
    if data is not None and len(data) <= limit:
        digest = sha256_bytes(data)
    elif sig is not None and digest is None:
        digest, data = f"size:{max(sig[2], len(data or b''))}", None
    return observe(sig, digest, now), data


def verdict(path: str, recorded: FileState, limit: int) -> tuple[bool, FileState | None]:
    """(changed, new state): whether the content differs from `recorded`, and the state worth recording when
    the signature moved but the content did not (None when there is nothing new to record)."""
    if signature(path) == recorded.sig and not recorded.racy:
        return False, None
    state, _ = read_state(path, limit)
    if state.digest != recorded.digest:
        return True, state
    return False, (state if state != recorded else None)
