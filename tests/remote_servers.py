"""Real cache servers on loopback for the remote-cache tests: Debian's nginx with WebDAV PUT, and moto's S3 API."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD, TOKEN = "ci", "pa55-Secret-x9", "tok-Secret-7q"


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoffs of 10 ms: these tests check that requests are retried, not how long the pauses are."""
    from aotbuild.cache import http as http_store

    monkeypatch.setattr(http_store, "RETRY_DELAY_S", 0.01)


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 128; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        root {d}/root;
        location / {{
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
        location /broken/ {{ return 500; }}
        location /basic/ {{
            alias {d}/root/;
            auth_basic "cache";
            auth_basic_user_file {d}/htpasswd;
            dav_methods PUT;
            create_full_put_path on;
        }}
        location /bearer/ {{
            alias {d}/root/;
            if ($http_authorization != "Bearer {token}") {{ return 401; }}
            dav_methods PUT;
            create_full_put_path on;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port}")


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        pytest.fail("nginx is not installed: run .ci/setup (it installs Debian's nginx)")
    return found


@dataclass
class Nginx:
    """One nginx process serving `root` (WebDAV PUT) on a free loopback port, with its own pid/log/temp paths."""

    dir: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def access_log(self) -> Path:
        return self.dir / "access.log"

    def url(self, prefix: str, location: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{location}/{prefix}"

    def new_prefix(self) -> str:
        return f"p{uuid.uuid4().hex[:12]}"

    def requests(self) -> list[str]:
        """Request lines ("PUT /p/cas/... HTTP/1.1") from the access log, in order."""
        if not self.access_log.exists():
            return []
        return [line.split('"')[1] for line in self.access_log.read_text().splitlines() if '"' in line]

    def start(self) -> None:
        for sub in ("root", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir / sub, 0o777)  # nginx's workers run as nobody when started by root
        (self.dir / "htpasswd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        os.chmod(self.dir / "htpasswd", 0o644)
        (self.dir / "nginx.conf").write_text(NGINX_CONF.format(d=self.dir, port=self.port, token=TOKEN))
        self.proc = subprocess.Popen([nginx_binary(), "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir),
                                      "-e", str(self.dir / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port, self.proc, "nginx")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: open connections are closed
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture(scope="session")
def nginx_server():
    # Not under pytest's tmp dirs: those are 0700, and nginx's workers (nobody, under root) must traverse it.
    base = Path(tempfile.mkdtemp(prefix="aotbuild-nginx-"))
    os.chmod(base, 0o755)
    server = Nginx(base, free_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@dataclass
class Moto:
    endpoint: str
    bucket: str
    _client: object = None

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def client(self):
        """One client for the session: each new one costs a second or two of loading botocore's models."""
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        return self._client


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "aws-Secret-k3y",
          "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory):
    """moto's S3 API in server mode, its own process, on a free loopback port."""
    port = free_port()
    moto = Path(sys.executable).parent / "moto_server"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out)
    try:
        wait_for_port(port, proc, "moto_server")
        old = {k: os.environ.get(k) for k in S3_ENV}
        os.environ.update(S3_ENV)  # boto3's chain in this process and in the builds it starts
        server = Moto(f"http://127.0.0.1:{port}", "aotbuild-cache")
        server.client().create_bucket(Bucket=server.bucket)
        yield server
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class FaultProxy:
    """A pass-through HTTP proxy in front of nginx that cuts chosen response bodies short, to test truncation.

    `truncate` maps a path substring to how many responses to cut (None: all of them)."""

    def __init__(self, upstream_port: int, truncate: dict[str, int | None]) -> None:
        import http.client
        import http.server
        import threading

        proxy = self
        self.truncate = dict(truncate)
        self.cut: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream.request(self.command, self.path, body=body, headers=headers)
                resp = upstream.getresponse()
                data = resp.read()
                upstream.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                match = next((p for p in proxy.truncate if p in self.path), None)
                if match is not None and resp.status == 200 and proxy.truncate[match] != 0:
                    if proxy.truncate[match] is not None:
                        proxy.truncate[match] -= 1
                    proxy.cut.append(self.path)
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            do_GET = do_PUT = do_HEAD = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.port}/{prefix}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
