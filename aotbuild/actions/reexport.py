"""Exporting again what the cache does not hold: a program not stored (large weights) or evicted, a reference
evicted. Cheaper than failing: the model is unchanged (ninja would have re-run the export otherwise), and
the graph hash proves it.
"""

from __future__ import annotations

from typing import Any

from aotbuild.actions import tracing
from aotbuild.actions.export import EXPORTS_DIFFER, export_program, source_key
from aotbuild.actions.phases import Phases
from aotbuild.actions.runtime import ActionContext
from aotbuild.errors import ActionError, InfraError
from aotbuild.hashing import key_of
from aotbuild.rules.export import GRAPH
from aotbuild.rules.export import KIND as EXPORT


def _as_export(ctx: ActionContext) -> ActionContext:
    """The export's context inside this action: the export's spec, phases of its own (inside this action's)."""
    return ActionContext(**{**ctx.__dict__, "spec": ctx.read_json(EXPORT.spec_file), "action": EXPORT.name,
                            "phases": Phases()})


def reexported_program(ctx: ActionContext, graph_hash: str) -> Any:
    """The program of graph.json's graph, exported again in this process (for a compile whose program was not
    stored, or was evicted), checked to be the same graph. A model exporting to another graph (its sources
    are unchanged, or ninja would have run the export) is remembered in the cache: its next export stores the
    program, and this build fails once, saying so."""
    as_export = _as_export(ctx)
    traced = tracing.trace(as_export, references=False)
    if traced.graph_hash != graph_hash:
        ctx.store.put_action(key_of(EXPORTS_DIFFER, source_key(as_export)),
                             {"graph_hashes": [graph_hash, traced.graph_hash]})
        # Nothing the export reads changed, so ninja would not run it again: without its graph.json it does.
        (ctx.target_dir / GRAPH).unlink(missing_ok=True)
        raise ActionError(ctx.label, "compile", "exported again to compile it (its program is not in the cache: "
                          "large weights are not stored), the model gave another graph than its export did: its weights or "
                          "constants differ between runs (initialised without a seed, or computed by math whose "
                          "last bits differ between CPUs). aotbuild stores this model's program from now on.\n"
                          "  fix: run `aotbuild build` again; to keep its artifacts cacheable, seed its "
                          "initialisation or load its weights from a `weights:` file")
    return traced.program


def reexported_reference(ctx: ActionContext, graph_hash: str) -> bytes:
    """The reference outputs of graph.json's graph (torch.save bytes), exported and stored again."""
    _, result = export_program(_as_export(ctx))
    if result["graph_hash"] != graph_hash:
        raise InfraError(f"{ctx.label}: the reference outputs are missing from the cache and the model no longer "
                         "exports to the same graph; run `aotbuild build` again")
    data = ctx.store.get_bytes(result["reference"])
    if data is None:
        raise InfraError(f"{ctx.label}: the reference outputs were removed from the cache {ctx.store.root} while "
                         "this build was using them (by `aotbuild cache gc` or another process deleting files "
                         "there); run `aotbuild build` again")
    return data
