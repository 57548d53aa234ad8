"""--shard K/N: parsing, and shares that are disjoint, complete, balanced and independent of input order."""

from __future__ import annotations

import random

import pytest

from aotbuild.errors import UserError
from aotbuild.workspace.labels import parse_label
from aotbuild.workspace.schema import parse_workspace
from aotbuild.errors import TargetError
from aotbuild.engine.build import parse_shard, shard
from aotbuild.workspace.yaml_source import load_yaml


@pytest.mark.parametrize("text, expected", [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3/3 ", (3, 3))])
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", "1/2/3"])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(UserError, match="K/N"):
        parse_shard(text)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 40])
def test_shards_partition_the_selection(count: int) -> None:
    labels = [parse_label(f"//pkg{i % 9}:t{i}") for i in range(37)]
    shares = [shard(labels, k, count) for k in range(1, count + 1)]
    flat = [str(label) for share in shares for label in share]
    assert sorted(flat) == sorted(map(str, labels)) and len(set(flat)) == len(flat)
    sizes = [len(s) for s in shares]
    assert max(sizes) - min(sizes) <= 1
    shuffled = labels[:]
    random.Random(count).shuffle(shuffled)
    assert [shard(shuffled, k, count) for k in range(1, count + 1)] == shares


def test_workspace_cache_remote(tmp_path) -> None:
    (tmp_path / "WORKSPACE.aot.yaml").write_text("cache: {dir: c, remote: 'https://cache.example/aot'}\n")
    config = parse_workspace(load_yaml(tmp_path / "WORKSPACE.aot.yaml", "WORKSPACE.aot.yaml"), "WORKSPACE.aot.yaml")
    assert config.remote_cache == "https://cache.example/aot" and config.cache_dir == "c"
    (tmp_path / "WORKSPACE.aot.yaml").write_text("cache:\n  remote: [1]\n")
    with pytest.raises(TargetError, match="WORKSPACE.aot.yaml:2.*cache.remote"):
        parse_workspace(load_yaml(tmp_path / "WORKSPACE.aot.yaml", "WORKSPACE.aot.yaml"), "WORKSPACE.aot.yaml")
