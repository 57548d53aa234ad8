"""The exported program a compile reads from the cache: checked, then loaded whole or, for a re-package, only its
tensors; exported again where it was not stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aotbuild.actions.runtime import ActionContext
from aotbuild.cache import archives
from aotbuild.errors import ActionError

MODEL = "model"  # the one program torch.export.save writes into an archive (archives._PROGRAM_MEMBERS)


def archive_path(ctx: ActionContext, graph: dict[str, Any]) -> Path | None:
    """graph.json's program archive, verified and checked to be in the one form torch runs no code from
    (graph.json may be edited by hand); None where none was stored or it was evicted."""
    path = ctx.store.blob_path(graph["program"]) if graph["program"] is not None else None
    why = archives.program_problem(path) if path is not None else None
    if why is not None:
        raise ActionError(ctx.label, "compile", f"refusing to load program cas/{graph['program']}: {why}\n"
                          "  fix: run `aotbuild clean` and build again")
    return path


def load(ctx: ActionContext, graph: dict[str, Any]) -> Any:
    """The whole exported program; exported again where its archive is not in the cache."""
    import torch

    path = archive_path(ctx, graph)
    if path is None:
        from aotbuild.actions.export import reexported_program

        with ctx.phases.phase("reexport"):
            return reexported_program(ctx, graph["graph_hash"])
    with ctx.phases.phase("load_program"):
        return torch.export.load(str(path))


def program_tensors(program: Any) -> dict[str, Any]:
    """Parameters, buffers and tensor constants by the names AOTInductor gives them (lifted ones aside)."""
    import torch

    return {**program.state_dict, **{k: v for k, v in program.constants.items() if isinstance(v, torch.Tensor)}}


def tensors(ctx: ActionContext, graph: dict[str, Any], whole: Callable[[], Any]) -> dict[str, Any]:
    """program_tensors of graph.json's program. Read from the archive with torch's own loaders, without
    deserializing the graph (most of a load), where this torch has them; else from `whole()`, the program."""
    path = archive_path(ctx, graph)
    if path is not None:
        with ctx.phases.phase("load_weights"):
            found = _archive_tensors(path)
        if found is not None:
            return found
    return program_tensors(whole())


def _archive_tensors(path: Path) -> dict[str, Any] | None:
    """What torch.export.load puts in `state_dict` and `constants`, views and ties kept; None where this torch
    reads archives otherwise (its private loaders moved)."""
    import torch

    try:
        from torch.export.pt2_archive._package import PT2ArchiveReader, _load_constants, _load_state_dict
    except ImportError:
        return None
    with PT2ArchiveReader(str(path)) as reader:
        state, constants = _load_state_dict(reader, MODEL), _load_constants(reader, MODEL)
    if not isinstance(state, dict) or not isinstance(constants, dict):
        return None  # a legacy layout: one pickled file
    return {**state, **{k: v for k, v in constants.items() if isinstance(v, torch.Tensor)}}
