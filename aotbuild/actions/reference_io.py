"""reference_io.pt: each case's flat inputs and eager outputs, in a file C++ can read (torch::pickle_load).

reference.json points at a pickle of pytrees (args, kwargs, outputs of any registered type) that only Python
can open. Deployed code calls the artifact with flat tensor lists, so this file holds exactly that:

    {"format": "aotbuild-reference-io/1", "label": str,
     "cases": [{"name": str, "inputs": [Tensor, ...], "outputs": [Tensor, ...], "output_paths": [str, ...]}]}

`inputs` are the tensor leaves of (args, kwargs) in the order the .so and AOTIModelPackageLoader::run take
them (non-tensor arguments are constants of the graph, not inputs),
`outputs` the leaves of the eager result in the order they return them; tensors are contiguous and on CPU.
Written with torch.save (zip format), so Python reads it with torch.load(weights_only=True) and C++ with
torch::pickle_load. Stored in the CAS by the export action and copied next to the artifacts.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from aotbuild.fsutil import write_if_changed
from aotbuild.rules.export import REFERENCE_IO

FILE = REFERENCE_IO  # declared by the export kind, whose by-product it is
FORMAT = "aotbuild-reference-io/1"


def encode(label: str, references: list[dict[str, Any]]) -> bytes:
    """The file's bytes for export's reference cases: {name, args, kwargs, outputs} each, where outputs is
    the model's output tree, or a flat list of tensors with their key paths in `paths`."""
    import torch
    from torch.utils import _pytree as pytree

    def tensors(leaves: list[Any]) -> list[torch.Tensor]:
        # Non-tensor leaves are constants torch.export baked into the graph: the artifact takes tensors only.
        return [t.detach().cpu().contiguous() for t in leaves if isinstance(t, torch.Tensor)]

    cases = []
    for ref in references:
        if "paths" in ref:  # outputs already flat, with their key paths beside them
            leaves, paths = list(ref["outputs"]), list(ref["paths"])
        else:
            flat, _ = pytree.tree_flatten_with_path(ref["outputs"])
            leaves, paths = [leaf for _, leaf in flat], [pytree.keystr(p) for p, _ in flat]
        cases.append({"name": ref["name"], "inputs": tensors(pytree.tree_leaves((ref["args"], ref["kwargs"]))),
                      "outputs": tensors(leaves),
                      "output_paths": [p or "output" for p, leaf in zip(paths, leaves) if isinstance(leaf, torch.Tensor)]})
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "label": label, "cases": cases}, buffer)
    return buffer.getvalue()


def materialize(data: bytes, target_dir: Path, durable: bool = True) -> None:
    """Place the file beside the artifacts (rewritten only when its bytes change, like reference.json)."""
    write_if_changed(target_dir / FILE, data, durable)


def load(path: Path) -> dict[str, Any]:
    """Read the file back in Python (tensors and plain containers only: no code runs)."""
    import torch

    return torch.load(path, weights_only=True)
