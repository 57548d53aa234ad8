"""The canonical graph hash: equal exactly when two exported programs compute the same thing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

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


def graph_hash(ep: torch.export.ExportedProgram) -> str:
    """Never str(ep), which embeds absolute source paths and stack traces."""
    h = hashlib.sha256()
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
    for name, tensor in sorted(ep.state_dict.items()):
        _update_with_tensor(h, f"state:{name}", tensor)
    for name, value in sorted(ep.constants.items()):
        if isinstance(value, torch.Tensor):
            _update_with_tensor(h, f"const:{name}", value)
        else:
            h.update(f"const:{name}:{type(value).__qualname__}\n".encode())
    return h.hexdigest()
