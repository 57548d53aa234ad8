"""The local-then-remote store against a real nginx: fills, upload policy and order, faults, credentials."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from aotbuild.workspace import settings
from aotbuild.cache.http import HttpStore
from aotbuild.cache.layered import LayeredStore
from aotbuild.cache.local import LocalStore
from aotbuild.cache.remote import redact
from aotbuild.cache.store import RemoteError
from aotbuild.reports.outcomes import check_remote_url, remote_lines, summarize
from aotbuild.errors import UserError

from .remote_servers import PASSWORD, TOKEN, USER, FaultProxy, free_port

pytestmark = pytest.mark.usefixtures("quick_retries")


def _seed(remote: HttpStore, tmp_path: Path, payload: bytes = b"artifact bytes") -> tuple[str, str, dict]:
    """One blob and an action entry pointing at it, on the remote only."""
    src = tmp_path / "seed.bin"
    src.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    key = hashlib.sha256(b"key" + payload).hexdigest()
    value = {"so": {"sha256": digest}, "blobs": [digest]}
    remote.put_blob(digest, src)
    remote.put_action(key, value)
    return key, digest, value


@pytest.fixture
def remote(nginx_server) -> tuple[HttpStore, str]:
    url = nginx_server.url(nginx_server.new_prefix())
    return HttpStore(url), url


def _count(nginx_server, prefix_url: str, at_least: int = 0, method: str = "") -> list[str]:
    """The requests under this prefix (of one method if given), once at least `at_least` of them are logged:
    nginx writes its log after answering, so under load the last lines come late."""
    path = prefix_url.split(str(nginx_server.port), 1)[1]
    deadline = time.monotonic() + 5
    while True:
        found = [r for r in nginx_server.requests() if f" {path}/" in r and r.startswith(method)]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_remote_hit_fills_the_local_cache(remote, tmp_path: Path, nginx_server) -> None:
    store, url = remote
    key, digest, value = _seed(store, tmp_path)
    local = LocalStore(tmp_path / "local")
    layered = LayeredStore(local, HttpStore(url))
    assert layered.get_action(key) == value
    assert layered.remote_counts["hits"] == 1 and not layered.warnings
    # Now the local cache answers alone, blob included, verified.
    assert local.get_action(key) == value
    assert local.get_bytes(digest) == b"artifact bytes"
    before = len(_count(nginx_server, url))
    assert layered.get_action(key) == value
    assert len(_count(nginx_server, url)) == before  # a local hit asks the remote nothing when only reading


def test_a_refresh_replaces_the_local_entry_with_the_remotes(remote, tmp_path: Path) -> None:
    store, url = remote
    key, digest, value = _seed(store, tmp_path)
    layered = LayeredStore(LocalStore(tmp_path / "local"), HttpStore(url))
    layered.local.put_action(key, {"blobs": [], "older": True})  # what this machine had before a node wrote
    assert layered.get_action(key) == {"blobs": [], "older": True}  # the local cache answers first
    layered.refresh_action(key)
    assert layered.get_action(key) == value and layered.local.get_bytes(digest) == b"artifact bytes"


def test_missing_blob_is_fetched_for_get_bytes(remote, tmp_path: Path) -> None:
    store, url = remote
    _, digest, _ = _seed(store, tmp_path, b"program bytes")
    layered = LayeredStore(LocalStore(tmp_path / "local"), HttpStore(url))
    assert layered.get_bytes(digest) == b"program bytes"
    assert layered.blob_path(digest) is not None
    assert layered.get_bytes("ab" * 32) is None


def test_read_only_sends_no_put(remote, tmp_path: Path, nginx_server) -> None:
    _, url = remote
    layered = LayeredStore(LocalStore(tmp_path / "local"), HttpStore(url), upload=False)
    digest = layered.put_bytes(b"built here")
    layered.put_action("aa" * 32, {"blobs": [digest]})
    assert layered.get_action("aa" * 32) is not None
    assert layered.get_action("bb" * 32) is None  # a miss does ask the remote...
    methods = [r.split()[0] for r in _count(nginx_server, url)]
    assert methods and "PUT" not in methods  # ...but never writes to it


def test_upload_sends_blobs_before_the_entry_and_fills_from_a_warm_local_cache(remote, tmp_path: Path,
                                                                                nginx_server) -> None:
    _, url = remote
    local = LocalStore(tmp_path / "local")
    writer = LayeredStore(local, HttpStore(url), upload=True)
    a, b = writer.put_bytes(b"pt2 bytes"), writer.put_bytes(b"so bytes")
    writer.put_action("cc" * 32, {"blobs": [a, b]})
    puts = [r.split()[1].rsplit("/", 2)[-2:] for r in _count(nginx_server, url, at_least=3, method="PUT")]
    assert puts == [["cas", a], ["cas", b], ["ac", "cc" * 32]]
    # An entry already in the local cache (built before the remote existed) is uploaded on its next hit.
    local.put_action("dd" * 32, {"blobs": [a]})
    assert writer.get_action("dd" * 32) is not None
    assert HttpStore(url).get_action("dd" * 32) == {"blobs": [a]}
    assert writer.remote_counts["uploads"] == 2


def test_server_answering_500_is_dropped_with_one_warning(nginx_server, tmp_path: Path) -> None:
    url = nginx_server.url("p", "/broken")
    marker = tmp_path / "events.remote-down"
    layered = LayeredStore(LocalStore(tmp_path / "local"), HttpStore(url), down_marker=marker)
    assert layered.get_action("ab" * 32) is None
    assert len(layered.warnings) == 1 and "HTTP 500" in layered.warnings[0]
    assert "continuing without the remote cache" in layered.warnings[0]
    assert marker.exists() and layered.remote is None
    seen = len(_count(nginx_server, url, at_least=3))
    assert seen == 3  # bounded: the first try and two retries
    assert layered.get_action("cd" * 32) is None and layered.get_bytes("cd" * 32) is None
    assert len(_count(nginx_server, url)) == seen and len(layered.warnings) == 1
    # Another action of the same build sees the marker and never waits on the remote.
    other = LayeredStore(LocalStore(tmp_path / "local"), HttpStore(url), down_marker=marker)
    assert other.get_action("ab" * 32) is None
    assert len(_count(nginx_server, url)) == seen and other.warnings == []


def test_stopped_server_is_a_quick_miss_with_a_warning(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/cache"  # nothing listens there
    layered = LayeredStore(LocalStore(tmp_path / "local"), HttpStore(url))
    started = time.monotonic()
    assert layered.get_action("ab" * 32) is None
    assert time.monotonic() - started < 5
    assert "Connection refused" in layered.warnings[0]


def test_required_remote_fails_instead(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/cache"
    layered = LayeredStore(LocalStore(tmp_path / "local"), HttpStore(url), required=True)
    with pytest.raises(RemoteError, match="--remote-required"):
        layered.get_action("ab" * 32)


def test_blob_failing_its_digest_is_not_used_and_the_remote_stays(remote, tmp_path: Path, nginx_server) -> None:
    store, url = remote
    key, digest, _ = _seed(store, tmp_path)
    prefix = url.rsplit("/", 1)[1]
    blob = nginx_server.root / prefix / "cas" / digest
    blob.write_bytes(b"artifact bytez")  # same size, other bytes
    local = LocalStore(tmp_path / "local")
    layered = LayeredStore(local, HttpStore(url))
    assert layered.get_action(key) is None
    assert any(f"cas/{digest} failed its digest check" in w for w in layered.warnings)
    assert not local.contains("cas", digest) and local.get_action(key) is None
    assert layered.remote is not None  # one bad object is not a dead server


def test_entry_pointing_at_a_missing_blob_is_a_miss(remote, tmp_path: Path, nginx_server) -> None:
    store, url = remote
    key, digest, _ = _seed(store, tmp_path)
    (nginx_server.root / url.rsplit("/", 1)[1] / "cas" / digest).unlink()
    local = LocalStore(tmp_path / "local")
    layered = LayeredStore(local, HttpStore(url))
    assert layered.get_action(key) is None
    assert any(f"points at cas/{digest}" in w for w in layered.warnings)
    assert local.get_action(key) is None


def test_truncated_body_is_retried_then_skipped(remote, tmp_path: Path, nginx_server) -> None:
    store, url = remote
    key, digest, value = _seed(store, tmp_path, b"x" * 100_000)
    prefix = url.rsplit("/", 1)[1]
    once = FaultProxy(nginx_server.port, {f"/cas/{digest}": 1})
    try:
        layered = LayeredStore(LocalStore(tmp_path / "a"), HttpStore(once.url(prefix)))
        assert layered.get_action(key) == value and not layered.warnings  # the retry got the whole body
        assert len(once.cut) == 1
    finally:
        once.close()
    always = FaultProxy(nginx_server.port, {f"/cas/{digest}": None})
    try:
        layered = LayeredStore(LocalStore(tmp_path / "b"), HttpStore(always.url(prefix)))
        assert layered.get_action(key) is None
        assert len(always.cut) == 2 and "cut off" in layered.warnings[0]  # a blob that failed twice is let go
        assert layered.remote is not None
    finally:
        always.close()


def test_credentials_reach_the_server_and_never_a_message(nginx_server, tmp_path: Path) -> None:
    prefix = nginx_server.new_prefix()
    seeded = HttpStore(nginx_server.url(prefix))
    seeded.put_action("ab" * 32, {"n": 1})
    basic = nginx_server.url(prefix, "/basic")
    bearer = nginx_server.url(prefix, "/bearer")
    assert HttpStore(basic, user=USER, password=PASSWORD).get_action("ab" * 32) == {"n": 1}
    assert HttpStore(bearer, token=TOKEN).get_action("ab" * 32) == {"n": 1}
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    assert HttpStore(basic, netrc_file=netrc).get_action("ab" * 32) == {"n": 1}
    in_url = basic.replace("http://", f"http://{USER}:{PASSWORD}@")
    store = HttpStore(in_url)
    assert store.get_action("ab" * 32) == {"n": 1}
    assert PASSWORD not in repr(store.stats()) and PASSWORD not in store.name
    wrong = in_url.replace(PASSWORD, PASSWORD + "-wrong")
    messages = []
    for s in (HttpStore(wrong), HttpStore(bearer, token=TOKEN + "-wrong")):
        with pytest.raises(RemoteError) as e:
            s.get_action("ab" * 32)
        messages.append(str(e.value))
    assert all("HTTP 401" in m for m in messages)
    assert not any(secret in m for m in messages for secret in (PASSWORD, TOKEN))
    bad_netrc = tmp_path / "bad-netrc"
    bad_netrc.write_text(f"machine 127.0.0.1 login {USER} passwordd {PASSWORD} bogus\n")
    with pytest.raises(RemoteError) as e:
        HttpStore(basic, netrc_file=bad_netrc)
    assert PASSWORD not in str(e.value)
    config = settings.remote_settings({settings.REMOTE_VAR: in_url, settings.REMOTE_TOKEN_VAR: TOKEN,
                                       settings.REMOTE_PASSWORD_VAR: PASSWORD})
    assert config is not None and PASSWORD not in repr(config) and TOKEN not in repr(config)


@pytest.mark.parametrize("url, shown", [
    ("http://u:p%40ss@host:8080/a/b/?token=x#f", "http://host:8080/a/b"),
    ("https://host/", "https://host"),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("env, flag, workspace, expected", [
    ({}, None, None, None),
    ({}, None, "http://ws/c", "http://ws/c"),
    ({settings.REMOTE_VAR: "http://env/c"}, None, "http://ws/c", "http://env/c"),
    ({settings.REMOTE_VAR: "http://env/c"}, "s3://flag/c", "http://ws/c", "s3://flag/c"),
    ({settings.REMOTE_VAR: "http://env/c"}, "", "http://ws/c", None),  # --remote-cache '' turns it off
    ({settings.REMOTE_VAR: ""}, None, "http://ws/c", None),
])
def test_remote_url_precedence(env, flag, workspace, expected) -> None:
    assert settings.remote_url(env, flag, workspace) == expected


def test_unsupported_scheme_is_a_user_error_without_credentials() -> None:
    with pytest.raises(UserError) as e:
        check_remote_url(f"ftp://{USER}:{PASSWORD}@host/cache")
    assert "ftp" in str(e.value) and PASSWORD not in str(e.value)
    assert check_remote_url("s3://bucket/p") == "s3://bucket/p"


def test_summary_keeps_one_warning_for_a_dead_remote() -> None:
    down = "remote cache http://h/c: GET /c/ac/{} failed 3 times: ConnectionRefusedError; continuing without the remote cache"
    events = [{"remote": {"url": "http://h/c", "hits": 1, "misses": 2, "uploads": 0, "requests": 5, "bytes_down": 10,
                          "bytes_up": 0, "warnings": [down.format(1), "remote cache http://h/c/cas/x failed its digest check"]}},
              {"remote": {"url": "http://h/c", "hits": 0, "misses": 0, "uploads": 0, "requests": 0, "bytes_down": 0,
                          "bytes_up": 0, "warnings": [down.format(2)]}},
              {"remote": {}}]
    summary = summarize(events)
    assert summary is not None and summary["hits"] == 1 and summary["requests"] == 5
    assert summary["warnings"] == [down.format(1), "remote cache http://h/c/cas/x failed its digest check"]
    assert remote_lines(summary)[-1].startswith("aotbuild: remote cache http://h/c: 1 hit, 2 misses")
    assert summarize([{"remote": {}}, {}]) is None


def test_the_remote_is_opened_only_when_the_local_cache_misses(tmp_path: Path) -> None:
    from aotbuild.actions.runtime import open_store

    env = {settings.CACHE_DIR_VAR: str(tmp_path / "local"), settings.REMOTE_VAR: f"http://127.0.0.1:{free_port()}/c",
           settings.EVENTS_VAR: str(tmp_path / "events.jsonl")}
    store = open_store(env, tmp_path / "aot-out")
    store.local.put_action("ab" * 32, {"n": 1})
    assert store.get_action("ab" * 32) == {"n": 1}
    assert store.remote_report() == {}  # never connected: nothing to say
    assert store.get_action("cd" * 32) is None  # a miss asks the remote, which is down
    assert "Connection refused" in store.remote_report()["warnings"][0]
    assert settings.remote_down_file(tmp_path / "events.jsonl").exists()
    assert open_store(env, tmp_path / "aot-out").remote is None  # later actions of the build skip it from the start
