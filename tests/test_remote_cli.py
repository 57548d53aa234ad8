"""The remote-cache flags on the command line: bad values are usage errors that never echo credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import aotbuild, torch_tripwire
from .remote_servers import PASSWORD


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "good").mkdir(parents=True)
    (root / "WORKSPACE.aot.yaml").write_text("")
    (root / "good" / "BUILD.aot.yaml").write_text(
        "targets:\n  a: {model: good.m:f, inputs: {x: {shape: [2], dtype: float32}}}\n")
    return root


@pytest.mark.parametrize("shard", ["3/2", "0/1", "x"])
def test_bad_shard_is_a_usage_error(ws: Path, shard: str) -> None:
    run = aotbuild(["build", "//...", "--shard", shard], ws)
    assert run.code == 2 and "K/N" in run.stderr


def test_unsupported_remote_scheme_is_exit_2_without_the_password(ws: Path, tmp_path: Path) -> None:
    tripwire, marker = torch_tripwire(tmp_path)
    run = aotbuild(["build", "//...", "--remote-cache", f"ftp://ci:{PASSWORD}@host/c"], ws,
                   {**tripwire, "AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert run.code == 2 and "unsupported URL scheme 'ftp'" in run.stderr, run.output
    assert PASSWORD not in run.output and not marker.exists()


def test_workspace_remote_is_used_and_the_flag_overrides_it(ws: Path, tmp_path: Path) -> None:
    (ws / "WORKSPACE.aot.yaml").write_text("cache: {remote: 'gopher://from-workspace/c'}\n")
    env = {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")}
    run = aotbuild(["build", "//..."], ws, env)
    assert run.code == 2 and "'gopher'" in run.stderr, run.output
    run = aotbuild(["build", "//...", "--remote-cache", "nntp://flag/c"], ws, env)
    assert run.code == 2 and "'nntp'" in run.stderr, run.output


@pytest.mark.parametrize("flag", ["--remote-upload", "--remote-required"])
def test_remote_policy_flags_need_a_remote(ws: Path, tmp_path: Path, flag: str) -> None:
    run = aotbuild(["build", "//...", flag], ws, {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert run.code == 2 and f"{flag} needs a remote cache" in run.stderr, run.output
