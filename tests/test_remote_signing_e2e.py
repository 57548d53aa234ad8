"""Signed entries under real builds on the nginx test server: CI signs what it uploads, a verifying checkout
uses it without torch, and an unsigned remote is refused (a miss, one warning per entry, a local build)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aotbuild.cache import signing

from .conftest import aotbuild, make_tiny, torch_tripwire
from .remote_servers import Nginx

pytestmark = pytest.mark.torch
pytest.importorskip("cryptography")
TINY = {"//m:a", "//m:b"}


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return signing.generate()


def _upload(tiny_cache: dict[str, str], tmp_path: Path, url: str, env: dict[str, str]) -> None:
    """A CI job with a warm local cache (the session's tiny one) fills an empty remote prefix."""
    ws = make_tiny(tmp_path / "ci")
    run = aotbuild(["build", "//...", "--remote-cache", url, "--remote-upload"], ws, {**tiny_cache, **env})
    assert run.code == 0 and run.report["remote"]["uploads"] >= 8 and not run.report["remote"]["warnings"], run.output


@pytest.fixture(scope="module")
def signed_prefix(tiny_cache, nginx_server: Nginx, keys, tmp_path_factory) -> str:
    prefix = nginx_server.new_prefix()
    _upload(tiny_cache, tmp_path_factory.mktemp("signed"), nginx_server.url(prefix), {"AOTBUILD_SIGNING_KEY": keys[0]})
    return prefix


def test_a_signed_upload_is_used_by_a_verifying_checkout_without_torch(signed_prefix: str, nginx_server: Nginx,
                                                                       keys, tmp_path: Path) -> None:
    ws = make_tiny(tmp_path / "dev")
    (ws / "WORKSPACE.aot.yaml").write_text(f"cache: {{verify_keys: [\"{keys[1]}\"]}}\n")  # committed, public
    tripwire, marker = torch_tripwire(tmp_path)
    run = aotbuild(["build", "//...", "--remote-cache", nginx_server.url(signed_prefix)], ws,
                   {**tripwire, "AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert run.code == 0 and not marker.exists(), run.output
    assert run.report["targets"] == {t: "artifact-cache hit" for t in TINY}
    assert run.report["remote"]["warnings"] == [] and run.report["remote"]["hits"] > 0
    docs = [json.loads(p.read_bytes()) for p in (nginx_server.root / signed_prefix / "ac").iterdir()]
    assert docs and all(d["signature"]["alg"] == "ed25519" for d in docs)


def _seed_compile_entries(source: Path, cache: Path) -> None:
    """Only the artifacts in the local cache: a refused remote then costs the exports, not compiles."""
    for entry in (source / "v1" / "ac").glob("*/*"):
        payload = json.loads(entry.read_bytes())["payload"]
        if "pt2" not in payload:
            continue
        for path in [entry, *(source / "v1" / "cas" / d[:2] / d for d in payload["blobs"])]:
            dest = cache / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


@pytest.mark.parametrize("how", ["unsigned", "re-keyed"])
def test_unsigned_or_rekeyed_entries_are_refused(tiny_cache, signed_prefix: str, nginx_server: Nginx, keys,
                                                 tmp_path: Path, how: str) -> None:
    prefix = nginx_server.new_prefix()
    if how == "unsigned":
        _upload(tiny_cache, tmp_path, nginx_server.url(prefix), {})
    else:  # every signed entry filed under another entry's key
        shutil.copytree(nginx_server.root / signed_prefix, nginx_server.root / prefix)
        ac = sorted((nginx_server.root / prefix / "ac").iterdir())
        contents = [p.read_bytes() for p in ac]
        for path, raw in zip(ac, contents[1:] + contents[:1]):
            doc = json.loads(raw)
            doc["key"] = path.name  # sound and signed, but the signature was for the other key
            path.write_bytes(json.dumps(doc).encode())
    ws = make_tiny(tmp_path / "dev")
    cache = tmp_path / "cache"
    _seed_compile_entries(Path(tiny_cache["AOTBUILD_CACHE_DIR"]), cache)
    run = aotbuild(["build", "//...", "--remote-cache", nginx_server.url(prefix)], ws,
                   {"AOTBUILD_CACHE_DIR": str(cache), "AOTBUILD_REMOTE_VERIFY_KEYS": keys[1]})
    assert run.code == 0, run.output
    assert run.report["targets"] == {t: "artifact-cache hit" for t in TINY}  # built locally, from the seed
    assert run.report["remote"]["hits"] == 0
    warnings = run.report["remote"]["warnings"]
    assert warnings and all("failed its signature check" in w for w in warnings), warnings
    assert "Traceback" not in run.output
