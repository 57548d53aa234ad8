"""How an export fails, in words a user can act on: model code torch.export cannot trace, outputs it cannot
flatten, and an eager reference run that fails on a case the export never traced."""

from __future__ import annotations

import re
from typing import Any


def eager(model: Any, case: Any, spec: dict[str, Any]) -> Any:
    """The model's eager outputs on one case (in eval(), under no_grad): the reference the artifact must match.
    torch.export traced the example only, so a model can export and still fail here on another case."""
    from aotbuild.actions.locate import location
    from aotbuild.errors import StepError

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


def export_error(spec: dict[str, Any], e: Exception) -> Exception:
    """Untraceable model code is the user's to fix (exit 2, with advice); anything else is a failed action."""
    import torch
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

    from aotbuild.actions.locate import location
    from aotbuild.errors import ActionError, TargetError, UserError

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
