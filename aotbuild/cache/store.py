"""The Store protocol every cache backend implements (local, HTTP, S3), and the entry format they share."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

from aotbuild.errors import CacheError, InfraError
from aotbuild.fsutil import copy_stream, pending_file  # noqa: F401 - copy_stream: the backends import it here
from aotbuild.hashing import HashingWriter, canonical_json, sha256_bytes

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


def is_hex(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def check_hex(what: str, value: str) -> str:
    # Keys become URL and path components: anything but 64 lowercase hex could escape the prefix or the root.
    if not is_hex(value):
        raise CacheError(f"invalid cache {what} {value!r}: expected 64 lowercase hex characters")
    return value


def encode_action(key: str, value: dict[str, Any]) -> bytes:
    """The same self-checking document the local store keeps: key, checksum of the payload, payload."""
    return canonical_json({"key": key, "sha256": sha256_bytes(canonical_json(value)), "payload": value})


def parse_action(key: str, raw: bytes) -> dict[str, Any] | None:
    """The payload of an encoded entry, or None if it is damaged or filed under the wrong key (the key check
    catches a sound entry copied or renamed into the wrong place)."""
    try:
        doc = json.loads(raw)
        payload = doc["payload"]
        ok = (isinstance(payload, dict) and doc.get("key") == key
              and doc.get("sha256") == sha256_bytes(canonical_json(payload)))
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: JSON nested thousands deep
        ok = False
    return payload if ok else None


def decode_action(key: str, raw: bytes, where: str) -> dict[str, Any]:
    """The payload of an encoded entry; IntegrityError if it is damaged or filed under the wrong key."""
    payload = parse_action(key, raw)
    if payload is None:
        raise IntegrityError(f"remote cache {where}/ac/{key} is not a valid action entry for its key")
    blobs = payload.get("blobs", [])
    if not (isinstance(blobs, list) and all(is_hex(d) for d in blobs)):
        raise IntegrityError(f"remote cache {where}/ac/{key} lists malformed blob digests")
    return payload


@contextmanager
def verified_download(dest: Path, digest: str, where: str) -> Iterator[HashingWriter]:
    """A file to stream a blob into; on exit its sha256 is checked and it is renamed onto `dest`. Other bytes
    raise IntegrityError, and any failure (a body cut short included) leaves `dest` untouched."""
    with pending_file(dest.parent, f"{dest.name}.download") as pending:
        hashing = HashingWriter(pending.file)
        yield hashing
        got = hashing.sha256.hexdigest()
        if got != digest:
            raise IntegrityError(f"remote cache {where}/cas/{digest} failed its digest check ({hashing.size} bytes hash to "
                                 f"{got[:16]}...)")
        pending.commit(dest)
