"""Signed action entries on the real nginx test server: what a signing build uploads a verifying build uses;
a forged, re-keyed or unsigned entry is a miss with a warning."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path

import pytest

from aotbuild.cache import signing
from aotbuild.cache.layered import LayeredStore
from aotbuild.cache.local import LocalStore
from aotbuild.cache.remote import LazyRemote
from aotbuild.cache.store import encode_action
from aotbuild.errors import UserError
from aotbuild.workspace import settings

from .remote_servers import Nginx

pytest.importorskip("cryptography")
KEY, OTHER = "1" * 64, "2" * 64


def _put(url: str, raw: bytes) -> None:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("PUT", parts.path, body=raw)
    assert conn.getresponse().status in (200, 201, 204)
    conn.close()


def _get(url: str) -> bytes:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", parts.path)
    return conn.getresponse().read()


def _layered(root: Path, url: str, *, upload: bool = False, private: str | None = None,
             public: tuple[str, ...] = ()) -> LayeredStore:
    config = settings.RemoteSettings(url=url, upload=upload, required=False, signing_key=private, verify_keys=public)
    return LayeredStore(LocalStore(root), LazyRemote(config), upload=upload)


@pytest.fixture
def signed(nginx_server: Nginx, tmp_path: Path):
    """A CI key pair, and an entry a signing build uploaded under KEY."""
    private, public = signing.generate()
    url = nginx_server.url(nginx_server.new_prefix())
    ci = _layered(tmp_path / "ci", url, upload=True, private=private)
    digest = ci.put_bytes(b"artifact bytes")
    ci.put_action(KEY, {"blobs": [digest], "graph_hash": "g" * 3})
    assert ci.warnings == [] and ci.remote_counts["uploads"] == 1
    return url, private, public


def test_a_signed_entry_is_used_by_a_verifying_build(signed, tmp_path: Path) -> None:
    url, _, public = signed
    dev = _layered(tmp_path / "dev", url, public=(public,))
    assert dev.get_action(KEY) == {"blobs": [dev.local.get_action(KEY)["blobs"][0]], "graph_hash": "ggg"}
    assert dev.warnings == [] and dev.remote_counts["hits"] == 1


def test_a_rekeyed_entry_is_refused(signed, tmp_path: Path) -> None:
    url, _, public = signed
    doc = json.loads(_get(f"{url}/ac/{KEY}"))
    doc["key"] = OTHER  # a sound, signed entry filed under another key: the signature binds the key
    _put(f"{url}/ac/{OTHER}", json.dumps(doc).encode())
    dev = _layered(tmp_path / "dev", url, public=(public,))
    assert dev.get_action(OTHER) is None and dev.local.get_action(OTHER) is None
    assert "signature does not match" in dev.warnings[0] and dev.remote is not None


@pytest.mark.parametrize("how", ["unsigned", "forged", "other key", "payload changed"])
def test_an_entry_without_a_trusted_signature_is_a_miss(signed, tmp_path: Path, how: str) -> None:
    url, _, public = signed
    value = {"blobs": [], "graph_hash": "evil"}
    if how == "unsigned":
        raw = encode_action(OTHER, value)
    elif how == "other key":
        raw = encode_action(OTHER, value, signing.load_signer(signing.generate()[0], None))
    elif how == "forged":
        doc = json.loads(encode_action(OTHER, value))
        doc["signature"] = {"alg": "ed25519", "kid": signing.key_id(signing._raw(public, "k")), "sig": "A" * 88}
        raw = json.dumps(doc).encode()
    else:  # the signed entry's payload edited, checksum recomputed
        doc = json.loads(_get(f"{url}/ac/{KEY}"))
        forged = json.loads(encode_action(KEY, value))
        doc["payload"], doc["sha256"], doc["key"] = forged["payload"], forged["sha256"], OTHER
        raw = json.dumps(doc).encode()
    _put(f"{url}/ac/{OTHER}", raw)
    dev = _layered(tmp_path / "dev", url, public=(public,))
    assert dev.get_action(OTHER) is None and dev.remote_counts["misses"] == 1
    assert len(dev.warnings) == 1 and "failed its signature check" in dev.warnings[0], dev.warnings
    without_keys = _layered(tmp_path / "trusting", url)  # no public key configured: checksums only
    assert without_keys.get_action(OTHER) == value


def test_keys_from_openssl_pem_and_bad_keys(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    (tmp_path / "ci.pem").write_bytes(pem)
    signer = signing.load_signer(None, tmp_path / "ci.pem")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    verifier = signing.load_verifier([signing.encode_public(raw)])
    verifier.verify(KEY, "c" * 64, signer.sign(KEY, "c" * 64))
    with pytest.raises(signing.SignatureError):
        verifier.verify(OTHER, "c" * 64, signer.sign(KEY, "c" * 64))
    with pytest.raises(UserError, match="keygen"):
        signing.load_verifier(["ssh-ed25519 AAAA"])
    assert "ed25519:" not in repr(signer)


def test_a_signing_upload_replaces_an_entry_it_did_not_sign(nginx_server: Nginx, tmp_path: Path) -> None:
    private, public = signing.generate()
    url = nginx_server.url(nginx_server.new_prefix())
    old = _layered(tmp_path / "old", url, upload=True)  # before signing was turned on
    old.put_action(KEY, {"blobs": []})
    ci = _layered(tmp_path / "ci", url, upload=True, private=private)
    ci.local.put_action(KEY, {"blobs": []})
    assert ci.get_action(KEY) == {"blobs": []}  # a local hit; an uploader fills the remote where it lacks it
    assert "signature" in json.loads(_get(f"{url}/ac/{KEY}"))
    assert _layered(tmp_path / "dev", url, public=(public,)).get_action(KEY) == {"blobs": []}
    uploads = ci.remote_counts["uploads"]
    assert ci.get_action(KEY) == {"blobs": []} and ci.remote_counts["uploads"] == uploads  # its own: kept


def test_keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_public_one(tmp_path: Path) -> None:
    from .conftest import aotbuild

    key_file = tmp_path / "ci-signing.key"
    run = aotbuild(["cache", "keygen", "--private-key", str(key_file)], tmp_path, report=False)
    assert run.code == 0, run.output
    assert key_file.stat().st_mode & 0o777 == 0o600
    public = run.stdout.strip().splitlines()[-1]
    signer = signing.load_signer(None, key_file)
    signing.load_verifier([public]).verify(KEY, "d" * 64, signer.sign(KEY, "d" * 64))
    assert key_file.read_text().strip() not in run.output  # the secret stays in its file
    again = aotbuild(["cache", "keygen", "--private-key", str(key_file)], tmp_path, report=False)
    assert again.code == 2 and "never overwrites" in again.output
