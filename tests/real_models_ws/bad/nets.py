"""Models that must fail at build time, each with an error that names what to fix."""

from dataclasses import dataclass

import torch


class TwoInputs(torch.nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x * mask


class OneInput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


class ReturnsNone(torch.nn.Module):
    def forward(self, x: torch.Tensor):
        return x + 1, None


class ReturnsInt(torch.nn.Module):
    def forward(self, x: torch.Tensor):
        return x + 1, 7


@dataclass
class Unnamed:
    out: torch.Tensor


torch.export.register_dataclass(Unnamed)  # no serialized_type_name: torch.export.save cannot write it


class ReturnsUnnamed(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Unnamed:
        return Unnamed(x + 1)
