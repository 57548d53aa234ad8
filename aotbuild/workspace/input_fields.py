"""The `inputs` field: tensors (random, filled or generated), non-tensor values and dict/list/tuple containers."""

from __future__ import annotations

import math
from typing import Any

from aotbuild.workspace.fields import Ctx, callable_ref, check_keys, expect
from aotbuild.workspace.target import (
    CONTAINERS,
    DTYPES,
    INPUT_FIELDS,
    INT_RANGES,
    DimSpec,
    InputSpec,
    NestedSpec,
    TensorSpec,
    ValueSpec,
    tensor_specs,
)
from aotbuild.workspace.yaml_source import Node

DEFAULT_INT_RANGE = (0, 100)
_TENSOR_EXAMPLE = "{shape: [8, 64], dtype: float32}"
_GENERATOR_FIX = "write e.g. generator: models.inputs:padding_mask (called with shape, dtype, generator)"


def parse_inputs(ctx: Ctx, node: Node, dims: dict[str, DimSpec]) -> tuple[InputSpec, ...] | str:
    if isinstance(node.value, str):
        return callable_ref(ctx, node, "inputs", None)
    entries = expect(ctx, node, "inputs", dict, "a mapping of input names, or 'module:callable'",
                      f"write inputs: {{x: {_TENSOR_EXAMPLE}}}")
    specs = tuple(_parse_input(ctx, spec, name, f"inputs.{name}", dims, top=True) for name, spec in entries.items())
    used = {e for s in tensor_specs(specs) for e in s.shape if isinstance(e, str)}
    for name in dims:
        if name not in used:
            raise ctx.error(node, "dims", f"dimension '{name}' is declared but no input shape uses it",
                            f"use it in an input's shape (shape: [{name}, ...]) or remove it")
    return specs


def _parse_input(ctx: Ctx, node: Node, name: str, fld: str, dims: dict[str, DimSpec], top: bool) -> InputSpec:
    expect(ctx, node, fld, dict, "an input spec (a mapping)",
            f"write {name}: {_TENSOR_EXAMPLE}, or {name}: {{value: 1}}")
    mapping = check_keys(ctx, node, INPUT_FIELDS, fld)
    keyword = False
    if "keyword" in mapping:
        if not top:
            raise ctx.error(mapping["keyword"], f"{fld}.keyword", "keyword applies to forward()'s own parameters",
                            "remove it here; mark the top-level input `keyword: true` instead")
        keyword = expect(ctx, mapping["keyword"], f"{fld}.keyword", bool, "true or false", "write keyword: true")
    containers = [k for k in CONTAINERS if k in mapping]
    if containers:
        return _parse_container(ctx, node, mapping, containers, name, fld, dims, keyword)
    if "shape" not in mapping and "dtype" not in mapping:
        if "value" not in mapping:
            raise ctx.error(node, fld, "needs 'shape' and 'dtype' (a tensor), 'value' (a constant argument) or "
                            "'dict', 'list' or 'tuple' (a container)",
                            f"write {name}: {_TENSOR_EXAMPLE}, or {name}: {{value: true}}")
        extra = [k for k in ("low", "high", "generator") if k in mapping]
        if extra:
            raise ctx.error(mapping[extra[0]], f"{fld}.{extra[0]}", f"'{extra[0]}' needs a tensor input",
                            f"add shape and dtype to make a tensor filled with value, or remove '{extra[0]}'")
        return ValueSpec(name, _scalar(ctx, mapping["value"], f"{fld}.value"), keyword)
    return _parse_tensor(ctx, node, mapping, name, fld, dims, keyword)


def _parse_container(ctx: Ctx, node: Node, mapping: dict[str, Node], containers: list[str], name: str, fld: str,
                     dims: dict[str, DimSpec], keyword: bool) -> NestedSpec:
    other = [k for k in mapping if k not in ("keyword", containers[0])]
    if other:
        raise ctx.error(mapping[other[0]], f"{fld}.{other[0]}", f"'{other[0]}' does not go with '{containers[0]}'",
                        f"a container holds its items only: {name}: {{{containers[0]}: ...}}; give each item "
                        "its own shape and dtype")
    kind = containers[0]
    body = mapping[kind]
    if kind == "dict":
        entries = expect(ctx, body, f"{fld}.dict", dict, "a mapping of keys to input specs",
                          f"write {name}: {{dict: {{ids: {_TENSOR_EXAMPLE}}}}}")
        items = []
        for key, child in entries.items():
            if not isinstance(key, str):
                raise ctx.error(child, f"{fld}.dict", f"key {key!r} is not a string", "quote the key")
            items.append(_parse_input(ctx, child, key, f"{fld}.{key}", dims, top=False))
    else:
        children = expect(ctx, body, f"{fld}.{kind}", list, "a list of input specs",
                           f"write {name}: {{{kind}: [{_TENSOR_EXAMPLE}, {{value: 1}}]}}")
        items = [_parse_input(ctx, child, str(i), f"{fld}[{i}]", dims, top=False) for i, child in enumerate(children)]
    return NestedSpec(name, kind, tuple(items), keyword)


def _parse_tensor(ctx: Ctx, node: Node, mapping: dict[str, Node], name: str, fld: str, dims: dict[str, DimSpec],
                  keyword: bool) -> TensorSpec:
    if "shape" not in mapping or "dtype" not in mapping:
        missing = "shape" if "shape" not in mapping else "dtype"
        raise ctx.error(node, fld, f"a tensor input needs both 'shape' and 'dtype'; '{missing}' is missing",
                        f"write {name}: {_TENSOR_EXAMPLE}")
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
            size = expect(ctx, entry, fld, int, "a size or a dim name",
                           "write an integer, or a name declared in dims:")
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
    if dtype == "bool":
        if given:
            key = next(iter(given))
            raise ctx.error(given[key], f"{fld}.{key}", "low/high do not apply to bool inputs (fair coins)",
                            "use value: true (or false) for a constant mask, or generator: module:callable for a "
                            "pattern such as a padding mask")
        return None, None
    integer = dtype in INT_RANGES
    if not integer and len(given) == 1:
        key = next(iter(given))
        other = "high" if key == "low" else "low"
        raise ctx.error(given[key], f"{fld}.{key}", f"a float input with '{key}' needs '{other}' too",
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
    if dtype in INT_RANGES:
        value = _number(ctx, node, fld, integer=True)
        lo, hi = INT_RANGES[dtype]
        if not lo <= value < hi:
            raise ctx.error(node, fld, f"{value} does not fit {dtype} ([{lo}, {hi - 1}])", "pick a value in range")
        return value
    return _number(ctx, node, fld, integer=False)


def _scalar(ctx: Ctx, node: Node, fld: str) -> bool | int | float | str | None:
    value = node.value
    if isinstance(value, (dict, list)):
        raise ctx.error(node, fld, f"expected a boolean, number, string or null, found "
                        f"{'a mapping' if isinstance(value, dict) else 'a list'}",
                        "declare containers with dict:, list: or tuple:, each item an input spec")
    if isinstance(value, float) and not math.isfinite(value):
        raise ctx.error(node, fld, f"expected a finite number, found {value}", "write a number such as 0.5")
    if not isinstance(value, (bool, int, float, str, type(None))):
        raise ctx.error(node, fld, f"expected a boolean, number, string or null, found {type(value).__name__} "
                        f"({value!r})", "quote it to pass a string")
    return value
