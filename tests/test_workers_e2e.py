"""Warm workers under real builds: the same bytes as one process per action, and no model leaks between targets."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import ninja
import pytest

from .conftest import TINY_MODEL, aotbuild, make_tiny

pytestmark = pytest.mark.torch


def digests(ws: Path, label_dir: str) -> dict[str, str]:
    manifest = json.loads((ws / "aot-out" / label_dir / "manifest.json").read_text())
    found = {}
    for kind, art in manifest["artifacts"].items():
        found[kind] = hashlib.sha256((ws / "aot-out" / label_dir / art["alias"]).read_bytes()).hexdigest()
        assert found[kind] == art["sha256"]
    return found


def test_workers_and_no_workers_compile_identical_bytes(tiny_cache, tmp_path: Path) -> None:
    warm = make_tiny(tmp_path / "warm")  # its artifacts were compiled by the session's build, with workers
    run = aotbuild(["build", "//m:a"], warm, tiny_cache)
    assert run.code == 0, run.output
    cold = make_tiny(tmp_path / "cold")
    run = aotbuild(["build", "//m:a", "--no-workers"], cold, {"AOTBUILD_CACHE_DIR": str(tmp_path / "c2")})
    assert run.code == 0, run.output
    assert run.report["targets"] == {"//m:a": "compiled"}
    assert all(a["worker"] is None for a in run.report["actions"])
    compile_phases = next(a["phases"] for a in run.report["actions"] if a["action"] == "compile")
    assert {"import", "load_program", "lower", "codegen", "cxx_compile_link"} <= set(compile_phases)
    assert compile_phases["import"] > 0.2  # a process of its own imports torch itself
    assert digests(cold, "m/@a") == digests(warm, "m/@a")


def test_targets_with_same_module_name_export_their_own_model(tmp_path: Path) -> None:
    """Two workspaces whose model module is m.tiny with different code, exported one after the other by
    the same warm worker (plain ninja, the workers' default), each as a process of its own would."""
    env = {**os.environ, "AOTBUILD_CACHE_DIR": str(tmp_path / "cache"), "AOTBUILD_WORKER_IDLE_S": "30"}

    def export(ws: Path, extra: dict[str, str]) -> str:
        assert aotbuild(["query", "//..."], ws, {**env, **extra}).code == 0  # plans
        proc = subprocess.run([os.path.join(ninja.BIN_DIR, "ninja"), "-C", str(ws / "aot-out"), "-f",
                               ".aotbuild/build.ninja", "m/@a/graph.json"], env={**env, **extra},
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        log = (ws / "aot-out" / "m" / "@a" / "export.log").read_text()
        assert "phases: startup" in log
        return json.loads((ws / "aot-out" / "m" / "@a" / "graph.json").read_text())["graph_hash"]

    relu = make_tiny(tmp_path / "relu")
    sigmoid = make_tiny(tmp_path / "sigmoid")
    (sigmoid / "m" / "tiny.py").write_text(TINY_MODEL.replace(".relu()", ".sigmoid()"))
    first, second = export(relu, {}), export(sigmoid, {})
    assert first != second
    alone = make_tiny(tmp_path / "alone")
    (alone / "m" / "tiny.py").write_text(TINY_MODEL.replace(".relu()", ".sigmoid()"))
    own = {"AOTBUILD_WORKERS": "0", "AOTBUILD_CACHE_DIR": str(tmp_path / "own-cache")}  # no action-cache hit
    assert export(alone, own) == second
