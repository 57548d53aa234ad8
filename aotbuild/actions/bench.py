"""Latency of one target's artifacts against eager PyTorch on the same inputs (median and p90 of repeated calls).

Run by `aotbuild bench` one target at a time, never under ninja: timings need the machine to themselves.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _measure(fn: Callable[[], Any], warmup: int, repeats: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    p90 = samples[min(len(samples) - 1, int(round(0.9 * (len(samples) - 1))))]
    return {"median_ms": statistics.median(samples), "p90_ms": p90, "min_ms": samples[0]}


def bench(target_dir: Path, root: Path, warmup: int, repeats: int) -> dict[str, Any]:
    import torch

    from aotbuild.actions import example_inputs, model_loader
    from aotbuild.actions.interface import import_required
    from aotbuild.actions.verify import so_runner
    from aotbuild.rules.compile import MANIFEST
    from aotbuild.rules.export import SPEC as EXPORT_SPEC

    spec = json.loads((target_dir / EXPORT_SPEC).read_text())
    manifest = json.loads((target_dir / MANIFEST).read_text())
    device = spec["device"]
    model = model_loader.build_model(spec, root, device)
    case = example_inputs.cases(spec, device)[0]
    import_required(manifest.get("requires_imports", []), root, spec["label"])
    pt2 = torch._inductor.aoti_load_package(str(target_dir / manifest["artifacts"]["pt2"]["file"]))
    so = so_runner(target_dir / manifest["artifacts"]["so"]["file"], device)
    flat = case.flat_tensors()  # non-tensor arguments are baked into the artifact
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def timed(call: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            call()
            sync()
        return run

    with torch.inference_mode():
        results = {
            "eager": _measure(timed(lambda: model(*case.args, **case.kwargs)), warmup, repeats),
            "pt2": _measure(timed(lambda: pt2(*case.args, **case.kwargs)), warmup, repeats),
            "so": _measure(timed(lambda: so.run(flat)), warmup, repeats),
        }
    return {"label": spec["label"], "device": device, "threads": torch.get_num_threads(), "warmup": warmup,
            "repeats": repeats, "inputs": [list(t.shape) for t in flat], **results}


if __name__ == "__main__":
    target, root, warmup, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(bench(Path(target), Path(root), warmup, repeats)))
