"""The export action: model code -> ExportedProgram in the cache, graph.json, reference.json and a depfile."""

from __future__ import annotations

import importlib.metadata
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from aotbuild.actions import dependencies, input_discovery, reference_io, tracing, trust
from aotbuild.actions.runtime import ActionContext, Phases, location, run_action
from aotbuild.cache import payloads
from aotbuild.errors import ActionError, InfraError
from aotbuild.fsutil import atomic_write, write_if_changed
from aotbuild.hashing import key_of, pretty_json
from aotbuild.rules.compile import SPEC as COMPILE_SPEC
from aotbuild.rules.export import DISCOVERED, GRAPH, REFERENCE, REFERENCE_IO
from aotbuild.rules.export import KIND as EXPORT
from aotbuild.workspace import settings

StateOf = Callable[[Path, dict[str, list[str]]], dict[str, Any]]  # dependencies.state, or a memo of it


def source_key(ctx: ActionContext) -> dict[str, Any]:
    # The label only names the target: one model declared under two labels shares one cache entry.
    # `where` (file and line) is for error messages: moving a target in its file changes no result.
    spec = {k: v for k, v in ctx.spec.items() if k not in ("label", "where")}
    return {"spec": spec, "toolchain": ctx.toolchain()["export"]}


def _cached_result(ctx: ActionContext, state: StateOf = dependencies.state,
                   verdicts: dict[tuple, str | None] | None = None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Level 1: each dependency list recorded for this source key, tried with its inputs' current content;
    the result and the state it was found with. An entry failing its checks is a miss with a warning."""
    verdicts = {} if verdicts is None else verdicts
    env = ctx.spec.get("env", [])
    source = source_key(ctx)
    deps_key = key_of("export-deps", source)
    recorded = payloads.checked(ctx.store, deps_key, "export-deps")
    if recorded is None:
        return None
    unsafe = _remembered(verdicts, (repr(recorded["lists"]), tuple(env)),
                         partial(trust.unsafe_deps, ctx.root, recorded["lists"], env))
    if unsafe:
        payloads.warn(ctx.store, deps_key, "export-deps", unsafe)
        return None
    for deps in recorded["lists"]:
        current = state(ctx.root, deps)
        key = key_of("export", {**source, **current})
        result = payloads.checked(ctx.store, key, "export")
        if result is None:
            continue
        memo = (result["program"], repr(result["deps"]), tuple(result["interface"]["requires_imports"]), tuple(env))
        why = _remembered(verdicts, memo, partial(trust.unsafe_export, ctx.store, ctx.root, result, ctx.spec))
        if not why:
            return result, current
        payloads.warn(ctx.store, key, "export", why)
    return None


def _remembered(verdicts: dict[tuple, str | None], key: tuple, check: Callable[[], str | None]) -> str | None:
    """`check()`, once per `key` (a caller resolving many targets at once shares `verdicts`)."""
    if key not in verdicts:
        verdicts[key] = check()
    return verdicts[key]


def _record(ctx: ActionContext, result: dict[str, Any], current: dict[str, Any]) -> None:
    """Store the result, then add its dependency list to the source key's (several: switching branches hits)."""
    source = source_key(ctx)
    deps = result["deps"]
    ctx.store.put_action(key_of("export", {**source, **current}), result)
    recorded = payloads.checked(ctx.store, key_of("export-deps", source), "export-deps")
    lists = [deps] + [d for d in (recorded["lists"] if recorded else []) if d != deps]
    ctx.store.put_action(key_of("export-deps", source), {"lists": lists[:payloads.MAX_DEPENDENCY_LISTS]})


# Larger programs are not stored: writing and reading them back costs more than the compile exporting again.
PROGRAM_STORE_LIMIT = 128 << 20


EXPORTS_DIFFER = "exports-differ"  # the source keys whose exports gave two graphs: their programs are stored


def program_needed(ctx: ActionContext) -> bool:
    """Whether a compile found this model exporting to another graph than its export did (unseeded weights):
    then only the stored program compiles to the graph hash the export recorded."""
    return payloads.checked(ctx.store, key_of(EXPORTS_DIFFER, source_key(ctx)), EXPORTS_DIFFER) is not None


def export_program(ctx: ActionContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run torch.export, store the program (unless large) and references; the inputs' state and the result."""
    traced = tracing.trace(ctx)  # before importing torch here: it checks for a GPU first
    import torch

    from aotbuild.actions import interface

    ep, cases, outputs = traced.program, traced.cases, traced.outputs
    # Raises for outputs that are not tensors, before anything is stored.
    described = interface.describe(ep, ctx.spec, outputs[0], location(ctx.spec))
    program = None
    if tracing.weight_bytes(ep) <= PROGRAM_STORE_LIMIT or program_needed(ctx):
        with ctx.phases.phase("store_program"):
            # Written straight into the cache: a copy of the serialized weights in memory would double the
            # peak. Not fsynced: only ever read back through the cache, which verifies it (a torn one is a miss).
            program = ctx.store.put_written(lambda f: torch.export.save(ep, f), f"{ctx.label}'s exported program",
                                            durable=False)
    # Outputs as flat tensors with their paths: a model's own output type (a registered dataclass) could not be
    # loaded back with weights_only=True.
    references = []
    for c, out in zip(cases, outputs):
        leaves = interface.flat_outputs(out, ctx.label, location(ctx.spec))
        references.append({"name": c.name, "args": c.args, "kwargs": c.kwargs,
                           "outputs": [t for _, _, t in leaves], "paths": [p for _, p, _ in leaves]})
    on_cpu = torch.utils._pytree.tree_map(lambda x: x.cpu() if isinstance(x, torch.Tensor) else x, references)
    reference = ctx.store.put_written(lambda f: torch.save(on_cpu, f), f"{ctx.label}'s reference outputs",
                                      durable=False)
    flat = ctx.store.put_bytes(reference_io.encode(ctx.label, references))  # the same cases, for C++ consumers
    deps = _deps(ctx, traced.recorder)
    current = dependencies.state(ctx.root, deps)  # hashed, then checked unchanged since the import began
    dependencies.check_unchanged_since(ctx.root, deps, traced.started_ns, ctx.label)
    return current, {"graph_hash": traced.graph_hash, "structure_hash": traced.hashes.structure,
                     "weights_digest": traced.hashes.weights, "program": program, "reference": reference,
                     "reference_io": flat, "deps": deps, "cases": [c.name for c in cases],
                     "blobs": [b for b in (program, reference, flat) if b is not None], "interface": described}


def _deps(ctx: ActionContext, recorder: input_discovery.Recorder) -> dict[str, list[str]]:
    spec = ctx.spec
    data, globs = dependencies.expand_data(ctx.root, spec.get("data", []))
    pythonpath = [os.path.realpath(p) for p in settings.environ().get("PYTHONPATH", "").split(os.pathsep) if p]
    missing = [f for f in data if not (ctx.root / f).exists()]  # a declared file that may appear later
    extra = ([spec["weights"]] if spec["weights"] else []) + sorted(recorder.opened) + data
    by_module = importlib.metadata.packages_distributions()  # tens of milliseconds: listed once
    imported, external = input_discovery.imported_files(ctx.root, by_module)
    # Modules found outside the workspace and every installation came through PYTHONPATH (or the like): which
    # ones an import finds depends on it, so it is an input too (unset, a clean build might not find them).
    env = {*spec.get("env", []), *([dependencies.PYTHONPATH] if external else [])}
    return {"files": sorted({*imported, *(f for f in extra if f not in missing)}),
            "absent": sorted({*recorder.absent_files(pythonpath), *missing}), "external": external,
            "globs": globs, "env": sorted(env), "packages": dependencies.distributions(by_module)}


def _program_for_graph(ctx: ActionContext, result: dict[str, Any]) -> str | None:
    """The program stored for this graph hash, first writer wins (programs with one hash differ only in source
    locations: sharing one keeps graph.json unchanged). A bad entry is replaced by this one's."""
    if result["program"] is None:  # not stored (large weights): the compile exports again
        return None
    key = key_of("program-of-graph", result["graph_hash"])
    entry = payloads.checked(ctx.store, key, "program-of-graph")
    why = entry and trust.unsafe_program(ctx.store, entry["program"])
    if why:
        payloads.warn(ctx.store, key, "program-of-graph", why)
    if entry is None or why:
        ctx.store.put_action(key, {"program": result["program"], "blobs": [result["program"]]})
        return result["program"]
    return entry["program"]


def write_outputs(ctx: ActionContext, result: dict[str, Any], current: dict[str, Any], flat_reference: bytes,
                  installed: dict[str, str] | None = None) -> None:
    """graph.json (rewritten only when it changed), reference.json and the depfile. `current`: the state of the
    inputs that found or made `result`, which the content stamps created now must agree with."""
    # The structure hash keys the compiled code, the weights digest what goes in its constants (actions/refit.py).
    graph = {"label": ctx.label, "graph_hash": result["graph_hash"], "structure_hash": result["structure_hash"],
             "weights_digest": result["weights_digest"], "program": _program_for_graph(ctx, result),
             "interface": result["interface"]}
    reference = {"label": ctx.label, "reference": result["reference"], "cases": result["cases"]}
    # First: depfile_paths writes distribution stamps, which must not be newer than graph.json.
    paths = dependencies.depfile_paths(ctx.root, ctx.out_dir, result["deps"], current, ctx.label, installed)
    deps = " ".join(p.replace(" ", "\\ ") for p in paths)
    write_if_changed(ctx.target_dir / REFERENCE, pretty_json(reference), ctx.durable)
    write_if_changed(ctx.target_dir / GRAPH, pretty_json(graph), ctx.durable)
    write_if_changed(ctx.target_dir / REFERENCE_IO, flat_reference, ctx.durable)
    # The depfile must name the output exactly as build.ninja does (relative to aot-out/).
    output = (ctx.target_dir / GRAPH).relative_to(ctx.out_dir).as_posix()
    # Before the depfile: whenever ninja records these dependencies, this list holds them too. Relative to
    # aot-out/, where ninja runs: the same bytes in every checkout.
    listed = "".join(f"{os.path.relpath(p, ctx.out_dir)}\n" for p in paths)
    write_if_changed(ctx.target_dir / DISCOVERED, listed.encode(), ctx.durable)
    atomic_write(ctx.target_dir / f"{GRAPH}.d", f"{output}: {deps}\n".encode(), durable=ctx.durable)


def from_cache(ctx: ActionContext, state: StateOf = dependencies.state, installed: dict[str, str] | None = None,
               verdicts: dict[tuple, str | None] | None = None) -> bool:
    """The hit path alone, without torch; False on a miss. Also run by engine/cache_hits.py for many targets at
    once, sharing `state`, `installed` and the trust checks' `verdicts` between them."""
    started_ns = time.time_ns()
    found = _cached_result(ctx, state, verdicts)
    # An entry whose blob gc evicted is a miss: export again. So is one without the program a compile needs.
    if found is None or (found[0]["program"] is None and program_needed(ctx)):
        return False
    result, current = found
    flat = ctx.store.get_bytes(result["reference_io"])
    if flat is None:
        return False
    # As the miss path: an input edited since it was hashed for the lookup must not get this result.
    dependencies.check_unchanged_since(ctx.root, result["deps"], started_ns, ctx.label)
    write_outputs(ctx, result, current, flat, installed)
    return True


def as_export(ctx: ActionContext) -> ActionContext:
    """The export's context inside another action: the export's spec, phases of its own."""
    return ActionContext(**{**ctx.__dict__, "spec": ctx.read_json(EXPORT.spec_file), "action": EXPORT.name,
                            "phases": Phases()})


def reexported_program(ctx: ActionContext, graph_hash: str) -> Any:
    """The program of graph.json's graph, exported again in a compile (not stored, or evicted). A model giving
    another graph is remembered: its next export stores the program, and this build fails once, saying so."""
    exporting = as_export(ctx)
    traced = tracing.trace(exporting, references=False)
    if traced.graph_hash != graph_hash:
        ctx.store.put_action(key_of(EXPORTS_DIFFER, source_key(exporting)),
                             {"graph_hashes": [graph_hash, traced.graph_hash]})
        # Nothing the export reads changed, so ninja would not run it again: without its graph.json it does.
        (ctx.target_dir / GRAPH).unlink(missing_ok=True)
        raise ActionError(ctx.label, "compile", "exported again to compile it (its program is not in the cache: "
                          "large weights are not stored), the model gave another graph than its export did: its "
                          "weights or constants differ between runs (initialised without a seed, or computed by "
                          "math whose last bits differ between CPUs). aotbuild stores this model's program from "
                          "now on.\n  fix: run `aotbuild build` again; to keep its artifacts cacheable, seed its "
                          "initialisation or load its weights from a `weights:` file")
    return traced.program


def reexported_reference(ctx: ActionContext, graph_hash: str) -> bytes:
    """The reference outputs of graph.json's graph (torch.save bytes), exported and stored again."""
    _, result = export_program(as_export(ctx))
    if result["graph_hash"] != graph_hash:
        raise InfraError(f"{ctx.label}: the reference outputs are missing from the cache and the model no longer "
                         "exports to the same graph; run `aotbuild build` again")
    data = ctx.store.get_bytes(result["reference"])
    if data is None:
        raise InfraError(f"{ctx.label}: the reference outputs were removed from the cache {ctx.store.root} while "
                         "this build was using them (by `aotbuild cache gc` or another process deleting files "
                         "there); run `aotbuild build` again")
    return data


def export(ctx: ActionContext) -> str:
    if from_cache(ctx):
        return "action-cache hit"
    from aotbuild.actions.compile import check_options

    # The compile's options are checked before exporting: a misspelled one must not cost a whole export to find.
    check_options(ctx.read_json(COMPILE_SPEC))
    from aotbuild.actions.remote_export import exported

    on_cluster = exported(ctx)  # None without an executor, or when it must run here
    if on_cluster is not None:
        return on_cluster
    current, result = export_program(ctx)
    _record(ctx, result, current)  # after the blobs it points at, which export_program stored
    flat = ctx.store.get_bytes(result["reference_io"])
    if flat is None:
        raise InfraError(f"{ctx.label}: the reference inputs just stored are unreadable: check the cache disk")
    write_outputs(ctx, result, current, flat)
    return "exported"


if __name__ == "__main__":
    run_action(EXPORT.name, export)
