"""The canonical graph hash (equal exactly when two programs compute the same thing), split in structure and weights."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

PIECE_BYTES = 16 << 20  # the most bytes copied at once for a non-contiguous or non-CPU tensor


def _pieces(t: torch.Tensor) -> Iterator[torch.Tensor]:
    """Contiguous CPU pieces of `t` in row-major order; a copied one holds at most PIECE_BYTES (or one row)."""
    if t.is_contiguous() and not t.is_conj() and not t.is_neg() and t.device.type == "cpu":
        yield t
    elif t.numel() * t.element_size() <= PIECE_BYTES:
        yield t.resolve_conj().resolve_neg().contiguous().cpu()
    else:
        rows = PIECE_BYTES // (t[0].numel() * t.element_size())
        if rows == 0:  # one row is bigger than a piece: split each row in turn
            parts = [t[i] for i in range(t.shape[0])]
        else:
            parts = [t[start:start + rows] for start in range(0, t.shape[0], rows)]
        for part in parts:
            yield from _pieces(part)


def _update_with_tensor(h: "hashlib._Hash", name: str, t: torch.Tensor) -> None:
    """dtype, shape and values in row-major order: a view and a contiguous copy of it hash alike."""
    t = t.detach()
    if t.is_quantized:  # scale and zero point live beside the int values: their bytes alone would miss a change
        raise TypeError(f"graph hash: {name} is a quantized tensor ({t.dtype}), which the graph hash cannot "
                        "describe by its values; quantize with torch.ao's PT2E flow, which keeps plain tensors")
    if t.layout != torch.strided:
        t = t.to_dense()
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
    for piece in _pieces(t):
        # A 1-D uint8 view of the piece's own bytes; numpy exposes them to hashlib without a copy. as_strided,
        # not reshape: a contiguous tensor whose dims are all 1 may carry any stride, which view() refuses.
        flat = piece.as_strided((piece.numel(),), (1,))
        h.update(flat.view(torch.uint8).numpy())


@dataclass(frozen=True)
class Hashes:
    """`structure`: all that decides the generated code (graph, names, dtypes, shapes, strides, storage sharing);
    `weights`: the tensor values; `graph`: both, the hash that names what the program computes."""

    structure: str
    weights: str

    @property
    def graph(self) -> str:
        return hashlib.sha256(f"structure={self.structure}\nweights={self.weights}\n".encode()).hexdigest()


def _update_with_layout(h: "hashlib._Hash", name: str, t: torch.Tensor, storages: dict[tuple[int, int], str]) -> None:
    """How `t` lies in memory: AOTInductor serializes whole storages and bakes strides and offsets into the code."""
    if t.layout != torch.strided:  # sparse: no storage of its own (its values are hashed dense)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|{t.layout}|{t.device}\n".encode())
        return
    storage = t.untyped_storage()
    # Ties (one storage under two names) change the code; an empty storage ties to nothing.
    tied = storages.setdefault((storage.data_ptr(), storage.nbytes()), name) if storage.nbytes() else name
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|{t.stride()}|{t.storage_offset()}|{storage.nbytes()}"
             f"|{t.device}|{tied}\n".encode())


def hashes(ep: torch.export.ExportedProgram) -> Hashes:
    """Never str(ep), which embeds absolute source paths and stack traces. One pass over the tensor bytes."""
    h, values = hashlib.sha256(), hashlib.sha256()
    h.update(f"torch={torch.__version__}\n".encode())
    # Every GraphModule, not just the top one: torch.cond / while_loop branches live in child modules.
    for name, module in sorted(ep.graph_module.named_modules(), key=lambda item: item[0]):
        if isinstance(module, torch.fx.GraphModule):
            h.update(f"module {name}\n{module.code}\n".encode())
    h.update(str(ep.graph_signature).encode())
    h.update(repr(sorted((str(k), str(v)) for k, v in ep.range_constraints.items())).encode())
    call = ep.module_call_graph[0].signature
    if call is not None:
        h.update(f"in={call.in_spec}\nout={call.out_spec}\n".encode())
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            val = node.meta.get("val")
            meta = (tuple(val.shape), val.dtype, val.stride(), str(val.device)) if isinstance(val, torch.Tensor) \
                else repr(val)
            h.update(f"{node.name}:{meta}\n".encode())
    storages: dict[tuple[int, int], str] = {}
    named = [(f"state:{k}", v) for k, v in sorted(ep.state_dict.items())]
    named += [(f"const:{k}", v) for k, v in sorted(ep.constants.items())]
    for name, value in named:
        if isinstance(value, torch.Tensor):
            _update_with_layout(h, name, value.detach(), storages)
            _update_with_tensor(values, name, value)
        else:
            h.update(f"{name}:{type(value).__qualname__}\n".encode())
    return Hashes(h.hexdigest(), values.hexdigest())


def graph_hash(ep: torch.export.ExportedProgram) -> str:
    return hashes(ep).graph
