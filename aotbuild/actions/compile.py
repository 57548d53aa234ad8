"""The compile action: graph hash + toolchain + options -> cached .so/.pt2; on a miss re-packaged from the same
structure's compile with other weights (actions/refit.py), else compiled by AOTInductor."""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from aotbuild import __version__, cpu_levels
from aotbuild.actions import remote_export
from aotbuild.actions.elf_deps import SHARED_CXX_RUNTIMES, links_shared_cxx_runtime
from aotbuild.actions.runtime import ActionContext, location, run_action
from aotbuild.cache import archives, payloads
from aotbuild.errors import ActionError, TargetError
from aotbuild.executors import dispatch
from aotbuild.fsutil import CHUNK, atomic_symlink, link_or_copy, write_if_changed
from aotbuild.hashing import key_of, pretty_json
from aotbuild.layout import TargetPaths
from aotbuild.rules.compile import ARTIFACTS, MANIFEST, REPACKAGED
from aotbuild.rules.compile import KIND as COMPILE
from aotbuild.rules.export import GRAPH
from aotbuild.workspace.labels import parse_label

# Always on: weights inside the .so make it self-contained, and the lower bound check rejects batch 1 otherwise.
BASE_OPTIONS: dict[str, Any] = {"aot_inductor.package_constants_in_so": True}
# Small tensors stay in the constants blob instead of becoming literals in the code: other weights then re-package.
CPU_OPTIONS: dict[str, Any] = {"always_keep_tensor_constants": True}
DYNAMIC_OPTIONS: dict[str, Any] = {"aot_inductor.check_lowerbound": False}
# CUDA kernels go into the .so instead of separate .cubin files that it would load from the compile directory:
# without this the bare .so breaks once that directory is gone (torch versions that lack it: see manifest).
CUDA_OPTIONS: dict[str, Any] = {"aot_inductor.embed_kernel_binary": True}


def inductor_options(spec: dict[str, Any]) -> dict[str, Any]:
    device = CUDA_OPTIONS if spec["device"].startswith("cuda") else CPU_OPTIONS if spec["device"] == "cpu" else {}
    level = cpu_levels.spec_level(spec)  # a portable level's settings win over the target's own options
    portable = {} if level == cpu_levels.NATIVE else cpu_levels.inductor_options(level)
    return {**BASE_OPTIONS, **device, **(DYNAMIC_OPTIONS if spec["dynamic"] else {}), **spec["options"], **portable}


def _known_to(options: dict[str, Any]) -> dict[str, Any]:
    """Drop our own defaults this torch's inductor lacks (a user's options pass through, to fail loudly)."""
    from torch._inductor import config

    known, ours = config.get_config_copy(), {**CUDA_OPTIONS, **CPU_OPTIONS}
    return {k: v for k, v in options.items() if k in known or k not in ours or v != ours[k]}


def check_options(spec: dict[str, Any]) -> None:
    """Unknown keys (`aot_inductor.debug_compile`) and values of the wrong type raise a TargetError, with a fix."""
    options = spec["options"]
    portable = cpu_levels.spec_level(spec) != cpu_levels.NATIVE
    if not options and not portable:
        return
    import torch
    from torch._inductor import config

    known = config.get_config_copy()
    if portable and "cpp.march" not in known:
        raise TargetError(location(spec, "cpu_isa"), f"torch {torch.__version__}'s inductor cannot compile for "
                          "another CPU than this one (it has no cpp.march option)", "use a newer torch, or "
                          "remove cpu_isa")
    for key, value in options.items():
        where = location(spec, f"options.{key}")
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.7)
            group = key.rpartition(".")[0]
            fix = (f"did you mean '{close[0]}'?" if close else
                   f"see torch._inductor.config{' (group ' + group + ')' if group else ''} for the keys this torch has")
            raise TargetError(where, f"unknown inductor option '{key}' for torch {torch.__version__}", fix)
        default = known[key]
        # YAML gives bool/int/float/str/None; only a clear mismatch of a bool or number setting is reported.
        if isinstance(default, bool) and not isinstance(value, bool):
            raise TargetError(where, f"inductor option '{key}' takes true or false, found {value!r}",
                              f"write {key}: {str(bool(default)).lower()}")
        if (isinstance(default, (int, float)) and not isinstance(default, bool)
                and (isinstance(value, bool) or not isinstance(value, (int, float)))):
            raise TargetError(where, f"inductor option '{key}' takes a number, found {value!r}",
                              f"write {key}: {default!r}")


def check_cxx_runtime(so: Path, label: str, compiler: str | None) -> None:
    """Fail the compile, not the deployment: a .so with its own static libstdc++ segfaults once loaded beside
    torch's shared one (std::regex in the AOTI runtime mixes the two copies' locale facets)."""
    if not links_shared_cxx_runtime(so):
        cxx = os.environ.get("CXX", "g++")
        raise ActionError(label, "compile", f"the model library links no shared C++ runtime "
                          f"({' or '.join(SHARED_CXX_RUNTIMES)}): the compiler CXX={cxx} ({compiler}) links "
                          "libstdc++ statically (a wrapper adding -static-libstdc++?), and such a library crashes "
                          "when loaded into a process that uses torch\n  fix: point CXX (and CC) at a plain "
                          "compiler, e.g. CXX=/usr/bin/g++ CC=/usr/bin/gcc, and build again")


def _key(ctx: ActionContext, kind: str, hashed: dict[str, str]) -> str:
    toolchain = ctx.toolchain()
    isa = cpu_levels.artifact_isa(ctx.spec, toolchain)  # a portable level, not this machine's CPU
    value = {**hashed, "toolchain": {**toolchain["compile"], "cpu_isa": isa}, "device": ctx.spec["device"],
             "options": inductor_options(ctx.spec)}
    if ctx.spec["device"].startswith("cuda"):
        value["cuda"] = toolchain["cuda"]
    return key_of(kind, value)


def compile_key(ctx: ActionContext, graph: dict[str, Any]) -> str:
    """The artifacts: what the code computes, weights included."""
    return _key(ctx, "compile", {"graph": graph["graph_hash"]})


def structure_key(ctx: ActionContext, graph: dict[str, Any]) -> str:
    """The generated code, weights aside: keys the staging dir, the refit record and the lock of one compile."""
    return _key(ctx, "structure", {"structure": graph["structure_hash"]})


def compile_artifacts(ctx: ActionContext, graph: dict[str, Any], shape: str,
                      full: bool = True) -> tuple[dict[str, Any] | None, str]:
    """On a miss: re-package the structure's compiled code with these weights where its refit record allows, else
    AOTInductor in the structure key's fixed staging dir (so both give the same bytes); store .pt2 and .so.
    With `full` False, no compile: (None, ...) where it does not re-package (the executor sends it to a node)."""
    from aotbuild.actions import program_blob, refit
    from aotbuild.actions.staging import staging_dir

    if not full and not refit.recorded(ctx, shape):  # nothing to re-package: no torch, no staging
        return None, COMPILE.ran
    ctx.require_gpu(ctx.spec["device"])
    waiting = time.monotonic()
    with staging_dir(ctx.store.root, shape) as stage:  # waits while another build compiles the structure
        ctx.phases.add("staging", time.monotonic() - waiting)
        with ctx.phases.phase("import"):  # about 0 in a warm worker, which imported torch before forking
            import torch

            from aotbuild.actions import interface, isa_probe
            from aotbuild.actions.staging import BASE

            isa_probe.remember(BASE)  # before inductor's first ISA check (a no-op in a warm worker's child)

        ctx.check_toolchain(torch.__version__)
        check_options(ctx.spec)  # before loading: an unknown option fails in a second
        # torch.export.load rebuilds the input/output specs, so the modules registering their types come first.
        interface.import_required(graph["interface"]["requires_imports"], ctx.root, ctx.label)
        options = _known_to(inductor_options(ctx.spec))
        config = {**torch._inductor.config.get_config_copy(), **options}
        whole = functools.cache(lambda: program_blob.load(ctx, graph))  # an export again, where not stored: once
        entry = refit.repackaged(ctx, shape, config, lambda: program_blob.tensors(ctx, graph, whole))
        if entry is not None or not full:
            return entry, REPACKAGED
        if (lacks := cpu_levels.host_lacks(cpu_levels.spec_level(ctx.spec))) is not None:
            raise ActionError(ctx.label, COMPILE.name, f"{lacks}\n  fix: build it on a machine with that level")
        program = whole()
        library = _aoti_compile(ctx, program, options, stage)
        entry = {"torch": torch.__version__, "so_needs_kernel_files": _kernel_files(stage / "model.pt2")}
        for kind in ("pt2", "so"):
            path = stage / f"model.{kind}"
            entry[kind] = {"sha256": ctx.store.put_file(path), "size": path.stat().st_size}
        entry["blobs"] = [entry["pt2"]["sha256"], entry["so"]["sha256"]]
        refit.remember(ctx, shape, graph, program, entry, stage, library, config)
    return entry, COMPILE.ran


def _aoti_compile(ctx: ActionContext, program: Any, options: dict[str, Any], stage: Path) -> str:
    """AOTInductor into stage/model.pt2 (its stem becomes the archive's root folder, so it is fixed too), the
    library taken out as stage/model.so; returns the library's name in the package."""
    import torch

    pt2 = stage / "model.pt2"
    with contextlib.ExitStack() as backends, ctx.phases.phase("trace_and_package"):
        if ctx.spec["dynamic"]:
            # The conv backends torch.export traced with: else inductor's re-trace picks one by
            # `batch >= 16`, and that guard narrows the dim's range (torch 2.13).
            backends.enter_context(torch.backends.mkldnn.flags(enabled=False))
            backends.enter_context(torch.backends.nnpack.flags(enabled=False))
        torch._inductor.aoti_compile_and_package(program, package_path=str(pt2), inductor_configs=options)
    ctx.phases.split_inductor(torch, "trace_and_package")
    so = stage / "model.so"
    with zipfile.ZipFile(pt2) as package:
        libraries = [n for n in package.namelist() if n.endswith(".so") and "/data/aotinductor/" in n]
        if len(libraries) != 1:
            raise ActionError(ctx.label, "compile", f"expected one model library in the package, found {libraries}")
        with package.open(libraries[0]) as library, open(so, "wb") as out:
            shutil.copyfileobj(library, out, CHUNK)  # the library holds the weights: never whole in memory
    check_cxx_runtime(so, ctx.label, ctx.toolchain()["compile"]["cxx"])
    return libraries[0]


def _kernel_files(pt2: Path) -> list[str]:
    """What a bare .so needs beside it: CUDA kernels not embedded stay in the package only."""
    with zipfile.ZipFile(pt2) as package:
        return sorted(n.rsplit("/", 1)[-1] for n in package.namelist() if n.endswith((".cubin", ".fatbin")))


def compile_(ctx: ActionContext) -> str:
    graph = ctx.read_json(GRAPH)
    key = compile_key(ctx, graph)
    outcome = COMPILE.hit
    entry, blobs = _verified_entry(ctx, key)
    if entry is None:
        shape = structure_key(ctx, graph)
        # One compile per structure at a time: the targets sharing it wait, then re-package its code.
        with ctx.store.lock(shape):
            entry, blobs = _verified_entry(ctx, key)  # another build may have compiled it while we waited
            if entry is None:
                # A re-package here; a full compile here or on the build's executor cluster.
                entry, outcome = dispatch.compiled(ctx, graph, key, shape, compile_artifacts,
                                                   remote_export.compile_sources)
                ctx.store.put_action(key, entry)  # after the blobs it points at
                entry, blobs = _verified_entry(ctx, key)
                if entry is None:
                    raise ActionError(ctx.label, "compile",
                                      "the artifacts just stored are unreadable: check the cache disk")
    try:
        _materialize(ctx, graph, key, entry, blobs)
    except FileNotFoundError:
        # `cache gc` removed a blob between lookup and link: compile again, once.
        if outcome != COMPILE.hit:
            raise
        return compile_(ctx)
    return outcome


def from_cache(ctx: ActionContext) -> bool:
    """The hit path alone, without torch or lock (also run by engine/cache_hits.py); False on a miss."""
    graph = ctx.read_json(GRAPH)
    key = compile_key(ctx, graph)
    entry, blobs = _verified_entry(ctx, key)
    if entry is None:
        return False
    _materialize(ctx, graph, key, entry, blobs)
    return True


def _materialize(ctx: ActionContext, graph: dict[str, Any], key: str, entry: dict[str, Any],
                 blobs: dict[str, Path]) -> None:
    """Place the artifacts from their verified `blobs`, then the aliases, then (last) the manifest."""
    paths = TargetPaths(parse_label(ctx.label))
    artifacts = {}
    for kind in ARTIFACTS:
        digest = entry[kind]["sha256"]
        name = paths.versioned(digest, kind)
        dst = ctx.target_dir / name
        # Re-place unless it is the cache's own verified inode: a stale or damaged copy must not survive.
        if not (dst.exists() and os.path.samefile(dst, blobs[digest])):
            link_or_copy(blobs[digest], dst)  # a hard link from the cache, read-only like the blob
        atomic_symlink(ctx.target_dir / paths.alias(kind), name)  # readers see the old or the new one, never none
        # Names from the local plan, digest and size from the checked entry: a cached `file` never wins.
        artifacts[kind] = {"file": name, "alias": paths.alias(kind), "sha256": digest, "size": entry[kind]["size"]}
    current = {a["file"] for a in artifacts.values()}
    for old in ctx.target_dir.iterdir():  # earlier versions live on in the cache
        if old.name.startswith(f"{paths.label.name}-") and old.suffix.lstrip(".") in ARTIFACTS \
                and old.name not in current:
            old.unlink()
    toolchain = ctx.toolchain()
    # The interface first: the fields after it, naming what this is and what it runs on, come from the local
    # plan, never the cache.
    manifest = {
        **graph["interface"],
        "label": ctx.label, "graph_hash": graph["graph_hash"], "compile_key": key, "aotbuild": __version__,
        # The two halves of the graph hash, and the key of the compiled code other weights re-package from.
        "structure_hash": graph["structure_hash"], "weights_digest": graph["weights_digest"],
        "structure_key": structure_key(ctx, graph),
        "torch": toolchain["compile"]["torch"], "device": ctx.spec["device"],
        "cpu_isa": cpu_levels.artifact_isa(ctx.spec, toolchain), "compiler": toolchain["compile"]["cxx"],
        "gpu_arch": toolchain["cuda"]["gpu_arch"] if ctx.spec["device"].startswith("cuda") else None,
        "options": inductor_options(ctx.spec),
        # Empty: the bare .so is self-contained. Else the kernel files it loads from where it was compiled.
        "so_needs_kernel_files": entry["so_needs_kernel_files"],
        "artifacts": artifacts,
    }
    write_if_changed(ctx.target_dir / MANIFEST, pretty_json(manifest), ctx.durable)


def _verified_entry(ctx: ActionContext, key: str) -> tuple[dict[str, Any] | None, dict[str, Path]]:
    """The cached entry and its blobs (re-hashed); a bad blob, entry or package is a miss."""
    entry = payloads.checked(ctx.store, key, "compile")
    if entry is None:
        return None, {}
    blobs = {}
    for kind in ARTIFACTS:
        path = ctx.store.blob_path(entry[kind]["sha256"])
        if path is None:
            return None, {}
        blobs[entry[kind]["sha256"]] = path
    why = archives.package_problem(blobs[entry["pt2"]["sha256"]])
    if why is not None:  # torch's package loader would extract it as it is
        payloads.warn(ctx.store, key, "compile", f"pt2 cas/{entry['pt2']['sha256']}: {why}")
        return None, {}
    return entry, blobs


if __name__ == "__main__":
    run_action(COMPILE.name, compile_)
