"""Running the model code: build the model, torch.export it, run it eagerly on each case, hash the graph."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from aotbuild.actions import input_discovery
from aotbuild.actions.runtime import ActionContext, location
from aotbuild.errors import ActionError, StepError, TargetError, UserError


@dataclass
class Traced:
    """What one run of the model code gives (`outputs`: None when not asked for) and what the import read."""

    program: Any  # torch.export.ExportedProgram
    hashes: Any  # graph_hash.Hashes: structure, weights and the graph hash made of both
    cases: list[Any]
    outputs: list[Any] | None
    recorder: input_discovery.Recorder
    started_ns: int

    @property
    def graph_hash(self) -> str:
        return self.hashes.graph


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
        raise _export_error(spec, e) from e
    outputs = None
    if references:
        with torch.no_grad(), ctx.phases.phase("reference_outputs"):
            outputs = [_eager(model, c, spec) for c in cases]
    input_discovery.stop(recorder)
    with ctx.phases.phase("graph_hash"):
        digests = graph_hash.hashes(ep)
    return Traced(ep, digests, cases, outputs, recorder, started_ns)


def _eager(model: Any, case: Any, spec: dict[str, Any]) -> Any:
    """The model's eager outputs on one case: torch.export traced the example only, so this may still fail."""
    try:
        return model(*case.args, **case.kwargs)
    except Exception as e:
        detail = " ".join(str(e).split())[:600]
        raise StepError("eager reference run", location(spec, "inputs"),
                        f"the eager reference run on input case '{case.name}' raised {type(e).__name__}: {detail} "
                        "(torch.export had succeeded)",
                        "make the declared inputs valid for the model on every case (each dim at its min, "
                        "middle and max): bound ids with low/high, build masks with generator: module:callable "
                        "or value:, or narrow dims; or fix forward() for these inputs") from e


_UNKNOWN_OUTPUT = re.compile(r"Found <class '([\w.]+)'> in output, which is not a known type")


def _export_error(spec: dict[str, Any], e: Exception) -> Exception:
    """Untraceable model code is the user's to fix (exit 2, with advice); anything else is a failed action."""
    import torch
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

    text = f"{type(e).__name__}: {e}"
    unknown = _UNKNOWN_OUTPUT.search(str(e))  # first: a tracing error may carry it too
    if unknown:
        return TargetError(location(spec, "model"), f"forward() returns an object of type {unknown.group(1)}, which "
                           "torch.export cannot flatten into tensors (torch: \"register a pytree for it\")",
                           _output_fix(unknown.group(1)))
    if isinstance(e, (GuardOnDataDependentSymNode, torch._dynamo.exc.UserError, torch._dynamo.exc.Unsupported)):
        return UserError(f"torch.export rejected the model: {text}\n  fix: make forward() traceable: no Python "
                         "control flow on tensor values (use torch.cond or tensor ops), no unsupported constructs")
    return ActionError(spec["label"], "export", f"torch.export failed: {text}")


def _output_fix(type_name: str) -> str:
    """The likeliest fix first: a key/value cache is almost always an output the artifact should not return."""
    short = type_name.rpartition(".")[2]
    register = (f"register {short} as a pytree node with a serialized name (torch.export.register_dataclass, or "
                "torch.utils._pytree.register_pytree_node with serialized_type_name=...)")
    if "cache" in short.lower():
        return ("turn the cache output off with use_cache=False: declare it as a forward() argument, "
                "inputs: {use_cache: {value: false, keyword: true}}, or set it in the model's config through "
                f"kwargs (e.g. a factory argument setting config.use_cache = False); otherwise {register}")
    return f"return tensors (or tuples, lists and dicts of them) from forward(), or {register}"


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
