"""reference_io.pt: each case's flat inputs and eager outputs, for C++ (torch::pickle_load); README, Deploying."""

from __future__ import annotations

import io
from typing import Any

from aotbuild.rules.export import REFERENCE_IO

FILE = REFERENCE_IO  # declared by the export kind, whose by-product it is
FORMAT = "aotbuild-reference-io/1"


def encode(label: str, references: list[dict[str, Any]]) -> bytes:
    """The file's bytes for the export's cases: {name, args, kwargs, outputs (flat), paths (their key paths)}.
    Inputs are the tensor leaves of (args, kwargs), in the order the .so takes them; tensors contiguous, on CPU."""
    import torch
    from torch.utils import _pytree as pytree

    def tensors(leaves: list[Any]) -> list[torch.Tensor]:
        # Non-tensor leaves are constants torch.export baked into the graph: the artifact takes tensors only.
        return [t.detach().cpu().contiguous() for t in leaves if isinstance(t, torch.Tensor)]

    cases = [{"name": ref["name"], "inputs": tensors(pytree.tree_leaves((ref["args"], ref["kwargs"]))),
              "outputs": tensors(ref["outputs"]),
              "output_paths": [p or "output" for p in ref["paths"]]}
             for ref in references]
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "label": label, "cases": cases}, buffer)
    return buffer.getvalue()
