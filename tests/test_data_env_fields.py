"""The `data:` and `env:` target fields (issue 27): parsed, defaulted, checked, and in the export spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from aotbuild.rules.export import export_spec

from .test_yaml_and_schema import parse

BUILD = """defaults:
  env: [MODEL_VARIANT]
targets:
  a:
    model: m.x:A
    data: [m/config.json, "m/vocab/*.txt", m/config.json]
    inputs: {x: {shape: [2], dtype: float32}}
  b:
    model: m.x:A
    env: [OTHER, OTHER]
    inputs: {x: {shape: [2], dtype: float32}}
  c:
    model: m.x:A
    env: []
    inputs: {x: {shape: [2], dtype: float32}}
"""


def test_data_and_env_parse_default_and_reach_the_export_spec(tmp_path: Path) -> None:
    (a, b, c), errors = parse(tmp_path, BUILD)
    assert errors == {}
    assert a.data == ("m/config.json", "m/vocab/*.txt") and a.env == ("MODEL_VARIANT",)
    assert b.data == () and b.env == ("OTHER",)  # a target's own list replaces the default
    spec = export_spec(a)
    assert spec["data"] == ["m/config.json", "m/vocab/*.txt"] and spec["env"] == ["MODEL_VARIANT"]
    # Neither declared: the spec (and the action-cache key) is what it was before the fields existed.
    assert "data" not in export_spec(c) and "env" not in export_spec(c)


@pytest.mark.parametrize("field, value, problem", [
    ("data", "[../outside.json]", "must name files inside the workspace"),
    ("data", "[/etc/passwd]", "must name files inside the workspace"),
    ("data", "[aot-out/x]", "must name files inside the workspace"),
    ("data", "m/config.json", "expected a list"),
    ("env", "[1BAD]", "is not an environment variable name"),
    ("env", "[A=B]", "is not an environment variable name"),
])
def test_bad_data_and_env_entries_name_the_field(tmp_path: Path, field: str, value: str, problem: str) -> None:
    text = f"targets:\n  a:\n    model: m.x:A\n    {field}: {value}\n    inputs: {{x: {{shape: [2], dtype: float32}}}}\n"
    _, errors = parse(tmp_path, text)
    [error] = errors.values()
    assert problem in str(error) and f"'{field}'" in str(error) and ":4" in str(error)
