"""The differential fuzzer's workspace: tiny models that read every kind of input aotbuild must track.

Every target's graph depends on a helper module and a module that may or may not exist (an optional import),
as a constant baked into the exported graph; besides: //m:a on a weights file behind a symlink, //m:b on a
declared data file and a declared environment variable, //m:d on a file read without a declaration (found by
the audit hook), //m:e on a module found through PYTHONPATH. Four targets only: the clean build that each
step is compared with exports all of them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MODEL = '''import json
import os
import shutil
from pathlib import Path

import torch

from m import helper

try:
    from m.opt_override import SCALE
except ImportError:
    SCALE = 1


class Tiny(torch.nn.Module):
    def __init__(self, n: int = 4, config: str = "", env_var: bool = False, external: bool = False) -> None:
        super().__init__()
        torch.manual_seed(n)
        self.lin = torch.nn.Linear(n, n)
        self.c = float(helper.K * SCALE)
        if config:
            self.c += json.loads((Path(__file__).parent / config).read_text())["c"]
        if env_var:
            self.c += float(os.environ.get("FUZZ_SCALE", "0"))
        if external:
            import extmod

            self.c += extmod.E

    def forward(self, x):
        return self.lin(x) + self.c
'''

BUILD = """targets:
  a: {model: m.tiny:Tiny, weights: w.pt, inputs: {x: {shape: [2, 4], dtype: float32}}}
  b: {model: m.tiny:Tiny, kwargs: {n: 3, config: config.json, env_var: true}, data: [m/config.json],
      env: [FUZZ_SCALE], inputs: {x: {shape: [2, 3], dtype: float32}}}
  d: {model: m.tiny:Tiny, kwargs: {n: 2, config: other.json}, inputs: {x: {shape: [2, 2], dtype: float32}}}
  e: {model: m.tiny:Tiny, kwargs: {n: 3, external: true}, inputs: {x: {shape: [2, 3], dtype: float32}}}
"""
EXTRA_TARGET = "  f: {model: m.tiny:Tiny, kwargs: {n: 5}, inputs: {x: {shape: [1, 5], dtype: float32}}}\n"
P2_BUILD = "targets:\n  g: {model: m.tiny:Tiny, kwargs: {n: 2}, inputs: {x: {shape: [3, 2], dtype: float32}}}\n"


def write_weights(directory: Path, count: int) -> list[Path]:
    """`count` different state dicts for the weights target (Tiny(4)), saved once and reused."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        torch.manual_seed(100 + i)
        lin = torch.nn.Linear(4, 4)
        path = directory / f"v{i}.pt"
        torch.save({f"lin.{k}": v for k, v in lin.state_dict().items()}, path)
        paths.append(path)
    return paths


def make(ws: Path, weights: list[Path], external: Path) -> None:
    """The initial workspace at `ws` (the weights file a symlink to one of `weights`, copied into
    ws/weights/), and PYTHONPATH's module in `external`."""
    (ws / "m").mkdir(parents=True)
    (ws / "weights").mkdir()
    for w in weights:
        shutil.copy2(w, ws / "weights" / w.name)
    (ws / "WORKSPACE.aot.yaml").write_text("")
    (ws / "m" / "__init__.py").write_text("")
    (ws / "m" / "helper.py").write_text("K = 1\n")
    (ws / "m" / "tiny.py").write_text(MODEL)
    (ws / "m" / "BUILD.aot.yaml").write_text(BUILD)
    (ws / "m" / "config.json").write_text('{"c": 1}\n')
    (ws / "m" / "other.json").write_text('{"c": 2}\n')
    os.symlink(f"../weights/{weights[0].name}", ws / "m" / "w.pt")
    external.mkdir(parents=True, exist_ok=True)
    (external / "extmod.py").write_text("E = 1\n")
