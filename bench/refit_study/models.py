"""Study models. make(name, seed) -> (module in eval mode, example args, dynamic_shapes or None)."""
import math
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

# The Llama is the one bench/refit.py builds through aotbuild, from the workspace that holds it.
sys.path.insert(0, str(Path(__file__).resolve().parent / "llama_ws"))
from m.llama import Llama  # noqa: E402


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 32)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class Scalars(nn.Module):
    """0-d and 1-element buffers/constants: are their values inlined into the generated code?"""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.register_buffer("scale", torch.tensor(2.0))  # 0-d persistent buffer
        self.register_buffer("shift", torch.tensor([0.5]))  # 1-element buffer
        self.temp = torch.tensor(3.0)  # 0-d lifted tensor constant

    def forward(self, x):
        return self.fc(x) * self.scale + self.shift - self.temp


class Tied(nn.Module):
    """Embedding and output projection share one parameter (tied weights)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.out = nn.Linear(16, 100, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, tok):
        return self.out(torch.tanh(self.emb(tok)))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x).relu()


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


class Block(nn.Module):
    """Tiny transformer block: attention + layernorm, a causal-mask buffer, and a lifted tensor constant."""

    def __init__(self, d=32, heads=4, seq=16):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, 4 * d)
        self.ff2 = nn.Linear(4 * d, d)
        self.register_buffer("mask", torch.tril(torch.ones(seq, seq, dtype=torch.bool)))
        self.register_buffer("pos", torch.randn(seq, d), persistent=False)  # a non-persistent buffer
        self.scale_vec = torch.linspace(0.5, 1.5, d)  # plain tensor attribute -> lifted tensor constant

    def forward(self, x):
        B, T, D = x.shape
        x = x + self.pos[:T]
        h = self.ln1(x)
        q, k, v = self.qkv(h).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D // self.heads)
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.proj(y) * self.scale_vec
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))


def make(name, seed):
    torch.manual_seed(1234)  # the architecture's own constants (pos, scale_vec) stay fixed ...
    dyn = None
    if name in ("mlp", "mlp_dyn"):
        m, args = MLP(), (torch.randn(4, 64),)
        if name == "mlp_dyn":
            dyn = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    elif name == "scalars":
        m, args = Scalars(), (torch.randn(4, 16),)
    elif name == "tied":
        m, args = Tied(), (torch.randint(0, 100, (2, 8)),)
    elif name == "tiny":
        m, args = Tiny(), (torch.randn(3, 4),)
    elif name == "cnn":
        m, args = CNN(), (torch.randn(2, 3, 16, 16),)
    elif name == "block":
        m, args = Block(), (torch.randn(2, 16, 32),)
    elif name == "llama":
        m, args = Llama(), (torch.randint(0, 8192, (1, 64)),)
    else:
        raise ValueError(name)
    # ... while every entry of the state dict (params and persistent buffers) depends on the seed.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, t in m.state_dict().items():
            if t.dtype.is_floating_point:
                if k.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.1)
        if name == "scalars":
            m.temp.copy_(torch.rand((), generator=g) + 1.0)
        if name == "block":  # the non-persistent buffer and the lifted constant vary too (are they in the blob?)
            m.pos.copy_(torch.randn(m.pos.shape, generator=g))
            m.scale_vec.copy_(torch.rand(m.scale_vec.shape, generator=g) + 0.5)
    return m.eval(), args, dyn
