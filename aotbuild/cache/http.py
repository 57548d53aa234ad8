"""A remote cache over Bazel's HTTP cache protocol: GET/PUT/HEAD on <prefix>/ac/<key> and <prefix>/cas/<sha256>.

bazel-remote, nginx with WebDAV PUT, or any object store behind HTTP serves it. Standard library only.
"""

from __future__ import annotations

import base64
import http.client
import netrc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aotbuild.cache import remote_url
from aotbuild.cache.deadline_socket import DeadlineSocket, Expired
from aotbuild.cache.signing import Signer, Verifier
from aotbuild.cache.store import (
    IntegrityError,
    Kind,
    RemoteError,
    check_hex,
    copy_stream,
    decode_action,
    encode_action,
    verified_download,
)
from aotbuild.hashing import CHUNK

T = TypeVar("T")
CONNECT_TIMEOUT_S = 5.0
IO_TIMEOUT_S = 60.0  # per socket operation
DEADLINE_S = 600.0  # per request, whole answer included: a server sending 1 byte a minute is down, not slow
RETRIES = 2  # connection failures and 5xx, after the first attempt; backoff 0.2 s, then 0.6 s
MAX_ACTION_BYTES = 16 << 20  # action entries are small JSON; a bigger answer is not one of ours
MAX_BLOB_BYTES = 4 << 30  # a blob whose entry declares no size


class _Transient(Exception):
    """A failure worth retrying: connection refused or reset, 5xx."""


def redact(url: str) -> str:
    """The URL without user, password, query or fragment: the only form that may appear in messages."""
    return remote_url.redact(url)


class HttpStore:
    """One persistent connection per process (actions are processes), re-opened after any failure."""

    def __init__(self, url: str, *, token: str | None = None, user: str | None = None,
                 password: str | None = None, netrc_file: Path | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S, io_timeout: float = IO_TIMEOUT_S,
                 deadline: float = DEADLINE_S, max_blob_bytes: int = MAX_BLOB_BYTES, retries: int = RETRIES,
                 signer: Signer | None = None, verifier: Verifier | None = None) -> None:
        try:
            parts = remote_url.parse(url)  # credentials come off before anything parses the rest
        except remote_url.BadUrl as e:
            raise RemoteError(str(e)) from None
        if parts.scheme not in ("http", "https"):
            raise RemoteError(f"remote cache {parts.redacted}: expected http://host[:port]/prefix or https://...")
        self.name = parts.redacted
        self._https = parts.scheme == "https"
        self._host = parts.host
        self._port = parts.port
        self._prefix = parts.path
        self._auth = _authorization(parts, token, user, password, netrc_file)
        warning = remote_url.plain_http_warning(parts, self._auth is not None)
        self.notices = [warning] if warning else []  # for the build summary, which shows each once
        self._connect_timeout = connect_timeout
        self._io_timeout = io_timeout
        self._deadline = deadline
        self._max_blob = max_blob_bytes
        self._retries = retries
        self._signer = signer
        self._verifier = verifier
        self._conn: http.client.HTTPConnection | None = None
        self._sock: DeadlineSocket | None = None
        self.counters = {"requests": 0, "bytes_down": 0, "bytes_up": 0, "retries": 0}

    # -- the Store protocol

    def get_blob(self, digest: str, dest: Path, limit: int | None = None) -> bool:
        """A failed body (cut short, longer than `limit` or the cap, bad digest) is an IntegrityError at once:
        the caller counts failures per blob and stops asking after the second."""
        path = self._path("cas", check_hex("digest", digest))
        limit = self._max_blob if limit is None else min(limit, self._max_blob)

        def fetch() -> bool:
            resp = self._exchange("GET", path)
            if resp.status == 404:
                resp.read()
                return False
            self._expect_ok(resp, "GET", path)
            with verified_download(dest, digest, self.name, limit) as out:
                self._read_body(resp, out, limit, f"GET {path}")
            return True

        return self._retrying(f"GET {path}", fetch)

    def put_blob(self, digest: str, src: Path) -> None:
        path = self._path("cas", check_hex("digest", digest))

        def send() -> None:
            with open(src, "rb") as body:  # http.client streams a file body in blocks
                size = src.stat().st_size
                self._finish_put(self._exchange("PUT", path, body, size), path)

        self._retrying(f"PUT {path}", send)

    def get_action(self, key: str) -> dict[str, Any] | None:
        return self._get_action(key, self._verifier)

    def _get_action(self, key: str, verifier: Verifier | None) -> dict[str, Any] | None:
        path = self._path("ac", check_hex("key", key))

        def fetch() -> bytes | None:
            resp = self._exchange("GET", path)
            if resp.status == 404:
                resp.read()
                return None
            self._expect_ok(resp, "GET", path)
            chunks = _Collect()
            self._read_body(resp, chunks, MAX_ACTION_BYTES, f"GET {path}")
            return b"".join(chunks.parts)

        raw = self._retrying(f"GET {path}", fetch)
        return None if raw is None else decode_action(key, raw, self.name, verifier)

    def put_action(self, key: str, value: dict[str, Any]) -> None:
        path = self._path("ac", check_hex("key", key))
        body = encode_action(key, value, self._signer)
        self._retrying(f"PUT {path}", lambda: self._finish_put(self._exchange("PUT", path, body, len(body)), path))

    def contains(self, kind: Kind, key: str) -> bool:
        if kind == "ac" and self._signer is not None:
            # A signing uploader overwrites an entry it did not sign (older, unsigned): readers would refuse it.
            try:
                return self._get_action(key, self._signer.verifier()) is not None
            except IntegrityError:
                return False
        path = self._path(kind, check_hex("key", key))

        def head() -> bool:
            resp = self._exchange("HEAD", path)
            resp.read()
            if resp.status == 404:
                return False
            self._expect_ok(resp, "HEAD", path)
            return True

        return self._retrying(f"HEAD {path}", head)

    def stats(self) -> dict[str, Any]:
        return {"url": self.name, **self.counters}

    # -- transport

    def _path(self, kind: str, key: str) -> str:
        return f"{self._prefix}/{kind}/{key}"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._connect_timeout, blocksize=CHUNK)
            conn.connect()
            assert conn.sock is not None
            self._sock = DeadlineSocket(conn.sock, self._io_timeout)
            conn.sock = self._sock  # type: ignore[assignment]
            self._conn = conn
        return self._conn

    def _exchange(self, method: str, path: str, body: Any = None, size: int | None = None) -> http.client.HTTPResponse:
        headers = {"Accept-Encoding": "identity"}  # a digest is of the bytes, not of a compressed transfer
        if self._auth:
            headers["Authorization"] = self._auth
        if size is not None:
            headers["Content-Length"] = str(size)
        try:
            conn = self._connection()
            assert self._sock is not None
            self._sock.deadline = time.monotonic() + self._deadline
            self.counters["requests"] += 1
            conn.request(method, path, body=body, headers=headers)  # the prefix as given, keys are hex
            resp = conn.getresponse()
        except Expired:
            raise self._too_slow(f"{method} {path}") from None
        except (OSError, http.client.HTTPException) as e:
            raise _Transient(_describe(e)) from None
        if size is not None:
            self.counters["bytes_up"] += size
        if resp.status >= 500:
            resp.read()
            raise _Transient(f"HTTP {resp.status} {resp.reason}")
        return resp

    def _too_slow(self, what: str) -> RemoteError:
        return RemoteError(f"remote cache {self.name}: {what} got no complete answer within {self._deadline:g} s")

    def _expect_ok(self, resp: http.client.HTTPResponse, method: str, path: str) -> None:
        if resp.status in (200, 201, 204):
            return
        resp.read()
        hint = (" (check AOTBUILD_REMOTE_TOKEN, AOTBUILD_REMOTE_USER/PASSWORD or ~/.netrc)"
                if resp.status in (401, 403) else "")
        raise RemoteError(f"remote cache {self.name}: {method} {path} answered HTTP {resp.status} {resp.reason}{hint}")

    def _finish_put(self, resp: http.client.HTTPResponse, path: str) -> None:
        resp.read()
        self._expect_ok(resp, "PUT", path)

    def _read_body(self, resp: http.client.HTTPResponse, out: Any, limit: int, what: str) -> None:
        """Copy at most `limit` bytes; a body declared or found longer, or cut short, is an IntegrityError."""
        header = resp.getheader("Content-Length")
        expected = int(header) if header is not None and header.isdigit() else None
        if expected is not None and expected > limit:
            raise IntegrityError(f"remote cache {self.name}: {what} announced {expected} bytes, more than the "
                                 f"{limit} expected; not downloaded")
        try:
            n = copy_stream(resp, out, limit + 1)  # type: ignore[arg-type]
        except Expired:
            raise self._too_slow(what) from None
        except (OSError, http.client.HTTPException) as e:
            raise IntegrityError(f"remote cache {self.name}: {what}: body cut off: {_describe(e)}") from None
        self.counters["bytes_down"] += n
        if n > limit:
            raise IntegrityError(f"remote cache {self.name}: {what} sent more than the {limit} bytes expected; cut")
        # http.client returns short data instead of raising when a response ends early.
        if expected is not None and n != expected:
            raise IntegrityError(f"remote cache {self.name}: {what}: body cut off after {n} of {expected} bytes")

    def _retrying(self, what: str, op: Callable[[], T]) -> T:
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                return op()
            except _Transient as e:
                self._close()
                last = str(e)
            except BaseException:
                self._close()  # the connection may be mid-response: never reuse it
                raise
            if attempt < self._retries:
                self.counters["retries"] += 1
                time.sleep(delay)
                delay *= 3
        raise RemoteError(f"remote cache {self.name}: {what} failed {self._retries + 1} times: {last}")

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._sock = None


class _Collect:
    """An in-memory sink for small bodies (the caller bounds them)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(data)
        return len(data)


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _authorization(parts: remote_url.RemoteUrl, token: str | None, user: str | None, password: str | None,
                   netrc_file: Path | None) -> str | None:
    """Bearer token, else basic auth from the URL, the variables, or ~/.netrc's entry for the host."""
    if token:
        return f"Bearer {token}"
    if parts.user is not None:
        user, password = parts.user, parts.password or ""
    elif not user and netrc_file is not None and netrc_file.is_file():
        try:
            found = netrc.netrc(str(netrc_file)).authenticators(parts.host)
        except (netrc.NetrcParseError, OSError) as e:
            # The parse error quotes the offending line, which may hold a password: name only the file.
            raise RemoteError(f"cannot read credentials from {netrc_file}: {type(e).__name__} "
                              f"(check its syntax and permissions)") from None
        if found:
            user, password = found[0], found[2]
    if not user:
        return None
    return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
