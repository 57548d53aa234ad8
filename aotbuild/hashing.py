"""Digests and canonical JSON: the one way keys are derived from data."""

from __future__ import annotations

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


class HashingWriter:
    """A writable file that hashes what passes through it."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        import hashlib

        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)


def key_of(kind: str, value: Any) -> str:
    """A cache key: the digest of a kind tag and a JSON-able value (kinds keep key spaces apart)."""
    return sha256_bytes(canonical_json({"kind": kind, "value": value}))
