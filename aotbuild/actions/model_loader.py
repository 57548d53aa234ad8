"""Import a target's model factory from the workspace and build the module, weights included."""

from __future__ import annotations

import importlib
import pickle
import sys
import traceback
import zipfile
from pathlib import Path
from typing import Any

import torch

from aotbuild.errors import UserError


def _raised_at(e: BaseException) -> str:
    """The innermost frame of a traceback, as 'file:line': where in the user's module the import failed."""
    frames = traceback.extract_tb(e.__traceback__)
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def resolve_callable(ref: str, field: str, spec: dict[str, Any]) -> Any:
    """'pkg.module:attr.sub' -> the object; errors name the target (given its `spec`), field and module."""
    module_name, _, attr_path = ref.partition(":")
    target = f"target {spec['label']}, "
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise UserError(f"{target}{field}: cannot import module '{module_name}' (from '{ref}'): no such module "
                            f"under the workspace root") from e
        raise UserError(f"{target}{field}: importing module '{module_name}' failed: {e}") from e
    except Exception as e:  # noqa: BLE001 - the user's module raised while being imported: say which and where
        raise UserError(f"{target}{field}: importing module '{module_name}' (from '{ref}') raised "
                        f"{type(e).__name__}: {e}{_raised_at(e)}") from e
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise UserError(f"{field}: module '{module_name}' has no attribute '{attr_path}'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"{field}: '{ref}' is not callable")
    return obj


def load_weights(path: Path, name: str) -> Any:
    """A state_dict from .safetensors, or torch.load(weights_only=True), never advising to turn that off."""
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise UserError(f"weights: '{name}' is a .safetensors file, but the safetensors package is not "
                            "installed\n  fix: pip install 'aotbuild[safetensors]' (or safetensors)") from e
        return load_file(str(path), device="cpu")  # a plain tensor format: loading it runs no code

    try:
        # mmap: tensors read from the page cache as load_state_dict copies them, not into a second full copy of
        # the weights first. Only torch.save's zip format can be mapped; the legacy format is read as before.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        # torch's text suggests weights_only=False, i.e. running the file's code: never pass that on (from None).
        reason = next((line.strip() for line in str(e).splitlines() if "WeightsUnpickler error" in line),
                      "it holds objects other than tensors and plain containers")
        reason = reason.split(". Please")[0].rstrip(".")  # torch goes on to suggest allowlisting what it found
        raise UserError(f"weights: '{name}' was refused: {reason}. aotbuild loads weights as data only, so a "
                        "checkpoint can never run code on the build machine\n"
                        "  fix: save a plain state_dict: torch.save(model.state_dict(), path)") from None
    except (RuntimeError, OSError, EOFError) as e:
        raise UserError(f"weights: cannot read '{name}' as a torch.save file: {str(e).splitlines()[0]}") from None


def build_model(spec: dict[str, Any], root: Path, device: str) -> torch.nn.Module:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    factory = resolve_callable(spec["model"], "model", spec)
    try:
        model = factory(**spec["kwargs"])
    except Exception as e:
        raise UserError(f"model: factory '{spec['model']}' raised {type(e).__name__}: {e}") from e
    if not isinstance(model, torch.nn.Module):
        raise UserError(f"model: factory '{spec['model']}' returned {type(model).__name__}, not a torch.nn.Module")
    if spec["weights"]:
        path = (root / spec["weights"]).resolve()
        if not path.is_relative_to(root.resolve()):  # checked when planning too; a symlink may have moved since
            raise UserError(f"weights: '{spec['weights']}' resolves outside the workspace")
        # weights_only: a checkpoint is data, and must never run code on the build machine.
        state = load_weights(path, spec["weights"])
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise UserError(f"weights: '{spec['weights']}' does not fit the model: {e}") from e
    return model.eval().to(device)
