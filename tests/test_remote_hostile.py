"""A hostile or broken remote cache (a small http.server on loopback): huge bodies, trickling bodies, redirect
loops and credentials in URLs end in a warning and a local build, never a hang, a traceback or a leak."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aotbuild.cache.http import HttpStore
from aotbuild.cache.layered import LayeredStore, open_layered
from aotbuild.cache.local import LocalStore
from aotbuild.cache.remote import LazyRemote, parse, redact
from aotbuild.cache.store import RemoteError, encode_action
from aotbuild.hashing import sha256_bytes
from aotbuild.workspace import settings

BLOB = b"model bytes " * 1000
DIGEST = sha256_bytes(BLOB)
KEY = "a" * 64
pytestmark = pytest.mark.usefixtures("quick_retries")


class Hostile:
    """Answers GET /ac/<KEY> with a sound entry declaring BLOB's size, and /cas/ as `cas` says."""

    def __init__(self, cas: Callable[[http.server.BaseHTTPRequestHandler], None]) -> None:
        self.requests: list[str] = []
        hostile = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hostile.requests.append(self.path)
                if "/ac/" in self.path:
                    body = encode_action(KEY, {"so": {"sha256": DIGEST, "size": len(BLOB)}, "blobs": [DIGEST]})
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    try:
                        cas(self)
                    except OSError:
                        pass  # the client hung up, as it should

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client hanging up mid-answer, as it should
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/c"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    servers: list[Hostile] = []

    def start(cas: Callable[[http.server.BaseHTTPRequestHandler], None]) -> Hostile:
        servers.append(Hostile(cas))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _huge(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(10 << 30))  # 10 GiB announced
    handler.end_headers()
    handler.wfile.write(BLOB * 200)  # and more than the entry declared actually sent


def _huge_unannounced(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Connection", "close")  # no length: the body runs until the server closes
    handler.end_headers()
    for _ in range(200):
        handler.wfile.write(BLOB)


def _trickle(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(BLOB)))
    handler.end_headers()
    for byte in BLOB:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.2)  # every read returns within the socket timeout, the whole never arrives


def _no_temp_files(root: Path) -> bool:
    tmp = root / "v1" / "tmp"
    return not tmp.exists() or list(tmp.iterdir()) == []


@pytest.mark.parametrize("cas", [_huge, _huge_unannounced], ids=["announced", "unannounced"])
def test_a_body_longer_than_declared_is_cut_and_the_blob_let_go(hostile, tmp_path: Path, cas) -> None:
    server = hostile(cas)
    layered = LayeredStore(LocalStore(tmp_path), HttpStore(server.url))
    assert layered.get_action(KEY) is None
    assert layered.get_action(KEY) is None  # asked again: the blob that failed twice is not requested
    assert server.requests.count(f"/c/cas/{DIGEST}") == 2
    assert len(layered.warnings) == 1 and str(len(BLOB)) in layered.warnings[0], layered.warnings
    assert layered.remote is not None  # a bad object, not a dead server
    assert _no_temp_files(tmp_path) and not layered.local.contains("cas", DIGEST)


def test_undeclared_blobs_are_bounded_by_the_configured_cap(hostile, tmp_path: Path) -> None:
    server = hostile(_huge)
    store = HttpStore(server.url, max_blob_bytes=1000)
    layered = LayeredStore(LocalStore(tmp_path), store)
    assert layered.get_bytes(DIGEST) is None
    assert "1000" in layered.warnings[0] and _no_temp_files(tmp_path)


def _endless_not_found(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(404)
    handler.send_header("Content-Length", str(10 << 30))  # an error page of 10 GiB, sent until the client stops
    handler.end_headers()
    while True:
        handler.wfile.write(BLOB)


def test_an_endless_error_page_is_a_miss_read_no_further_than_the_cap(hostile, tmp_path: Path) -> None:
    server = hostile(_endless_not_found)
    store = HttpStore(server.url, deadline=30.0)
    started = time.monotonic()
    for _ in range(2):  # a miss, and the second request on a new connection
        assert store.get_blob(DIGEST, tmp_path / "blob") is False and not (tmp_path / "blob").exists()
    assert time.monotonic() - started < 10  # not the 30 s deadline: the body was not read to its end
    assert server.requests.count(f"/c/cas/{DIGEST}") == 2 and store.counters["bytes_down"] == 0


def test_a_trickling_server_meets_the_overall_deadline(hostile, tmp_path: Path) -> None:
    server = hostile(_trickle)
    layered = LayeredStore(LocalStore(tmp_path), HttpStore(server.url, deadline=1.0, io_timeout=5.0))
    started = time.monotonic()
    assert layered.get_action(KEY) is None
    assert time.monotonic() - started < 5  # one deadline, not one per byte nor per retry
    assert layered.remote is None and "within 1 s" in layered.warnings[0], layered.warnings
    assert _no_temp_files(tmp_path)


def test_a_failing_blob_is_shared_across_the_processes_of_a_build(hostile, tmp_path: Path) -> None:
    server = hostile(_huge)
    events = tmp_path / "events.jsonl"
    env = {settings.REMOTE_VAR: server.url, settings.EVENTS_VAR: str(events)}
    assert open_layered(env, LocalStore(tmp_path / "a")).get_action(KEY) is None  # "action" one
    second = open_layered(env, LocalStore(tmp_path / "b"))  # "action" two of the same build
    assert second.get_action(KEY) is None and second.warnings == []  # reported once, by the first
    assert server.requests.count(f"/c/cas/{DIGEST}") == 2
    settings.clear_remote_marks(events)  # the next build asks afresh
    assert open_layered(env, LocalStore(tmp_path / "c")).get_action(KEY) is None
    assert server.requests.count(f"/c/cas/{DIGEST}") == 4


def test_an_s3_redirect_loop_is_a_remote_error_and_a_local_build(tmp_path: Path) -> None:
    """A HEAD answered 301 without a region: botocore asks the bucket's region with another HEAD, which is
    answered the same, until RecursionError (what escaped the S3 store before)."""
    pytest.importorskip("boto3")

    class Loop(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self.send_response(301)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Loop)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        config = settings.RemoteSettings(url="s3://bucket/p", upload=True, required=False,
                                         s3_endpoint=f"http://127.0.0.1:{server.server_address[1]}")
        env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s3-Secret", "AWS_DEFAULT_REGION": "us-east-1"}
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            layered = LayeredStore(LocalStore(tmp_path), LazyRemote(config), upload=True)
            layered.local.put_action(KEY, {"blobs": []})
            assert layered.get_action(KEY) == {"blobs": []}  # the local hit stands; the upload's HEAD loops
            assert layered.remote is None and "RecursionError" in layered.warnings[0], layered.warnings
            assert "continuing without the remote cache" in layered.warnings[0]
            assert "s3-Secret" not in layered.warnings[0]
            required = LayeredStore(LocalStore(tmp_path), LazyRemote(config), upload=True, required=True)
            with pytest.raises(RemoteError, match="--remote-required"):
                required.get_action(KEY)
    finally:
        server.shutdown()
        server.server_close()


def test_a_client_exception_becomes_a_remote_error(tmp_path: Path) -> None:
    class Store:  # a backend whose client recurses for ever (a redirect loop)
        name = "http://x"

        def get_action(self, key: str) -> None:
            raise RecursionError("maximum recursion depth exceeded")

    remote = LazyRemote(settings.RemoteSettings(url="http://x/", upload=False, required=False))
    remote._store = Store()
    layered = LayeredStore(LocalStore(tmp_path), remote)
    assert layered.get_action(KEY) is None and "RecursionError" in layered.warnings[0]


@pytest.mark.parametrize("url", ["http://ci:abc/def@cache.example:8080/p/", "http://ci:abc/def@host/",
                                 "http://ci:abc/def@host:notaport/x", "https://u:abc%2Fdef@h/p?q=1#f"])
def test_credentials_never_reach_a_message(url: str) -> None:
    assert "abc" not in redact(url) and "def" not in redact(url) and "ci" not in redact(url).replace("://", "")
    try:
        store = HttpStore(url)
    except RemoteError as e:
        assert "abc" not in str(e) and "def" not in str(e)
        return
    assert "abc" not in store.name and "def" not in repr(vars(store)).replace(store._auth or "", "")


def test_a_password_with_a_slash_is_the_password() -> None:
    parts = parse("http://ci:abc/def@host:81/p/")
    assert (parts.user, parts.password, parts.host, parts.port, parts.path) == ("ci", "abc/def", "host", 81, "/p")


@pytest.mark.parametrize(("url", "warns"), [("http://u:p@cache.example/p", True), ("http://u:p@127.0.0.1:1/p", False),
                                            ("https://u:p@cache.example/p", False), ("http://cache.example/p", False),
                                            ("http://localhost/p", False), ("http://[::1]:1/p", False)])
def test_credentials_over_plain_http_warn(url: str, warns: bool) -> None:
    store = HttpStore(url)
    assert bool(store.notices) == warns
    token = HttpStore("http://cache.example/p", token="t")
    assert token.notices and "https://" in token.notices[0]


@pytest.mark.parametrize("url", ["http://ci:abc/def@127.0.0.1:1/p", "http://ci:abc/def@127.0.0.1:abc/p"])
def test_a_password_with_a_slash_stays_out_of_the_terminal_report_and_logs(url: str, tmp_path: Path) -> None:
    from .conftest import aotbuild, make_tiny, torch_tripwire

    ws = make_tiny(tmp_path / "ws")
    tripwire, _ = torch_tripwire(tmp_path)
    run = aotbuild(["build", "//...", "--remote-cache", url, "--remote-required"], ws,
                   {**tripwire, "AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert run.code == 1 and "http://127.0.0.1" in run.output, run.output
    assert "Traceback" not in run.output
    texts = [run.output, json.dumps(run.report)] + [p.read_text() for p in (ws / "aot-out").rglob("*.log")]
    assert not any("abc" in t for t in texts), run.output


def test_limits_come_from_the_environment() -> None:
    from aotbuild.errors import UserError

    config = settings.remote_settings({settings.REMOTE_VAR: "http://h/p", settings.REMOTE_DEADLINE_VAR: "2.5",
                                       settings.REMOTE_MAX_BLOB_VAR: "1000"})
    assert config is not None and (config.deadline_s, config.max_blob_bytes) == (2.5, 1000)
    with pytest.raises(UserError, match=settings.REMOTE_DEADLINE_VAR):
        settings.remote_settings({settings.REMOTE_VAR: "http://h/p", settings.REMOTE_DEADLINE_VAR: "soon"})
