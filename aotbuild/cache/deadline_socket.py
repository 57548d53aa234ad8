"""A socket whose every read and send is bounded by an overall deadline, for http.client: the per-operation
timeout alone lets a server that sends a byte now and then hold one request forever."""

from __future__ import annotations

import io
import socket
import time
from typing import Any


class Expired(TimeoutError):
    """The request's overall deadline passed."""


class DeadlineSocket:
    """The connection's socket; `deadline` (time.monotonic) is set by each request before it starts."""

    def __init__(self, sock: socket.socket, io_timeout: float) -> None:
        self._sock = sock
        self._io_timeout = io_timeout
        self.deadline = float("inf")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Expired("deadline passed")
        self._sock.settimeout(min(self._io_timeout, left))

    def sendall(self, data: Any, *args: Any) -> None:
        self.arm()
        self._sock.sendall(data, *args)

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        # The socket's own raw file keeps its reference count: http.client closes the connection of a
        # `Connection: close` response while the response is still being read.
        return io.BufferedReader(_Reader(self, self._sock.makefile("rb", buffering=0)))


class _Reader(io.RawIOBase):
    def __init__(self, sock: DeadlineSocket, raw: Any) -> None:
        self._sock = sock
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.arm()
        try:
            return self._raw.readinto(buffer)
        except TimeoutError:
            if self._sock.expired():
                raise Expired("deadline passed") from None
            raise

    def close(self) -> None:
        self._raw.close()
        super().close()
