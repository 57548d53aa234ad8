"""A target's `inputs` field into input specs: tensors (random, filled or generated), plain values, containers."""

from __future__ import annotations

import math
from typing import Any

from aotbuild.workspace.fields import SCALARS, Ctx, callable_ref, check_keys, describe, expect
from aotbuild.workspace.target import DimSpec, InputSpec, NestedSpec, TensorSpec, ValueSpec, tensor_specs
from aotbuild.workspace.yaml_source import Node

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
               "uint8": 1, "bool": 1}
DTYPES = tuple(DTYPE_BYTES)
# Integer dtypes and the half-open range [low, high) a generated value may take in each.
INT_RANGES = {"int64": (-(1 << 63), 1 << 63), "int32": (-(1 << 31), 1 << 31), "int16": (-(1 << 15), 1 << 15),
              "int8": (-128, 128), "uint8": (0, 256)}
INPUT_FIELDS = ("shape", "dtype", "low", "high", "value", "generator", "keyword", "dict", "list", "tuple")
CONTAINERS = ("dict", "list", "tuple")
DEFAULT_INT_RANGE = (0, 100)
TENSOR_EXAMPLE = "{shape: [8, 64], dtype: float32}"
_GENERATOR_FIX = "write e.g. generator: models.inputs:padding_mask (called with shape, dtype, generator)"


def input_bytes(inputs: tuple[InputSpec, ...], dims: tuple[DimSpec, ...]) -> tuple[int, str]:
    """Bytes of one example case at the largest declared sizes (verification runs there), and the biggest input."""
    largest = {d.name: d.max for d in dims}  # shapes hold sizes and dim names: get(size, size) takes either
    sizes = [(DTYPE_BYTES[s.dtype] * math.prod(largest.get(n, n) for n in s.shape), s) for s in tensor_specs(inputs)]
    if not sizes:
        return 0, ""
    _, spec = max(sizes, key=lambda size: size[0])
    return sum(n for n, _ in sizes), f"{spec.name}: {list(spec.shape)} {spec.dtype}"


def parse_inputs(ctx: Ctx, node: Node, dims: dict[str, DimSpec]) -> tuple[InputSpec, ...] | str:
    """Tensors (random, filled or generated), non-tensor values and dict/list/tuple containers, or a callable."""
    if isinstance(node.value, str):
        return callable_ref(ctx, node, "inputs", None)
    entries = expect(ctx, node, "inputs", dict, "a mapping of input names, or 'module:callable'",
                     f"write inputs: {{x: {TENSOR_EXAMPLE}}}")
    specs = tuple(_parse_input(ctx, spec, name, f"inputs.{name}", dims, top=True) for name, spec in entries.items())
    used = {e for s in tensor_specs(specs) for e in s.shape if isinstance(e, str)}
    for name in dims:
        if name not in used:
            raise ctx.error(node, "dims", f"dimension '{name}' is declared but no input shape uses it",
                            f"use it in an input's shape (shape: [{name}, ...]) or remove it")
    return specs


def _parse_input(ctx: Ctx, node: Node, name: str, fld: str, dims: dict[str, DimSpec], top: bool) -> InputSpec:
    expect(ctx, node, fld, dict, "an input spec (a mapping)",
           f"write {name}: {TENSOR_EXAMPLE}, or {name}: {{value: 1}}")
    mapping = check_keys(ctx, node, INPUT_FIELDS, fld)
    keyword = False
    if "keyword" in mapping:
        if not top:
            raise ctx.error(mapping["keyword"], f"{fld}.keyword", "keyword applies to forward()'s own parameters",
                            "remove it here; mark the top-level input `keyword: true` instead")
        keyword = expect(ctx, mapping["keyword"], f"{fld}.keyword", bool, "true or false", "write keyword: true")
    containers = [k for k in CONTAINERS if k in mapping]
    if containers:
        return _parse_container(ctx, mapping, containers[0], name, fld, dims, keyword)
    if "shape" not in mapping and "dtype" not in mapping:
        if "value" not in mapping:
            raise ctx.error(node, fld, "needs 'shape' and 'dtype' (a tensor), 'value' (a constant argument) or "
                            "'dict', 'list' or 'tuple' (a container)",
                            f"write {name}: {TENSOR_EXAMPLE}, or {name}: {{value: true}}")
        extra = [k for k in ("low", "high", "generator") if k in mapping]
        if extra:
            raise ctx.error(mapping[extra[0]], f"{fld}.{extra[0]}", f"'{extra[0]}' needs a tensor input",
                            f"add shape and dtype to make a tensor filled with value, or remove '{extra[0]}'")
        return ValueSpec(name, _scalar(ctx, mapping["value"], f"{fld}.value"), keyword)
    return _parse_tensor(ctx, node, mapping, name, fld, dims, keyword)


def _parse_container(ctx: Ctx, mapping: dict[str, Node], kind: str, name: str, fld: str, dims: dict[str, DimSpec],
                     keyword: bool) -> NestedSpec:
    other = [k for k in mapping if k not in ("keyword", kind)]
    if other:
        raise ctx.error(mapping[other[0]], f"{fld}.{other[0]}", f"'{other[0]}' does not go with '{kind}'",
                        f"a container holds its items only: {name}: {{{kind}: ...}}; give each item "
                        "its own shape and dtype")
    if kind == "dict":
        entries = expect(ctx, mapping[kind], f"{fld}.dict", dict, "a mapping of keys to input specs",
                         f"write {name}: {{dict: {{ids: {TENSOR_EXAMPLE}}}}}")
        items = [_parse_input(ctx, child, key, f"{fld}.{key}", dims, top=False) for key, child in entries.items()]
    else:
        children = expect(ctx, mapping[kind], f"{fld}.{kind}", list, "a list of input specs",
                          f"write {name}: {{{kind}: [{TENSOR_EXAMPLE}, {{value: 1}}]}}")
        items = [_parse_input(ctx, child, str(i), f"{fld}[{i}]", dims, top=False) for i, child in enumerate(children)]
    return NestedSpec(name, kind, tuple(items), keyword)


def _parse_tensor(ctx: Ctx, node: Node, mapping: dict[str, Node], name: str, fld: str, dims: dict[str, DimSpec],
                  keyword: bool) -> TensorSpec:
    if "shape" not in mapping or "dtype" not in mapping:
        missing = "shape" if "shape" not in mapping else "dtype"
        raise ctx.error(node, fld, f"a tensor input needs both 'shape' and 'dtype'; '{missing}' is missing",
                        f"write {name}: {TENSOR_EXAMPLE}")
    shape = _parse_shape(ctx, mapping["shape"], f"{fld}.shape", dims)
    dtype = expect(ctx, mapping["dtype"], f"{fld}.dtype", str, "a dtype name", f"use one of {', '.join(DTYPES)}")
    if dtype not in DTYPES:
        raise ctx.error(mapping["dtype"], f"{fld}.dtype", f"unknown dtype '{dtype}'", f"use one of {', '.join(DTYPES)}")
    # A tensor is random (in [low, high) if given), filled with `value`, or made by a generator: one of them.
    chosen = [k for k in ("value", "generator", "low", "high")
              if k in mapping and not (k == "high" and "low" in mapping)]
    if len(chosen) > 1:
        raise ctx.error(mapping[chosen[1]], f"{fld}.{chosen[1]}", f"'{chosen[0]}' and '{chosen[1]}' cannot be combined",
                        "a tensor is random (low/high bound it), filled with value, or made by a generator: keep one")
    fill = _fill(ctx, mapping["value"], f"{fld}.value", dtype) if "value" in mapping else None
    generator = (callable_ref(ctx, mapping["generator"], f"{fld}.generator", _GENERATOR_FIX)
                 if "generator" in mapping else None)
    low, high = _range(ctx, node, mapping, fld, dtype) if fill is None and generator is None else (None, None)
    return TensorSpec(name, shape, dtype, low, high, keyword, fill, generator)


def _parse_shape(ctx: Ctx, node: Node, fld: str, dims: dict[str, DimSpec]) -> tuple[int | str, ...]:
    shape: list[int | str] = []
    for entry in expect(ctx, node, fld, list, "a list of sizes or dim names", "write shape: [batch, 64]"):
        if isinstance(entry.value, str):
            if entry.value not in dims:
                raise ctx.error(entry, fld, f"unknown dimension '{entry.value}'",
                                "declare it under dims:, e.g. dims: {batch: {min: 1, max: 64}}")
            shape.append(entry.value)
        else:
            size = expect(ctx, entry, fld, int, "a size or a dim name", "write an integer, or a name declared in dims:")
            if size < 0:
                raise ctx.error(entry, fld, f"expected a size >= 0, found {size}", "sizes are 0 or more")
            shape.append(size)
    return tuple(shape)


def _number(ctx: Ctx, node: Node, fld: str, integer: bool) -> int | float:
    value = expect(ctx, node, fld, int if integer else (int, float), "an integer" if integer else "a number",
                   "integer dtypes take whole numbers (3, not 3.0)" if integer else "write a number such as 0.5")
    if not integer and not math.isfinite(value):
        raise ctx.error(node, fld, f"expected a finite number, found {value}", "write a number such as 0.5")
    return value


def _range(ctx: Ctx, node: Node, mapping: dict[str, Node], fld: str, dtype: str) -> tuple[Any, Any]:
    """[low, high) of a random tensor: integers default to [0, 100), floats to none (standard normal)."""
    given = {k: mapping[k] for k in ("low", "high") if k in mapping}
    first = next(iter(given), "")
    if dtype == "bool" and given:
        raise ctx.error(given[first], f"{fld}.{first}", "low/high do not apply to bool inputs (fair coins)",
                        "use value: true (or false) for a constant mask, or generator: module:callable for a "
                        "pattern such as a padding mask")
    integer = dtype in INT_RANGES
    if not integer and len(given) == 1:
        other = "high" if first == "low" else "low"
        raise ctx.error(given[first], f"{fld}.{first}", f"a float input with '{first}' needs '{other}' too",
                        "write low: 0.0, high: 1.0 (uniform in [low, high)), or neither (standard normal)")
    if not integer and not given:
        return None, None
    low = _number(ctx, given["low"], f"{fld}.low", integer) if "low" in given else DEFAULT_INT_RANGE[0]
    high = _number(ctx, given["high"], f"{fld}.high", integer) if "high" in given else DEFAULT_INT_RANGE[1]
    if high <= low:
        raise ctx.error(mapping.get("high", node), f"{fld}.high", f"high ({high}) must exceed low ({low})",
                        "values are drawn from [low, high): give a high above low")
    if integer:
        lo, hi = INT_RANGES[dtype]
        for key, value in (("low", low), ("high", high - 1)):
            if not lo <= value < hi:
                raise ctx.error(mapping.get(key, node), f"{fld}.{key}",
                                f"{dtype} holds [{lo}, {hi - 1}], so [low, high) = [{low}, {high}) does not fit",
                                f"pick low and high within {dtype}'s range (high is exclusive: at most {hi})")
    return low, high


def _fill(ctx: Ctx, node: Node, fld: str, dtype: str) -> bool | int | float:
    if dtype == "bool":
        return expect(ctx, node, fld, bool, "true or false (the dtype is bool)", "write value: true or value: false")
    value = _number(ctx, node, fld, integer=dtype in INT_RANGES)
    lo, hi = INT_RANGES.get(dtype, (-math.inf, math.inf))
    if not lo <= value < hi:
        raise ctx.error(node, fld, f"{value} does not fit {dtype} ([{lo}, {hi - 1}])", "pick a value in range")
    return value


def _scalar(ctx: Ctx, node: Node, fld: str) -> bool | int | float | str | None:
    value = node.value
    if not isinstance(value, SCALARS):
        fix = ("declare containers with dict:, list: or tuple:, each item an input spec"
               if isinstance(value, (dict, list)) else "quote it to pass a string")
        raise ctx.error(node, fld, f"expected a boolean, number, string or null, found {describe(value)}", fix)
    if isinstance(value, float) and not math.isfinite(value):
        raise ctx.error(node, fld, f"expected a finite number, found {value}", "write a number such as 0.5")
    return value
