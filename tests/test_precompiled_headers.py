"""The headers the warm worker precompiles are exactly the ones a compile asks inductor for: a CPU compile
after `build_cpu_headers` finds every header in inductor's own memo and precompiles none of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch

# A fresh interpreter that imports torch the way the warm worker does (through the staging link, headers
# under its $TMPDIR), builds the headers, then compiles a tiny model with the compile action's own options.
COMPILE_AFTER_PREWARM = r"""
import json, sys
from aotbuild.actions import isa_probe, precompiled_headers, staging
from aotbuild.actions.compile import inductor_options
with staging.torch_imported_through_link():
    pass
import torch
from torch._inductor import codecache
isa_probe.remember(staging.BASE)
built = precompiled_headers.build_cpu_headers()
before = codecache._precompile_header.cache_info()
program = torch.export.export(torch.nn.Linear(4, 2).eval(), (torch.randn(3, 4),))
options = inductor_options({"device": "cpu", "dynamic": False, "options": {}})
torch._inductor.aoti_compile_and_package(program, package_path=sys.argv[1], inductor_configs=options)
after = codecache._precompile_header.cache_info()
print(json.dumps({"built": built, "hits": after.hits - before.hits, "misses": after.misses - before.misses}))
"""


def test_a_compile_after_the_prewarm_precompiles_no_header_itself(tmp_path: Path) -> None:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    proc = subprocess.run([sys.executable, "-c", COMPILE_AFTER_PREWARM, str(tmp_path / "model.pt2")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["built"]) == 2 and all(Path(path).is_file() for path in result["built"])
    # Inductor memoizes _precompile_header by its exact arguments: a hit for each header means the compile
    # asked for what was prebuilt; a miss would mean it precompiled a header of its own.
    assert (result["hits"], result["misses"]) == (2, 0)
    assert (tmp_path / "model.pt2").is_file()
