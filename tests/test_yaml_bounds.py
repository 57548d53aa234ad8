"""YAML loading: libyaml where present with the pure-Python loader giving the same result, and hard bounds on
what a hostile file can cost (aliases, nesting, size)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aotbuild.workspace import yaml_source
from aotbuild.errors import TargetError
from aotbuild.workspace.discovery import MAX_SOURCE_BYTES
from aotbuild.workspace.yaml_source import Node, load_yaml, parse_yaml

from .test_incremental_plan import BOMB
from .test_yaml_and_schema import GOOD

# Nine levels of nine aliases each, all inside one flow sequence: 9**9 strings if expanded.
KEY_BOMB = ", ".join(["&a [x, x, x, x, x, x, x, x, x]"] + [f"&{n} [{', '.join([f'*{p}'] * 9)}]"
                                                            for p, n in zip("abcdefgh", "bcdefghi")])
SCALARS = "a: [010, 0, 12, 1_000, 0x1f, -3, 1.5e-3, .inf, true, no, null, '7', \"x\", 2001-12-14, ~]\n"


def plain(node: Node):
    return node.plain()


def test_libyaml_is_used_and_keeps_line_numbers() -> None:
    assert issubclass(yaml_source.LOADER, yaml.CSafeLoader)  # the PyYAML wheel carries libyaml
    node = parse_yaml(GOOD, "pkg/BUILD.aot.yaml")
    assert node.value["targets"].value["enc"].line == 17
    assert node.value["targets"].value["mlp"].value["dims"].value["batch"].line == 13


@pytest.mark.parametrize("text", [GOOD, SCALARS, "x: &d {a: 1}\ny: *d\nz: [*d, *d]\n"])
def test_the_pure_python_loader_gives_the_same_nodes(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    fast = parse_yaml(text, "f")
    monkeypatch.setattr(yaml_source, "LOADER", yaml.SafeLoader)
    assert parse_yaml(text, "f") == fast
    assert plain(fast) == yaml.safe_load(text)  # and both mean what PyYAML means (YAML 1.1: 010 is 8)


def test_aliases_within_the_cap_are_fine() -> None:
    node = parse_yaml("base: &b {device: cpu, tags: [x]}\nuse: [*b, *b]\n", "f")
    assert plain(node)["use"] == [{"device": "cpu", "tags": ["x"]}] * 2


def test_an_alias_bomb_is_refused_naming_file_and_line() -> None:
    with pytest.raises(TargetError) as e:
        parse_yaml(BOMB, "pkg/BUILD.aot.yaml")
    assert str(e.value).startswith("pkg/BUILD.aot.yaml:2: YAML aliases expand to more than 10,000 values")


def test_an_alias_bomb_as_a_mapping_key_is_refused() -> None:
    # repr() of the key alone would expand it: the check must come before any message is built.
    with pytest.raises(TargetError, match="keys must be strings, found a list"):
        parse_yaml(f"? [{KEY_BOMB}]\n: 1\n", "f")


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(TargetError, match="nested more than 64 levels"):
        parse_yaml("a: " + "[" * 200 + "]" * 200 + "\n", "f")


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "BUILD.aot.yaml"
    path.write_text("targets: {}\n" + "#" * MAX_SOURCE_BYTES)
    with pytest.raises(TargetError, match=r"^pkg/BUILD.aot.yaml: file is 1,048,588 bytes, over the limit"):
        load_yaml(path, "pkg/BUILD.aot.yaml")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "BUILD.aot.yaml"
    path.write_bytes(b"targets: {\xff: 1}\n")
    with pytest.raises(TargetError, match="not UTF-8"):
        load_yaml(path, "f")
