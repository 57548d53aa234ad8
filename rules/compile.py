"""The compile kind: graph.json + options -> .so/.pt2 artifacts and manifest.json, through the artifact cache."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aotbuild import cpu_levels, layout
from aotbuild.rules import CacheRef, Kind, export

if TYPE_CHECKING:
    from aotbuild.workspace.schema import Target

SPEC = "compile.json"
MANIFEST = "manifest.json"
ARTIFACTS = ("so", "pt2")  # the extensions of what it places in the target dir: versioned files and aliases
REPACKAGED = "re-packaged"  # a miss served by another compile of the same structure, new weights put in its blob
GIB = 1 << 30
# A cold AOTInductor compile peaks around 2-3 GiB (the compiler plus torch); cap parallel compiles by memory.
COMPILE_MEMORY = 3 * GIB


def _pool_depth() -> int:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 8 * GIB
    return max(1, min(os.cpu_count() or 1, memory // COMPILE_MEMORY))


POOL = ("aot_compile_pool", _pool_depth())
# CUDA compiles also run kernels on the GPU (autotuning, benchmarking choices): few at a time share it well.
GPU_POOL = ("aot_gpu_compile_pool", 2)


def compile_spec(target: Target) -> dict[str, Any]:
    """compile.json: what the compile step needs besides the graph: device and inductor options."""
    spec = {"label": str(target.label), "where": target.where(), "device": target.device, "options": target.options,
            "dynamic": bool(target.dims)}
    if target.cpu_isa != cpu_levels.NATIVE:  # absent when native: the specs of existing targets stay as they are
        spec["cpu_isa"] = target.cpu_isa
    return spec


def _gpu_pool(target: Target) -> tuple[tuple[str, str], ...]:
    return (("pool", GPU_POOL[0]),) if target.device.startswith("cuda") else ()  # an edge's pool overrides


# Every file the action reads is an input: export.json too (the spec a re-export of an evicted program
# needs), or an edit to it alone would leave this edge, and the manifest it writes, stale.
KIND = Kind(
    name="compile", spec=compile_spec, spec_file=SPEC, goal=MANIFEST,
    inputs=(export.GRAPH, SPEC), implicit=(layout.TOOLCHAIN_FILE, export.SPEC),
    ran="compiled", also=(REPACKAGED,), hit="artifact-cache hit", cost=3, after=("export",),
    pools=(POOL, GPU_POOL), pool=POOL[0], extra_variables=_gpu_pool,
    cache_refs=(CacheRef(MANIFEST, "compile_key", "ac"), CacheRef(MANIFEST, "structure_key", "ac")),
)
