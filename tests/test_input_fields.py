"""The `inputs` field's forms (random, ranged, filled and generated tensors, plain values, containers), each
with dims, and a located error with a fix for every bad one. Parsing stays torch-free."""

from __future__ import annotations

from pathlib import Path

import pytest

from aotbuild.errors import TargetError
from aotbuild.rules.export import export_spec
from aotbuild.workspace.input_specs import input_bytes
from aotbuild.workspace.labels import Label
from aotbuild.workspace.schema import parse_build_file
from aotbuild.workspace.target import NestedSpec, TensorSpec, ValueSpec
from aotbuild.workspace.yaml_source import load_yaml

EVERY_FORM = """\
targets:
  t:
    model: m:f
    inputs:
      pixels: {shape: [b, 3], dtype: uint8, low: 0, high: 256}
      noise: {shape: [b, 3], dtype: float32, low: -0.5, high: 0.5}
      batch:
        dict:
          ids: {shape: [b, 3], dtype: int64, low: 0, high: 10}
          mask: {shape: [b, 3], dtype: bool, generator: m.gen:mask}
          extras: {list: [{shape: [b], dtype: int8}, {value: 2}]}
      ones: {shape: [b, 3], dtype: float16, value: 1}
      flag: {value: true, keyword: true}
      name: {value: null, keyword: true}
      pair: {tuple: [{shape: [2], dtype: int16, value: -3}, {value: "x"}], keyword: true}
    dims:
      b: {min: 1, max: 16, example: 4}
"""


def parse(tmp_path: Path, text: str):
    path = tmp_path / "BUILD.aot.yaml"
    path.write_text(text)
    return parse_build_file(load_yaml(path, "pkg/BUILD.aot.yaml"), "pkg/BUILD.aot.yaml", "pkg", {})


def test_every_form_parses_with_dims(tmp_path: Path) -> None:
    (target,), errors = parse(tmp_path, EVERY_FORM)
    assert errors == {}
    pixels, noise, batch, ones, flag, name, pair = target.inputs
    assert pixels == TensorSpec("pixels", ("b", 3), "uint8", 0, 256)
    assert (noise.low, noise.high) == (-0.5, 0.5)
    assert isinstance(batch, NestedSpec) and batch.container == "dict"
    ids, mask, extras = batch.items
    assert (ids.name, ids.low, ids.high, mask.generator) == ("ids", 0, 10, "m.gen:mask")
    assert (mask.low, mask.high) == (None, None)
    assert extras.container == "list" and extras.items[1] == ValueSpec("1", 2)
    assert extras.items[0] == TensorSpec("0", ("b",), "int8", 0, 100)  # integers default to [0, 100)
    assert (ones.fill, ones.low) == (1, None)
    assert flag == ValueSpec("flag", True, keyword=True) and name == ValueSpec("name", None, keyword=True)
    assert pair.container == "tuple" and pair.items[0].fill == -3 and pair.keyword


def test_export_spec_carries_each_form_and_keeps_plain_tensors_as_they_were(tmp_path: Path) -> None:
    (target,), _ = parse(tmp_path, EVERY_FORM)
    inputs = export_spec(target)["inputs"]
    assert inputs[0] == {"name": "pixels", "shape": ["b", 3], "dtype": "uint8", "low": 0, "high": 256,
                         "keyword": False}  # the keys a random tensor always had: existing export keys stay
    assert inputs[2]["dict"][1]["generator"] == "m.gen:mask"
    assert inputs[2]["dict"][2]["list"][1] == {"name": "1", "value": 2, "keyword": False}
    assert inputs[3]["fill"] == 1
    assert inputs[4] == {"name": "flag", "value": True, "keyword": True}
    assert [i["name"] for i in inputs[6]["tuple"]] == ["0", "1"]


def test_input_bytes_count_tensors_inside_containers_and_no_values(tmp_path: Path) -> None:
    (target,), _ = parse(tmp_path, EVERY_FORM)
    size, biggest = input_bytes(target.inputs, target.dims)
    # At b=16: uint8 48, float32 192, int64 384, bool 48, int8 16, float16 96, int16 4.
    assert size == 48 + 192 + 384 + 48 + 16 + 96 + 4
    assert biggest == "ids: ['b', 3] int64"


def test_a_dim_used_only_inside_a_container_counts_as_used(tmp_path: Path) -> None:
    text = ("targets:\n  t:\n    model: m:f\n    inputs:\n      d: {dict: {a: {shape: [n], dtype: float32}}}\n"
            "    dims: {n: {min: 2, max: 8}}\n")
    (target,), errors = parse(tmp_path, text)
    assert errors == {} and target.dims[0].name == "n"


# (input spec of 'x' in target 'bad' whose inputs line is 4; field; substring of the problem; of the fix)
INPUT_ERRORS = [
    ("{shape: [2], dtype: bool, high: 1}", "inputs.x.high", "do not apply to bool", "generator: module:callable"),
    ("{shape: [2], dtype: float32, low: 0.5}", "inputs.x.low", "needs 'high' too", "low: 0.0, high: 1.0"),
    ("{shape: [2], dtype: float32, low: 1.0, high: 1.0}", "inputs.x.high", "must exceed low", "high above low"),
    ("{shape: [2], dtype: int8, low: 0, high: 200}", "inputs.x.high", "int8 holds [-128, 127]", "at most 128"),
    ("{shape: [2], dtype: uint8, low: -1}", "inputs.x.low", "uint8 holds [0, 255]", "range"),
    ("{shape: [2], dtype: int32, low: 0.5}", "inputs.x.low", "expected an integer", "whole numbers"),
    ("{shape: [2], dtype: uint8, value: 300}", "inputs.x.value", "does not fit uint8", "in range"),
    ("{shape: [2], dtype: bool, value: 1}", "inputs.x.value", "true or false", "value: true or value: false"),
    ("{shape: [2], dtype: int64, value: 1.5}", "inputs.x.value", "expected an integer", "whole numbers"),
    ("{shape: [2], dtype: float32, value: .inf}", "inputs.x.value", "finite", "a number such as 0.5"),
    ("{value: .nan}", "inputs.x.value", "finite", "a number such as 0.5"),
    ("5", "inputs.x", "expected an input spec", "{value: 1}"),
    ("{shape: [-1], dtype: float32}", "inputs.x.shape", "size >= 0", "0 or more"),
    ("{shape: [1.5], dtype: float32}", "inputs.x.shape", "expected a size or a dim name", "declared in dims:"),
    ("{shape: [2], dtype: 32}", "inputs.x.dtype", "expected a dtype name", "float32"),
    ("{value: 1, keyword: yes please}", "inputs.x.keyword", "true or false", "keyword: true"),
    ("{shape: [2], dtype: float32, value: 1, low: 0, high: 1}", "inputs.x.low", "'value' and 'low'", "keep one"),
    ("{shape: [2], dtype: float32, generator: m:g, value: 0}", "inputs.x.generator", "'value' and 'generator'",
     "keep one"),
    ("{shape: [2], dtype: float32, generator: nocolon}", "inputs.x.generator", "module:callable",
     "shape, dtype, generator"),
    ("{value: [1, 2]}", "inputs.x.value", "found a list", "dict:, list: or tuple:"),
    ("{value: 1, low: 0}", "inputs.x.low", "needs a tensor input", "add shape and dtype"),
    ("{shape: [2]}", "inputs.x", "'dtype' is missing", "dtype: float32"),
    ("{keyword: true}", "inputs.x", "needs 'shape' and 'dtype'", "{value: true}"),
    ("{dict: {a: {value: 1, keyword: true}}}", "inputs.x.a.keyword", "forward()'s own parameters",
     "top-level input"),
    ("{dict: {a: {value: 1}}, shape: [2]}", "inputs.x.shape", "does not go with 'dict'", "its own shape"),
    ("{list: {a: 1}}", "inputs.x.list", "expected a list of input specs", "list: ["),
    ("{dict: [1]}", "inputs.x.dict", "expected a mapping of keys", "dict: {ids:"),
    ("{list: [{shape: [2], dtype: float33}]}", "inputs.x[0].dtype", "unknown dtype", "uint8"),
    ("{dict: {a: {shape: [q], dtype: float32}}}", "inputs.x.a.shape", "unknown dimension 'q'", "dims:"),
    ("{shape: [2], dtype: float32, valeu: 1}", "inputs.x.valeu", "unknown key", "did you mean 'value'"),
]


@pytest.mark.parametrize("spec, field, problem, fix", INPUT_ERRORS)
def test_bad_inputs_name_file_line_target_field_and_fix(tmp_path: Path, spec: str, field: str, problem: str,
                                                        fix: str) -> None:
    text = f"targets:\n  bad:\n    model: m:f\n    inputs:\n      x: {spec}\n"
    _, errors = parse(tmp_path, text)
    error = errors[Label("pkg", "bad")]
    assert isinstance(error, TargetError)
    assert (str(error.where.file), error.where.line, error.where.target, error.where.field) == \
        ("pkg/BUILD.aot.yaml", 5, "bad", field)
    assert problem in error.problem
    assert error.fix is not None and fix in error.fix
