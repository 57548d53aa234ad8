"""A directory-backed Bazel HTTP cache (GET, HEAD, PUT) for machines without nginx, such as the GPU machine.

    python3 bench/http_cache.py ROOT PORT

For checks and benchmarks on loopback only: no authentication, no eviction. The tests use Debian's nginx
(tests/remote_servers.py); a team runs bazel-remote or nginx (README: Remote cache).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Under any prefix of plain names (none starting with a dot, so no `..`): /<prefix>/ac/<key>, /<prefix>/cas/<digest>.
NAME = re.compile(r"^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*/(ac|cas)/[0-9a-f]{64}$")


class Handler(BaseHTTPRequestHandler):
    root: Path

    def _path(self) -> Path | None:
        return self.root / self.path.lstrip("/") if NAME.match(self.path) else None

    def _answer(self, code: int, body: bytes = b"", length: int | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        path = self._path()
        if path is None or not path.is_file():
            return self._answer(404)
        self._answer(200, path.read_bytes())

    def do_HEAD(self) -> None:  # noqa: N802 - the size alone: a program blob can be 128 MiB
        path = self._path()
        if path is None or not path.is_file():
            return self._answer(404)
        self._answer(200, length=path.stat().st_size)

    def do_PUT(self) -> None:  # noqa: N802
        path = self._path()
        if path is None:
            return self._answer(400)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent)  # atomic: a reader sees the old entry or the whole new one
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
        self._answer(200)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    root, port = Path(sys.argv[1]), int(sys.argv[2])
    Handler.root = root
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
