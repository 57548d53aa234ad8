"""The strict schema of every action-cache payload kind, and the field checks it is made of (no torch)."""

from __future__ import annotations

import keyword
import posixpath
import re
from collections.abc import Callable
from typing import Any

from aotbuild import layout
from aotbuild.cache.store import is_hex

_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


class Invalid(Exception):
    """A payload that does not match its kind's schema; the message says which field and why."""


def check(value: Any, schema: Any, where: str = "") -> None:
    """`schema`: a dict (an object of exactly these fields, each checked by its own schema), `[item]` or
    `[item, max_len]` (a list of such items), or a check taking the value and where it sits."""
    if isinstance(schema, dict):
        expect(isinstance(value, dict), where or "payload", "an object")
        missing, extra = sorted(set(schema) - set(value)), sorted(set(value) - set(schema))
        expect(not missing and not extra, where or "payload", f"fields {sorted(schema)}"
               + (f" (missing {missing})" if missing else "") + (f" (unexpected {extra})" if extra else ""))
        for name, item in schema.items():
            check(value[name], item, f"{where}.{name}" if where else name)
    elif isinstance(schema, list):
        max_len = schema[1] if len(schema) > 1 else None
        expect(isinstance(value, list) and (max_len is None or len(value) <= max_len), where,
               "a list" + (f" of at most {max_len}" if max_len is not None else ""))
        for i, v in enumerate(value):
            check(v, schema[0], f"{where}[{i}]")
    else:
        schema(value, where)


def optional(schema: Any) -> Callable[[Any, str], None]:
    """`schema`, or None."""
    return lambda value, where: None if value is None else check(value, schema, where)


def expect(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise Invalid(f"{where}: expected {what}")


def _is(test: Callable[[Any], Any], what: str, show: bool = False) -> Callable[[Any, str], None]:
    """A check that `test(value)` holds; `show`: the message quotes the value found."""
    return lambda value, where: expect(bool(test(value)), where, f"{what}, found {value!r}" if show else what)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _in_workspace(v: Any) -> bool:
    """A relative POSIX path inside the workspace, as an export records its dependency files: no absolute
    path, no `..`, no hidden component (virtual environments), nothing under aot-out/."""
    ok = isinstance(v, str) and v and not set(v) & set("\\\0") and not v.startswith("/")
    parts = v.split("/") if ok else []
    return ok and all(p and not p.startswith(".") for p in parts) and parts[0] != layout.OUT_DIR


def _outside_module(v: Any) -> bool:
    """An absolute, normalized path of a Python source file outside the workspace (a module imported through
    PYTHONPATH, or one a failed import looked for): never a device or any file other than a `.py`."""
    return (isinstance(v, str) and v.startswith("/") and v.endswith(".py") and "\0" not in v
            and posixpath.normpath(v) == v and not v.startswith(("/dev/", "/proc/", "/sys/")))


def is_plain_name(v: Any) -> bool:
    """A file name with no directory part: no `/`, `\\`, NUL, `.` or `..`, not empty."""
    return isinstance(v, str) and v not in ("", ".", "..") and not set(v) & set("/\\\0")


string = _is(lambda v: isinstance(v, str) and "\0" not in v, "a string")
integer = _is(_int, "an integer")
natural = _is(lambda v: _int(v) and v >= 0, "an integer >= 0")
number = _is(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number")
boolean = _is(lambda v: isinstance(v, bool), "true or false")
digest = _is(is_hex, "64 lowercase hex digits")
plain_name = _is(is_plain_name, "a plain file name", show=True)
workspace_path = _is(_in_workspace, "a relative path inside the workspace", show=True)
outside_module_path = _is(_outside_module, "an absolute path of a .py file", show=True)
# A dotted Python module name: `pkg.mod`, never a path or `aot-out....`.
module_name = _is(lambda v: isinstance(v, str) and all(p.isidentifier() and not keyword.iskeyword(p) and p.isascii()
                                                       for p in v.split(".")), "a dotted Python module name", show=True)
distribution_name = _is(lambda v: isinstance(v, str) and _DIST.fullmatch(v), "a distribution name", show=True)
env_name = _is(lambda v: isinstance(v, str) and _ENV.fullmatch(v), "an environment variable name", show=True)


def workspace_or_outside(value: Any, where: str) -> None:
    (outside_module_path if isinstance(value, str) and value.startswith("/") else workspace_path)(value, where)


# -- the schemas

MAX_DEPENDENCY_LISTS = 8  # export-deps keeps this many lists (actions/export.py)
MAX_TREE_DEPTH = 64  # pytree specs nest this deep at most (a deeper one is a forged payload)
# actions/dependencies.py's lists: files read, files looked for and absent, modules found outside the workspace,
# `data:` globs, environment variables, installed distributions.
DEPS = {"files": [workspace_path], "absent": [workspace_or_outside], "external": [outside_module_path],
        "globs": [workspace_path], "env": [env_name], "packages": [distribution_name]}


def _tree(value: Any, where: str, depth: int = 0) -> None:
    """interface.spec_json's form: {"leaf": i} or {"type", "context", "children"}."""
    expect(depth < MAX_TREE_DEPTH, where, f"a tree spec nested at most {MAX_TREE_DEPTH} deep")
    if isinstance(value, dict) and "leaf" in value:
        check(value, {"leaf": natural}, where)
    else:
        check(value, {"type": string, "context": lambda v, w: _json_data(v, w, depth + 1),
                      "children": [lambda v, w: _tree(v, w, depth + 1)]}, where)


def _json_data(value: Any, where: str, depth: int) -> None:
    expect(depth < MAX_TREE_DEPTH, where, f"data nested at most {MAX_TREE_DEPTH} deep")
    if isinstance(value, (list, dict)):
        for k, v in value.items() if isinstance(value, dict) else enumerate(value):
            _json_data(v, f"{where}.{k}", depth + 1)
    else:
        expect(value is None or isinstance(value, (str, int, float, bool)), where, "JSON data")


_size = _is(lambda v: _int(v) or isinstance(v, str), "a size or a dim expression")
_shape = optional([_size])  # None: a Python number input, baked into the graph
_program = optional(digest)  # None: not stored, the compile exports again (export.PROGRAM_STORE_LIMIT)
_artifact = _is(lambda v: v in ("pt2", "so"), "pt2 or so")


def _dims(value: Any, where: str) -> None:
    expect(isinstance(value, dict), where, "an object")
    for name, dim in value.items():
        check(dim, {"min": integer, "max": integer, "example": integer}, f"{where}.{name}")


def _record(value: Any, where: str) -> None:
    """One output compared (actions/verify.py compare), or why it could not be."""
    if isinstance(value, dict) and "problem" in value:
        check(value, {"output": string, "ok": boolean, "problem": string}, where)
    else:
        numbers = dict.fromkeys(["max_abs", "max_rel", "atol", "rtol", "max_reference"], number)
        check(value, {"output": string, "ok": boolean, "nan_reference": integer, "nan_artifact": integer,
                      "values": integer, **numbers}, where)


_INTERFACE = {"inputs": [{"name": string, "dtype": string, "shape": _shape, "keyword": boolean}],
              "outputs": [{"name": string, "path": string, "dtype": string, "shape": _shape}],
              "dims": _dims, "in_spec": _tree, "out_spec": _tree, "requires_imports": [module_name]}
_ARTIFACT = {"sha256": digest, "size": natural}
# One schema per kind, exact fields, each kind's writer named beside it.
SCHEMAS: dict[str, dict[str, Any]] = {
    "export-deps": {"lists": [DEPS, MAX_DEPENDENCY_LISTS]},  # actions/export.py _record
    "export": {"graph_hash": digest, "structure_hash": digest, "weights_digest": digest,  # export_program
               "program": _program, "reference": digest, "reference_io": digest,
               "deps": DEPS, "cases": [string], "blobs": [digest], "interface": _INTERFACE},
    "program-of-graph": {"program": digest, "blobs": [digest]},  # actions/export.py _program_for_graph
    "compile": {"torch": string, "so_needs_kernel_files": [plain_name], "pt2": _ARTIFACT, "so": _ARTIFACT,
                "blobs": [digest]},  # actions/compile.py compile_artifacts
    "verify": {"cases": [{"case": string, "artifact": _artifact, "outputs": [_record]}],  # actions/verify.py run_checks
               "rejected": [{"dim": string, "size": integer, "refused": boolean, "message": string}]},
    "exports-differ": {"graph_hashes": [digest, 2]},  # actions/export.py reexported_program
    "refit": {"graph_hash": digest, "pt2": _ARTIFACT, "so": _ARTIFACT, "blobs": [digest],  # actions/refit.py remember
              "library": _is(lambda v: isinstance(v, str) and v.endswith(".so"), "a library's member name", show=True),
              "blob": {"offset": natural, "size": natural, "sha256": digest},
              "table": [{"name": string, "source": string, "offset": natural, "size": natural}],
              "fixed": [{"name": string, "sha256": digest}]},
}
# The blobs an entry must list, in this order: exactly those it names.
_BLOBS = {"export": lambda p: [d for d in (p["program"], p["reference"], p["reference_io"]) if d is not None],
          "program-of-graph": lambda p: [p["program"]], "compile": lambda p: [p["pt2"]["sha256"], p["so"]["sha256"]],
          "refit": lambda p: [p["pt2"]["sha256"], p["so"]["sha256"]]}


def problem(kind: str, payload: Any) -> str | None:
    """Why `payload` is not a valid `kind` entry, or None when it is."""
    try:
        check(payload, SCHEMAS[kind])
        if kind in _BLOBS:
            expected = _BLOBS[kind](payload)
            expect(payload["blobs"] == expected, "blobs", f"exactly the digests the entry names, {expected}")
    except Invalid as e:
        return str(e)
    return None


def warn(store: Any, key: str, kind: str, why: str) -> None:
    """One warning per key and reason for the build summary (the store's list; repeats are dropped)."""
    message = f"action cache entry ac/{key} ({kind}) is not a valid {kind} entry ({why[:200]}); not used"
    if message not in store.warnings:
        store.warnings.append(message)


def checked(store: Any, key: str, kind: str) -> dict[str, Any] | None:
    """`store.get_action(key)` when it is a valid `kind` payload; otherwise None, after one warning."""
    payload = store.get_action(key)
    if payload is None:
        return None
    why = problem(kind, payload)
    if why is not None:
        warn(store, key, kind, why)
        return None
    return payload
