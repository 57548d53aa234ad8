"""The compile rule: graph.json + options -> .so/.pt2 artifacts and manifest.json, through the artifact cache."""

from __future__ import annotations

import os

from aotbuild import layout
from aotbuild.layout import TargetPaths
from aotbuild.ninja.graph import Edge, Rule
from aotbuild.workers.command import action_command
from aotbuild.workspace.schema import Target

NAME = "aot_compile"
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
POOLS = (POOL, GPU_POOL)


def rule(python: str) -> Rule:
    return Rule(NAME, action_command(python, "aotbuild.actions.compile", "$spec"), "compile $label", restat=True, pool=POOL[0])


def spec_files(target: Target) -> dict[str, dict]:
    return {TargetPaths(target.label).compile_spec: target.compile_spec()}


def edges(target: Target) -> list[Edge]:
    paths = TargetPaths(target.label)
    variables = (("spec", paths.compile_spec), ("label", str(target.label)))
    if target.device.startswith("cuda"):
        variables += (("pool", GPU_POOL[0]),)  # an edge's pool overrides its rule's
    # Every file the action reads is an input: export.json too (the spec a re-export of an evicted program
    # needs), or an edit to it alone would leave this edge, and the manifest it writes, stale.
    return [Edge(NAME, (paths.manifest,), (paths.graph, paths.compile_spec),
                 (layout.TOOLCHAIN_FILE, paths.export_spec), variables=variables)]


def goal(target: Target) -> str:
    return TargetPaths(target.label).manifest
