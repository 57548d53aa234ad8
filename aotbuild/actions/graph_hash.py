"""The canonical graph hash: equal exactly when two exported programs compute the same thing.

str(ep) embeds absolute source paths and stack traces, so it is never hashed; the graph code, signature,
ranges, tree specs, placeholder metadata and the raw bytes of every parameter, buffer and constant are.
"""

from __future__ import annotations

import hashlib

import torch


def _tensor_bytes(h: "hashlib._Hash", name: str, t: torch.Tensor) -> None:
    # clone() gives a tensor that owns exactly its elements, so the storage bytes are the values, nothing more.
    t = t.detach().cpu().contiguous().clone()
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
    h.update(bytes(t.untyped_storage()))


def graph_hash(ep: torch.export.ExportedProgram) -> str:
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
        _tensor_bytes(h, f"state:{name}", tensor)
    for name, value in sorted(ep.constants.items()):
        if isinstance(value, torch.Tensor):
            _tensor_bytes(h, f"const:{name}", value)
        else:
            h.update(f"const:{name}:{type(value).__qualname__}\n".encode())
    return h.hexdigest()
