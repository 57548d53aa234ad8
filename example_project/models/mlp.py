"""A small MLP built from the Residual block in models/layers.py."""

import torch
from torch import nn

from models.layers import Residual


class MLP(nn.Module):
    def __init__(
        self,
        in_features: int = 64,
        hidden: int = 128,
        out_features: int = 10,
        depth: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)  # deterministic init: same weights every build
        self.inp = nn.Linear(in_features, hidden)
        self.blocks = nn.Sequential(*[Residual(hidden) for _ in range(depth)])
        self.head = nn.Linear(hidden, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.inp(x)))
