"""The target schema: BUILD.aot.yaml and WORKSPACE.aot.yaml data parsed into frozen dataclasses."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable

from aotbuild.errors import Location, TargetError
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
DEFAULTABLE = ("device", "seed", "options", "tolerance", "tags", "max_input_bytes")
TARGET_FIELDS = ("model", "kwargs", "weights", "seed", "inputs", "dims", "device", "options", "tolerance", "tags",
                 "max_input_bytes")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "bool": 1}
# Generated example inputs larger than this are refused when planning, before anything allocates them.
DEFAULT_MAX_INPUT_BYTES = 1 << 30
_SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
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

    def where(self) -> dict[str, Any]:
        """Where the target is declared, so that actions can name file and line in their errors (never keyed)."""
        return {"file": self.build_file, "line": self.line}

    def export_spec(self) -> dict[str, Any]:
        """Everything that determines the exported program (and nothing that only affects compiling)."""
        inputs: Any = self.inputs if isinstance(self.inputs, str) else [
            {"name": s.name, "shape": list(s.shape), "dtype": s.dtype, "low": s.low, "high": s.high,
             "keyword": s.keyword} for s in self.inputs]
        return {"label": str(self.label), "where": self.where(), "model": self.model, "kwargs": self.kwargs,
                "weights": self.weights, "seed": self.seed, "inputs": inputs, "device": self.device,
                "dims": [{"name": d.name, "min": d.min, "max": d.max, "example": d.example} for d in self.dims]}

    def compile_spec(self) -> dict[str, Any]:
        """What the compile step needs besides the graph: device and inductor options."""
        return {"label": str(self.label), "where": self.where(), "device": self.device, "options": self.options,
                "dynamic": bool(self.dims)}

    def verify_spec(self) -> dict[str, Any]:
        tol = None if self.tolerance is None else {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol}
        return {"label": str(self.label), "tolerance": tol}


@dataclass(frozen=True)
class WorkspaceConfig:
    defaults: dict[str, Node]
    cache_dir: str | None
    ignore: tuple[str, ...]
    remote_cache: str | None = None  # cache.remote: the remote cache's URL (no credentials: those come from
    # the environment or ~/.netrc, since this file is committed)


class _Ctx:
    """Builds located errors for one file (and optionally one target)."""

    def __init__(self, file: str, target: str | None = None) -> None:
        self.file = file
        self.target = target

    def error(self, node: Node | int | None, fld: str | None, problem: str, fix: str | None = None) -> TargetError:
        line = node.line if isinstance(node, Node) else node
        return TargetError(Location(self.file, line, self.target, fld), problem, fix)

    def for_target(self, name: str) -> "_Ctx":
        return _Ctx(self.file, name)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def _expect(ctx: _Ctx, node: Node, fld: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = node.value
    # YAML's true/false are ints to Python; never let a boolean pass where a number is wanted.
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)))
    if not ok:
        raise ctx.error(node, fld, f"expected {what}, found {_type_name(value)} ({value!r})"
                        if not isinstance(value, (dict, list)) else f"expected {what}, found {_type_name(value)}")
    return value


def _check_keys(ctx: _Ctx, node: Node, allowed: tuple[str, ...], where: str | None) -> dict[str, Node]:
    mapping = _expect(ctx, node, where or "", dict, "a mapping")
    for key, value in mapping.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
            name = f"{where}.{key}" if where else key
            raise ctx.error(value, name, f"unknown key '{key}'", fix)
    return mapping


def _relative_path(ctx: _Ctx, node: Node, fld: str, package: str) -> str:
    text = _expect(ctx, node, fld, str, "a path relative to the package directory")
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts or "\\" in text:
        raise ctx.error(node, fld, f"path '{text}' must stay inside the package",
                        "give a path relative to the BUILD.aot.yaml's directory, without '..'")
    return str(PurePosixPath(package, path)) if package else str(path)


def _int(ctx: _Ctx, node: Node, fld: str, minimum: int | None = None) -> int:
    value = _expect(ctx, node, fld, int, "an integer")
    if minimum is not None and value < minimum:
        raise ctx.error(node, fld, f"expected an integer >= {minimum}, found {value}")
    return value


def _parse_tolerance(ctx: _Ctx, node: Node) -> Tolerance:
    mapping = _check_keys(ctx, node, ("atol", "rtol"), "tolerance")
    values = {}
    for key in ("atol", "rtol"):
        if key not in mapping:
            raise ctx.error(node, "tolerance", f"missing '{key}'", "write tolerance: {atol: 1.0e-4, rtol: 1.0e-4}")
        v = _expect(ctx, mapping[key], f"tolerance.{key}", (int, float), "a non-negative number")
        if v < 0:
            raise ctx.error(mapping[key], f"tolerance.{key}", f"expected a non-negative number, found {v}")
        values[key] = float(v)
    return Tolerance(**values)


def _parse_tags(ctx: _Ctx, node: Node) -> tuple[str, ...]:
    items = _expect(ctx, node, "tags", list, "a list of strings")
    return tuple(_expect(ctx, item, "tags", str, "a string") for item in items)


def _parse_options(ctx: _Ctx, node: Node) -> dict[str, Any]:
    mapping = _expect(ctx, node, "options", dict, "a mapping of inductor config names to values")
    for key, value in mapping.items():
        if not isinstance(value.value, (str, int, float, bool, type(None))):
            raise ctx.error(value, f"options.{key}", f"expected a scalar value, found {_type_name(value.value)}")
    return node.plain()


def _parse_dims(ctx: _Ctx, node: Node) -> tuple[DimSpec, ...]:
    dims = []
    for name, spec in _expect(ctx, node, "dims", dict, "a mapping of dimension names").items():
        fld = f"dims.{name}"
        if not DIM_NAME.fullmatch(name):
            raise ctx.error(spec, fld, f"dimension name {name!r} is not an identifier")
        mapping = _check_keys(ctx, spec, DIM_FIELDS, fld)
        for key in ("min", "max"):
            if key not in mapping:
                raise ctx.error(spec, fld, f"missing '{key}'", f"write {name}: {{min: 1, max: 64}}")
        lo, hi = _int(ctx, mapping["min"], f"{fld}.min", 0), _int(ctx, mapping["max"], f"{fld}.max", 0)
        if hi < lo:
            raise ctx.error(mapping["max"], f"{fld}.max", f"max ({hi}) is below min ({lo})")
        # torch.export specializes example sizes 0 and 1, so the example must be at least 2.
        example = _int(ctx, mapping["example"], f"{fld}.example") if "example" in mapping else max(lo, 2)
        if not (lo <= example <= hi) or example < 2:
            raise ctx.error(mapping.get("example", spec), f"{fld}.example",
                            f"example {example} must lie in [{lo}, {hi}] and be at least 2",
                            "torch.export treats sizes 0 and 1 as constants; pick an example of 2 or more")
        dims.append(DimSpec(name, lo, hi, example))
    return tuple(dims)


def _parse_inputs(ctx: _Ctx, node: Node, dims: dict[str, DimSpec]) -> tuple[TensorSpec, ...] | str:
    if isinstance(node.value, str):
        if not CALLABLE_REF.fullmatch(node.value):
            raise ctx.error(node, "inputs", f"expected 'module:callable', found {node.value!r}")
        return node.value
    specs = []
    for name, spec in _expect(ctx, node, "inputs", dict, "a mapping of input names, or 'module:callable'").items():
        fld = f"inputs.{name}"
        mapping = _check_keys(ctx, spec, INPUT_FIELDS, fld)
        if "shape" not in mapping or "dtype" not in mapping:
            raise ctx.error(spec, fld, "needs 'shape' and 'dtype'", f"write {name}: {{shape: [8, 64], dtype: float32}}")
        shape = []
        for entry in _expect(ctx, mapping["shape"], f"{fld}.shape", list, "a list of sizes or dim names"):
            if isinstance(entry.value, str):
                if entry.value not in dims:
                    raise ctx.error(entry, f"{fld}.shape", f"unknown dimension '{entry.value}'",
                                    "declare it under dims:, e.g. dims: {batch: {min: 1, max: 64}}")
                shape.append(entry.value)
            else:
                shape.append(_int(ctx, entry, f"{fld}.shape", 0))
        dtype = _expect(ctx, mapping["dtype"], f"{fld}.dtype", str, "a dtype name")
        if dtype not in DTYPES:
            raise ctx.error(mapping["dtype"], f"{fld}.dtype", f"unknown dtype '{dtype}'", f"use one of {', '.join(DTYPES)}")
        low = _int(ctx, mapping["low"], f"{fld}.low") if "low" in mapping else None
        high = _int(ctx, mapping["high"], f"{fld}.high") if "high" in mapping else None
        if (low is not None or high is not None) and dtype not in INT_DTYPES:
            raise ctx.error(mapping.get("low") or mapping["high"], f"{fld}.low", "low/high apply to integer inputs only")
        if dtype in INT_DTYPES:
            low, high = (0 if low is None else low), (100 if high is None else high)
            if high <= low:
                raise ctx.error(mapping.get("high", spec), f"{fld}.high", f"high ({high}) must exceed low ({low})")
        keyword = _expect(ctx, mapping["keyword"], f"{fld}.keyword", bool, "true or false") if "keyword" in mapping else False
        specs.append(TensorSpec(name, tuple(shape), dtype, low, high, keyword))
    used = {e for s in specs for e in s.shape if isinstance(e, str)}
    for name in dims:
        if name not in used:
            raise ctx.error(node, "dims", f"dimension '{name}' is declared but no input shape uses it")
    return tuple(specs)


def _check_plain_data(ctx: _Ctx, node: Node, fld: str) -> None:
    """Strings, numbers, booleans, null, lists and mappings only: kwargs go into JSON specs and cache keys."""
    if isinstance(node.value, dict):
        for key, child in node.value.items():
            _check_plain_data(ctx, child, f"{fld}.{key}")
    elif isinstance(node.value, list):
        for child in node.value:
            _check_plain_data(ctx, child, fld)
    elif not isinstance(node.value, (str, int, float, bool, type(None))):
        raise ctx.error(node, fld, f"expected plain data, found {type(node.value).__name__} ({node.value!r})",
                        "quote it to pass a string")


def _parse_kwargs(ctx: _Ctx, node: Node) -> dict[str, Any]:
    _expect(ctx, node, "kwargs", dict, "a mapping of keyword arguments")
    _check_plain_data(ctx, node, "kwargs")
    return node.plain()


def _parse_size(ctx: _Ctx, node: Node) -> int:
    value = node.value
    if isinstance(value, str) and value[-1:].upper() in _SIZE_UNITS and value[:-1].strip().isdigit():
        return int(value[:-1]) * _SIZE_UNITS[value[-1].upper()]
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ctx.error(node, "max_input_bytes", f"expected a size such as 1073741824, 512M or 2G, found {value!r}")


def _input_bytes(inputs: tuple[TensorSpec, ...], dims: tuple[DimSpec, ...]) -> tuple[int, str]:
    """Bytes of one example case at the largest declared sizes (verification runs there), and the biggest input."""
    largest = {d.name: d.max for d in dims}
    total, biggest, biggest_text = 0, -1, ""
    for spec in inputs:
        n = DTYPE_BYTES[spec.dtype]
        for size in spec.shape:
            n *= largest[size] if isinstance(size, str) else size
        total += n
        if n > biggest:
            biggest, biggest_text = n, f"{spec.name}: {list(spec.shape)} {spec.dtype}"
    return total, biggest_text


def _human(n: int) -> str:
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scale = _SIZE_UNITS[unit[0]]
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


_FIELD_PARSERS: dict[str, Callable[[_Ctx, Node], Any]] = {
    "max_input_bytes": _parse_size,
    "tolerance": _parse_tolerance, "tags": _parse_tags, "options": _parse_options,
    "seed": lambda ctx, n: _int(ctx, n, "seed", 0),
}


def _parse_device(ctx: _Ctx, node: Node) -> str:
    value = _expect(ctx, node, "device", str, "'cpu' or 'cuda'")
    if not DEVICES.fullmatch(value):
        raise ctx.error(node, "device", f"unknown device '{value}'", "use 'cpu', 'cuda' or 'cuda:N'")
    return value


_FIELD_PARSERS["device"] = _parse_device


def parse_defaults(ctx: _Ctx, node: Node | None) -> dict[str, Node]:
    if node is None:
        return {}
    mapping = _check_keys(ctx, node, DEFAULTABLE, "defaults")
    for key, value in mapping.items():
        _FIELD_PARSERS[key](ctx, value)  # validate early so the error points at the defaults block
    return mapping


def parse_workspace(node: Node, file: str) -> WorkspaceConfig:
    ctx = _Ctx(file)
    mapping = _check_keys(ctx, node, WORKSPACE_FIELDS, None)
    cache_dir = remote = None
    if "cache" in mapping:
        cache = _check_keys(ctx, mapping["cache"], ("dir", "remote"), "cache")
        if "dir" in cache:
            cache_dir = _expect(ctx, cache["dir"], "cache.dir", str, "a directory path")
        if "remote" in cache:
            remote = _expect(ctx, cache["remote"], "cache.remote", str, "a URL: http(s)://host/prefix or s3://bucket/prefix")
    ignore: tuple[str, ...] = ()
    if "ignore" in mapping:
        items = _expect(ctx, mapping["ignore"], "ignore", list, "a list of directories")
        ignore = tuple(_expect(ctx, i, "ignore", str, "a directory path").strip("/") for i in items)
    return WorkspaceConfig(parse_defaults(ctx, mapping.get("defaults")), cache_dir, ignore, remote)


def parse_build_file(node: Node, file: str, package: str, workspace_defaults: dict[str, Node]
                     ) -> tuple[list[Target], dict[Label, TargetError]]:
    """Parse one BUILD.aot.yaml; `package` is its workspace-relative directory ('' for the root).

    A file-level problem raises; a bad target is returned apart, so its siblings can still build (-k)."""
    ctx = _Ctx(file)
    mapping = _check_keys(ctx, node, BUILD_FILE_FIELDS, None)
    file_defaults = parse_defaults(ctx, mapping.get("defaults"))
    defaults = {**workspace_defaults, **file_defaults}
    if "options" in workspace_defaults and "options" in file_defaults:  # options merge key by key, per level
        merged = {**workspace_defaults["options"].value, **file_defaults["options"].value}
        defaults["options"] = Node(merged, file_defaults["options"].line)
    targets_node = mapping.get("targets", Node({}, node.line))
    targets, errors = [], {}
    for name, spec in _expect(ctx, targets_node, "targets", dict, "a mapping of target names").items():
        try:
            if not TARGET_NAME.fullmatch(name) or name == "all":
                # Recorded like any bad target, so its siblings still build; the selection shows it.
                raise ctx.for_target(name).error(spec, None, f"invalid target name {name!r}",
                                                 "use letters, digits, '_', '-' and '.'; 'all' is reserved")
            targets.append(_parse_target(ctx.for_target(name), spec, Label(package, name), file, defaults))
        except TargetError as e:
            errors[Label(package, name)] = e
    return targets, errors


def _parse_target(ctx: _Ctx, node: Node, label: Label, file: str, defaults: dict[str, Node]) -> Target:
    mapping = _check_keys(ctx, node, TARGET_FIELDS, None)
    if "model" not in mapping:
        raise ctx.error(node, "model", "missing 'model'", "write model: package.module:factory")
    if "inputs" not in mapping:
        raise ctx.error(node, "inputs", "missing 'inputs'", "write inputs: {x: {shape: [8, 64], dtype: float32}}")
    model = _expect(ctx, mapping["model"], "model", str, "'module:callable'")
    if not CALLABLE_REF.fullmatch(model):
        raise ctx.error(mapping["model"], "model", f"expected 'module:callable', found {model!r}",
                        "write e.g. model: models.mlp:MLP")
    fields: dict[str, Any] = {}
    for key in DEFAULTABLE:
        if key in mapping:
            fields[key] = _FIELD_PARSERS[key](ctx, mapping[key])
        elif key in defaults:
            fields[key] = _FIELD_PARSERS[key](ctx, defaults[key])
    if "options" in mapping and "options" in defaults:
        fields["options"] = {**defaults["options"].plain(), **fields["options"]}
    dims = _parse_dims(ctx, mapping["dims"]) if "dims" in mapping else ()
    inputs = _parse_inputs(ctx, mapping["inputs"], {d.name: d for d in dims})
    if isinstance(inputs, str) and dims:
        raise ctx.error(mapping["dims"], "dims", "dims need declared input shapes, not a callable",
                        "declare inputs by shape to use dynamic dimensions")
    if not isinstance(inputs, str):
        limit = fields.get("max_input_bytes", DEFAULT_MAX_INPUT_BYTES)
        size, biggest = _input_bytes(inputs, dims)
        if size > limit:
            raise ctx.error(mapping["inputs"], "inputs",
                            f"the example inputs take {_human(size)} at their largest declared sizes "
                            f"({biggest}), over the limit of {_human(limit)}",
                            "declare smaller shapes or dims, or raise max_input_bytes (in the target or defaults)")
    kwargs = _parse_kwargs(ctx, mapping["kwargs"]) if "kwargs" in mapping else {}
    weights = _relative_path(ctx, mapping["weights"], "weights", label.package) if "weights" in mapping else None
    return Target(label=label, build_file=file, line=node.line, model=model, kwargs=kwargs or {}, weights=weights,
                  inputs=inputs, dims=dims, **fields)
