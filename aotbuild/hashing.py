"""Digests and canonical JSON: the one way keys are derived from data."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, BinaryIO

from aotbuild.fsutil import CHUNK


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no whitespace variance, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def pretty_json(value: Any) -> bytes:
    """Deterministic, human-readable JSON for files users look at (specs, manifests)."""
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def sha256_bytes(data: bytes) -> str:
    import hashlib  # here, not at the top: it loads OpenSSL, 5 ms that a no-op build (JSON only) never needs

    return hashlib.sha256(data).hexdigest()


def sha256_stream(f: BinaryIO) -> str:
    """The sha256 of what is left to read in `f`, read in CHUNK pieces (never the whole file in memory)."""
    import hashlib

    h = hashlib.sha256()
    while chunk := f.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return sha256_stream(f)


class HashingWriter(io.RawIOBase):
    """A writable file that hashes what passes through it. The digest is of the file's bytes only while they
    were written in order: `sequential` turns False when a write lands anywhere but at the end of the last."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__()
        self.file = file
        import hashlib

        self.sha256 = hashlib.sha256()
        self.size = 0
        self.sequential = True
        self._moved = False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self._moved and self.file.tell() != self.size:
            self.sequential = False
        self._moved = False
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._moved = True
        return self.file.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        self.sequential = False
        return self.file.truncate(size)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.file.seekable()

    def tell(self) -> int:
        return self.file.tell()

    def flush(self) -> None:
        self.file.flush()

    def fileno(self) -> int:
        return self.file.fileno()


def key_of(kind: str, value: Any) -> str:
    """A cache key: the digest of a kind tag and a JSON-able value (kinds keep key spaces apart)."""
    return sha256_bytes(canonical_json({"kind": kind, "value": value}))
