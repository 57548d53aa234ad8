"""Running the model code: build the model, torch.export it, run it eagerly on each case, hash the graph.

The export action (export.py) stores what this gives; a compile whose program was not stored exports again
through it (reexport.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aotbuild.actions import export_failures, input_discovery
from aotbuild.actions.runtime import ActionContext


@dataclass
class Traced:
    """What one run of the model code gives: the program, the eager outputs of each case (None when not asked
    for), and what the import read."""

    program: Any  # torch.export.ExportedProgram
    graph_hash: str
    cases: list[Any]
    outputs: list[Any] | None
    recorder: input_discovery.Recorder
    started_ns: int


def trace(ctx: ActionContext, references: bool = True) -> Traced:
    """Build the model, torch.export it, run it eagerly on each case (if `references`), hash the graph."""
    spec, device = ctx.spec, ctx.spec["device"]
    ctx.require_gpu(device)  # before importing torch: a skipped CUDA target costs nothing
    with ctx.phases.phase("import"):  # about 0 in a warm worker, which imported these before forking
        import torch

        from aotbuild.actions import example_inputs, graph_hash, model_loader, signature_check

    ctx.check_toolchain(torch.__version__)
    if references:  # not in a compile's process: inductor reads these flags when it generates code
        full_precision_on_gpu(torch, device)
    started_ns = time.time_ns()
    recorder = input_discovery.start(ctx.root, ctx.label, ctx.warn)
    with ctx.phases.phase("load_model"):
        model = model_loader.build_model(spec, ctx.root, device)
    signature_check.check_inputs(model.forward, spec)
    cases = example_inputs.cases(spec, device)
    try:
        with torch.no_grad(), ctx.phases.phase("export"):
            ep = torch.export.export(model, cases[0].args, cases[0].kwargs,
                                     dynamic_shapes=example_inputs.dynamic_shapes(spec))
    except Exception as e:
        raise export_failures.export_error(spec, e) from e
    outputs = None
    if references:
        with torch.no_grad(), ctx.phases.phase("reference_outputs"):
            outputs = [export_failures.eager(model, c, spec) for c in cases]
    input_discovery.stop(recorder)
    with ctx.phases.phase("graph_hash"):
        digest_of_graph = graph_hash.graph_hash(ep)
    return Traced(ep, digest_of_graph, cases, outputs, recorder, started_ns)


def weight_bytes(ep: Any) -> int:
    """Bytes of the program's weights and constants, each storage once (tied weights share one)."""
    import torch

    tensors = [t for t in [*ep.state_dict.values(), *ep.constants.values()] if isinstance(t, torch.Tensor)]
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


def full_precision_on_gpu(torch: Any, device: str) -> None:
    """TF32 off for this action process: eager references and verify runs then compute in true float32, so
    float32 tolerances stay meaningful (cuDNN convolutions default to TF32, about 1e-3 relative error)."""
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
