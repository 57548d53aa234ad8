"""A model of real size: 151 MB of weights, above export.PROGRAM_STORE_LIMIT. Its program is never written to
the cache (the weights would be written and read back once more than they are compiled); the compile exports
it again in its own process, the artifacts verify against eager PyTorch, and a comment-only edit re-exports
without compiling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aotbuild.actions.export import PROGRAM_STORE_LIMIT

from .conftest import aotbuild, write

pytestmark = pytest.mark.torch

MODEL = '''import torch
from torch import nn


class Big(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = nn.Linear(6144, 6144)  # 151 MB of float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.layer(x))
'''


def _workspace(tmp_path: Path, model: str) -> Path:
    ws = tmp_path / "ws"
    write(ws / "WORKSPACE.aot.yaml", "")
    write(ws / "models" / "__init__.py", "")
    write(ws / "models" / "big.py", model)
    write(ws / "models" / "BUILD.aot.yaml",
          "targets:\n  big:\n    model: models.big:Big\n    inputs:\n      x: {shape: [2, 6144], dtype: float32}\n")
    return ws


def test_a_large_program_is_not_stored_and_the_compile_exports_it_again(tmp_path: Path) -> None:
    assert 6144 * 6145 * 4 > PROGRAM_STORE_LIMIT
    ws, cache = _workspace(tmp_path, MODEL), tmp_path / "cache"
    env = {"AOTBUILD_CACHE_DIR": str(cache)}
    run = aotbuild(["test", "//models:big"], ws, env)
    assert run.code == 0, run.output
    assert "PASSED //models:big" in run.stdout
    target = ws / "aot-out" / "models" / "@big"
    assert json.loads((target / "graph.json").read_text())["program"] is None
    phases = {a["action"]: a["phases"] for a in run.report["actions"]}
    assert "store_program" not in phases["export"]
    assert "reexport" in phases["compile"] and "load_program" not in phases["compile"]
    # The only blobs the size of the weights are the two artifacts.
    artifacts = {a["sha256"] for a in json.loads((target / "manifest.json").read_text())["artifacts"].values()}
    large = {p.name for p in (cache / "v1" / "cas").rglob("*") if p.is_file() and p.stat().st_size > 100 << 20}
    assert large == artifacts

    write(ws / "models" / "big.py", MODEL + "# a comment\n")
    run = aotbuild(["build", "//models:big"], ws, env)
    assert run.code == 0, run.output
    assert [(a["action"], a["outcome"]) for a in run.report["actions"]] == [("export", "exported")]

    # Other weights, the same structure: the compile exports the program again for its weights, and re-packages.
    write(ws / "models" / "big.py", MODEL.replace("manual_seed(0)", "manual_seed(1)"))
    run = aotbuild(["build", "//models:big"], ws, env)
    assert run.code == 0, run.output
    compiled = next(a for a in run.report["actions"] if a["action"] == "compile")
    assert compiled["outcome"] == "re-packaged" and "reexport" in compiled["phases"], compiled


def test_a_large_model_that_exports_differently_each_time_gets_its_program_stored(tmp_path: Path) -> None:
    """Weights initialised without a seed: the compile's export gives another graph than the export did. It
    fails once, saying why; the next build's export stores the program, and the artifacts verify."""
    ws = _workspace(tmp_path, MODEL.replace("        torch.manual_seed(0)\n", ""))
    env = {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")}
    run = aotbuild(["build", "//models:big"], ws, env)
    assert run.code == 1
    assert "the model gave another graph than its export did" in run.output and "run `aotbuild build` again" in run.output
    run = aotbuild(["test", "//models:big"], ws, env)
    assert run.code == 0, run.output
    assert "PASSED //models:big" in run.stdout
    assert json.loads((ws / "aot-out" / "models" / "@big" / "graph.json").read_text())["program"] is not None
