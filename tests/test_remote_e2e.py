"""The remote cache under real builds: a CI machine uploads, a fresh checkout elsewhere downloads everything
without compiling or importing torch, and every server fault still ends in a correct build."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from .conftest import TARGETS, aotbuild, artifact_digests, copy_example, torch_tripwire
from .remote_servers import PASSWORD, USER, FaultProxy, Nginx, free_port

pytestmark = pytest.mark.torch


def _upload_from_warm_cache(cold, tmp_path: Path, url: str, env: dict[str, str]) -> dict:
    """Checkout A: a CI job whose local cache is warm (the `cold` build's) fills an empty remote."""
    _, cold_env = cold
    a = copy_example(tmp_path / "A" / "ws")
    run = aotbuild(["build", "//...", "--remote-cache", url, "--remote-upload"], a, {**cold_env, **env})
    assert run.code == 0, run.output
    assert "compiled" not in run.report["targets"].values()
    assert run.report["remote"]["uploads"] >= 4 * len(TARGETS) - 1  # export-deps, export, program, compile
    assert run.report["remote"]["warnings"] == []
    return run.report


def _fresh_checkout_from_remote(cold, tmp_path: Path, url: str, env: dict[str, str]) -> Path:
    """Checkout B: another directory, an empty local cache, torch unimportable; built in two shards, then all."""
    ws, _ = cold
    b = copy_example(tmp_path / "B" / "elsewhere")
    tripwire, marker = torch_tripwire(tmp_path)
    env = {**env, **tripwire, "AOTBUILD_CACHE_DIR": str(tmp_path / "B-cache")}
    shares = []
    for k in (1, 2):
        run = aotbuild(["build", "//...", "--remote-cache", url, "--shard", f"{k}/2"], b, env)
        assert run.code == 0, run.output
        assert not marker.exists(), marker.read_text()
        assert set(run.report["targets"].values()) == {"artifact-cache hit"}, run.report["targets"]
        assert {a["outcome"] for a in run.report["actions"]} == {"action-cache hit", "artifact-cache hit"}
        assert run.report["remote"]["hits"] > 0 and run.report["remote"]["uploads"] == 0
        assert run.report["remote"]["warnings"] == [] and "warning" not in run.stderr
        shares.append(set(run.report["targets"]))
    assert shares[0] | shares[1] == set(TARGETS) and not shares[0] & shares[1]
    assert abs(len(shares[0]) - len(shares[1])) <= 1
    run = aotbuild(["build", "//...", "--remote-cache", url], b, env)
    assert run.code == 0 and set(run.report["targets"].values()) == {"up to date"}, run.output
    assert artifact_digests(b) == artifact_digests(ws)
    return b


@pytest.fixture(scope="module")
def http_remote(cold, nginx_server: Nginx, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A remote prefix on nginx holding everything the example project needs."""
    prefix = nginx_server.new_prefix()
    _upload_from_warm_cache(cold, tmp_path_factory.mktemp("upload"), nginx_server.url(prefix), {})
    return prefix


def test_http_fresh_checkout_downloads_everything_without_torch(cold, http_remote: str, nginx_server: Nginx,
                                                                tmp_path: Path) -> None:
    before = len(nginx_server.requests())
    # Through the password-protected location, credentials from the environment.
    url = nginx_server.url(http_remote, "/basic")
    b = _fresh_checkout_from_remote(cold, tmp_path, url, {"AOTBUILD_REMOTE_USER": USER,
                                                          "AOTBUILD_REMOTE_PASSWORD": PASSWORD})
    during = nginx_server.requests()[before:]
    assert any(r.startswith("GET /basic/") for r in during)
    assert not any(r.startswith("PUT") for r in during)  # read-only by default: the access log shows no PUT
    # The password went to the server, and nowhere else: not into outputs, logs, reports or the cache.
    for root in (b, tmp_path / "B-cache"):
        for f in root.rglob("*"):
            if f.is_file() and not f.is_symlink() and f.suffix not in (".so", ".pt2"):
                assert PASSWORD.encode() not in f.read_bytes(), f


def test_wrong_credentials_with_remote_required_fail_without_printing_them(cold, http_remote: str,
                                                                         nginx_server: Nginx, tmp_path: Path) -> None:
    b = copy_example(tmp_path / "ws")
    tripwire, marker = torch_tripwire(tmp_path)
    wrong = nginx_server.url(http_remote, "/basic").replace("http://", f"http://{USER}:{PASSWORD}-x@")
    run = aotbuild(["build", "//models:mlp", "--remote-cache", wrong, "--remote-required"], b,
                   {**tripwire, "AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert run.code == 1 and "HTTP 401" in run.output and "--remote-required" in run.output, run.output
    assert PASSWORD not in run.output and PASSWORD not in json.dumps(run.report)
    assert not marker.exists()
    for log in (b / "aot-out").rglob("*.log"):
        assert PASSWORD not in log.read_text()


def test_s3_upload_then_fresh_checkout(cold, moto_server, tmp_path: Path) -> None:
    url = moto_server.url("team/aot")
    env = {"AOTBUILD_S3_ENDPOINT": moto_server.endpoint}
    _upload_from_warm_cache(cold, tmp_path, url, env)
    listed = moto_server.client().list_objects_v2(Bucket=moto_server.bucket, Prefix="team/aot/")["Contents"]
    assert {o["Key"].split("/")[2] for o in listed} == {"ac", "cas"}
    _fresh_checkout_from_remote(cold, tmp_path, url, env)


# -- faults: each ends in a correct build and one clear message


def _copy_prefix(nginx_server: Nginx, prefix: str) -> str:
    """A private copy of the populated remote, to damage."""
    new = nginx_server.new_prefix()
    shutil.copytree(nginx_server.root / prefix, nginx_server.root / new)
    return new


def _seed_compile_entries(cold_cache: Path, cache: Path) -> None:
    """A local cache holding only the artifacts (a developer's half-warm cache): a failing remote then costs
    exports, not compiles."""
    for entry in (cold_cache / "v1" / "ac").glob("*/*"):
        payload = json.loads(entry.read_bytes())["payload"]
        if "pt2" not in payload:
            continue
        for digest in payload["blobs"]:
            dest = cache / "v1" / "cas" / digest[:2] / digest
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(cold_cache / "v1" / "cas" / digest[:2] / digest, dest)
        dest = cache / "v1" / "ac" / entry.parent.name / entry.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(entry, dest)


def _target_files(ws: Path, pkg_name: str) -> dict[str, str]:
    return {k: v for k, v in artifact_digests(ws).items() if k.startswith(f"aot-out/{pkg_name}/")}


def _build_mlp(cold, tmp_path: Path, url: str, extra: list[str] | None = None, seed: bool = False,
               flags: tuple[str, ...] = ()):
    ws, cold_env = cold
    c = copy_example(tmp_path / "C")
    cache = tmp_path / "C-cache"
    if seed:
        _seed_compile_entries(Path(cold_env["AOTBUILD_CACHE_DIR"]), cache)
    targets = extra or ["//models:mlp"]
    run = aotbuild(["build", *targets, "--remote-cache", url, "-j", "1", *flags], c,
                   {"AOTBUILD_CACHE_DIR": str(cache)})
    assert run.code == 0, run.output
    for label in targets:
        name = label.removeprefix("//").replace(":", "/")
        assert _target_files(c, name) == _target_files(ws, name)
    # The CLI's cache pass reports the remote trouble it met as an event of its own ("cache-pass").
    outcomes = {(a["label"], a["action"]): a["outcome"] for a in run.report["actions"] if a["action"] != "cache-pass"}
    return run, outcomes


def _remote_warnings(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("warning: remote cache")]


def test_blob_failing_its_digest_is_rebuilt_locally(cold, http_remote, nginx_server: Nginx, tmp_path: Path) -> None:
    ws, _ = cold
    prefix = _copy_prefix(nginx_server, http_remote)
    reference = json.loads((ws / "aot-out/models/@mlp/reference.json").read_text())["reference"]
    blob = nginx_server.root / prefix / "cas" / reference
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    run, outcomes = _build_mlp(cold, tmp_path, nginx_server.url(prefix))
    assert outcomes == {("//models:mlp", "export"): "exported", ("//models:mlp", "compile"): "artifact-cache hit"}
    warnings = _remote_warnings(run)
    assert len(warnings) == 1 and f"cas/{reference} failed its digest check" in warnings[0], run.stderr


def test_entry_pointing_at_a_missing_blob_is_rebuilt_locally(cold, http_remote, nginx_server: Nginx,
                                                             tmp_path: Path) -> None:
    ws, _ = cold
    prefix = _copy_prefix(nginx_server, http_remote)
    program = json.loads((ws / "aot-out/models/@mlp/graph.json").read_text())["program"]
    (nginx_server.root / prefix / "cas" / program).unlink()
    run, outcomes = _build_mlp(cold, tmp_path, nginx_server.url(prefix))
    assert outcomes[("//models:mlp", "export")] == "exported"
    assert outcomes[("//models:mlp", "compile")] == "artifact-cache hit"
    assert any(f"points at cas/{program}" in w for w in _remote_warnings(run)), run.stderr


def test_truncated_bodies_are_retried_then_rebuilt_locally(cold, http_remote, nginx_server: Nginx,
                                                           tmp_path: Path) -> None:
    ws, _ = cold
    reference = json.loads((ws / "aot-out/models/@mlp/reference.json").read_text())["reference"]
    proxy = FaultProxy(nginx_server.port, {f"/cas/{reference}": None})
    try:
        # One process per action: with warm workers, an export that reaches `import torch` while the warm
        # server starts is handed over to it and looks the blob up again (three more cut bodies).
        run, outcomes = _build_mlp(cold, tmp_path, proxy.url(http_remote), flags=("--no-workers",))
    finally:
        proxy.close()
    assert len(proxy.cut) == 2  # two tries in the CLI's cache pass; the export action does not ask again
    assert outcomes[("//models:mlp", "export")] == "exported"
    assert outcomes[("//models:mlp", "compile")] == "artifact-cache hit"
    warnings = _remote_warnings(run)
    assert len(warnings) == 1 and "cut off" in warnings[0], run.stderr


def test_server_answering_500_gives_one_warning_and_a_local_build(cold, nginx_server: Nginx, tmp_path: Path) -> None:
    targets = ["//models:mlp", "//models:fusion"]
    run, outcomes = _build_mlp(cold, tmp_path, nginx_server.url("x", "/broken"), targets, seed=True)
    assert {outcomes[(t, "export")] for t in targets} == {"exported"}
    assert {outcomes[(t, "compile")] for t in targets} == {"artifact-cache hit"}
    warnings = _remote_warnings(run)
    assert len(warnings) == 1 and "HTTP 500" in warnings[0] and "continuing without" in warnings[0], run.stderr


def test_server_stopped_mid_build(cold, http_remote, nginx_server: Nginx, tmp_path: Path) -> None:
    """A second nginx serving a copy of the remote is stopped once the build has made a few requests."""
    base = Path(tempfile.mkdtemp(prefix="aotbuild-nginx-"))  # nginx's workers must traverse it
    base.chmod(0o755)
    private = Nginx(base, free_port())
    shutil.copytree(nginx_server.root / http_remote, private.root / http_remote)
    private.start()
    stopped = threading.Event()

    def stop_after_requests() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(private.requests()) < 3:
            time.sleep(0.005)
        private.stop()
        stopped.set()

    watcher = threading.Thread(target=stop_after_requests, daemon=True)
    watcher.start()
    try:
        targets = ["//models:mlp", "//models:fusion"]
        run, outcomes = _build_mlp(cold, tmp_path, private.url(http_remote), targets, seed=True)
    finally:
        watcher.join(timeout=1)
        private.stop()
        shutil.rmtree(base, ignore_errors=True)
    assert stopped.is_set()
    assert run.report["remote"]["hits"] >= 1  # some answers came before the stop...
    warnings = _remote_warnings(run)
    assert len(warnings) == 1 and "continuing without the remote cache" in warnings[0], run.stderr  # ...then one warning
    assert "exported" in outcomes.values()
