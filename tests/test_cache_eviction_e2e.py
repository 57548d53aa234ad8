"""With real (tiny) artifacts: an evicted blob is exported again instead of failing, plain ninja builds from
the cache and re-plans through its generator edge, and `cache stats` counts the last build's hits exactly."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import ninja
import pytest

from aotbuild import layout

from .conftest import TINY_BUILD, aotbuild, make_tiny

pytestmark = pytest.mark.torch


def _private_cache(tiny_cache: dict[str, str], dest: Path) -> dict[str, str]:
    """A copy of the session's tiny cache that a test may damage (without the compiler's temp space)."""
    shutil.copytree(tiny_cache["AOTBUILD_CACHE_DIR"], dest, ignore=shutil.ignore_patterns("tmp", "locks", "leases"))
    return {"AOTBUILD_CACHE_DIR": str(dest)}


def _blob(cache: str, digest: str) -> Path:
    return Path(cache) / "v1" / "cas" / digest[:2] / digest


def test_an_evicted_reference_is_exported_again_when_verifying(tmp_path: Path, tiny_cache: dict[str, str]) -> None:
    env = _private_cache(tiny_cache, tmp_path / "cache")
    ws = make_tiny(tmp_path / "ws")
    assert aotbuild(["build", "//m:a"], ws, env).code == 0
    graph = json.loads((ws / "aot-out/m/@a/graph.json").read_text())
    digest = json.loads((ws / "aot-out/m/@a/reference.json").read_text())["reference"]
    reference = _blob(env["AOTBUILD_CACHE_DIR"], digest)
    reference.unlink()  # as `cache gc` would
    run = aotbuild(["test", "//m:a"], ws, env)
    assert run.code == 0, run.output
    assert "PASSED //m:a" in run.stdout and "removed from the cache" not in run.output
    # Only verify ran (ninja saw no change to re-export for); it exported again to recover the reference.
    assert [(a["label"], a["action"]) for a in run.report["actions"]] == [("//m:a", "verify")]
    assert hashlib.sha256(reference.read_bytes()).hexdigest() == digest
    assert json.loads((ws / "aot-out/m/@a/graph.json").read_text()) == graph


def test_an_evicted_program_is_exported_again_when_compiling(tmp_path: Path, tiny_cache: dict[str, str]) -> None:
    env = _private_cache(tiny_cache, tmp_path / "cache")
    ws = make_tiny(tmp_path / "ws")
    assert aotbuild(["build", "//m:a"], ws, env).code == 0
    target = ws / "aot-out/m/@a"
    graph = json.loads((target / "graph.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    # As `cache gc` would: the program and both artifacts; without its manifest the compile edge runs again.
    for digest in [graph["program"]] + [art["sha256"] for art in manifest["artifacts"].values()]:
        _blob(env["AOTBUILD_CACHE_DIR"], digest).unlink()
    (target / "manifest.json").unlink()
    run = aotbuild(["build", "//m:a"], ws, env)
    assert run.code == 0, run.output
    assert [(a["label"], a["action"]) for a in run.report["actions"]] == [("//m:a", "compile")]
    assert json.loads((target / "graph.json").read_text()) == graph  # the export edge did not run
    # The compile exported the program again (its bytes may differ: source-location metadata) and compiled it.
    for art in json.loads((target / "manifest.json").read_text())["artifacts"].values():
        assert hashlib.sha256((target / art["file"]).read_bytes()).hexdigest() == art["sha256"]


def _ninja(ws: Path, env: dict[str, str], *goals: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(ninja.BIN_DIR) / "ninja"), "-C", str(ws / "aot-out"), "-f", layout.NINJA_FILE,
                           *goals], capture_output=True, text=True, env={**os.environ, **env})


def test_plain_ninja_builds_from_the_cache_and_replans_itself(tmp_path: Path, tiny_cache: dict[str, str]) -> None:
    ws = make_tiny(tmp_path / "ws")
    assert aotbuild(["plan"], ws, tiny_cache).code == 0
    run = _ninja(ws, tiny_cache, "m/@a/manifest.json", "m/@b/manifest.json")
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("a", "b"):
        manifest = json.loads((ws / f"aot-out/m/@{name}/manifest.json").read_text())
        for art in manifest["artifacts"].values():
            data = (ws / f"aot-out/m/@{name}" / art["alias"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == art["sha256"]
    assert "no work to do" in _ninja(ws, tiny_cache, "m/@a/manifest.json", "m/@b/manifest.json").stdout
    # A new target in the BUILD file: ninja's generator edge re-plans, then builds it (the same model as a,
    # so both of its actions are cache hits).
    (ws / "m" / "BUILD.aot.yaml").write_text(TINY_BUILD + "  c: {model: m.tiny:Tiny, inputs: {x: {shape: [2, 4], "
                                                          "dtype: float32}}}\n")
    run = _ninja(ws, tiny_cache, "all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "plan" in run.stdout and "compile //m:c" in run.stdout
    digests = [{k: v["sha256"] for k, v in json.loads((ws / f"aot-out/m/@{n}/manifest.json").read_text())
                ["artifacts"].items()} for n in ("a", "c")]
    assert digests[0] == digests[1]


def test_cache_stats_counts_the_last_builds_hits_exactly(tmp_path: Path, tiny_cache: dict[str, str]) -> None:
    env = _private_cache(tiny_cache, tmp_path / "cache")
    ws = make_tiny(tmp_path / "ws")
    assert aotbuild(["build", "//..."], ws, env).code == 0
    stats = aotbuild(["cache", "stats"], ws, env)
    # 2 targets, each: the export's two action-cache lookups (dependency lists, then the result) and its
    # reference inputs blob, and the compile's entry.
    assert "last build: 8 hits, 0 misses, 4 actions, 0 corrupt entries\n  targets: 2 artifact-cache hit" in stats.stdout
