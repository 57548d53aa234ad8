"""The cache root reaches actions through aot-out/.aotbuild/ (recorded by the build, else from the plan), not
through an environment variable the CLI exports, so plain ninja uses the cache the workspace names."""

from __future__ import annotations

from pathlib import Path

import pytest

from aotbuild import layout
from aotbuild.actions.runtime import open_store
from aotbuild.cache.access import record_root, recorded_root
from aotbuild.cli import main
from aotbuild.workspace import settings

from .conftest import write


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    write(ws / "WORKSPACE.aot.yaml", "cache: {dir: shared-cache}\n")
    write(ws / "models/BUILD.aot.yaml", "targets: {}\n")
    monkeypatch.chdir(ws)
    monkeypatch.delenv(settings.CACHE_DIR_VAR, raising=False)
    return ws


def test_before_any_build_actions_use_the_workspace_cache_dir_from_the_plan(ws: Path) -> None:
    assert main(["plan"]) == 0
    assert recorded_root({}, ws / layout.OUT_DIR) == ws / "shared-cache"
    assert open_store({}, ws / layout.OUT_DIR).local.root == ws / "shared-cache"  # what actions open
    # The variable keeps its precedence over WORKSPACE, as in the CLI.
    env = {settings.CACHE_DIR_VAR: str(ws / "from-env")}
    assert recorded_root(env, ws / layout.OUT_DIR) == ws / "from-env"


def test_the_root_a_build_recorded_wins_over_the_environment(ws: Path, tmp_path: Path) -> None:
    out = ws / layout.OUT_DIR
    record_root(out, tmp_path / "flag-cache")  # what `aotbuild build --cache-dir` resolved
    env = {settings.CACHE_DIR_VAR: str(tmp_path / "elsewhere")}
    assert recorded_root(env, out) == tmp_path / "flag-cache"
    before = (out / layout.CACHE_ROOT_FILE).stat().st_mtime_ns
    record_root(out, tmp_path / "flag-cache")
    assert (out / layout.CACHE_ROOT_FILE).stat().st_mtime_ns == before  # rewritten only when it changes
