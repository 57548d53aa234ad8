"""Exporting again what the cache does not hold: a program not stored (large weights) or evicted, a reference
evicted. Cheaper than failing: the model is unchanged (ninja would have re-run the export otherwise), and
the graph hash proves it.
"""

from __future__ import annotations

from typing import Any

from aotbuild.actions import tracing
from aotbuild.actions.export import export_program
from aotbuild.actions.runtime import ActionContext
from aotbuild.errors import InfraError
from aotbuild.rules.export import KIND as EXPORT


def _as_export(ctx: ActionContext) -> ActionContext:
    return ActionContext(**{**ctx.__dict__, "spec": ctx.read_json(EXPORT.spec_file), "action": EXPORT.name})


def reexported_program(ctx: ActionContext, graph_hash: str) -> Any:
    """The program of graph.json's graph, exported again in this process (for a compile whose program was not
    stored, or was evicted), checked to be the same graph."""
    traced = tracing.trace(_as_export(ctx), references=False)
    if traced.graph_hash != graph_hash:
        raise InfraError(f"{ctx.label}: the model no longer exports to the graph graph.json names (edited during "
                         "the build?); run `aotbuild build` again")
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
