"""Target-file parsing: every bad input is rejected with its file, line, target and field."""

from __future__ import annotations

import json

from pathlib import Path

import pytest

from aotbuild.errors import TargetError
from aotbuild.workspace.labels import Label
from aotbuild.workspace.schema import parse_build_file
from aotbuild.workspace.yaml_source import load_yaml

GOOD = """\
defaults:
  device: cpu
  tolerance: {atol: 1.0e-3, rtol: 1.0e-3}
  options: {a.b: 1}
targets:
  mlp:
    model: models.mlp:MLP
    kwargs: {hidden: 128}
    inputs:
      x: {shape: [batch, 64], dtype: float32}
      s: {shape: [1], dtype: float32, keyword: true}
    dims:
      batch: {min: 1, max: 64, example: 8}
    options: {c.d: true}
    tags: [t]
  enc:
    model: models.enc:build
    inputs: models.enc:example_inputs
    device: cuda
"""


def parse(tmp_path: Path, text: str):
    path = tmp_path / "BUILD.aot.yaml"
    path.write_text(text)
    return parse_build_file(load_yaml(path, "pkg/BUILD.aot.yaml"), "pkg/BUILD.aot.yaml", "pkg", {})


def test_good_file_parses_into_frozen_targets(tmp_path: Path) -> None:
    targets, errors = parse(tmp_path, GOOD)
    assert errors == {}
    mlp, enc = targets
    assert mlp.label == Label("pkg", "mlp") and mlp.line == 7
    assert mlp.inputs[0].shape == ("batch", 64) and mlp.inputs[1].keyword
    assert mlp.dims[0].example == 8 and mlp.dims[0].min == 1
    assert mlp.options == {"a.b": 1, "c.d": True}  # defaults merge under the target's own options
    assert mlp.tolerance is not None and mlp.tolerance.atol == 1e-3
    assert enc.inputs == "models.enc:example_inputs" and enc.device == "cuda"
    with pytest.raises(AttributeError):
        mlp.model = "x"  # type: ignore[misc]


def test_export_spec_excludes_compile_only_fields(tmp_path: Path) -> None:
    (mlp, _), _ = parse(tmp_path, GOOD)
    from aotbuild.rules.compile import compile_spec
    from aotbuild.rules.export import export_spec

    assert "options" not in export_spec(mlp)
    assert compile_spec(mlp)["options"] == {"a.b": 1, "c.d": True}


TARGET_ERRORS = [
    # (yaml for target 'bad', whose body starts on line 3; expected line, field, substring of the problem)
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: float32}}\n    widht: 3", 5, "widht", "unknown key"),
    ("model: 3\n    inputs: {x: {shape: [1], dtype: float32}}", 3, "model", "expected 'module:callable'"),
    ("model: nocolon\n    inputs: {x: {shape: [1], dtype: float32}}", 3, "model", "module:callable"),
    ("inputs: {x: {shape: [1], dtype: float32}}", 3, "model", "missing 'model'"),
    ("model: m:f", 3, "inputs", "missing 'inputs'"),
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: float33}}", 4, "inputs.x.dtype", "unknown dtype"),
    ("model: m:f\n    inputs: {x: {shape: 5, dtype: float32}}", 4, "inputs.x.shape", "expected a list"),
    ("model: m:f\n    inputs: {x: {shape: [b], dtype: float32}}", 4, "inputs.x.shape", "unknown dimension 'b'"),
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: float32}}\n    kwargs: [1]", 5, "kwargs", "expected a mapping"),
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: float32}}\n    device: tpu", 5, "device", "unknown device"),
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: float32}}\n    seed: true", 5, "seed", "expected an integer"),
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: float32}}\n    tags: vision", 5, "tags", "expected a list"),
    ("model: m:f\n    inputs: {x: {shape: [b], dtype: float32}}\n    dims: {b: {min: 4, max: 2}}", 5,
     "dims.b.max", "below min"),
    ("model: m:f\n    inputs: {x: {shape: [b], dtype: float32}}\n    dims: {b: {min: 1, max: 9, example: 1}}", 5,
     "dims.b.example", "at least 2"),
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: float32}}\n    dims: {b: {min: 1, max: 9}}", 4,
     "dims", "no input shape uses it"),
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: float32}}\n    weights: ../../etc/passwd", 5,
     "weights", "inside the package"),
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: float32}}\n    tolerance: {atol: -1, rtol: 0}", 5,
     "tolerance.atol", "non-negative"),
    ("model: m:f\n    inputs: {x: {shape: [1], dtype: bool, low: 0}}", 4, "inputs.x.low", "do not apply to bool"),
]


@pytest.mark.parametrize("body, line, field, problem", TARGET_ERRORS)
def test_bad_target_names_file_line_target_field(tmp_path: Path, body: str, line: int, field: str,
                                                 problem: str) -> None:
    good, errors = parse(tmp_path, f"targets:\n  bad:\n    {body}\n  ok:\n    model: m:f\n    inputs: m:g\n")
    assert [t.label.name for t in good] == ["ok"]  # a bad target does not take its siblings down
    error = errors[Label("pkg", "bad")]
    assert error.where.file == "pkg/BUILD.aot.yaml"
    assert (error.where.line, error.where.target, error.where.field) == (line, "bad", field)
    assert problem in str(error)
    assert f"pkg/BUILD.aot.yaml:{line}" in str(error) and "target 'bad'" in str(error)


FILE_ERRORS = [
    ("targets:\n  a: {model: m:f\n", 3, "malformed YAML"),
    ("targetz: {}\n", 1, "unknown key 'targetz'"),
    ("targets: [1, 2]\n", 1, "expected a mapping"),
    ("targets:\n  a: {model: m:f, inputs: m:g}\n  a: {model: m:f, inputs: m:g}\n", 3, "duplicate key 'a'"),
    ("defaults: {model: m:f}\n", 1, "unknown key 'model'"),
]


@pytest.mark.parametrize("text, line, problem", FILE_ERRORS)
def test_bad_file_raises_with_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    with pytest.raises(TargetError) as info:
        parse(tmp_path, text)
    assert info.value.where.line == line
    assert problem in str(info.value)
    assert "pkg/BUILD.aot.yaml" in str(info.value)


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    _, errors = parse(tmp_path, "targets:\n  a:\n    model: m:f\n    input: m:g\n")
    assert "did you mean 'inputs'" in str(errors[Label("pkg", "a")])


def test_options_merge_key_by_key_across_workspace_file_and_target(tmp_path: Path) -> None:
    ws_file = tmp_path / "WORKSPACE.aot.yaml"
    ws_file.write_text("defaults:\n  options: {a: 1, b: 1}\n")
    from aotbuild.workspace.schema import parse_workspace

    config = parse_workspace(load_yaml(ws_file, "WORKSPACE.aot.yaml"), "WORKSPACE.aot.yaml")
    path = tmp_path / "BUILD.aot.yaml"
    path.write_text("defaults:\n  options: {b: 2, c: 2}\ntargets:\n"
                    "  t: {model: m:f, inputs: m:g, options: {c: 3, d: 3}}\n  u: {model: m:f, inputs: m:g}\n")
    (t, u), errors = parse_build_file(load_yaml(path, "p/BUILD.aot.yaml"), "p/BUILD.aot.yaml", "p", config.defaults)
    assert not errors
    assert t.options == {"a": 1, "b": 2, "c": 3, "d": 3}
    assert u.options == {"a": 1, "b": 2, "c": 2}


def test_kwargs_must_be_plain_data(tmp_path: Path) -> None:
    _, errors = parse(tmp_path, "targets:\n  a:\n    model: m:f\n    inputs: m:g\n    kwargs: {when: 2024-01-01}\n")
    error = errors[Label("pkg", "a")]
    assert error.where.field == "kwargs.when" and error.where.line == 5
    assert "expected plain data" in str(error) and "quote it" in str(error)


@pytest.mark.parametrize("name", ["all", "x\n", "x\ny", "bad name", "-x"])
def test_invalid_target_name_is_one_bad_target_not_a_bad_file(tmp_path: Path, name: str) -> None:
    good, errors = parse(tmp_path, f"targets:\n  {json.dumps(name)}: {{model: m:f, inputs: m:g}}\n"
                                   "  ok: {model: m:f, inputs: m:g}\n")
    assert [t.label.name for t in good] == ["ok"]
    error = errors[Label("pkg", name)]
    assert "invalid target name" in str(error) and "pkg/BUILD.aot.yaml:2" in str(error)
    assert "\n" not in str(error).split("\n  fix:")[0]  # a newline in the name is shown escaped


@pytest.mark.parametrize("field, value", [("model", '"m:f\\n"'), ("device", '"cpu\\n"'),
                                          ("inputs", '"m:g\\n"')])
def test_trailing_newline_is_rejected_in_every_pattern_checked_field(tmp_path: Path, field: str, value: str) -> None:
    fields = {"model": '"m:f"', "inputs": '"m:g"', field: value}
    body = ", ".join(f"{k}: {v}" for k, v in fields.items())
    good, errors = parse(tmp_path, f"targets:\n  a: {{{body}}}\n")
    assert not good and field in str(errors[Label("pkg", "a")])


def test_dim_name_with_trailing_newline_is_rejected(tmp_path: Path) -> None:
    good, errors = parse(tmp_path, 'targets:\n  a:\n    model: m:f\n    inputs: {x: {shape: ["b\\n", 2], dtype: float32}}\n'
                                   '    dims: {"b\\n": {min: 1, max: 4}}\n')
    assert not good and "not an identifier" in str(errors[Label("pkg", "a")])
