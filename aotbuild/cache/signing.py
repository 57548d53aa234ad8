"""Ed25519 signatures on action-cache entries: CI signs what it uploads, developers verify what they download."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aotbuild.errors import UserError

PREFIX = "ed25519:"
DOMAIN = b"aotbuild-ac-v1\0"


class SignatureError(Exception):
    """An entry is unsigned, signed by a key we do not trust, or its signature does not match."""


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise UserError("signed remote-cache entries need the cryptography package\n"
                        "  fix: pip install 'aotbuild[sign]' (the cryptography package)") from None
    return ed25519


def message(key: str, payload_sha256: str) -> bytes:
    return DOMAIN + key.encode() + b"\0" + payload_sha256.encode()


def key_id(public_raw: bytes) -> str:
    """A short name for a public key, stored beside each signature so a verifier with several keys (during a
    rotation) tries the right one."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _raw(text: str, what: str) -> bytes:
    body = text.strip()
    if not body.startswith(PREFIX):
        raise UserError(f"{what}: expected '{PREFIX}<base64 of 32 bytes>', got a value starting {body[:8]!r}\n"
                        "  fix: make a key pair with `aotbuild cache keygen`")
    try:
        raw = base64.b64decode(body[len(PREFIX):], validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"{what}: not 32 bytes of base64 after '{PREFIX}'\n"
                        "  fix: copy the line `aotbuild cache keygen` printed, whole")
    return raw


def encode_public(raw: bytes) -> str:
    return PREFIX + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Signer:
    """Signs entries on their way to the remote (CI). `repr` never shows the key."""

    private: Any = field(repr=False)  # ed25519.Ed25519PrivateKey
    kid: str

    def verifier(self) -> Verifier:
        """Accepts only this signer's signatures: an uploader asks whether the remote's entry is already its own."""
        return Verifier({self.kid: self.private.public_key()})

    def sign(self, key: str, payload_sha256: str) -> dict[str, str]:
        sig = self.private.sign(message(key, payload_sha256))
        return {"alg": "ed25519", "kid": self.kid, "sig": base64.b64encode(sig).decode()}


@dataclass(frozen=True)
class Verifier:
    """Checks entries from the remote against the trusted public keys, by key id."""

    keys: dict[str, Any]  # kid -> ed25519.Ed25519PublicKey

    def verify(self, key: str, payload_sha256: str, signature: object) -> None:
        if not isinstance(signature, dict):
            raise SignatureError("unsigned")
        public = self.keys.get(signature.get("kid"))  # type: ignore[arg-type]
        if signature.get("alg") != "ed25519" or public is None:
            raise SignatureError("signed by a key this machine does not trust")
        try:
            sig = base64.b64decode(str(signature.get("sig")), validate=True)
            public.verify(sig, message(key, payload_sha256))
        except Exception:  # cryptography's InvalidSignature, or bytes that are no signature at all
            raise SignatureError("signature does not match the entry and its key") from None


def load_signer(value: str | None, file: Path | None) -> Signer | None:
    """The private key from its variable (a `ed25519:` line or PEM text) or its file; None if neither is set."""
    if not value and file is None:
        return None
    if not value:
        try:
            value = Path(file).read_text()  # type: ignore[arg-type]
        except OSError as e:
            raise UserError(f"cannot read the signing key {file}: {e.strerror}") from None
    ed25519 = _ed25519()
    if "-----BEGIN" in value:
        from cryptography.hazmat.primitives import serialization

        try:
            private = serialization.load_pem_private_key(value.encode(), password=None)
        except (ValueError, TypeError):
            private = None
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise UserError("the signing key is PEM but not an unencrypted ed25519 private key\n"
                            "  fix: openssl genpkey -algorithm ed25519 -out ci-signing.pem, or `aotbuild cache keygen`")
    else:
        private = ed25519.Ed25519PrivateKey.from_private_bytes(_raw(value, "the signing key"))
    return Signer(private, key_id(_public_raw(private.public_key())))


def load_verifier(values: list[str]) -> Verifier | None:
    """The trusted public keys (`ed25519:` lines); None when there are none (remote entries are not checked)."""
    if not values:
        return None
    ed25519 = _ed25519()
    raws = [_raw(value, "a remote-cache verify key") for value in values]
    return Verifier({key_id(raw): ed25519.Ed25519PublicKey.from_public_bytes(raw) for raw in raws})


def _public_raw(public: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate() -> tuple[str, str]:
    """A new key pair as (private, public) `ed25519:` lines."""
    from cryptography.hazmat.primitives import serialization

    private = _ed25519().Ed25519PrivateKey.generate()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    return PREFIX + base64.b64encode(raw).decode(), encode_public(_public_raw(private.public_key()))
