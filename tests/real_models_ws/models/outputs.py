"""The model's own output type, registered as a pytree node here and imported only by models/net.py."""

from dataclasses import dataclass

import torch


@dataclass
class Result:
    logits: torch.Tensor
    hidden: torch.Tensor


# Serialized under a fixed name, as exported programs need (transformers does the same for ModelOutput).
torch.export.register_dataclass(Result, serialized_type_name="models.outputs.Result")
