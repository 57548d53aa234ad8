"""The cache under real builds: reproducible bytes, corruption, concurrent builds, and SIGKILL at any moment."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import aotbuild, artifact_digests, copy_example

pytestmark = pytest.mark.torch

TINY = '''import torch

SCALE = {scale}


class Tiny(torch.nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(width, width)

    def forward(self, x):
        return torch.relu(self.fc(x)) * SCALE
'''

TINY_BUILD = """targets:
  a: {model: pkg.tiny:Tiny, kwargs: {width: 8}, inputs: {x: {shape: [2, 8], dtype: float32}}}
  b: {model: pkg.tiny:Tiny, kwargs: {width: 12}, inputs: {x: {shape: [2, 12], dtype: float32}}}
"""


def tiny_workspace(root: Path, scale: float, targets: str = TINY_BUILD) -> Path:
    (root / "pkg").mkdir(parents=True, exist_ok=True)
    (root / "WORKSPACE.aot.yaml").write_text("")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "tiny.py").write_text(TINY.format(scale=scale))
    (root / "pkg" / "BUILD.aot.yaml").write_text(targets)
    return root


def blob_path(cache: Path, digest: str) -> Path:
    return cache / "v1" / "cas" / digest[:2] / digest


def replace_with_flipped_byte(path: Path) -> None:
    """Corrupt the cache's copy only (a new inode): checkouts hard-linked to the old one keep good bytes."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tmp = path.with_name("corrupting")
    tmp.write_bytes(bytes(data))
    os.replace(tmp, path)


def assert_outputs_sound(ws: Path) -> None:
    manifests = list((ws / "aot-out").glob("*/@*/manifest.json"))
    assert manifests
    for manifest_path in manifests:
        manifest = json.loads(manifest_path.read_text())
        for art in manifest["artifacts"].values():
            f = manifest_path.parent / art["alias"]
            assert hashlib.sha256(f.read_bytes()).hexdigest() == art["sha256"], f


def test_another_checkout_and_cache_root_compile_identical_bytes(cold, tmp_path: Path) -> None:
    ws, _ = cold
    other = copy_example(tmp_path / "other" / "place")
    run = aotbuild(["build", "//models:mlp", "//models:fusion"], other, {"AOTBUILD_CACHE_DIR": str(tmp_path / "c2")})
    assert run.code == 0, run.output
    assert set(run.report["targets"].values()) == {"compiled"}
    mine = artifact_digests(other)
    assert mine and all(artifact_digests(ws)[k] == v for k, v in mine.items())


def test_flipped_byte_in_cache_is_detected_rebuilt_and_reported(cold, tmp_path: Path) -> None:
    ws, env = cold
    cache = Path(env["AOTBUILD_CACHE_DIR"])
    manifest = json.loads((ws / "aot-out" / "models" / "@mlp" / "manifest.json").read_text())
    so_digest = manifest["artifacts"]["so"]["sha256"]
    replace_with_flipped_byte(blob_path(cache, so_digest))

    fresh = copy_example(tmp_path / "fresh")
    run = aotbuild(["build", "//models:mlp"], fresh, env)
    assert run.code == 0, run.output
    assert f"cas/{so_digest}" in run.report["corrupt"]
    assert "failed its digest check" in run.stderr
    assert run.report["targets"]["//models:mlp"] == "compiled"
    assert hashlib.sha256((fresh / "aot-out/models/@mlp/mlp.so").read_bytes()).hexdigest() == so_digest

    pt2_digest = manifest["artifacts"]["pt2"]["sha256"]
    replace_with_flipped_byte(blob_path(cache, pt2_digest))
    verify = aotbuild(["cache", "verify"], fresh, env)
    assert verify.code == 1 and f"cas/{pt2_digest}" in verify.stdout
    assert aotbuild(["cache", "verify"], fresh, env).code == 0  # removed: the cache is sound again


def test_concurrent_builds_from_four_checkouts_compile_each_key_once(cold, tmp_path: Path) -> None:
    _, env = cold
    scale = 1.0 + uuid.uuid4().int % 1000 / 1000  # graphs this cache has never seen
    checkouts = [tiny_workspace(tmp_path / f"co{i}", scale) for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-m", "aotbuild", "build", "//...", "--report", str(c / "r.json")],
                              cwd=c, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for c in checkouts]
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    reports = [json.loads((c / "r.json").read_text()) for c in checkouts]
    for label in ("//pkg:a", "//pkg:b"):
        outcomes = [r["targets"][label] for r in reports]
        assert outcomes.count("compiled") == 1, outcomes
    digests = [artifact_digests(c) for c in checkouts]
    assert all(d == digests[0] for d in digests)
    assert aotbuild(["cache", "verify"], checkouts[0], env).code == 0


def _kill_during(proc: subprocess.Popen, log: Path, since_ns: int, delay: float) -> bool:
    """SIGKILL the build `delay` seconds after the action writing `log` started (its log was reopened after
    `since_ns`); True if the build was still running then. Phases found by the files, not by a clock."""
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if log.exists() and log.stat().st_mtime_ns > since_ns:
            time.sleep(delay)
            break
        time.sleep(0.01)
    running = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return running


def test_sigkill_at_random_moments_never_corrupts_outputs_or_cache(cold, tmp_path: Path) -> None:
    _, env = cold
    rng = random.Random(20261126)
    ws = tiny_workspace(tmp_path / "ws", 0.5, TINY_BUILD.split("  b:")[0])
    assert aotbuild(["build", "//..."], ws, env).code == 0
    target = ws / "aot-out" / "pkg" / "@a"
    killed_in = []
    for trial in range(10):  # five kills in each phase: where they land no longer depends on chance
        # A new graph each trial, so export, compile and cache writes all happen in the killed build.
        (ws / "pkg" / "tiny.py").write_text(TINY.format(scale=1.0 + trial + uuid.uuid4().int % 10**6 / 10**7))
        started = time.time_ns() - 1
        proc = subprocess.Popen([sys.executable, "-m", "aotbuild", "build", "//..."], cwd=ws,
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, text=True)
        # Alternate the phase; within it, a random moment (an export takes ~2 s here, a compile ~10 s).
        phase = ("export", "compile")[trial % 2]
        if _kill_during(proc, target / f"{phase}.log", started, rng.uniform(0.0, 2.0 if phase == "export" else 8.0)):
            killed_in.append(phase)
        run = aotbuild(["build", "//..."], ws, env)
        assert run.code == 0, f"trial {trial}: {run.output}"
        assert_outputs_sound(ws)
        verify = aotbuild(["cache", "verify"], ws, env)
        assert verify.code == 0, f"trial {trial}: {verify.output}"
    assert {"export", "compile"} <= set(killed_in), killed_in  # the kills landed in both phases


def test_cache_stats_reports_last_build(cold, tmp_path: Path) -> None:
    ws, env = cold
    fresh = copy_example(tmp_path / "fresh")
    assert aotbuild(["build", "//models:all"], fresh, env).code == 0
    stats = aotbuild(["cache", "stats"], fresh, env)
    assert stats.code == 0
    assert "artifacts, programs (cas/)" in stats.stdout and "last build: " in stats.stdout
    hits = int(stats.stdout.split("last build: ")[1].split()[0])
    # 5 targets, each: the export's dependency lists, its result and its reference inputs; the compile's entry.
    assert hits == 20
    assert aotbuild(["cache", "path"], fresh, env).stdout.strip() == env["AOTBUILD_CACHE_DIR"]
