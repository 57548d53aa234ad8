"""The Store protocol every cache backend implements (local, HTTP, S3), and the entry format they share."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, Protocol

from aotbuild.cache.signing import SignatureError, Signer, Verifier
from aotbuild.errors import CacheError, InfraError
from aotbuild.hashing import canonical_json, sha256_bytes

Kind = Literal["cas", "ac"]
_HEX64 = re.compile(r"[0-9a-f]{64}")


class RemoteError(InfraError):
    """A remote cache is unreachable, refuses us, or answers errors; the message never holds credentials."""


class IntegrityError(InfraError):
    """Bytes from a remote are not what their digest or key says: never used, reported, rebuilt locally."""


class Store(Protocol):
    """One cache backend, keys and digests 64 lowercase hex characters. A miss is None/False, RemoteError a failed
    backend; get_blob streams to `dest` only verified bytes, at most `limit` (the size the entry declared)."""

    def get_blob(self, digest: str, dest: Path, limit: int | None = None) -> bool: ...

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


def encode_action(key: str, value: dict[str, Any], signer: Signer | None = None) -> bytes:
    """The same self-checking document the local store keeps: key, checksum of the payload, payload; and, on
    its way to a remote from a signing machine (CI), a signature over key and checksum."""
    checksum = sha256_bytes(canonical_json(value))
    doc: dict[str, Any] = {"key": key, "sha256": checksum, "payload": value}
    if signer is not None:
        doc["signature"] = signer.sign(key, checksum)
    return canonical_json(doc)


def parse_action(key: str, raw: bytes) -> tuple[dict[str, Any], str, object] | None:
    """(payload, its checksum, the signature if any) of a sound entry filed under `key` whose blobs are digests,
    or None if it is damaged or filed under the wrong key (a sound entry copied into the wrong place)."""
    try:
        doc = json.loads(raw)
        payload, checksum = doc["payload"], doc.get("sha256")
        blobs = payload.get("blobs", []) if isinstance(payload, dict) else None
        ok = (isinstance(blobs, list) and all(is_hex(d) for d in blobs) and doc.get("key") == key
              and checksum == sha256_bytes(canonical_json(payload)))
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return (payload, checksum, doc.get("signature")) if ok else None


def decode_action(key: str, raw: bytes, where: str, verifier: Verifier | None = None) -> dict[str, Any]:
    """The payload of an encoded remote entry; IntegrityError if it is damaged, filed under the wrong key, or
    (with a verifier) unsigned or not signed by a trusted key for this key and payload."""
    checked = parse_action(key, raw)
    if checked is None:
        raise IntegrityError(f"remote cache {where}/ac/{key} is not a valid action entry for its key")
    payload, checksum, signature = checked
    if verifier is not None:
        try:
            verifier.verify(key, checksum, signature)
        except SignatureError as e:
            raise IntegrityError(f"remote cache {where}/ac/{key} failed its signature check ({e})") from None
    return payload
