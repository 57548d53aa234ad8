"""One contract for every cache backend, run unchanged against the local store, nginx (HTTP) and moto (S3)."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from aotbuild.cache.http import HttpStore
from aotbuild.cache.local import LocalStore
from aotbuild.cache.s3 import S3Store
from aotbuild.cache.store import IntegrityError, Store, encode_action
from aotbuild.errors import CacheError

BIG = 3 * (1 << 20) + 17  # more than one streaming chunk, not a multiple of one


@dataclass
class Backend:
    store: Store
    tamper: Callable[[str, str, bytes], None]  # (kind, key, raw bytes): plant bytes behind the store's back


def _http_put(url: str, raw: bytes) -> None:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("PUT", parts.path, body=raw)
    assert conn.getresponse().status in (200, 201, 204)
    conn.close()


@pytest.fixture(params=["local", "http", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        store = LocalStore(tmp_path / "cache")

        def tamper(kind: str, key: str, raw: bytes) -> None:
            path = tmp_path / "cache" / "v1" / kind / key[:2] / key
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                os.chmod(path, 0o644)
            path.write_bytes(raw)

        return Backend(store, tamper)
    if request.param == "http":
        server = request.getfixturevalue("nginx_server")
        url = server.url(server.new_prefix())
        return Backend(HttpStore(url), lambda kind, key, raw: _http_put(f"{url}/{kind}/{key}", raw))
    server = request.getfixturevalue("moto_server")
    prefix = f"c{os.urandom(6).hex()}/nested"
    s3 = server.client()
    return Backend(S3Store(server.url(prefix), client=s3),
                   lambda kind, key, raw: s3.put_object(Bucket=server.bucket, Key=f"{prefix}/{kind}/{key}", Body=raw))


def _blob(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _no_bad_bytes(store: Store, digest: str, dest: Path) -> bool:
    """get_blob of tampered bytes: a miss or an IntegrityError, and `dest` never written."""
    try:
        got = store.get_blob(digest, dest)
    except IntegrityError:
        got = False
    return not got and not dest.exists()


def test_blob_round_trip_streams_large_files(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(BIG)
    src, digest = _blob(tmp_path, data)
    assert not backend.store.contains("cas", digest)
    backend.store.put_blob(digest, src)
    assert backend.store.contains("cas", digest)
    dest = tmp_path / "out" / "copy.bin"
    dest.parent.mkdir()
    assert backend.store.get_blob(digest, dest)
    assert dest.read_bytes() == data


def test_missing_blob_is_a_miss_and_writes_nothing(backend: Backend, tmp_path: Path) -> None:
    dest = tmp_path / "absent.bin"
    assert backend.store.get_blob("ab" * 32, dest) is False
    assert not dest.exists()
    assert not backend.store.contains("cas", "ab" * 32)


def test_putting_a_blob_twice_is_fine(backend: Backend, tmp_path: Path) -> None:
    src, digest = _blob(tmp_path, b"same bytes")
    backend.store.put_blob(digest, src)
    backend.store.put_blob(digest, src)
    assert backend.store.get_blob(digest, tmp_path / "o")
    assert (tmp_path / "o").read_bytes() == b"same bytes"


def test_action_round_trip_last_writer_wins(backend: Backend) -> None:
    key = "cd" * 32
    assert backend.store.get_action(key) is None
    assert not backend.store.contains("ac", key)
    backend.store.put_action(key, {"graph_hash": "x", "n": 1})
    assert backend.store.contains("ac", key)
    assert backend.store.get_action(key) == {"graph_hash": "x", "n": 1}
    backend.store.put_action(key, {"graph_hash": "y", "n": 2})
    assert backend.store.get_action(key) == {"graph_hash": "y", "n": 2}


def test_blob_with_wrong_bytes_is_never_handed_out(backend: Backend, tmp_path: Path) -> None:
    _, digest = _blob(tmp_path, b"the real bytes")
    backend.tamper("cas", digest, b"other bytes of the same kind")
    assert _no_bad_bytes(backend.store, digest, tmp_path / "dest.bin")


def test_action_entry_damaged_or_filed_under_another_key_is_refused(backend: Backend) -> None:
    key, other = "ef" * 32, "01" * 32
    backend.tamper("ac", key, encode_action(other, {"n": 1}))  # sound entry, wrong place
    backend.tamper("ac", other, encode_action(other, {"n": 1})[:-5] + b"}}}}}")
    for k in (key, other):
        try:
            assert backend.store.get_action(k) is None
        except IntegrityError:
            pass


@pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" * 32, "ab" * 31, ""])
def test_keys_must_be_hex_digests(backend: Backend, tmp_path: Path, bad: str) -> None:
    with pytest.raises(CacheError):
        backend.store.get_action(bad)
    with pytest.raises(CacheError):
        backend.store.get_blob(bad, tmp_path / "x")


def test_stats_is_a_mapping(backend: Backend) -> None:
    assert isinstance(backend.store.stats(), dict)
