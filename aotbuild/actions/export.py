"""The export action: model code -> ExportedProgram in the cache, graph.json, reference.json and a depfile.

Two cache levels, as ccache's direct mode: the last export's imported files (level 1 manifest) let a run with
unchanged sources find its result without importing torch; otherwise torch.export runs and the result is stored.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write, write_if_changed
from ..hashing import key_of, pretty_json, sha256_file
from .runtime import ActionContext, run_action


def _source_key(ctx: ActionContext) -> dict[str, Any]:
    # The label only names the target: one model declared under two labels shares one cache entry.
    spec = {k: v for k, v in ctx.spec.items() if k != "label"}
    return {"spec": spec, "toolchain": ctx.toolchain()["export"]}


def _file_hashes(root: Path, files: list[str]) -> dict[str, str | None]:
    hashes: dict[str, str | None] = {}
    for rel in files:
        try:
            hashes[rel] = sha256_file(root / rel)
        except FileNotFoundError:
            hashes[rel] = None  # a deleted dependency is a different source state, never an error here
    return hashes


def _cached_result(ctx: ActionContext) -> dict[str, Any] | None:
    source = _source_key(ctx)
    deps = ctx.store.get_action(key_of("export-deps", source))
    if deps is None:
        return None
    return ctx.store.get_action(key_of("export", {**source, "files": _file_hashes(ctx.root, deps["files"])}))


def _workspace_files(root: Path, extra: list[str]) -> list[str]:
    """Every workspace .py the process imported (the model's discovered dependencies), plus `extra`."""
    import sys

    found = set(extra)
    out_dir = root / "aot-out"
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        if not path.is_relative_to(root) or path.is_relative_to(out_dir):
            continue
        rel = path.relative_to(root)
        # Virtual environments inside the workspace are tooling, not model code.
        if any(p.startswith(".") or p == "site-packages" for p in rel.parts):
            continue
        found.add(rel.as_posix())
    return sorted(found)


def export_program(ctx: ActionContext) -> dict[str, Any]:
    """Run torch.export and store the program and the eager reference outputs; returns the level-2 result."""
    import torch

    from ..errors import UserError
    from . import example_inputs, graph_hash, model_loader

    spec, device = ctx.spec, ctx.spec["device"]
    model = model_loader.build_model(spec, ctx.root, device)
    cases = example_inputs.cases(spec, device)
    example = cases[0]
    try:
        with torch.no_grad():
            ep = torch.export.export(model, example.args, example.kwargs,
                                     dynamic_shapes=example_inputs.dynamic_shapes(spec))
    except Exception as e:
        raise UserError(f"torch.export rejected the model: {type(e).__name__}: {e}\n"
                        "  fix: make forward() traceable (no data-dependent Python control flow; "
                        "use torch.cond or tensor ops)") from e
    digest_of_graph = graph_hash.graph_hash(ep)
    buffer = io.BytesIO()
    torch.export.save(ep, buffer)
    program = ctx.store.put_bytes(buffer.getvalue())
    with torch.no_grad():
        references = [{"name": c.name, "args": c.args, "kwargs": c.kwargs,
                       "outputs": model(*c.args, **c.kwargs)} for c in cases]
    buffer = io.BytesIO()
    torch.save(torch.utils._pytree.tree_map(
        lambda x: x.cpu() if isinstance(x, torch.Tensor) else x, references), buffer)
    reference = ctx.store.put_bytes(buffer.getvalue())
    extra = [spec["weights"]] if spec["weights"] else []
    files = _workspace_files(ctx.root, extra)
    call = ep.module_call_graph[0].signature
    return {"graph_hash": digest_of_graph, "program": program, "reference": reference, "files": files,
            "cases": [c.name for c in cases], "blobs": [program, reference],
            "inputs": [{"name": n.name, "shape": [str(s) for s in n.meta["val"].shape], "dtype": str(n.meta["val"].dtype)}
                       for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs],
            "outputs": str(call.out_spec) if call else None}


def _program_for_graph(ctx: ActionContext, result: dict[str, Any]) -> str:
    """The program stored for this graph hash, first writer wins: programs with one hash differ only in
    source-location metadata, and sharing one keeps graph.json (hence the compile step) unchanged."""
    key = key_of("program-of-graph", result["graph_hash"])
    entry = ctx.store.get_action(key)
    if entry is None:
        ctx.store.put_action(key, {"program": result["program"], "blobs": [result["program"]]})
        return result["program"]
    return entry["program"]


def write_outputs(ctx: ActionContext, result: dict[str, Any]) -> None:
    graph = {"label": ctx.label, "graph_hash": result["graph_hash"], "program": _program_for_graph(ctx, result),
             "inputs": result["inputs"], "outputs": result["outputs"]}
    reference = {"label": ctx.label, "reference": result["reference"], "cases": result["cases"]}
    write_if_changed(ctx.target_dir / "reference.json", pretty_json(reference))
    write_if_changed(ctx.target_dir / "graph.json", pretty_json(graph))
    deps = " ".join(str(ctx.root / f).replace(" ", "\\ ") for f in result["files"])
    # The depfile must name the output exactly as build.ninja does (relative to aot-out/).
    output = (ctx.target_dir / "graph.json").relative_to(ctx.out_dir).as_posix()
    atomic_write(ctx.target_dir / "graph.json.d", f"{output}: {deps}\n".encode())


def export(ctx: ActionContext) -> str:
    result = _cached_result(ctx)
    if result is not None:
        write_outputs(ctx, result)
        return "action-cache hit"
    result = export_program(ctx)
    source = _source_key(ctx)
    # Blobs first (export_program stored them), then the entries that point at them.
    ctx.store.put_action(key_of("export", {**source, "files": _file_hashes(ctx.root, result["files"])}), result)
    ctx.store.put_action(key_of("export-deps", source), {"files": result["files"]})
    write_outputs(ctx, result)
    return "exported"


if __name__ == "__main__":
    run_action("export", export)
