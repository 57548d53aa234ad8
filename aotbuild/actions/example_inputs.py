"""Example inputs from a target's declared shapes (or its inputs callable), and the cases verification covers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from aotbuild.actions.runtime import location
from aotbuild.actions.model_loader import resolve_callable
from aotbuild.errors import TargetError, UserError

CONTAINERS = {"dict": dict, "list": list, "tuple": tuple}


@dataclass(frozen=True)
class Case:
    """One set of inputs: the example, or a dynamic dimension pinned at min, middle or max."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def flat_tensors(self) -> list[torch.Tensor]:
        return flat_tensors(self.args, self.kwargs)


def flat_tensors(args: Any, kwargs: Any) -> list[torch.Tensor]:
    """The artifact's inputs: the tensor leaves of (args, kwargs) (torch.export bakes the others in)."""
    return [x for x in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(x, torch.Tensor)]


def _container(item: dict[str, Any]) -> str | None:
    return next((k for k in CONTAINERS if k in item), None)


def _map(item: dict[str, Any], leaf: Callable[[dict[str, Any], str], Any], fld: str) -> Any:
    """`leaf(declared value, its field)` for each value of an input, nested in the containers it declares."""
    kind = _container(item)
    if kind == "dict":
        return {c["name"]: _map(c, leaf, f"{fld}.{c['name']}") for c in item["dict"]}
    if kind is not None:
        return CONTAINERS[kind](_map(c, leaf, f"{fld}[{c['name']}]") for c in item[kind])
    return leaf(item, fld)


def _generated(item: dict[str, Any], shape: list[int], dtype: torch.dtype, gen: torch.Generator,
               spec: dict[str, Any], fld: str) -> torch.Tensor:
    """A tensor from the input's `generator` callable, checked against the shape and dtype it was asked for."""
    fn = resolve_callable(item["generator"], f"{fld}.generator", spec)
    try:
        t = fn(tuple(shape), dtype, gen)
    except Exception as e:
        raise TargetError(location(spec, f"{fld}.generator"),
                          f"generator '{item['generator']}' raised {type(e).__name__}: {e}",
                          "it is called as fn(shape: tuple[int, ...], dtype: torch.dtype, generator: "
                          "torch.Generator) and returns a tensor") from e
    found = f"{t.dtype}{list(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__
    if not isinstance(t, torch.Tensor) or list(t.shape) != shape or t.dtype != dtype:
        raise TargetError(location(spec, f"{fld}.generator"),
                          f"generator '{item['generator']}' returned {found}, expected {dtype}{shape}",
                          "return a tensor of exactly the shape and dtype it is given (draw from `generator` "
                          "so that every case is reproducible)")
    return t


def _tensor(item: dict[str, Any], sizes: dict[str, int], gen: torch.Generator, spec: dict[str, Any],
            fld: str) -> torch.Tensor:
    shape = [sizes[s] if isinstance(s, str) else s for s in item["shape"]]
    dtype = getattr(torch, item["dtype"])  # one of workspace.target.DTYPES, torch's own names
    if item.get("generator"):
        return _generated(item, shape, dtype, gen, spec, fld)
    if item.get("fill") is not None:
        return torch.full(shape, item["fill"], dtype=dtype)
    if dtype.is_floating_point:
        if item["low"] is None:
            return torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype)
        unit = torch.rand(shape, generator=gen, dtype=torch.float64)
        return (unit * (item["high"] - item["low"]) + item["low"]).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=gen).bool()
    return torch.randint(item["low"], item["high"], shape, generator=gen, dtype=dtype)


def make_case(spec: dict[str, Any], sizes: dict[str, int], name: str, device: str) -> Case:
    gen = torch.Generator().manual_seed(spec["seed"])  # a private generator: no global RNG state is touched

    def leaf(item: dict[str, Any], fld: str) -> Any:  # a tensor, or a plain value
        return _tensor(item, sizes, gen, spec, fld).to(device) if "shape" in item else item["value"]

    args, kwargs = [], {}
    for item in spec["inputs"]:
        value = _map(item, leaf, f"inputs.{item['name']}")
        if item["keyword"]:
            kwargs[item["name"]] = value
        else:
            args.append(value)
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
    return [make_case(spec, example, "example", device)] + [
        make_case(spec, {**example, dim["name"]: size}, f"{dim['name']}={size} ({where})", device)
        for dim in spec["dims"]
        for where, size in (("min", dim["min"]), ("mid", (dim["min"] + dim["max"]) // 2), ("max", dim["max"]))]


def dynamic_shapes(spec: dict[str, Any]) -> dict[str, Any] | None:
    """torch.export's dynamic_shapes, keyed by forward() parameter name, nested like each input."""
    if isinstance(spec["inputs"], str) or not spec["dims"]:
        return None
    dims = {d["name"]: torch.export.Dim(d["name"], min=d["min"], max=d["max"]) for d in spec["dims"]}

    def dynamic(item: dict[str, Any], _: str) -> Any:  # None for a plain value: torch.export specializes it
        return {axis: dims[s] for axis, s in enumerate(item.get("shape", [])) if isinstance(s, str)} or None

    return {item["name"]: _map(item, dynamic, "") for item in spec["inputs"]}


def tensor_items(spec: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """(declared tensor, keyword?) for each tensor the artifact takes, in its order: positional inputs, then
    keyword ones, each container depth first in declaration order (as torch's pytree flattens them)."""
    def walk(item: dict[str, Any], keyword: bool) -> list[tuple[dict[str, Any], bool]]:
        kind = _container(item)
        if kind is not None:
            return [leaf for c in item[kind] for leaf in walk(c, keyword)]
        return [(item, keyword)] if "shape" in item else []

    if isinstance(spec["inputs"], str):
        return []
    ordered = [i for i in spec["inputs"] if not i["keyword"]] + [i for i in spec["inputs"] if i["keyword"]]
    return [leaf for item in ordered for leaf in walk(item, item["keyword"])]
