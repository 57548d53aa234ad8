"""What a cache hit's trust checks cost per target: schema, dependency files, program archive, package members.

    .venv/bin/python bench/trust_checks.py [--runs 1000]

Exports the example project's //models:mlp_dynamic program once (torch.export.save, as the export action
does), then times each check on it and on payloads of the shapes the actions write. No build, no cache.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from aotbuild.actions import trust  # noqa: E402
from aotbuild.cache import archives, payloads  # noqa: E402

EXAMPLE = REPO / "example_project"
DEPS = {"files": ["models/__init__.py", "models/layers.py", "models/mlp.py"], "packages": ["numpy", "sympy", "torch"]}


def _program(path: Path) -> None:
    import torch

    sys.path.insert(0, str(EXAMPLE))
    from models.mlp import MLP

    model = MLP(in_features=64, hidden=64, out_features=10, depth=1).eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(model, (torch.randn(8, 64),), dynamic_shapes=({0: batch},))
    buffer = io.BytesIO()
    torch.export.save(ep, buffer)
    path.write_bytes(buffer.getvalue())


def _entry() -> dict:
    h = ["a" * 64, "b" * 64, "c" * 64]
    tree = {"type": "builtins.tuple", "context": None, "children": [{"leaf": 0}]}
    interface = {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 64], "keyword": False}],
                 "outputs": [{"name": "output", "path": "", "dtype": "float32", "shape": ["batch", 10]}],
                 "dims": {"batch": {"min": 1, "max": 64, "example": 8}}, "in_spec": tree, "out_spec": {"leaf": 0},
                 "requires_imports": []}
    return {"graph_hash": "d" * 64, "structure_hash": "e" * 64, "weights_digest": "f" * 64, "program": h[0],
            "reference": h[1], "reference_io": h[2], "deps": DEPS,
            "cases": ["example"], "blobs": h, "interface": interface}


def _time(check: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(runs // 5):
            assert check() is None
        samples.append((time.perf_counter() - started) / (runs // 5))
    return statistics.median(samples) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=1000)
    args = p.parse_args()
    program = Path(tempfile.mkdtemp(prefix="aotbuild-bench-trust-")) / "program.pt2"
    _program(program)
    entry = _entry()
    rows = [("schema: export + export-deps entries", lambda: payloads.problem("export", entry)
             or payloads.problem("export-deps", {"lists": [DEPS]})),
            ("dependency files on disk (3 files)", lambda: trust.unsafe_deps(EXAMPLE, [DEPS])),
            (f"program archive ({program.stat().st_size} bytes)", lambda: archives.program_problem(program)),
            ("package members (the same zip)", lambda: archives.package_problem(program))]
    for name, check in rows:
        print(f"{name}: {_time(check, args.runs):.3f} ms per target")


if __name__ == "__main__":
    main()
