"""The Store protocol every cache backend implements (local, HTTP, S3), and the entry format they share."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from aotbuild.errors import CacheError, InfraError
from aotbuild.hashing import CHUNK, canonical_json, sha256_bytes

Kind = Literal["cas", "ac"]
_HEX64 = re.compile(r"[0-9a-f]{64}")


class RemoteError(InfraError):
    """A remote cache is unreachable, refuses us, or answers errors; the message never holds credentials."""


class IntegrityError(InfraError):
    """Bytes from a remote are not what their digest or key says: never used, reported, rebuilt locally."""


class Store(Protocol):
    """One cache backend. Keys and digests are 64 lowercase hex characters.

    A miss is None/False, never an exception; RemoteError means the backend itself failed. Blobs stream
    between disk and backend (artifacts can be large), and get_blob writes `dest` only with verified bytes."""

    def get_blob(self, digest: str, dest: Path) -> bool: ...

    def put_blob(self, digest: str, src: Path) -> None: ...

    def get_action(self, key: str) -> dict[str, Any] | None: ...

    def put_action(self, key: str, value: dict[str, Any]) -> None: ...

    def contains(self, kind: Kind, key: str) -> bool: ...

    def stats(self) -> dict[str, Any]: ...


def check_hex(what: str, value: str) -> str:
    # Keys become URL and path components: anything but 64 lowercase hex could escape the prefix.
    if not (isinstance(value, str) and _HEX64.fullmatch(value)):
        raise CacheError(f"invalid cache {what} {value!r}: expected 64 lowercase hex characters")
    return value


def encode_action(key: str, value: dict[str, Any]) -> bytes:
    """The same self-checking document the local store keeps: key, checksum of the payload, payload."""
    return canonical_json({"key": key, "sha256": sha256_bytes(canonical_json(value)), "payload": value})


def decode_action(key: str, raw: bytes, where: str) -> dict[str, Any]:
    """The payload of an encoded entry; IntegrityError if it is damaged or filed under the wrong key."""
    try:
        doc = json.loads(raw)
        payload = doc["payload"]
        ok = (isinstance(payload, dict) and doc.get("key") == key
              and doc.get("sha256") == sha256_bytes(canonical_json(payload)))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise IntegrityError(f"remote cache {where}/ac/{key} is not a valid action entry for its key")
    blobs = payload.get("blobs", [])
    if not (isinstance(blobs, list) and all(isinstance(d, str) and _HEX64.fullmatch(d) for d in blobs)):
        raise IntegrityError(f"remote cache {where}/ac/{key} lists malformed blob digests")
    return payload


@contextmanager
def verified_download(dest: Path, digest: str, where: str) -> Iterator[BinaryIO]:
    """A file to stream a blob into; on exit its sha256 is checked and it is renamed onto `dest`. Other bytes
    raise IntegrityError, and any failure (a body cut short included) leaves `dest` untouched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.download")
    hashing = _HashingWriter(open(tmp, "wb"))
    try:
        with hashing.file:
            yield hashing  # type: ignore[misc]
            hashing.file.flush()
            os.fsync(hashing.file.fileno())
        got = hashing.sha256.hexdigest()
        if got != digest:
            raise IntegrityError(f"remote cache {where}/cas/{digest} failed its digest check ({hashing.size} bytes hash to "
                                 f"{got[:16]}...)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


class _HashingWriter:
    """A writable file that hashes what passes through it."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)


def copy_stream(src: BinaryIO, dst: Any, limit: int | None = None) -> int:
    """Copy in CHUNK pieces (never the whole file in memory); returns the bytes copied."""
    n = 0
    while limit is None or n < limit:
        chunk = src.read(CHUNK if limit is None else min(CHUNK, limit - n))
        if not chunk:
            break
        dst.write(chunk)
        n += len(chunk)
    return n
