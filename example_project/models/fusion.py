"""A two-tower feature-fusion model: several inputs (one keyword-only, one
integer, one boolean) and several outputs (returned as a dict)."""

from typing import Dict

import torch
from torch import nn


class TwoTower(nn.Module):
    def __init__(
        self,
        vocab_size: int = 100,
        embed_dim: int = 16,
        dense_features: int = 8,
        hidden: int = 32,
        num_classes: int = 4,
    ) -> None:
        super().__init__()
        torch.manual_seed(0)
        # Token tower: embedding + masked mean pooling.
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.token_proj = nn.Linear(embed_dim, hidden)
        # Dense tower.
        self.dense = nn.Sequential(nn.Linear(dense_features, hidden), nn.ReLU())
        # Fusion head.
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(
        self,
        ids: torch.Tensor,       # (batch, seq) int64 token ids
        mask: torch.Tensor,      # (batch, seq) bool, True = real token
        dense: torch.Tensor,     # (batch, dense_features) float
        *,
        scale: torch.Tensor,     # (1,) float, keyword-only
    ) -> Dict[str, torch.Tensor]:
        emb = self.embed(ids) * mask.unsqueeze(-1).to(torch.float32)
        count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(torch.float32)
        tokens = self.token_proj(emb.sum(dim=1) / count)
        fused = torch.cat([tokens, self.dense(dense)], dim=-1)
        logits = self.head(fused) * scale
        return {"logits": logits, "embedding": fused}
