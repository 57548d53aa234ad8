"""Real-size models in plain torch, random weights, no downloads: a GPT-2-shaped decoder and a Llama-style one.

Copied into the benchmark's workspace as models/real.py by bench/real_size.py; each factory takes its sizes
as keyword arguments (the target's `kwargs`), so one file holds every size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Gpt2Block(nn.Module):
    def __init__(self, d: int, heads: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d, dtype=dtype), nn.LayerNorm(d, dtype=dtype)
        self.qkv, self.proj = nn.Linear(d, 3 * d, dtype=dtype), nn.Linear(d, d, dtype=dtype)
        self.up, self.down = nn.Linear(d, 4 * d, dtype=dtype), nn.Linear(4 * d, d, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    """GPT-2's layout: learned positions, pre-norm blocks, an output head tied to the token embedding."""

    def __init__(self, layers: int, d: int, heads: int, vocab: int = 50257, context: int = 1024,
                 dtype: str = "float32") -> None:
        super().__init__()
        dt = getattr(torch, dtype)
        self.wte, self.wpe = nn.Embedding(vocab, d, dtype=dt), nn.Embedding(context, d, dtype=dt)
        self.blocks = nn.ModuleList(Gpt2Block(d, heads, dt) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, dtype=dt)
        self.head = nn.Linear(d, vocab, bias=False, dtype=dt)
        self.head.weight = self.wte.weight  # tied, as in GPT-2: one storage under two names

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1], device=tokens.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


class RmsNorm(nn.Module):
    def __init__(self, d: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype) * self.weight


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-b, a), dim=-1) * sin


class LlamaBlock(nn.Module):
    def __init__(self, d: int, heads: int, kv_heads: int, ffn: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, d // heads
        self.norm1, self.norm2 = RmsNorm(d, dtype), RmsNorm(d, dtype)
        self.q = nn.Linear(d, d, bias=False, dtype=dtype)
        self.kv = nn.Linear(d, 2 * kv_heads * self.hd, bias=False, dtype=dtype)
        self.o = nn.Linear(d, d, bias=False, dtype=dtype)
        self.gate_up = nn.Linear(d, 2 * ffn, bias=False, dtype=dtype)
        self.down = nn.Linear(ffn, d, bias=False, dtype=dtype)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.norm1(x)
        q = self.q(h).view(b, t, self.heads, self.hd).transpose(1, 2)
        k, v = self.kv(h).view(b, t, 2 * self.kv_heads, self.hd).transpose(1, 2).chunk(2, dim=1)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o(y.transpose(1, 2).reshape(b, t, d))
        gate, up = self.gate_up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class Llama(nn.Module):
    """A Llama-style decoder: RMSNorm, rotary positions (a constant table, not a weight), grouped-query
    attention, SwiGLU, an untied output head."""

    def __init__(self, layers: int, d: int, heads: int, kv_heads: int, ffn: int, vocab: int = 32000,
                 context: int = 2048, dtype: str = "bfloat16") -> None:
        super().__init__()
        dt = getattr(torch, dtype)
        self.embed = nn.Embedding(vocab, d, dtype=dt)
        self.blocks = nn.ModuleList(LlamaBlock(d, heads, kv_heads, ffn, dt) for _ in range(layers))
        self.norm = RmsNorm(d, dt)
        self.head = nn.Linear(d, vocab, bias=False, dtype=dt)
        hd = d // heads
        freqs = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        angles = torch.outer(torch.arange(context).float(), freqs).repeat(1, 2)
        self.register_buffer("cos", angles.cos().to(dt), persistent=False)
        self.register_buffer("sin", angles.sin().to(dt), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        x = self.embed(tokens)
        cos, sin = self.cos[:t], self.sin[:t]
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.head(self.norm(x))


def gpt2(**kwargs) -> Gpt2:
    torch.manual_seed(0)
    return Gpt2(**kwargs).eval()


def llama(**kwargs) -> Llama:
    torch.manual_seed(0)
    return Llama(**kwargs).eval()
