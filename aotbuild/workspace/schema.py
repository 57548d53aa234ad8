"""The target schema: BUILD and WORKSPACE files parsed field by field, each error naming file, line and field."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Callable

from aotbuild.errors import Location, TargetError
from aotbuild.text import human_bytes
from aotbuild.workspace.labels import TARGET_NAME, Label
from aotbuild.workspace.target import (
    DEFAULT_MAX_INPUT_BYTES,
    DimSpec,
    InputSpec,
    NestedSpec,
    TensorSpec,
    Target,
    Tolerance,
    ValueSpec,
    WorkspaceConfig,
    tensor_specs,
)
from aotbuild.workspace.yaml_source import Node

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
               "uint8": 1, "bool": 1}
DTYPES = tuple(DTYPE_BYTES)
# Integer dtypes and the half-open range [low, high) a generated value may take in each.
INT_RANGES = {"int64": (-(1 << 63), 1 << 63), "int32": (-(1 << 31), 1 << 31), "int16": (-(1 << 15), 1 << 15),
              "int8": (-128, 128), "uint8": (0, 256)}
# Always used with fullmatch: `$` in re.match accepts a trailing newline, which would reach build.ninja.
DEVICES = re.compile(r"cpu|cuda(:\d+)?")
CALLABLE_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)
IDENTIFIER = re.compile(r"[A-Za-z_]\w*", re.ASCII)  # dimension and environment variable names
SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
INPUT_FIELDS = ("shape", "dtype", "low", "high", "value", "generator", "keyword", "dict", "list", "tuple")
CONTAINERS = ("dict", "list", "tuple")
DIM_FIELDS = ("min", "max", "example")
SCALARS = (str, int, float, bool, type(None))
DEFAULT_INT_RANGE = (0, 100)
# Fields a `defaults:` block may set; model and inputs are per-target by nature.
DEFAULTABLE = ("device", "seed", "options", "tolerance", "tags", "max_input_bytes", "data", "env")
TARGET_FIELDS = ("model", "kwargs", "weights", "inputs", "dims", *DEFAULTABLE)
BUILD_FILE_FIELDS = ("defaults", "targets")
WORKSPACE_FIELDS = ("defaults", "cache", "ignore")
_TENSOR_EXAMPLE = "{shape: [8, 64], dtype: float32}"
_GENERATOR_FIX = "write e.g. generator: models.inputs:padding_mask (called with shape, dtype, generator)"
_REQUIRED = {"model": "write model: package.module:factory", "inputs": f"write inputs: {{x: {_TENSOR_EXAMPLE}}}"}


@dataclass(frozen=True)
class Ctx:
    """Builds located errors for one file (and optionally one target)."""

    file: str
    target: str | None = None

    def error(self, node: Node, fld: str | None, problem: str, fix: str | None = None) -> TargetError:
        return TargetError(Location(self.file, node.line, self.target, fld), problem, fix)


def _describe(value: Any) -> str:
    """What an error says it found: the kind of a container, else the kind and the value itself."""
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
             float: "a number", type(None): "nothing"}
    name = names.get(type(value), type(value).__name__)
    return name if isinstance(value, (dict, list)) else f"{name} ({value!r})"


def expect(ctx: Ctx, node: Node, fld: str, kind: type | tuple[type, ...], what: str, fix: str | None = None) -> Any:
    value = node.value
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # YAML's true/false are ints to Python; never let a boolean pass where a number is wanted.
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        raise ctx.error(node, fld, f"expected {what}, found {_describe(value)}", fix)
    return value


def callable_ref(ctx: Ctx, node: Node, fld: str, fix: str | None) -> str:
    ref = expect(ctx, node, fld, str, "'module:callable'", fix)
    if not CALLABLE_REF.fullmatch(ref):
        raise ctx.error(node, fld, f"expected 'module:callable', found {ref!r}", fix)
    return ref


def check_keys(ctx: Ctx, node: Node, allowed: tuple[str, ...], where: str | None,
               required: dict[str, str] | None = None) -> dict[str, Node]:
    """The mapping at `node`, refusing keys not `allowed` and missing `required` ones (key -> the fix to show)."""
    mapping = expect(ctx, node, where or "", dict, "a mapping")
    for key, value in mapping.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            fix = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
            raise ctx.error(value, f"{where}.{key}" if where else key, f"unknown key '{key}'", fix)
    for key, fix in (required or {}).items():
        if key not in mapping:
            raise ctx.error(node, where or key, f"missing '{key}'", fix)
    return mapping


def _int(ctx: Ctx, node: Node, fld: str, minimum: int | None = None) -> int:
    value = expect(ctx, node, fld, int, "an integer")
    if minimum is not None and value < minimum:
        raise ctx.error(node, fld, f"expected an integer >= {minimum}, found {value}")
    return value


def _parse_tolerance(ctx: Ctx, node: Node) -> Tolerance:
    fix = "write tolerance: {atol: 1.0e-4, rtol: 1.0e-4}"
    mapping = check_keys(ctx, node, ("atol", "rtol"), "tolerance", {"atol": fix, "rtol": fix})
    values = {}
    for key, value in mapping.items():
        v = expect(ctx, value, f"tolerance.{key}", (int, float), "a non-negative number")
        if v < 0:
            raise ctx.error(value, f"tolerance.{key}", f"expected a non-negative number, found {v}")
        values[key] = float(v)
    return Tolerance(**values)


def strings(ctx: Ctx, node: Node, fld: str, what: str, each: str) -> list[tuple[Node, str]]:
    """A list of strings, each with its node (for the line of an error about it)."""
    return [(item, expect(ctx, item, fld, str, each)) for item in expect(ctx, node, fld, list, what)]


def _parse_tags(ctx: Ctx, node: Node) -> tuple[str, ...]:
    return tuple(text for _, text in strings(ctx, node, "tags", "a list of strings", "a string"))


def _parse_options(ctx: Ctx, node: Node) -> dict[str, Any]:
    mapping = expect(ctx, node, "options", dict, "a mapping of inductor config names to values")
    for key, value in mapping.items():
        if not isinstance(value.value, SCALARS):
            raise ctx.error(value, f"options.{key}", f"expected a scalar value, found {_describe(value.value)}")
    return node.plain()


def parse_dims(ctx: Ctx, node: Node) -> tuple[DimSpec, ...]:
    dims = []
    for name, spec in expect(ctx, node, "dims", dict, "a mapping of dimension names").items():
        fld = f"dims.{name}"
        if not IDENTIFIER.fullmatch(name):
            raise ctx.error(spec, fld, f"dimension name {name!r} is not an identifier")
        fix = f"write {name}: {{min: 1, max: 64}}"
        mapping = check_keys(ctx, spec, DIM_FIELDS, fld, {"min": fix, "max": fix})
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


def _check_plain_data(ctx: Ctx, node: Node, fld: str) -> None:
    """Strings, numbers, booleans, null, lists and mappings only: kwargs go into JSON specs and cache keys."""
    if isinstance(node.value, dict):
        for key, child in node.value.items():
            _check_plain_data(ctx, child, f"{fld}.{key}")
    elif isinstance(node.value, list):
        for child in node.value:
            _check_plain_data(ctx, child, fld)
    elif not isinstance(node.value, SCALARS):
        raise ctx.error(node, fld, f"expected plain data, found {_describe(node.value)}", "quote it to pass a string")


def parse_kwargs(ctx: Ctx, node: Node) -> dict[str, Any]:
    expect(ctx, node, "kwargs", dict, "a mapping of keyword arguments")
    _check_plain_data(ctx, node, "kwargs")
    return node.plain()


def parse_weights(ctx: Ctx, node: Node, package: str) -> str:
    text = expect(ctx, node, "weights", str, "a path relative to the package directory")
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts or "\\" in text:
        raise ctx.error(node, "weights", f"path '{text}' must stay inside the package",
                        "give a path relative to the BUILD.aot.yaml's directory, without '..'")
    return str(PurePosixPath(package, path)) if package else str(path)


def _parse_size(ctx: Ctx, node: Node) -> int:
    value = node.value
    if isinstance(value, str) and value[-1:].upper() in SIZE_UNITS and value[:-1].strip().isdigit():
        return int(value[:-1]) * SIZE_UNITS[value[-1].upper()]
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ctx.error(node, "max_input_bytes", f"expected a size such as 1073741824, 512M or 2G, found {value!r}")


def input_bytes(inputs: tuple[InputSpec, ...], dims: tuple[DimSpec, ...]) -> tuple[int, str]:
    """Bytes of one example case at the largest declared sizes (verification runs there), and the biggest input."""
    largest = {d.name: d.max for d in dims}  # shapes hold sizes and dim names: get(size, size) takes either
    sizes = [(DTYPE_BYTES[s.dtype] * math.prod(largest.get(n, n) for n in s.shape), s) for s in tensor_specs(inputs)]
    if not sizes:
        return 0, ""
    _, spec = max(sizes, key=lambda size: size[0])
    return sum(n for n, _ in sizes), f"{spec.name}: {list(spec.shape)} {spec.dtype}"


def _parse_device(ctx: Ctx, node: Node) -> str:
    value = expect(ctx, node, "device", str, "'cpu' or 'cuda'")
    if not DEVICES.fullmatch(value):
        raise ctx.error(node, "device", f"unknown device '{value}'", "use 'cpu', 'cuda' or 'cuda:N'")
    return value


def _parse_data(ctx: Ctx, node: Node) -> tuple[str, ...]:
    """Files and globs the model reads, relative to the workspace root: inputs of the export, judged by content."""
    found = set()
    for item, text in strings(ctx, node, "data", "a list of workspace-relative paths or globs",
                              "a workspace-relative path or glob"):
        path = PurePosixPath(text)
        if not text or path.is_absolute() or ".." in path.parts or "\\" in text or path.parts[0] == "aot-out":
            raise ctx.error(item, "data", f"path '{text}' must name files inside the workspace",
                            "give a path or glob relative to the workspace root, without '..', outside aot-out/")
        found.add(path.as_posix())
    return tuple(sorted(found))


def _parse_env(ctx: Ctx, node: Node) -> tuple[str, ...]:
    """Environment variables the model reads: their values are part of the export's key."""
    found = strings(ctx, node, "env", "a list of environment variable names", "an environment variable name")
    for item, name in found:
        if not IDENTIFIER.fullmatch(name):
            raise ctx.error(item, "env", f"'{name}' is not an environment variable name",
                            "write names such as MODEL_VARIANT (letters, digits, underscores)")
    return tuple(sorted({name for _, name in found}))


FIELD_PARSERS: dict[str, Callable[[Ctx, Node], Any]] = {
    "device": _parse_device, "seed": lambda ctx, n: _int(ctx, n, "seed", 0), "options": _parse_options,
    "tolerance": _parse_tolerance, "tags": _parse_tags, "max_input_bytes": _parse_size, "data": _parse_data,
    "env": _parse_env,
}


def parse_inputs(ctx: Ctx, node: Node, dims: dict[str, DimSpec]) -> tuple[InputSpec, ...] | str:
    """Tensors (random, filled or generated), non-tensor values and dict/list/tuple containers, or a callable."""
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
        return _parse_container(ctx, mapping, containers[0], name, fld, dims, keyword)
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


def _parse_container(ctx: Ctx, mapping: dict[str, Node], kind: str, name: str, fld: str, dims: dict[str, DimSpec],
                     keyword: bool) -> NestedSpec:
    other = [k for k in mapping if k not in ("keyword", kind)]
    if other:
        raise ctx.error(mapping[other[0]], f"{fld}.{other[0]}", f"'{other[0]}' does not go with '{kind}'",
                        f"a container holds its items only: {name}: {{{kind}: ...}}; give each item "
                        "its own shape and dtype")
    if kind == "dict":
        entries = expect(ctx, mapping[kind], f"{fld}.dict", dict, "a mapping of keys to input specs",
                         f"write {name}: {{dict: {{ids: {_TENSOR_EXAMPLE}}}}}")
        items = [_parse_input(ctx, child, key, f"{fld}.{key}", dims, top=False) for key, child in entries.items()]
    else:
        children = expect(ctx, mapping[kind], f"{fld}.{kind}", list, "a list of input specs",
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
        raise ctx.error(node, fld, f"expected a boolean, number, string or null, found {_describe(value)}", fix)
    if isinstance(value, float) and not math.isfinite(value):
        raise ctx.error(node, fld, f"expected a finite number, found {value}", "write a number such as 0.5")
    return value


def _parse_defaults(ctx: Ctx, file: dict[str, Node]) -> dict[str, Node]:
    mapping = check_keys(ctx, file.get("defaults", Node({}, 1)), DEFAULTABLE, "defaults")
    for key, value in mapping.items():
        FIELD_PARSERS[key](ctx, value)  # validate early so the error points at the defaults block
    return mapping


def parse_workspace(node: Node, file: str) -> WorkspaceConfig:
    ctx = Ctx(file)
    mapping = check_keys(ctx, node, WORKSPACE_FIELDS, None)
    cache = check_keys(ctx, mapping.get("cache", Node({}, 1)), ("dir", "remote", "verify_keys"), "cache")
    cache_dir = expect(ctx, cache["dir"], "cache.dir", str, "a directory path") if "dir" in cache else None
    url = "a URL: http(s)://host/prefix or s3://bucket/prefix"
    remote = expect(ctx, cache["remote"], "cache.remote", str, url) if "remote" in cache else None
    verify_keys = _verify_keys(ctx, cache["verify_keys"]) if "verify_keys" in cache else ()
    ignore = strings(ctx, mapping.get("ignore", Node([], 1)), "ignore", "a list of directories", "a directory path")
    return WorkspaceConfig(_parse_defaults(ctx, mapping), cache_dir,
                           tuple(text.strip("/") for _, text in ignore), remote, verify_keys)


def _verify_keys(ctx: Ctx, node: Node) -> tuple[str, ...]:
    """Public keys whose signatures make a remote-cache entry acceptable (cache/signing.py checks the bytes)."""
    what = "a list of public keys, each 'ed25519:<base64>' as `aotbuild cache keygen` prints it"
    keys = strings(ctx, node, "cache.verify_keys", what, what)
    for item, key in keys:
        if not key.startswith("ed25519:"):
            raise ctx.error(item, "cache.verify_keys", f"expected {what}, found {key[:20]!r}",
                            "make a key pair with `aotbuild cache keygen`")
    return tuple(key for _, key in keys)


def parse_build_file(node: Node, file: str, package: str, workspace_defaults: dict[str, Node]
                     ) -> tuple[list[Target], dict[Label, TargetError]]:
    """A file-level problem raises; a bad target is returned apart, so its siblings can still build (-k)."""
    ctx = Ctx(file)
    mapping = check_keys(ctx, node, BUILD_FILE_FIELDS, None)
    file_defaults = _parse_defaults(ctx, mapping)
    defaults = {**workspace_defaults, **file_defaults}
    if "options" in workspace_defaults and "options" in file_defaults:  # options merge key by key, per level
        merged = {**workspace_defaults["options"].value, **file_defaults["options"].value}
        defaults["options"] = Node(merged, file_defaults["options"].line)
    targets_node = mapping.get("targets", Node({}, node.line))
    targets, errors = [], {}
    for name, spec in expect(ctx, targets_node, "targets", dict, "a mapping of target names").items():
        try:
            if not TARGET_NAME.fullmatch(name) or name == "all":
                # Recorded like any bad target, so its siblings still build; the selection shows it.
                raise Ctx(file, name).error(spec, None, f"invalid target name {name!r}",
                                            "use letters, digits, '_', '-' and '.'; 'all' is reserved")
            targets.append(_parse_target(Ctx(file, name), spec, Label(package, name), file, defaults))
        except TargetError as e:
            errors[Label(package, name)] = e
    return targets, errors


def _parse_target(ctx: Ctx, node: Node, label: Label, file: str, defaults: dict[str, Node]) -> Target:
    mapping = check_keys(ctx, node, TARGET_FIELDS, None, _REQUIRED)
    model = callable_ref(ctx, mapping["model"], "model", "write e.g. model: models.mlp:MLP")
    fields: dict[str, Any] = {key: FIELD_PARSERS[key](ctx, mapping.get(key) or defaults[key])
                              for key in DEFAULTABLE if key in mapping or key in defaults}
    if "options" in mapping and "options" in defaults:
        fields["options"] = {**defaults["options"].plain(), **fields["options"]}
    dims = parse_dims(ctx, mapping["dims"]) if "dims" in mapping else ()
    inputs = parse_inputs(ctx, mapping["inputs"], {d.name: d for d in dims})
    if isinstance(inputs, str) and dims:
        raise ctx.error(mapping["dims"], "dims", "dims need declared input shapes, not a callable",
                        "declare inputs by shape to use dynamic dimensions")
    if not isinstance(inputs, str):
        limit = fields.get("max_input_bytes", DEFAULT_MAX_INPUT_BYTES)
        size, biggest = input_bytes(inputs, dims)
        if size > limit:
            raise ctx.error(mapping["inputs"], "inputs",
                            f"the example inputs take {human_bytes(size)} at their largest declared sizes "
                            f"({biggest}), over the limit of {human_bytes(limit)}",
                            "declare smaller shapes or dims, or raise max_input_bytes (in the target or defaults)")
    kwargs = parse_kwargs(ctx, mapping["kwargs"]) if "kwargs" in mapping else {}
    weights = parse_weights(ctx, mapping["weights"], label.package) if "weights" in mapping else None
    return Target(label=label, build_file=file, line=node.line, model=model, kwargs=kwargs, weights=weights,
                  inputs=inputs, dims=dims, **fields)
