"""Parsed targets and workspace settings: frozen dataclasses holding data only (rules turn targets into actions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aotbuild.workspace.labels import Label
from aotbuild.workspace.yaml_source import Node


@dataclass(frozen=True)
class TensorSpec:
    """One example tensor: its forward() parameter name (or key in a container), shape (ints or dim names) and
    dtype; random (normal, or uniform in [low, high)), filled with `fill`, or made by a `generator` callable."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    low: int | float | None = None
    high: int | float | None = None
    keyword: bool = False
    fill: bool | int | float | None = None
    generator: str | None = None  # "module:callable" taking (shape, dtype, torch.Generator)


@dataclass(frozen=True)
class ValueSpec:
    """A non-tensor argument passed to forward() as written; torch.export bakes it into the graph, so the
    artifact's flat inputs leave it out."""

    name: str
    value: bool | int | float | str | None
    keyword: bool = False


@dataclass(frozen=True)
class NestedSpec:
    """A dict, list or tuple argument whose items are input specs (named by key, or by index for sequences)."""

    name: str
    container: str  # "dict", "list" or "tuple"
    items: tuple["InputSpec", ...]
    keyword: bool = False


InputSpec = TensorSpec | ValueSpec | NestedSpec


def tensor_specs(specs: tuple[InputSpec, ...]) -> list[TensorSpec]:
    """The tensors among `specs`, depth first, in the order the artifact takes them (keyword ones last)."""
    def walk(spec: InputSpec) -> list[TensorSpec]:
        if isinstance(spec, NestedSpec):
            return [t for item in spec.items for t in walk(item)]
        return [spec] if isinstance(spec, TensorSpec) else []

    ordered = [s for s in specs if not s.keyword] + [s for s in specs if s.keyword]
    return [t for s in ordered for t in walk(s)]


def input_json(spec: InputSpec) -> dict[str, Any]:
    """An input spec as export.json holds it. `fill` and `generator` only when set, so a plain random tensor keeps
    the keys it always had and the export keys of existing targets do not change."""
    if isinstance(spec, NestedSpec):
        return {"name": spec.name, spec.container: [input_json(i) for i in spec.items], "keyword": spec.keyword}
    out = {k: v for k, v in vars(spec).items() if v is not None or k not in ("fill", "generator")}
    return {**out, "shape": list(spec.shape)} if isinstance(spec, TensorSpec) else out


@dataclass(frozen=True)
class DimSpec:
    """A dynamic dimension shared by every input axis that names it."""

    name: str
    min: int
    max: int
    example: int


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


@dataclass(frozen=True)
class Target:
    """One declared model build. Holds data only; rules turn it into actions."""

    label: Label
    build_file: str  # workspace-relative, for error messages
    line: int
    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # workspace-relative path of a state_dict
    seed: int = 0
    inputs: tuple[InputSpec, ...] | str = ()  # specs, or "module:callable" returning (args, kwargs)
    dims: tuple[DimSpec, ...] = ()
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)
    cpu_isa: str = "native"  # or a portable level (cpu_levels.py): what the CPU code is compiled for
    tolerance: Tolerance | None = None  # None: defaults by dtype at verification time
    tags: tuple[str, ...] = ()
    max_input_bytes: int = 1 << 30  # larger example inputs are refused when planning; in no spec or key
    data: tuple[str, ...] = ()  # workspace-relative files and globs the model reads
    env: tuple[str, ...] = ()  # environment variables the model reads

    def where(self) -> dict[str, Any]:
        """Where the target is declared, so that actions can name file and line in their errors (never keyed)."""
        return {"file": self.build_file, "line": self.line}


@dataclass(frozen=True)
class WorkspaceConfig:
    defaults: dict[str, Node]
    cache_dir: str | None
    ignore: tuple[str, ...]
    remote_cache: str | None = None  # cache.remote's URL; never credentials, since this file is committed
    remote_verify_keys: tuple[str, ...] = ()  # cache.verify_keys: remote entries must be signed by one of them
    executor: str | None = None  # where misses run: ray://HOST:PORT (executors/)
