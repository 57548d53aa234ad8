"""An exported program's interface as plain JSON for manifest.json: sizes by dim name, specs as objects."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils import _pytree as pytree

from aotbuild.errors import Location, TargetError, UserError

# Node types every torch process can rebuild without importing anything: pytree registers them itself.
_BUILTIN_MODULES = ("builtins", "collections", "torch")


def type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, type):
        return type_name(value)
    return type(value).__name__


def spec_json(spec: pytree.TreeSpec, leaves: list[int] | None = None) -> dict[str, Any]:
    """A TreeSpec as nested objects: `{"leaf": i}` for the i-th flat value, else type, context, children."""
    counter = leaves if leaves is not None else [0]
    if spec.is_leaf():
        counter[0] += 1
        return {"leaf": counter[0] - 1}
    return {"type": type_name(spec.type), "context": _jsonable(spec.context),
            "children": [spec_json(child, counter) for child in spec.children()]}


def _node_types(spec: pytree.TreeSpec) -> set[type]:
    if spec.is_leaf():
        return set()
    found = {spec.type}
    if isinstance(spec.context, type):  # namedtuples: the node type is generic, the class is the context
        found.add(spec.context)
    for child in spec.children():
        found |= _node_types(child)
    return found


def _custom_types(*specs: pytree.TreeSpec) -> list[type]:
    found = {t for s in specs for t in _node_types(s)}
    return sorted((t for t in found if t.__module__.partition(".")[0] not in _BUILTIN_MODULES),
                  key=type_name)


def check_serializable(where: Location, *specs: pytree.TreeSpec) -> None:
    """A pytree type registered without a serialized_type_name makes torch.export.save fail obscurely."""
    for t in _custom_types(*specs):
        entry = pytree.SUPPORTED_SERIALIZED_TYPES.get(t)
        if entry is None or entry.serialized_type_name == pytree.NO_SERIALIZED_TYPE_NAME_FOUND:
            name = type_name(t)
            raise TargetError(where, f"forward()'s inputs or outputs use {name}, registered as a pytree node "
                              "without a serialized name, so the exported program cannot be saved or loaded",
                              f"register it with a name, e.g. torch.export.register_dataclass({t.__name__}, "
                              f"serialized_type_name='{name}')")


def required_imports(*specs: pytree.TreeSpec) -> list[str]:
    """Modules to import before a process can rebuild these specs: those defining (and so registering, as
    transformers' ModelOutput) their non-builtin node types."""
    return sorted({t.__module__ for t in _custom_types(*specs)} - {"__main__"})


def import_required(modules: list[str], root: Path, label: str) -> None:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - any failure here means the program cannot be loaded
            raise UserError(f"{label}: module '{module}', which registers a pytree type of the model's inputs or "
                            f"outputs, failed to import: {type(e).__name__}: {e}") from e


def output_name(path: tuple[Any, ...]) -> str:
    """A readable name from a pytree key path: `.logits` -> logits, `[0]` -> output_0, `[1]['a']` -> output_1_a."""
    # GetAttrKey.name, MappingKey.key, SequenceKey.idx; another kind of key as it prints.
    name = "_".join(str(getattr(key, "name", getattr(key, "key", getattr(key, "idx", key)))) for key in path)
    return "output" if not name else (f"output_{name}" if name[0].isdigit() else name)


def flat_outputs(outputs: Any, label: str, where: Location) -> list[tuple[str, str, torch.Tensor]]:
    """(name, path, tensor) for each output leaf; one that is not a tensor is a user error."""
    leaves, _ = pytree.tree_flatten_with_path(outputs, is_leaf=lambda x: x is None)
    if not leaves:
        raise TargetError(where, "forward() returns no tensors", "return at least one tensor")
    found = []
    for path, leaf in leaves:
        keystr = pytree.keystr(path)
        if not isinstance(leaf, torch.Tensor):
            shown = f"{type(leaf).__name__} ({leaf!r})"[:80]
            raise TargetError(where, f"forward() output '{keystr or 'output'}' is {shown}, not a tensor; an "
                              "AOTInductor artifact returns tensors only",
                              "return tensors only: drop None and Python numbers from forward()'s result, or "
                              "wrap numbers with torch.tensor(...)")
        found.append((output_name(path), keystr, leaf))
    return found


def _size(size: Any, names: dict[Any, str]) -> int | str:
    if isinstance(size, int):
        return size
    import sympy

    return str(size.node.expr.subs({sym: sympy.Symbol(n) for sym, n in names.items()}))


def _dim_symbols(declared: list[tuple[dict[str, Any], bool]], placeholders: list[Any]) -> dict[Any, str]:
    """sympy symbol of each dynamic dim -> its declared name, found at the axes the target named it."""
    return {node.meta["val"].shape[axis].node.expr: entry
            for (item, _), node in zip(declared, placeholders) for axis, entry in enumerate(item["shape"])
            if isinstance(entry, str) and not isinstance(node.meta["val"].shape[axis], int)}


def _tensor_placeholders(ep: torch.export.ExportedProgram) -> list[Any]:
    """The placeholders of the user's tensor inputs: what the artifact takes (other arguments are constants)."""
    from torch.export.graph_signature import InputKind, TensorArgument

    names = {s.arg.name for s in ep.graph_signature.input_specs
             if s.kind == InputKind.USER_INPUT and isinstance(s.arg, TensorArgument)}
    return [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in names]


def describe(ep: torch.export.ExportedProgram, spec: dict[str, Any], outputs: Any, where: Location) -> dict[str, Any]:
    """The interface of `ep`, exported from `spec` (the target's export spec); `outputs` are eager outputs."""
    from aotbuild.actions.example_inputs import tensor_items

    placeholders = _tensor_placeholders(ep)
    declared = tensor_items(spec)
    names = _dim_symbols(declared, placeholders)
    keywords = [keyword for _, keyword in declared] or [False] * len(placeholders)
    inputs = [{"name": node.name, "dtype": str(node.meta["val"].dtype).removeprefix("torch."),
               "shape": [_size(s, names) for s in node.meta["val"].shape], "keyword": keyword}
              for node, keyword in zip(placeholders, keywords)]
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    kinds = [s.kind for s in ep.graph_signature.output_specs]
    traced = [arg for arg, kind in zip(out_node.args[0], kinds) if kind.name == "USER_OUTPUT"]
    described = []
    for (name, path, eager), node in zip(flat_outputs(outputs, spec["label"], where), traced):
        val = node.meta.get("val") if hasattr(node, "meta") else None
        shape = [_size(s, names) for s in val.shape] if isinstance(val, torch.Tensor) else list(eager.shape)
        described.append({"name": name, "path": path, "dtype": str(eager.dtype).removeprefix("torch."),
                          "shape": shape})
    call = ep.module_call_graph[0].signature
    in_spec, out_spec = call.in_spec, call.out_spec
    check_serializable(where, in_spec, out_spec)
    return {
        "inputs": inputs,
        "outputs": described,
        "dims": {d["name"]: {"min": d["min"], "max": d["max"], "example": d["example"]} for d in spec["dims"]},
        "in_spec": spec_json(in_spec),
        "out_spec": spec_json(out_spec),
        "requires_imports": required_imports(in_spec, out_spec),
    }
