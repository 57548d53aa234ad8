"""Parsed targets and workspace settings: frozen dataclasses holding data only (rules turn targets into actions)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aotbuild.workspace.labels import Label
from aotbuild.workspace.yaml_source import Node

DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "bool")
INT_DTYPES = ("int64", "int32")
# Always used with fullmatch: `$` in re.match accepts a trailing newline, which would reach build.ninja.
DEVICES = re.compile(r"cpu|cuda(:\d+)?")
CALLABLE_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)
TARGET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=,@~-]*")
DIM_NAME = re.compile(r"[A-Za-z_]\w*", re.ASCII)

# Fields a `defaults:` block may set; model and inputs are per-target by nature.
DEFAULTABLE = ("device", "seed", "options", "tolerance", "tags", "max_input_bytes", "data", "env")
TARGET_FIELDS = ("model", "kwargs", "weights", "seed", "inputs", "dims", "device", "options", "tolerance", "tags",
                 "max_input_bytes", "data", "env")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "bool": 1}
# Generated example inputs larger than this are refused when planning, before anything allocates them.
DEFAULT_MAX_INPUT_BYTES = 1 << 30
SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
INPUT_FIELDS = ("shape", "dtype", "low", "high", "keyword")
DIM_FIELDS = ("min", "max", "example")
BUILD_FILE_FIELDS = ("defaults", "targets")
WORKSPACE_FIELDS = ("defaults", "cache", "ignore")


@dataclass(frozen=True)
class TensorSpec:
    """One example input: its forward() parameter name, shape (ints or dim names) and dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    low: int | None = None
    high: int | None = None
    keyword: bool = False


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
    inputs: tuple[TensorSpec, ...] | str = ()  # specs, or "module:callable" returning (args, kwargs)
    dims: tuple[DimSpec, ...] = ()
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)
    tolerance: Tolerance | None = None  # None: defaults by dtype at verification time
    tags: tuple[str, ...] = ()
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES  # a plan-time guard only: in no spec or key
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
    remote_cache: str | None = None  # cache.remote: the remote cache's URL (no credentials: those come from
    # the environment or ~/.netrc, since this file is committed)
