"""A single transformer encoder block with hand-written multi-head attention.

Example inputs come from a callable (`inputs: models.encoder:example_inputs`)
instead of a per-input spec.
"""

import math

import torch
from torch import nn


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        assert d_model % num_heads == 0
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        # (b, s, d) -> (b, heads, s, head_dim)
        q = q.reshape(b, s, self.num_heads, self.head_dim).transpose(1, 2)
        k = k.reshape(b, s, self.num_heads, self.head_dim).transpose(1, 2)
        v = v.reshape(b, s, self.num_heads, self.head_dim).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        attn = torch.softmax(scores, dim=-1)
        ctx = (attn @ v).transpose(1, 2).reshape(b, s, d)
        return self.out(ctx)


class EncoderBlock(nn.Module):
    """Pre-norm block: x + MHSA(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, d_model: int = 32, num_heads: int = 4, ff_dim: int = 64) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadSelfAttention(d_model, num_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_dim), nn.GELU(), nn.Linear(ff_dim, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ff(self.norm2(x))


def build_encoder(d_model: int = 32, num_heads: int = 4, ff_dim: int = 64) -> nn.Module:
    """Factory function (a plain function rather than a class)."""
    torch.manual_seed(0)
    return EncoderBlock(d_model, num_heads, ff_dim)


def example_inputs():
    """Return (args, kwargs) for EncoderBlock.forward: a (batch=2, seq=16, d_model=32) tensor."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 32, generator=g)
    return (x,), {}
