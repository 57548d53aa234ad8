"""A small network returning a registered dataclass, like a library's ModelOutput."""

import torch

from models.outputs import Result


class DataclassNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(8, 6)
        self.head = torch.nn.Linear(6, 4)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> Result:
        hidden = torch.relu(self.proj(x)) * scale
        return Result(logits=self.head(hidden), hidden=hidden)
