"""Refit: a structure's compiled model re-packaged with other weights, without a C++ compile (docs/refit.md)."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from aotbuild.actions import elf_blob, pt2_member
from aotbuild.actions.program_blob import program_tensors
from aotbuild.actions.runtime import ActionContext
from aotbuild.cache import payloads

KIND = "refit"  # the action-cache kind of a refit record, stored under the structure key
SMALL_BLOB = 1024  # inductor spells a blob this small byte by byte in weights.S, named by its content
LARGE_BLOB = 2_000_000_000  # past this inductor links mutable constants otherwise (untested here)
ALIGN = 64  # inductor's ALIGN_BYTES between constants in the blob (CPU)
# The inductor settings (values allowed) under which the .so holds every weight as its bytes, in one blob:
# any other value (frozen, prepacked, mmapped, on disk, C++ only, folded at run time) compiles in full.
SAFE = {"freezing": (False,), "always_keep_tensor_constants": (True,),
        "aot_inductor.package_constants_in_so": (True,), "aot_inductor.package_constants_on_disk_format": (None,),
        "aot_inductor.force_mmap_weights": (False,), "aot_inductor.package_cpp_only": (None, False),
        "aot_inductor.use_consts_asm_build": (True,), "aot_inductor.use_runtime_constant_folding": (False,)}


class Unsafe(Exception):
    """Why these artifacts cannot be re-packaged with these weights: the compile runs in full instead."""


class Damaged(Unsafe):
    """A refit record or base artifact that does not match itself: a bad cache entry, never used."""


def refusal(device: str, config: dict[str, Any]) -> str | None:
    """Why a target compiled for `device` with inductor `config` (its effective settings) is never re-packaged."""
    if device != "cpu":
        return f"device {device}: refit is checked on CPU builds only"
    bad = [f"{k}={config.get(k)!r}" for k, allowed in SAFE.items() if config.get(k) not in allowed]
    return f"inductor options {', '.join(bad)}" if bad else None


def missing(config: dict[str, Any]) -> str | None:
    """What this torch lacks that a CPU refit needs (effective inductor `config`); None where it has it all."""
    import torch

    if "always_keep_tensor_constants" not in config:
        return "the inductor option always_keep_tensor_constants"
    if not hasattr(getattr(torch._C._aoti, "AOTIModelContainerRunnerCpu", None), "extract_constants_map"):
        return "AOTIModelContainerRunnerCpu.extract_constants_map"
    return None


def _compact(t: Any) -> bool:
    """Whether `t`'s storage holds exactly its values in order: what inductor copies is the whole storage."""
    import torch

    return (t.device.type == "cpu" and t.layout == torch.strided and not t.is_quantized and t.is_contiguous()
            and not t.is_conj() and not t.is_neg() and t.storage_offset() == 0
            and t.untyped_storage().nbytes() == t.numel() * t.element_size())


def _raw(t: Any) -> memoryview:
    """The bytes inductor puts in the blob for a compact tensor, without a copy."""
    import torch

    return memoryview(t.detach().reshape(-1).view(torch.uint8).numpy()) if t.numel() else memoryview(b"")


def _serialize(table: list[dict[str, Any]], tensors: dict[str, Any], size: int) -> bytearray:
    """The blob for `tensors` laid out as `table` says. Inductor packs the constants in order, each at the next
    multiple of ALIGN (the gaps zero): a table that is not so packed, or names a row after another program
    tensor than its own, is damaged."""
    blob, end = bytearray(size), 0
    for row in sorted(table, key=lambda r: r["offset"]):
        t = tensors.get(row["source"])
        if t is None or not _compact(t):
            raise Unsafe(f"tensor {row['source']} is missing or not a compact CPU tensor")
        raw = _raw(t)
        if len(raw) != row["size"] or row["offset"] != end or row["name"] in tensors and row["source"] != row["name"]:
            raise Damaged(f"constant {row['name']} ({row['source']}, {len(raw)} bytes) is not where the table "
                          f"puts it ({row['size']} bytes at {row['offset']}; {end} expected)")
        blob[end:end + row["size"]] = raw
        end += -(-row["size"] // ALIGN) * ALIGN
    if end != size:
        raise Damaged(f"the table covers {end} bytes of a {size}-byte blob")
    return blob


def _digest(name: str, t: Any) -> str:
    from aotbuild.actions.graph_hash import _update_with_tensor

    h = hashlib.sha256()
    _update_with_tensor(h, name, t)
    return h.hexdigest()


def _fixed(program: Any, tensors: dict[str, Any], table: list[dict[str, Any]]) -> dict[str, str]:
    """Digests of the tensors outside the blob that the code may hold as literals: used by the graph, and not
    sharing a storage with a tensor inside (a tied weight is in the blob once, under the other name)."""
    import torch

    sig = program.graph_signature
    by_input = {**sig.inputs_to_parameters, **sig.inputs_to_buffers, **sig.inputs_to_lifted_tensor_constants}
    used = {by_input[n.name] for n in program.graph.nodes if n.op == "placeholder" and n.name in by_input and n.users}
    inside = {tensors[r["source"]].untyped_storage().data_ptr() for r in table if r["size"]}
    sources = {r["source"] for r in table}
    return {name: _digest(name, t) for name, t in sorted(tensors.items()) if name in used and name not in sources
            and not (t.layout == torch.strided and t.untyped_storage().nbytes()
                     and t.untyped_storage().data_ptr() in inside)}


def _runner_table(so: Path) -> list[tuple[str, int, int]]:
    """(name, offset, size) of each constant as the loaded library sees it: the CPU runner copies the blob into
    one allocation, so where a constant's storage starts in it is its offset in the blob."""
    import torch

    runner = torch._C._aoti.AOTIModelContainerRunnerCpu(str(so), 1)
    spans = {name: (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
             for name, t in runner.extract_constants_map(False).items() if t.untyped_storage().nbytes()}
    base = min((start for start, _ in spans.values()), default=0)
    return sorted(((name, start - base, size) for name, (start, size) in spans.items()), key=lambda r: r[1])


def _sources(table: list[tuple[str, int, int]], tensors: dict[str, Any], blob: memoryview) -> list[dict[str, Any]]:
    """Each table row with the program tensor it holds: by name, or (inductor renames lifted constants
    `_tensor_constant<n>`) the one other compact tensor with exactly its bytes."""
    named = {name for name, _, _ in table if name in tensors}
    others = {k: t for k, t in tensors.items() if k not in named and _compact(t)}
    rows = []
    for name, offset, size in table:
        source = name
        if name not in tensors:
            found = [k for k, t in others.items() if len(_raw(t)) == size and _raw(t) == blob[offset:offset + size]]
            if len(found) != 1:
                raise Unsafe(f"constant {name} matches {len(found)} tensors of the program by its bytes")
            source = found[0]
        rows.append({"name": name, "source": source, "offset": offset, "size": size})
    return rows


def repackage(record: dict[str, Any], tensors: dict[str, Any], so: bytes,
              pt2: bytes) -> tuple[bytearray, bytearray]:
    """The base artifacts `so` and `pt2` with `tensors` (a program's, by name) in the blob, the build-id and the
    package redone: byte for byte what compiling that program in the same staging dir gives. The record is of
    the program's structure, so the same tensors are used and fixed. Unsafe (or Damaged) where unsure."""
    data, blob = bytearray(so), record["blob"]
    try:
        where, build_id = elf_blob.constants_range(data), elf_blob.build_id_range(data)
    except ValueError as e:
        raise Damaged(f"model library: {e}") from e
    start, size = blob["offset"], blob["size"]
    if where != (start, size) or hashlib.sha256(memoryview(data)[start:start + size]).hexdigest() != blob["sha256"]:
        raise Damaged(f"the base library's constants are not the recorded {size} bytes at {start}")
    if build_id is None or build_id[1] != 20 or elf_blob.ld_build_id(data) != data[build_id[0]:build_id[0] + 20]:
        raise Damaged("the base library's build-id is not ld's sha1 of its contents")
    changed = [f["name"] for f in record["fixed"]
               if f["name"] not in tensors or _digest(f["name"], tensors[f["name"]]) != f["sha256"]]
    if changed:
        raise Unsafe(f"values compiled into the code changed: {', '.join(changed)[:200]}")
    data[start:start + size] = _serialize(record["table"], tensors, size)
    data[build_id[0]:build_id[0] + 20] = elf_blob.ld_build_id(data)
    try:
        return data, pt2_member.replace_member(pt2, record["library"], so, data)
    except ValueError as e:
        raise Damaged(f"package: {e}") from e


def derive(program: Any, so: Path, pt2: Path, library: str) -> dict[str, Any]:
    """The refit record of a library just compiled from `program`: its blob, constants table and fixed values,
    proven by re-packaging the program's own weights into the same two artifacts, byte for byte."""
    data = so.read_bytes()
    try:
        start, size = elf_blob.constants_range(data)
    except ValueError as e:
        raise Unsafe(f"model library: {e}") from e
    if not SMALL_BLOB < size <= LARGE_BLOB:
        raise Unsafe(f"a constants blob of {size} bytes (refit takes {SMALL_BLOB + 1} to {LARGE_BLOB})")
    tensors = program_tensors(program)
    table = _sources(_runner_table(so), tensors, memoryview(data)[start:start + size])
    record = {"library": library, "table": table, "fixed": [],
              "blob": {"offset": start, "size": size, "sha256": hashlib.sha256(data[start:start + size]).hexdigest()}}
    record["fixed"] = [{"name": k, "sha256": v} for k, v in _fixed(program, tensors, table).items()]
    base = pt2.read_bytes()
    if repackage(record, tensors, data, base) != (data, base):
        raise Unsafe("re-packaging the program's own weights does not give back the compiled artifacts")
    return record


def recorded(ctx: ActionContext, shape: str) -> bool:
    """Without torch: whether a CPU target's structure `shape` has a refit record (it may then re-package)."""
    return ctx.spec["device"] == "cpu" and payloads.checked(ctx.store, shape, KIND) is not None


def repackaged(ctx: ActionContext, shape: str, config: dict[str, Any],
               tensors: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """A compile entry for the program whose `tensors` are given, re-packaged from the refit record stored under
    `shape`, or None: no record, or not safe (said in the log; a record that does not match its artifacts also
    in the build summary)."""
    import torch

    record = None if refusal(ctx.spec["device"], config) else payloads.checked(ctx.store, shape, KIND)
    paths = [ctx.store.blob_path(record[kind]["sha256"]) for kind in ("so", "pt2")] if record else [None]
    if record is None or None in paths:
        return None
    weights = tensors()
    try:
        with ctx.phases.phase("repackage"):
            so, pt2 = repackage(record, weights, paths[0].read_bytes(), paths[1].read_bytes())
    except Unsafe as e:
        if isinstance(e, Damaged):
            payloads.warn(ctx.store, shape, KIND, str(e))
        print(f"refit: not re-packaged ({e}); compiling in full", flush=True)
        return None
    entry: dict[str, Any] = {"torch": torch.__version__, "so_needs_kernel_files": []}
    # Side by side: each is a model's size, and writing new files into the page cache is what takes the time.
    with ctx.phases.phase("store"), ThreadPoolExecutor(max_workers=2) as pool:
        for kind, data, digest in zip(("pt2", "so"), (pt2, so), pool.map(ctx.store.put_bytes, (pt2, so))):
            entry[kind] = {"sha256": digest, "size": len(data)}
    entry["blobs"] = [entry["pt2"]["sha256"], entry["so"]["sha256"]]
    return entry


def remember(ctx: ActionContext, shape: str, graph: dict[str, Any], program: Any, entry: dict[str, Any],
             stage: Path, library: str, config: dict[str, Any]) -> None:
    """After a full compile: store the refit record that lets other weights of this structure re-package."""
    lacking = missing(config) if ctx.spec["device"] == "cpu" else None
    if lacking is not None:  # once in the build summary (its warnings are kept without repeats), not per target
        import torch

        warning = f"torch {torch.__version__} lacks {lacking}: new weights compile in full (no refit)"
        if warning not in ctx.store.warnings:
            ctx.store.warnings.append(warning)
    why = lacking or refusal(ctx.spec["device"], config)
    if why is None:
        try:
            with ctx.phases.phase("refit_record"):
                record = derive(program, stage / "model.so", stage / "model.pt2", library)
        except (Unsafe, RuntimeError) as e:  # the record is optional: the runtime refusing it costs only refit
            why = f"{type(e).__name__}: {e}" if isinstance(e, RuntimeError) else str(e)
        else:
            ctx.store.put_action(shape, {**record, "graph_hash": graph["graph_hash"], "so": entry["so"],
                                         "pt2": entry["pt2"], "blobs": entry["blobs"]})
            return
    print(f"refit: other weights of {ctx.label} will compile in full: {why}", flush=True)

