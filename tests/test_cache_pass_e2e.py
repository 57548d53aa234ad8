"""Cache hits resolved by the CLI before ninja (engine/cache_pass.py), on real builds of tiny models: no action
process for a hit, ninja agreeing that nothing is left, and every fault falling back to the normal path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import aotbuild, make_tiny, torch_tripwire
from .remote_servers import Nginx, free_port
from .test_remote_e2e import _copy_prefix, _seed_compile_entries

pytestmark = pytest.mark.torch
NO_PASS = {"AOTBUILD_CACHE_PASS": "0"}
TARGETS = {"//m:a", "//m:b"}


def _split_tiny(dest: Path) -> Path:
    """The tiny workspace with //m:b's model in a file of its own, so an edit to it concerns b alone."""
    ws = make_tiny(dest)
    shutil.copy(ws / "m" / "tiny.py", ws / "m" / "tiny_b.py")
    build = ws / "m" / "BUILD.aot.yaml"
    build.write_text(build.read_text().replace("b: {model: m.tiny:Tiny", "b: {model: m.tiny_b:Tiny"))
    return ws


def _target_files(ws: Path) -> dict[str, bytes]:
    """Every file of every target directory (links as their targets), action logs aside."""
    out = ws / "aot-out"
    return {str(p.relative_to(out)): (os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
            for p in sorted(out.glob("m/@*/*")) if p.suffix != ".log"}


def _action_logs(ws: Path) -> list[str]:
    """An action process leaves <target>/<action>.log behind; the cache pass runs none."""
    return sorted(str(p.relative_to(ws)) for p in (ws / "aot-out").glob("m/@*/*.log"))


def _plain_ninja_dry_run(ws: Path) -> str:
    ninja = json.loads((ws / "aot-out/.aotbuild/plan.json").read_text())["ninja"]
    proc = subprocess.run([ninja, "-C", "aot-out", "-f", ".aotbuild/build.ninja", "-n"], cwd=ws,
                          capture_output=True, text=True, check=True)
    return proc.stdout


@pytest.fixture(scope="module")
def seeded(tiny_cache, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A checkout built the normal way (one action process per edge) into a cache of its own."""
    base = tmp_path_factory.mktemp("cache-pass")
    cache = base / "cache"
    shutil.copytree(tiny_cache["AOTBUILD_CACHE_DIR"], cache)
    ws = _split_tiny(base / "seed")
    run = aotbuild(["build", "//..."], ws, {"AOTBUILD_CACHE_DIR": str(cache), **NO_PASS})
    assert run.code == 0, run.output
    assert set(_action_logs(ws)) == {f"aot-out/m/@{t}/{a}.log" for t in "ab" for a in ("export", "compile")}
    return ws, cache


def _fresh_build(ws: Path, env: dict[str, str], tmp_path: Path, *args: str):
    tripwire, marker = torch_tripwire(tmp_path)
    run = aotbuild(["build", "//...", *args], ws, {**env, **tripwire})
    assert run.code == 0, run.output
    assert not marker.exists(), marker.read_text()
    return run


def _assert_resolved_without_actions(ws: Path, seed: Path, run) -> None:
    assert run.report["targets"] == {t: "artifact-cache hit" for t in TARGETS}
    assert {(a["label"], a["action"], a["outcome"]) for a in run.report["actions"]} == {
        (t, a, o) for t in TARGETS for a, o in (("export", "action-cache hit"), ("compile", "artifact-cache hit"))}
    assert _action_logs(ws) == []
    assert "no work to do" in _plain_ninja_dry_run(ws)
    assert _target_files(ws) == _target_files(seed)  # byte-identical to the normal path, manifests included


def test_fresh_checkout_from_local_cache_runs_no_action_then_edits_rebuild_one_target(seeded, tmp_path: Path) -> None:
    seed, cache = seeded
    ws = _split_tiny(tmp_path / "ws")
    env = {"AOTBUILD_CACHE_DIR": str(cache)}
    _assert_resolved_without_actions(ws, seed, _fresh_build(ws, env, tmp_path))
    again = _fresh_build(ws, env, tmp_path)
    assert again.report["targets"] == {t: "up to date" for t in TARGETS} and again.report["actions"] == []
    # The deps log the pass wrote tracks b's own model file: an edit re-exports b, and only b.
    (ws / "m" / "tiny_b.py").write_text((ws / "m" / "tiny_b.py").read_text() + "# a comment\n")
    edited = aotbuild(["build", "//..."], ws, env)
    assert edited.code == 0, edited.output
    assert edited.report["targets"] == {"//m:a": "up to date", "//m:b": "exported"}
    assert "no work to do" in _plain_ninja_dry_run(ws)


def test_fresh_checkout_from_remote_runs_no_action(seeded, nginx_server: Nginx, tmp_path: Path) -> None:
    seed, cache = seeded
    prefix = nginx_server.new_prefix()
    url = nginx_server.url(prefix)
    upload = aotbuild(["build", "//...", "--remote-cache", url, "--remote-upload"], _split_tiny(tmp_path / "ci"),
                      {"AOTBUILD_CACHE_DIR": str(cache)})
    assert upload.code == 0 and upload.report["remote"]["uploads"] >= 8, upload.output
    ws = _split_tiny(tmp_path / "ws")
    run = _fresh_build(ws, {"AOTBUILD_CACHE_DIR": str(tmp_path / "empty-cache")}, tmp_path, "--remote-cache", url)
    _assert_resolved_without_actions(ws, seed, run)
    assert run.report["remote"]["hits"] > 0 and run.report["remote"]["warnings"] == []


def _outcomes(run) -> dict[tuple[str, str], str]:
    """(label, action) -> outcome of the action processes (the pass's own warning events aside)."""
    return {(a["label"], a["action"]): a["outcome"] for a in run.report["actions"] if a["action"] != "cache-pass"}


def _blob_of(seed: Path, target: str, file: str, field: str) -> str:
    return json.loads((seed / "aot-out" / "m" / f"@{target}" / file).read_text())[field]


def _fallback_build(seed: Path, cache: Path, url: str, tmp_path: Path, local_seed: bool = False):
    """A fresh checkout whose cache pass meets a fault: the build must still be right, and say why."""
    ws = _split_tiny(tmp_path / "ws")
    local = tmp_path / "local-cache"
    if local_seed:
        _seed_compile_entries(cache, local)
    run = aotbuild(["build", "//...", "--remote-cache", url], ws, {"AOTBUILD_CACHE_DIR": str(local)})
    assert run.code == 0, run.output
    # The artifacts and manifests are the normal path's; graph.json may name another program blob, as after
    # any real re-export (one graph hash, programs differing in source locations), and graph.deps other
    # distributions (those the re-exporting process had imported, a warm worker's among them).
    def same(files: dict[str, bytes]) -> dict[str, bytes]:
        return {k: v for k, v in files.items() if not k.endswith(("/graph.json", "/graph.deps"))}

    assert same(_target_files(ws)) == same(_target_files(seed))
    assert "no work to do" in _plain_ninja_dry_run(ws)
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: remote cache")]
    return ws, run, warnings


def test_corrupt_or_missing_remote_blob_falls_back_to_the_action(seeded, nginx_server: Nginx, tmp_path: Path) -> None:
    seed, cache = seeded
    prefix = nginx_server.new_prefix()
    upload = aotbuild(["build", "//...", "--remote-cache", nginx_server.url(prefix), "--remote-upload"],
                      _split_tiny(tmp_path / "ci"), {"AOTBUILD_CACHE_DIR": str(cache)})
    assert upload.code == 0, upload.output
    damaged = _copy_prefix(nginx_server, prefix)
    reference = nginx_server.root / damaged / "cas" / _blob_of(seed, "b", "reference.json", "reference")
    data = bytearray(reference.read_bytes())
    data[len(data) // 2] ^= 0xFF
    reference.write_bytes(bytes(data))
    (nginx_server.root / damaged / "cas" / _blob_of(seed, "a", "graph.json", "program")).unlink()
    ws, run, warnings = _fallback_build(seed, cache, nginx_server.url(damaged), tmp_path)
    # a: its export entry names a blob the remote lacks; b: one of its blobs fails the digest check. Both
    # exports are left to the action, which exports for real; the compiles are then remote hits.
    assert _outcomes(run) == {(t, a): o for t in TARGETS for a, o in (("export", "exported"),
                                                                       ("compile", "artifact-cache hit"))}
    assert {p for p in _action_logs(ws) if p.endswith("export.log")} == {f"aot-out/m/@{t}/export.log" for t in "ab"}
    assert any("failed its digest check" in w for w in warnings), run.stderr
    assert any("which the remote does not have" in w for w in warnings), run.stderr


def test_stopped_server_falls_back_to_the_action(seeded, tmp_path: Path) -> None:
    seed, cache = seeded
    url = f"http://127.0.0.1:{free_port()}/nothing-listens"
    ws, run, warnings = _fallback_build(seed, cache, url, tmp_path, local_seed=True)
    assert _outcomes(run) == {(t, a): o for t in TARGETS for a, o in (("export", "exported"),
                                                                       ("compile", "artifact-cache hit"))}
    assert len(warnings) == 1 and "continuing without the remote cache" in warnings[0], run.stderr
