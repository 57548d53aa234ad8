"""Shared helpers: run the CLI as users do, copy the example project, and catch any import of torch."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    report: dict

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def aotbuild(args: list[str], cwd: Path, env: dict[str, str] | None = None, report: bool = True) -> Run:
    """Run `python -m aotbuild` in a subprocess; build commands also return their JSON report."""
    report_path = cwd / ".report.json"
    report_path.unlink(missing_ok=True)
    extra = ["--report", str(report_path)] if report and args and args[0] in ("build", "test") else []
    proc = subprocess.run([sys.executable, "-m", "aotbuild", *args, *extra], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})})
    data = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Run(proc.returncode, proc.stdout, proc.stderr, data)


def write(path: Path, text: str) -> None:
    """Write a test file, making its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def copy_example(dest: Path, gpu: bool = False) -> Path:
    """The example workspace; its CUDA package only when asked (without a GPU, //... skips it: tests/test_cuda.py)."""
    skip = ("aot-out", "__pycache__") + (() if gpu else (GPU_PACKAGE,))
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(*skip))
    return dest


def wait_for(predicate, seconds: float) -> bool:
    """Whether `predicate()` came true within `seconds` (polled every 0.1 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def torch_tripwire(directory: Path) -> tuple[dict[str, str], Path]:
    """An environment under which any process that imports torch leaves a marker file (and fails)."""
    fake = directory / "tripwire" / "torch"
    fake.mkdir(parents=True, exist_ok=True)
    marker = directory / "torch-was-imported"
    (fake / "__init__.py").write_text(
        "import os, sys\n"
        f"open({str(marker)!r}, 'a').write(' '.join(sys.argv) + '\\n')\n"
        "raise ImportError('torch imported under the tripwire')\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")]))}, marker


GPU_PACKAGE = "gpu"
TARGETS = ["//models:cnn", "//models:encoder", "//models:fusion", "//models:mlp", "//models:mlp_dynamic",
           "//vision:classifier", "//vision:classifier_dynamic", "//vision:classifier_finetuned"]
# One architecture with two weights files: whichever of the two builds first compiles, the other re-packages.
SAME_ARCHITECTURE = ("//vision:classifier", "//vision:classifier_finetuned")


def artifact_digests(ws: Path) -> dict[str, str]:
    return {str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((ws / "aot-out").glob("*/@*/*-*.*")) if p.suffix in (".so", ".pt2")}


@pytest.fixture(scope="session")
def cold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One cold build of the whole example project; later tests reuse its cache."""
    base = tmp_path_factory.mktemp("e2e")
    ws = copy_example(base / "ws")
    env = {"AOTBUILD_CACHE_DIR": str(base / "cache")}
    run = aotbuild(["build", "//..."], ws, env)
    assert run.code == 0, run.output
    outcomes = run.report["targets"]
    assert {t: o for t, o in outcomes.items() if t not in SAME_ARCHITECTURE} \
        == {t: "compiled" for t in TARGETS if t not in SAME_ARCHITECTURE}, outcomes
    assert sorted(outcomes[t] for t in SAME_ARCHITECTURE) == ["compiled", "re-packaged"], outcomes
    return ws, env


TINY_MODEL = '''import torch


class Tiny(torch.nn.Module):
    def __init__(self, n: int = 4) -> None:
        super().__init__()
        torch.manual_seed(n)  # the weights are part of the graph: every export must give the same ones
        self.lin = torch.nn.Linear(n, n)

    def forward(self, x):
        return self.lin(x).relu()
'''
TINY_BUILD = ("targets:\n"
              "  a: {model: m.tiny:Tiny, inputs: {x: {shape: [2, 4], dtype: float32}}}\n"
              "  b: {model: m.tiny:Tiny, kwargs: {n: 3}, inputs: {x: {shape: [2, 3], dtype: float32}}}\n")


def make_tiny(dest: Path) -> Path:
    """A two-target workspace of tiny models: cheap to compile, for tests that must build for real."""
    (dest / "m").mkdir(parents=True)
    (dest / "WORKSPACE.aot.yaml").write_text("")
    (dest / "m" / "__init__.py").write_text("")
    (dest / "m" / "tiny.py").write_text(TINY_MODEL)
    (dest / "m" / "BUILD.aot.yaml").write_text(TINY_BUILD)
    return dest


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A cache holding the tiny workspace's artifacts (built once per session); copy with make_tiny to hit it."""
    base = tmp_path_factory.mktemp("tiny")
    env = {"AOTBUILD_CACHE_DIR": str(base / "cache")}
    run = aotbuild(["build", "//..."], make_tiny(base / "ws"), env)
    assert run.code == 0, run.output
    return env


# Fixtures shared by the remote tests (nginx and moto for the session), and the executor tests' session cluster.
from .remote_servers import moto_server, nginx_server, quick_retries  # noqa: E402,F401
from .ray_cluster import ray_cluster  # noqa: E402,F401
