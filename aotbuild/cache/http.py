"""A remote cache over Bazel's HTTP cache protocol: GET/PUT/HEAD on <prefix>/ac/<key> and <prefix>/cas/<sha256>.

bazel-remote, nginx with WebDAV PUT, or any object store behind HTTP serves it. Standard library only.
"""

from __future__ import annotations

import base64
import http.client
import netrc
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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
IO_TIMEOUT_S = 60.0  # per socket operation, not per transfer: a large artifact may take longer in total
RETRIES = 2  # after the first attempt; backoff 0.2 s, then 0.6 s
MAX_ACTION_BYTES = 16 << 20  # action entries are small JSON; a bigger answer is not one of ours


class _Transient(Exception):
    """A failure worth retrying: connection refused or reset, timeout, 5xx, a body cut short."""


class _CutShort(_Transient):
    """The server answered, but the body ended early: after the retries, a bad object, not a dead server."""


def redact(url: str) -> str:
    """The URL without user, password, query or fragment: the only form that may appear in messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


class HttpStore:
    """One persistent connection per process (actions are processes), re-opened after any failure."""

    def __init__(self, url: str, *, token: str | None = None, user: str | None = None,
                 password: str | None = None, netrc_file: Path | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S, io_timeout: float = IO_TIMEOUT_S,
                 retries: int = RETRIES) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"remote cache {redact(url)}: expected http://host[:port]/prefix or https://...")
        self.name = redact(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._auth = _authorization(parts, token, user, password, netrc_file)
        self._connect_timeout = connect_timeout
        self._io_timeout = io_timeout
        self._retries = retries
        self._conn: http.client.HTTPConnection | None = None
        self.counters = {"requests": 0, "bytes_down": 0, "bytes_up": 0, "retries": 0}

    # -- the Store protocol

    def get_blob(self, digest: str, dest: Path) -> bool:
        path = self._path("cas", check_hex("digest", digest))

        def fetch() -> bool:
            resp = self._exchange("GET", path)
            if resp.status == 404:
                resp.read()
                return False
            self._expect_ok(resp, "GET", path)
            with verified_download(dest, digest, self.name) as out:
                self._read_body(resp, out)
            return True

        return self._retrying(f"GET {path}", fetch)

    def put_blob(self, digest: str, src: Path) -> None:
        path = self._path("cas", check_hex("digest", digest))

        def send() -> None:
            with open(src, "rb") as body:  # http.client streams a file body in blocks
                size = src.stat().st_size
                self._finish_put(self._exchange("PUT", path, body, size), path, size)

        self._retrying(f"PUT {path}", send)

    def get_action(self, key: str) -> dict[str, Any] | None:
        path = self._path("ac", check_hex("key", key))

        def fetch() -> bytes | None:
            resp = self._exchange("GET", path)
            if resp.status == 404:
                resp.read()
                return None
            self._expect_ok(resp, "GET", path)
            chunks = _Collect(MAX_ACTION_BYTES)
            self._read_body(resp, chunks)
            return b"".join(chunks.parts)

        raw = self._retrying(f"GET {path}", fetch)
        return None if raw is None else decode_action(key, raw, self.name)

    def put_action(self, key: str, value: dict[str, Any]) -> None:
        path = self._path("ac", check_hex("key", key))
        body = encode_action(key, value)
        self._retrying(f"PUT {path}", lambda: self._finish_put(self._exchange("PUT", path, body, len(body)),
                                                               path, len(body)))

    def contains(self, kind: Kind, key: str) -> bool:
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
            conn.sock.settimeout(self._io_timeout)
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
            self.counters["requests"] += 1
            conn.request(method, path, body=body, headers=headers)  # the prefix as given, keys are hex
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            raise _Transient(_describe(e)) from None
        if size is not None:
            self.counters["bytes_up"] += size
        if resp.status >= 500:
            resp.read()
            raise _Transient(f"HTTP {resp.status} {resp.reason}")
        return resp

    def _expect_ok(self, resp: http.client.HTTPResponse, method: str, path: str) -> None:
        if resp.status in (200, 201, 204):
            return
        resp.read()
        hint = (" (check AOTBUILD_REMOTE_TOKEN, AOTBUILD_REMOTE_USER/PASSWORD or ~/.netrc)"
                if resp.status in (401, 403) else "")
        raise RemoteError(f"remote cache {self.name}: {method} {path} answered HTTP {resp.status} {resp.reason}{hint}")

    def _finish_put(self, resp: http.client.HTTPResponse, path: str, size: int) -> None:
        resp.read()
        self._expect_ok(resp, "PUT", path)

    def _read_body(self, resp: http.client.HTTPResponse, out: Any) -> None:
        expected = resp.getheader("Content-Length")
        try:
            n = copy_stream(resp, out)  # type: ignore[arg-type]
        except (OSError, http.client.HTTPException) as e:
            raise _CutShort(f"body cut off: {_describe(e)}") from None
        self.counters["bytes_down"] += n
        # http.client returns short data instead of raising when a response ends early.
        if expected is not None and n != int(expected):
            raise _CutShort(f"body cut off after {n} of {expected} bytes")

    def _retrying(self, what: str, op: Callable[[], T]) -> T:
        delay = 0.2
        for attempt in range(self._retries + 1):
            try:
                return op()
            except _Transient as e:
                self._close()
                last, cut_short = str(e), isinstance(e, _CutShort)
            except BaseException:
                self._close()  # the connection may be mid-response: never reuse it
                raise
            if attempt < self._retries:
                self.counters["retries"] += 1
                time.sleep(delay)
                delay *= 3
        if cut_short:  # the same object keeps arriving short: skip it, keep using the server
            raise IntegrityError(f"remote cache {self.name}: {what} failed {self._retries + 1} times: {last}")
        raise RemoteError(f"remote cache {self.name}: {what} failed {self._retries + 1} times: {last}")

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Collect:
    """A bounded in-memory sink for small bodies."""

    def __init__(self, limit: int) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise _Transient(f"action entry larger than {self.limit} bytes")
        self.parts.append(data)
        return len(data)


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _authorization(parts: urllib.parse.SplitResult, token: str | None, user: str | None, password: str | None,
                   netrc_file: Path | None) -> str | None:
    """Bearer token, else basic auth from the URL, the variables, or ~/.netrc's entry for the host."""
    if token:
        return f"Bearer {token}"
    if parts.username is not None:
        user, password = urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
    elif not user and netrc_file is not None and netrc_file.is_file():
        try:
            found = netrc.netrc(str(netrc_file)).authenticators(parts.hostname or "")
        except (netrc.NetrcParseError, OSError) as e:
            # The parse error quotes the offending line, which may hold a password: name only the file.
            raise RemoteError(f"cannot read credentials from {netrc_file}: {type(e).__name__} "
                              f"(check its syntax and permissions)") from None
        if found:
            user, password = found[0], found[2]
    if not user:
        return None
    return "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
