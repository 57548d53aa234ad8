"""Field checks for BUILD and WORKSPACE files (errors name file, line and field) and each field's parser."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Callable

from aotbuild import cpu_levels
from aotbuild.errors import Location, TargetError
from aotbuild.workspace.target import DimSpec, Tolerance
from aotbuild.workspace.yaml_source import Node

# Always used with fullmatch: `$` in re.match accepts a trailing newline, which would reach build.ninja.
DEVICES = re.compile(r"cpu|cuda(:\d+)?")
CALLABLE_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", re.ASCII)
IDENTIFIER = re.compile(r"[A-Za-z_]\w*", re.ASCII)  # dimension and environment variable names
SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Ctx:
    """Builds located errors for one file (and optionally one target)."""

    file: str
    target: str | None = None

    def error(self, node: Node, fld: str | None, problem: str, fix: str | None = None) -> TargetError:
        return TargetError(Location(self.file, node.line, self.target, fld), problem, fix)


def describe(value: Any) -> str:
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
        raise ctx.error(node, fld, f"expected {what}, found {describe(value)}", fix)
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
    for key, value in mapping.items():
        if expect(ctx, value, f"tolerance.{key}", (int, float), "a non-negative number") < 0:
            raise ctx.error(value, f"tolerance.{key}", f"expected a non-negative number, found {value.value}")
    return Tolerance(**{key: float(value.value) for key, value in mapping.items()})


def strings(ctx: Ctx, node: Node, fld: str, what: str, each: str) -> list[tuple[Node, str]]:
    """A list of strings, each with its node (for the line of an error about it)."""
    return [(item, expect(ctx, item, fld, str, each)) for item in expect(ctx, node, fld, list, what)]


def _parse_options(ctx: Ctx, node: Node) -> dict[str, Any]:
    mapping = expect(ctx, node, "options", dict, "a mapping of inductor config names to values")
    for key, value in mapping.items():
        if not isinstance(value.value, SCALARS):
            raise ctx.error(value, f"options.{key}", f"expected a scalar value, found {describe(value.value)}")
    return node.plain()


def parse_dims(ctx: Ctx, node: Node) -> tuple[DimSpec, ...]:
    dims = []
    for name, spec in expect(ctx, node, "dims", dict, "a mapping of dimension names").items():
        fld = f"dims.{name}"
        if not IDENTIFIER.fullmatch(name):
            raise ctx.error(spec, fld, f"dimension name {name!r} is not an identifier")
        fix = f"write {name}: {{min: 1, max: 64}}"
        mapping = check_keys(ctx, spec, ("min", "max", "example"), fld, {"min": fix, "max": fix})
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


def _plain_data(ctx: Ctx, node: Node, fld: str) -> Any:
    """Strings, numbers, booleans, null, lists and mappings only: kwargs go into JSON specs and cache keys."""
    if isinstance(node.value, dict):
        return {key: _plain_data(ctx, child, f"{fld}.{key}") for key, child in node.value.items()}
    if isinstance(node.value, list):
        return [_plain_data(ctx, child, fld) for child in node.value]
    if not isinstance(node.value, SCALARS):
        raise ctx.error(node, fld, f"expected plain data, found {describe(node.value)}", "quote it to pass a string")
    return node.value


def parse_kwargs(ctx: Ctx, node: Node) -> dict[str, Any]:
    expect(ctx, node, "kwargs", dict, "a mapping of keyword arguments")
    return _plain_data(ctx, node, "kwargs")


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


def _parse_device(ctx: Ctx, node: Node) -> str:
    value = expect(ctx, node, "device", str, "'cpu' or 'cuda'")
    if not DEVICES.fullmatch(value):
        raise ctx.error(node, "device", f"unknown device '{value}'", "use 'cpu', 'cuda' or 'cuda:N'")
    return value


def _parse_cpu_isa(ctx: Ctx, node: Node) -> str:
    """`native` (the compiling machine's CPU, -march=native) or a portable x86-64 level."""
    choices = (cpu_levels.NATIVE, *cpu_levels.LEVELS)
    value = expect(ctx, node, "cpu_isa", str, " or ".join(f"'{c}'" for c in choices))
    if value not in choices:
        close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
        raise ctx.error(node, "cpu_isa", f"unknown CPU ISA '{value}'",
                        f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(choices)}")
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
    "tolerance": _parse_tolerance,
    "tags": lambda ctx, n: tuple(text for _, text in strings(ctx, n, "tags", "a list of strings", "a string")),
    "max_input_bytes": _parse_size, "data": _parse_data, "env": _parse_env, "cpu_isa": _parse_cpu_isa,
}
