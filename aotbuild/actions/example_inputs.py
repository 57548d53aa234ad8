"""Example inputs from a target's declared shapes (or its inputs callable), and the cases verification covers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from aotbuild.actions.model_loader import resolve_callable
from aotbuild.errors import UserError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "float64": torch.float64, "int64": torch.int64, "int32": torch.int32, "bool": torch.bool}


@dataclass(frozen=True)
class Case:
    """One set of inputs: the example, or a dynamic dimension pinned at min, middle or max."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def _tensor(spec: dict[str, Any], sizes: dict[str, int], gen: torch.Generator, device: str) -> torch.Tensor:
    shape = [sizes[s] if isinstance(s, str) else s for s in spec["shape"]]
    dtype = DTYPES[spec["dtype"]]
    if dtype.is_floating_point:
        t = torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype)
    elif dtype == torch.bool:
        t = torch.randint(0, 2, shape, generator=gen).bool()
    else:
        t = torch.randint(spec["low"], spec["high"], shape, generator=gen, dtype=dtype)
    return t.to(device)


def make_case(spec: dict[str, Any], sizes: dict[str, int], name: str, device: str) -> Case:
    gen = torch.Generator().manual_seed(spec["seed"])  # a private generator: no global RNG state is touched
    args, kwargs = [], {}
    for item in spec["inputs"]:
        tensor = _tensor(item, sizes, gen, device)
        if item["keyword"]:
            kwargs[item["name"]] = tensor
        else:
            args.append(tensor)
    return Case(name, tuple(args), kwargs)


def cases(spec: dict[str, Any], device: str) -> list[Case]:
    """The example case first, then each dynamic dimension at its min, middle and max (others at example)."""
    if isinstance(spec["inputs"], str):
        fn = resolve_callable(spec["inputs"], "inputs", spec)
        result = fn()
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], tuple)
                and isinstance(result[1], dict)):
            raise UserError(f"inputs: '{spec['inputs']}' must return (args_tuple, kwargs_dict)")
        args, kwargs = torch.utils._pytree.tree_map(
            lambda x: x.to(device) if isinstance(x, torch.Tensor) else x, result)
        return [Case("example", args, kwargs)]
    example = {d["name"]: d["example"] for d in spec["dims"]}
    out = [make_case(spec, example, "example", device)]
    for dim in spec["dims"]:
        for where, size in (("min", dim["min"]), ("mid", (dim["min"] + dim["max"]) // 2), ("max", dim["max"])):
            out.append(make_case(spec, {**example, dim["name"]: size}, f"{dim['name']}={size} ({where})", device))
    return out


def dynamic_shapes(spec: dict[str, Any]) -> dict[str, Any] | None:
    """torch.export's dynamic_shapes, keyed by forward() parameter name."""
    if isinstance(spec["inputs"], str) or not spec["dims"]:
        return None
    dims = {d["name"]: torch.export.Dim(d["name"], min=d["min"], max=d["max"]) for d in spec["dims"]}
    return {item["name"]: ({axis: dims[s] for axis, s in enumerate(item["shape"]) if isinstance(s, str)} or None)
            for item in spec["inputs"]}
