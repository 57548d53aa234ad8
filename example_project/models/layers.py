"""Reusable building blocks shared by several example models.

mlp.py imports this module (and vision/classifier.py imports it across
packages), so a change here should invalidate the targets that use it.
"""

import torch
from torch import nn


class ScaledSiLU(nn.Module):
    """SiLU with a fixed output scale (a tiny custom activation)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.silu(x) * self.scale


class Residual(nn.Module):
    """x + Linear(act(LayerNorm(x))), a pre-norm residual block."""

    def __init__(self, dim: int, scale: float = 1.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.act = ScaledSiLU(scale)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(self.act(self.norm(x)))


class ConvBNAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> ReLU, 'same' padding."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
        )
