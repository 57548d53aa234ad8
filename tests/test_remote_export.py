"""Which exports go to a node and with which files (no cluster, no torch): the client's choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aotbuild.actions.remote_export import shipped_files

from .conftest import write

DEPS = {"files": ["m/__init__.py", "m/model.py"], "absent": [], "external": [], "globs": [], "env": [], "packages": []}


class _Store:
    def __init__(self, lists: list[dict]) -> None:
        self.lists = lists
        self.warnings: list[str] = []

    def get_action(self, key: str) -> dict[str, Any] | None:
        return {"lists": self.lists} if self.lists else None


class _Ctx:
    def __init__(self, root: Path, lists: list[dict], device: str = "cpu", gpu_arch: str | None = None,
                 **spec: Any) -> None:
        self.root, self.store = root, _Store(lists)
        self.spec = {"label": "//m:a", "device": device, "weights": None, **spec}
        self.gpu_arch = gpu_arch

    def toolchain(self) -> dict[str, Any]:
        return {"export": {"torch": "2.13.0"}, "cuda": {"gpu_arch": self.gpu_arch}, "host": {"gpu_arch": None}}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    for rel in ("m/__init__.py", "m/model.py", "m/unrelated.py", "m/w.pt"):
        write(tmp_path / rel, rel)
    return tmp_path


def test_an_export_with_a_recorded_list_ships_what_it_names(ws: Path) -> None:
    assert shipped_files(_Ctx(ws, [DEPS], weights="m/w.pt")) == (["m/__init__.py", "m/model.py", "m/w.pt"], None)


@pytest.mark.parametrize(("lists", "spec", "why"), [
    ([], {}, "its first export runs here"),
    ([{**DEPS, "external": ["/opt/lib/x.py"], "env": ["PYTHONPATH"]}], {}, "outside the workspace (PYTHONPATH)"),
    ([DEPS], {"env": ["MODEL_SIZE"]}, "environment variables (env:)"),
    ([DEPS], {"device": "cuda"}, "needs AOTBUILD_GPU_ARCH here"),
])
def test_an_export_runs_here_when_the_node_could_not_see_what_it_reads(ws: Path, lists: list, spec: dict,
                                                                       why: str) -> None:
    files, reason = shipped_files(_Ctx(ws, lists, **spec))
    assert files is None and why in reason


def test_a_cuda_targets_first_export_without_a_gpu_here_ships_every_module(ws: Path) -> None:
    files, _ = shipped_files(_Ctx(ws, [], device="cuda", gpu_arch="9.0", weights="m/w.pt"))
    assert files == ["m/__init__.py", "m/model.py", "m/unrelated.py", "m/w.pt"]
