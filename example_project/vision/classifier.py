"""A tiny 28x28 grayscale image classifier.

Its weights are loaded by aotbuild from vision/classifier_weights.pt
(the target's `weights:` field); the factory's own init is only a placeholder.
Uses ConvBNAct from models/layers.py (a cross-package dependency).
"""

import torch
from torch import nn

from models.layers import ConvBNAct


class TinyClassifier(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            ConvBNAct(1, width),          # 28x28
            nn.MaxPool2d(2),              # 14x14
            ConvBNAct(width, 2 * width),
            nn.MaxPool2d(2),              # 7x7
        )
        self.head = nn.Linear(2 * width * 7 * 7, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(image), 1))
