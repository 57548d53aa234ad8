"""A target compiled for a portable CPU level: no instructions beyond the level, a key without this machine's CPU."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aotbuild import cpu_levels

from .conftest import aotbuild, write

pytestmark = [pytest.mark.torch,
              pytest.mark.skipif("x86-64-v3" not in cpu_levels.host_levels(), reason="needs an x86-64-v3 CPU"),
              pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils)")]

# Vectorizable elementwise work after the matmul: inductor writes it with its vector ISA's intrinsics.
MODEL = """import torch


class Gated(torch.nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        torch.manual_seed(n)
        self.lin = torch.nn.Linear(n, n)

    def forward(self, x):
        return (self.lin(x).relu() * x.sigmoid()).sum(-1)
"""
TARGET = "{{model: m.gated:Gated, kwargs: {{n: 64}}, {extra}inputs: {{x: {{shape: [16, 64], dtype: float32}}}}}}"
BUILD = f"targets:\n  native: {TARGET.format(extra='')}\n  portable: {TARGET.format(extra='cpu_isa: x86-64-v3, ')}\n"
# AVX-512: its registers (zmm, and ymm16-31 / xmm16-31 that only EVEX reaches) or its mask registers.
AVX512 = re.compile(r"%zmm\d|%[xy]mm(1[6-9]|2\d|3[01])\b|%k[1-7]\b")


def _instructions(so: Path) -> str:
    return subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(so)], capture_output=True, text=True,
                          check=True).stdout


def test_a_portable_target_has_no_instructions_beyond_its_level_and_is_keyed_without_this_cpu(
        tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write(ws / "WORKSPACE.aot.yaml", "")
    write(ws / "m" / "__init__.py", "")
    write(ws / "m" / "gated.py", MODEL)
    write(ws / "m" / "BUILD.aot.yaml", BUILD)
    env = {"AOTBUILD_CACHE_DIR": str(tmp_path / "cache")}
    run = aotbuild(["build", "//...", "-j", "2"], ws, env)
    assert run.code == 0, run.output
    out = ws / "aot-out" / "m"
    portable = _instructions(out / "@portable" / "portable.so")
    assert not AVX512.search(portable) and "%ymm" in portable  # vectorized, with AVX2 at most
    if "avx512f" in cpu_levels.cpu_flags().split():  # the control: this CPU's native code does use AVX-512
        assert AVX512.search(_instructions(out / "@native" / "native.so"))
    manifest = json.loads((out / "@portable" / "manifest.json").read_text())
    assert manifest["cpu_isa"] == "portable:x86-64-v3" and manifest["options"]["cpp.march"] == "x86-64-v3"
    assert json.loads((out / "@native" / "manifest.json").read_text())["cpu_isa"].startswith("x86_64:")

    # A machine keyed for another CPU (declared) shares the portable artifact.
    fresh = tmp_path / "fresh"
    shutil.copytree(ws, fresh, ignore=shutil.ignore_patterns("aot-out"))
    other_cpu = {**env, "AOTBUILD_CPU_ISA": "x86_64:another-cpu"}
    run = aotbuild(["build", "//m:portable"], fresh, other_cpu)
    assert run.code == 0 and run.report["targets"]["//m:portable"] == "artifact-cache hit", run.output
    assert (fresh / "aot-out" / "m" / "@portable" / "portable.so").read_bytes() == \
        (out / "@portable" / "portable.so").read_bytes()
    assert aotbuild(["test", "//m:portable"], fresh, env).code == 0
