"""The export kind: model code -> exported program in the cache + graph.json (restat prunes unchanged graphs)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aotbuild import layout
from aotbuild.rules import CacheRef, Kind

if TYPE_CHECKING:
    from aotbuild.workspace.schema import Target

SPEC = "export.json"
GRAPH = "graph.json"
# Eager outputs for verification (a pickle in the cache), and the same cases as flat tensors for C++ consumers.
REFERENCE = "reference.json"
REFERENCE_IO = "reference_io.pt"
# The depfile's dependencies again, one a line, relative to aot-out/: ninja reads and removes the depfile, and the
# no-op stamp (engine/noop_stamp.py) learns what an export depends on from here, never from ninja's deps log.
DISCOVERED = "graph.deps"


def export_spec(target: Target) -> dict[str, Any]:
    """export.json: everything that determines the exported program (and nothing that only affects compiling)."""
    from aotbuild.workspace.target import input_json

    inputs: Any = target.inputs if isinstance(target.inputs, str) else [input_json(s) for s in target.inputs]
    spec = {"label": str(target.label), "where": target.where(),  # file and line, for the action's errors; never keyed
            "model": target.model, "kwargs": target.kwargs, "weights": target.weights, "seed": target.seed,
            "inputs": inputs,  # declared inputs (workspace.target.input_json), or "module:callable"
            "device": target.device, "dims": [asdict(d) for d in target.dims]}
    # data (workspace-relative files and globs it reads besides its modules) and env (environment variables it
    # reads) are left out when empty: the spec (and so the action-cache key) of a target that declares neither
    # stays what it was before these fields existed.
    spec.update((name, list(value)) for name, value in (("data", target.data), ("env", target.env)) if value)
    return spec


# Every file the action reads is an input: compile.json too (compile.SPEC, spelled here: compile imports this
# module), for the options checked before exporting. The weights, data and modules it reads are named in its
# depfile through content stamps (planning/input_stamps.py): ninja's mtimes alone miss an edit that leaves a
# file older than the last build.
# The actions that always run on this machine (an export imports the model, a verify loads the artifacts). 0: no
# limit but -j. A build with an executor sets -j to the cluster's slots, and this depth to this machine's cores + 2
# (ninja's own default -j) in pools.ninja, so a large cluster never means that many model imports here at once.
LOCAL_POOL = ("aot_local_pool", 0)
KIND = Kind(
    name="export", spec=export_spec, spec_file=SPEC, goal=GRAPH,
    inputs=(SPEC,), implicit=(layout.TOOLCHAIN_FILE, "compile.json"),
    by_products=(REFERENCE, REFERENCE_IO), ran="exported", hit="action-cache hit", cost=2,
    discovered=DISCOVERED,  # every workspace .py the model imported (and the stamps of what else it read)
    pools=(LOCAL_POOL,), pool=LOCAL_POOL[0],
    cache_refs=(CacheRef(GRAPH, "program", "cas"), CacheRef(REFERENCE, "reference", "cas")),
)
