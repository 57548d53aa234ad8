"""A remote cache over Bazel's HTTP cache protocol (GET/PUT/HEAD on <prefix>/ac/<key>, <prefix>/cas/<sha256>)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import netrc
import socket
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

from aotbuild.cache.remote import DEADLINE_S, MAX_BLOB_BYTES, RemoteStore, RemoteUrl, Sink, parse, plain_http_warning
from aotbuild.cache.signing import Signer, Verifier
from aotbuild.cache.store import RemoteError
from aotbuild.hashing import CHUNK

T = TypeVar("T")
CONNECT_TIMEOUT_S = 5.0
IO_TIMEOUT_S = 60.0  # per socket operation
ANSWER_BODY_CAP = 64 * 1024  # an error page or a HEAD/PUT answer's body: drained to reuse the connection
RETRIES = 2  # connection failures and 5xx, after the first attempt
RETRY_DELAY_S = 0.2  # the first backoff, tripled after each failure


class _Transient(Exception):
    """A failure worth retrying: connection refused or reset, 5xx."""


class HttpStore(RemoteStore):
    """One persistent connection per process (actions are processes), re-opened after any failure."""

    def __init__(self, url: str, *, token: str | None = None, user: str | None = None, password: str | None = None,
                 netrc_file: Path | None = None, io_timeout: float = IO_TIMEOUT_S, deadline: float = DEADLINE_S,
                 max_blob_bytes: int = MAX_BLOB_BYTES, signer: Signer | None = None,
                 verifier: Verifier | None = None) -> None:
        super().__init__(deadline, max_blob_bytes, signer, verifier)
        try:
            parts = parse(url)  # credentials come off before anything parses the rest
        except ValueError as e:
            raise RemoteError(str(e)) from None
        if parts.scheme not in ("http", "https"):
            raise RemoteError(f"remote cache {parts.redacted}: expected http://host[:port]/prefix or https://...")
        self.name = parts.redacted
        self._url = parts
        self._prefix = f"{parts.path}/"  # as given; keys are hex
        self._auth = _authorization(parts, token, user, password, netrc_file)
        warning = plain_http_warning(parts, self._auth is not None)
        self.notices = [warning] if warning else []
        self._io_timeout = io_timeout
        self._conn: http.client.HTTPConnection | None = None
        self._socket: socket.socket | None = None  # the connection's, kept: http.client may drop it mid-answer
        self._until = 0.0  # the current request's deadline (time.monotonic)
        self.counters["retries"] = 0

    def _get(self, path: str, limit: int, sink: Sink) -> bool:
        def fetch() -> bool:
            resp = self._request("GET", path)
            if resp is None:
                return False
            header = resp.getheader("Content-Length")
            with sink() as out:
                self._receive(resp, int(header) if header is not None and header.isdigit() else None, out, limit,
                              f"GET {path}", self._expired)
            return True

        return self._retrying(f"GET {path}", fetch)

    def _put(self, path: str, body: Path | bytes, size: int) -> None:
        def send() -> None:
            with open(body, "rb") if isinstance(body, Path) else nullcontext(body) as data:  # streamed in blocks
                self._request("PUT", path, data, size)

        self._retrying(f"PUT {path}", send)

    def _head(self, path: str) -> bool:
        return self._retrying(f"HEAD {path}", lambda: self._request("HEAD", path) is not None)

    def _request(self, method: str, path: str, body: Any = None, size: int | None = None
                 ) -> http.client.HTTPResponse | None:
        """The answer, its body unread only for a GET answered 2xx; None for a 404 to a GET or HEAD (a miss)."""
        headers = {"Accept-Encoding": "identity"}  # a digest is of the bytes, not of a compressed transfer
        if self._auth:
            headers["Authorization"] = self._auth
        if size is not None:
            headers["Content-Length"] = str(size)
        try:
            if self._conn is None:
                self._conn = self._connect()
            self.counters["requests"] += 1
            self._conn.request(method, path, body=body, headers=headers)
            resp = self._conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            if self._expired():
                raise self._too_slow(f"{method} {path}") from None
            raise _Transient(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
        if size is not None:
            self.counters["bytes_up"] += size
        if method != "GET" or not 200 <= resp.status < 300:
            if len(resp.read(ANSWER_BODY_CAP + 1)) > ANSWER_BODY_CAP:
                self._close()  # a longer body is not read: the connection, mid-answer, is not reused
        if resp.status >= 500:
            raise _Transient(f"HTTP {resp.status} {resp.reason}")
        if resp.status == 404 and method != "PUT":
            return None
        if resp.status not in (200, 201, 204):
            hint = (" (check AOTBUILD_REMOTE_TOKEN, AOTBUILD_REMOTE_USER/PASSWORD or ~/.netrc)"
                    if resp.status in (401, 403) else "")
            raise RemoteError(f"remote cache {self.name}: {method} {path} answered HTTP {resp.status} "
                              f"{resp.reason}{hint}")
        return resp

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._url.scheme == "https" else http.client.HTTPConnection
        conn = cls(self._url.host, self._url.port, timeout=CONNECT_TIMEOUT_S, blocksize=CHUNK)
        conn.connect()
        self._socket = conn.sock
        self._socket.settimeout(self._io_timeout)  # per operation; _cut bounds the whole request
        if self._expired():
            raise OSError("connected after the deadline")
        return conn

    def _expired(self) -> bool:
        return time.monotonic() >= self._until

    def _cut(self) -> None:
        """At the deadline, end the request whatever it waits for: the per-operation timeout alone lets a server
        that sends a byte now and then hold it forever."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    def _retrying(self, what: str, op: Callable[[], T]) -> T:
        delay = RETRY_DELAY_S
        for attempt in range(RETRIES + 1):
            self._until = time.monotonic() + self._deadline
            watchdog = threading.Timer(self._deadline, self._cut)
            watchdog.daemon = True
            watchdog.start()
            try:
                return op()
            except _Transient as e:
                self._close()
                last = str(e)
            except BaseException:
                self._close()  # the connection may be mid-response: never reuse it
                raise
            finally:
                watchdog.cancel()
            if attempt < RETRIES:
                self.counters["retries"] += 1
                time.sleep(delay)
                delay *= 3
        raise RemoteError(f"remote cache {self.name}: {what} failed {RETRIES + 1} times: {last}")

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _authorization(parts: RemoteUrl, token: str | None, user: str | None, password: str | None,
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

