"""`aotbuild bench`'s timing process: each target's .pt2, .so and eager model on the same inputs, a JSON line each."""

from __future__ import annotations

import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted samples."""
    return samples[min(len(samples) - 1, int(round(fraction * (len(samples) - 1))))]


def _measure(fn: Callable[[], Any], warmup: int, repeats: int, sync: Callable[[], Any] = lambda: None
             ) -> dict[str, float]:
    """`sync` waits for the device to finish what `fn` queued (CUDA runs asynchronously)."""
    for _ in range(warmup):
        fn()
        sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        sync()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    median = statistics.median(samples)
    p10, p90 = _percentile(samples, 0.1), _percentile(samples, 0.9)
    # How far the middle 80% of calls stray from the median, relative to it: wide on a busy machine.
    spread = (p90 - p10) / median if median > 0 else 0.0
    return {"median_ms": median, "p10_ms": p10, "p90_ms": p90, "min_ms": samples[0], "spread": spread}


def bench(label: str, root: Path, warmup: int, repeats: int) -> dict[str, Any]:
    import torch

    from aotbuild.actions import example_inputs, model_loader
    from aotbuild.actions.verify import so_runner
    from aotbuild.deploy.loader import load, locate
    from aotbuild.rules.export import SPEC as EXPORT_SPEC

    files = locate(label, root)
    spec = json.loads((files.dir / EXPORT_SPEC).read_text())
    device = spec["device"]
    pt2 = load(label, root)  # digest, host and required imports checked, as a deployment loads it
    so = so_runner(files.check_digest("so"), device)
    model = model_loader.build_model(spec, root, device)
    case = example_inputs.cases(spec, device)[0]
    flat = case.flat_tensors()  # non-tensor arguments are baked into the artifact
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    calls = {"eager": lambda: model(*case.args, **case.kwargs), "pt2": lambda: pt2(*case.args, **case.kwargs),
             "so": lambda: so.run(flat)}
    with torch.inference_mode():
        results = {name: _measure(call, warmup, repeats, sync) for name, call in calls.items()}
    return {"label": label, "device": device, "threads": torch.get_num_threads(), "warmup": warmup,
            "repeats": repeats, "inputs": [list(t.shape) for t in flat], **results}


def main(argv: list[str]) -> int:
    """argv: workspace root, warm-up calls, timed calls, then the labels to time."""
    root, warmup, repeats, labels = Path(argv[0]), int(argv[1]), int(argv[2]), argv[3:]
    for label in labels:
        try:
            line = bench(label, root, warmup, repeats)
        except Exception as e:  # noqa: BLE001 - reported as this target's failure; the others are still timed
            traceback.print_exc()
            text = str(e).strip()
            line = {"label": label, "error": f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
