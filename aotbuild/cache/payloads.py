"""The strict schema of every action-cache payload kind, checked wherever a payload is read, local or remote.

A payload is data that anyone serving the remote (or on its `http://` link) can mint with a valid checksum,
so nothing in it is trusted until it has exactly the fields and types its writer produces: names are plain
names, never paths; digests are 64 hex digits; dependency files are relative paths inside the workspace;
modules are dotted Python identifiers; distributions are plain names. A payload that fails is a cache miss
with one warning naming its key (`checked`), never an exception. Pure functions, no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aotbuild.cache.payload_fields import (
    Invalid, _bool, _expect, _fields, _int, _list, _number, _str, _workspace_or_outside, digest, distribution_name,
    env_name, module_name, outside_module_path, plain_name, workspace_path,
)

MAX_DEPENDENCY_LISTS = 8  # export-deps keeps this many lists (actions/export.py)
MAX_TREE_DEPTH = 64  # pytree specs nest this deep at most (a deeper one is a forged payload)
def _deps(value: Any, where: str) -> None:
    """actions/dependencies.py's lists: files read, files looked for and absent, modules found outside the
    workspace, `data:` globs, environment variables, installed distributions."""
    _fields(value, where, {"files", "absent", "external", "globs", "env", "packages"})
    _list(value["files"], f"{where}.files", workspace_path)
    _list(value["absent"], f"{where}.absent", _workspace_or_outside)
    _list(value["external"], f"{where}.external", outside_module_path)
    _list(value["globs"], f"{where}.globs", workspace_path)
    _list(value["env"], f"{where}.env", env_name)
    _list(value["packages"], f"{where}.packages", distribution_name)


def _tree(value: Any, where: str, depth: int = 0) -> None:
    """interface.spec_json's form: {"leaf": i} or {"type", "context", "children"}."""
    _expect(depth < MAX_TREE_DEPTH, where, f"a tree spec nested at most {MAX_TREE_DEPTH} deep")
    if isinstance(value, dict) and "leaf" in value:
        _int(_fields(value, where, {"leaf"})["leaf"], f"{where}.leaf", 0)
        return
    _fields(value, where, {"type", "context", "children"})
    _str(value["type"], f"{where}.type")
    _json_data(value["context"], f"{where}.context", depth + 1)
    _list(value["children"], f"{where}.children", lambda v, w: _tree(v, w, depth + 1))


def _json_data(value: Any, where: str, depth: int) -> None:
    _expect(depth < MAX_TREE_DEPTH, where, f"data nested at most {MAX_TREE_DEPTH} deep")
    if isinstance(value, list):
        _list(value, where, lambda v, w: _json_data(v, w, depth + 1))
    elif isinstance(value, dict):
        for k, v in value.items():
            _json_data(v, f"{where}.{k}", depth + 1)
    else:
        _expect(value is None or isinstance(value, (str, int, float, bool)), where, "JSON data")


def _shape(value: Any, where: str) -> None:
    if value is not None:  # None: a Python number input, baked into the graph
        _list(value, where, lambda v, w: _expect(isinstance(v, (int, str)) and not isinstance(v, bool), w,
                                                 "a size or a dim expression"))


def _interface(value: Any, where: str) -> None:
    _fields(value, where, {"inputs", "outputs", "dims", "in_spec", "out_spec", "requires_imports"})
    for i, item in enumerate(_list(value["inputs"], f"{where}.inputs", lambda v, w: None)):
        w = f"{where}.inputs[{i}]"
        _fields(item, w, {"name", "dtype", "shape", "keyword"})
        _str(item["name"], f"{w}.name"), _str(item["dtype"], f"{w}.dtype"), _bool(item["keyword"], f"{w}.keyword")
        _shape(item["shape"], f"{w}.shape")
    for i, item in enumerate(_list(value["outputs"], f"{where}.outputs", lambda v, w: None)):
        w = f"{where}.outputs[{i}]"
        _fields(item, w, {"name", "path", "dtype", "shape"})
        _str(item["name"], f"{w}.name"), _str(item["path"], f"{w}.path"), _str(item["dtype"], f"{w}.dtype")
        _shape(item["shape"], f"{w}.shape")
    _expect(isinstance(value["dims"], dict), f"{where}.dims", "an object")
    for name, dim in value["dims"].items():
        _fields(dim, f"{where}.dims.{name}", {"min", "max", "example"})
        for k in ("min", "max", "example"):
            _int(dim[k], f"{where}.dims.{name}.{k}")
    _tree(value["in_spec"], f"{where}.in_spec")
    _tree(value["out_spec"], f"{where}.out_spec")
    _list(value["requires_imports"], f"{where}.requires_imports", module_name)


def _blobs(payload: dict, expected: list[str]) -> None:
    _expect(payload["blobs"] == expected, "blobs", f"exactly the digests the entry names, {expected}")


# -- one schema per kind: exact fields, each kind's writer is named beside it

def export_deps(payload: Any) -> None:  # actions/export.py _record
    _fields(payload, "payload", {"lists"})
    _list(payload["lists"], "lists", _deps, MAX_DEPENDENCY_LISTS)


def export(payload: Any) -> None:  # actions/export.py export_program
    _fields(payload, "payload", {"graph_hash", "program", "reference", "reference_io", "deps", "cases", "blobs",
                                 "interface"})
    for name in ("graph_hash", "reference", "reference_io"):
        digest(payload[name], name)
    if payload["program"] is not None:  # None: not stored, the compile exports again (export.PROGRAM_STORE_LIMIT)
        digest(payload["program"], "program")
    _deps(payload["deps"], "deps")
    _list(payload["cases"], "cases", _str)
    stored = [payload["program"]] if payload["program"] is not None else []
    _blobs(payload, [*stored, payload["reference"], payload["reference_io"]])
    _interface(payload["interface"], "interface")


def program_of_graph(payload: Any) -> None:  # actions/export.py _program_for_graph
    _fields(payload, "payload", {"program", "blobs"})
    digest(payload["program"], "program")
    _blobs(payload, [payload["program"]])


def compile_(payload: Any) -> None:  # actions/compile.py compile_artifacts
    _fields(payload, "payload", {"torch", "so_needs_kernel_files", "pt2", "so", "blobs"})
    _str(payload["torch"], "torch")
    _list(payload["so_needs_kernel_files"], "so_needs_kernel_files", plain_name)
    for kind in ("pt2", "so"):
        _fields(payload[kind], kind, {"sha256", "size"})
        digest(payload[kind]["sha256"], f"{kind}.sha256")
        _int(payload[kind]["size"], f"{kind}.size", 0)
    _blobs(payload, [payload["pt2"]["sha256"], payload["so"]["sha256"]])


def _record(value: Any, where: str) -> None:
    if isinstance(value, dict) and "problem" in value:
        _fields(value, where, {"output", "ok", "problem"})
        _str(value["problem"], f"{where}.problem")
    else:
        _fields(value, where, {"output", "ok", "max_abs", "max_rel", "atol", "rtol", "max_reference",
                               "nan_reference", "nan_artifact", "values"})
        for k in ("max_abs", "max_rel", "atol", "rtol", "max_reference"):
            _number(value[k], f"{where}.{k}")
        for k in ("nan_reference", "nan_artifact", "values"):
            _int(value[k], f"{where}.{k}")
    _str(value["output"], f"{where}.output")
    _bool(value["ok"], f"{where}.ok")


def _case(value: Any, where: str) -> None:
    _fields(value, where, {"case", "artifact", "outputs"})
    _str(value["case"], f"{where}.case")
    _expect(value["artifact"] in ("pt2", "so"), f"{where}.artifact", "pt2 or so")
    _list(value["outputs"], f"{where}.outputs", _record)


def _rejection(value: Any, where: str) -> None:
    _fields(value, where, {"dim", "size", "refused", "message"})
    _str(value["dim"], f"{where}.dim"), _int(value["size"], f"{where}.size"), _bool(value["refused"], f"{where}.refused")
    _str(value["message"], f"{where}.message")


def verify(payload: Any) -> None:  # actions/verify.py run_checks
    _fields(payload, "payload", {"cases", "rejected"})
    _list(payload["cases"], "cases", _case)
    _list(payload["rejected"], "rejected", _rejection)


def exports_differ(payload: Any) -> None:  # actions/export.py reexported_program
    _fields(payload, "payload", {"graph_hashes"})
    _list(payload["graph_hashes"], "graph_hashes", digest, 2)


SCHEMAS: dict[str, Callable[[Any], None]] = {
    "export-deps": export_deps, "export": export, "program-of-graph": program_of_graph, "compile": compile_,
    "verify": verify, "exports-differ": exports_differ,
}


def problem(kind: str, payload: Any) -> str | None:
    """Why `payload` is not a valid `kind` entry, or None when it is."""
    try:
        SCHEMAS[kind](payload)
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
