"""First-call and steady-state latency of built artifacts from C++ (examples/cpp) and from Python (aotbuild.load).

    .venv/bin/python bench/deploy_latency.py --workspace example_project [--label //models:mlp ...]
                                             [--runs 5] [--repeats 200] [--json deploy-latency.json]

The workspace must be built (`aotbuild build`). Each run is a fresh process per language, on the target's
example inputs (reference_io.pt), so every run pays loading again:
  process_s   wall time of the whole process, spawn to exit (C++: link libtorch, load, first call, steady calls,
              check; Python: start the interpreter, import torch, the same)
  load_ms     C++: construct AOTIModelPackageLoader; Python: aotbuild.load (digest and host checks, then the
              same loader), and for comparison torch._inductor.aoti_load_package (python-inductor rows)
  first_ms    the first call after loading (median over runs, and the best run)
  median/p90  of `repeats` further calls
Python's import of torch is reported apart (import_ms). Medians over `runs` processes are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from aotbuild import loader  # noqa: E402

PY = sys.executable

# Runs in a fresh interpreter: the steps a Python deployment takes, timed one by one. argv[5] picks the loader:
# "aotbuild" (aotbuild.load) or "inductor" (torch._inductor.aoti_load_package, torch's own Python path).
PYTHON_PROBE = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
if sys.argv[5] == "aotbuild":
    import aotbuild
    model = aotbuild.load(sys.argv[1], workspace=sys.argv[2])
else:
    import torch._inductor
    model = torch._inductor.aoti_load_package(sys.argv[6])
t2 = time.perf_counter()
inputs = torch.load(sys.argv[3], weights_only=True)["cases"][0]["inputs"]
with torch.inference_mode():
    t3 = time.perf_counter()
    model(*inputs)
    t4 = time.perf_counter()
    samples = []
    for _ in range(int(sys.argv[4])):
        s = time.perf_counter()
        model(*inputs)
        samples.append((time.perf_counter() - s) * 1e3)
samples.sort()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "load_ms": (t2 - t1) * 1e3, "first_call_ms": (t4 - t3) * 1e3,
                  "median_ms": statistics.median(samples), "threads": torch.get_num_threads(),
                  "p90_ms": samples[min(len(samples) - 1, round(0.9 * (len(samples) - 1)))]}))
"""
LANGS = ("cpp", "python", "python-inductor")


def build_cpp(build_dir: Path) -> Path:
    prefix = subprocess.run([PY, "-c", "import torch.utils; print(torch.utils.cmake_prefix_path)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["cmake", "-S", str(REPO / "examples" / "cpp"), "-B", str(build_dir),
                    f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build_dir)], check=True, capture_output=True)
    return build_dir / "aot_run"


def timed_process(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return wall, proc.stdout


def cpp_run(binary: Path, files: loader.TargetFiles, repeats: int) -> dict[str, float]:
    wall, out = timed_process([str(binary), "--pt2", str(files.pt2), "--reference", str(files.reference_io),
                               "--case", "example", "--bench", str(repeats)])
    record = next(json.loads(line) for line in out.splitlines() if line.startswith('{"bench": "pt2"'))
    return {"process_s": wall, **{k: record[k] for k in ("load_ms", "first_call_ms", "median_ms", "p90_ms", "threads")}}


def python_run(files: loader.TargetFiles, repeats: int, how: str) -> dict[str, float]:
    wall, out = timed_process([PY, "-c", PYTHON_PROBE, str(files.label), str(files.root), str(files.reference_io),
                               str(repeats), how, str(files.pt2)])
    return {"process_s": wall, **json.loads(out.splitlines()[-1])}


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    # The first call is one sample per process, so a busy machine moves it most: keep the best one too.
    return {**{k: statistics.median(r[k] for r in runs) for k in runs[0]},
            "first_call_min_ms": min(r["first_call_ms"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=REPO / "example_project")
    parser.add_argument("--label", action="append", dest="labels")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--cpp-build", type=Path, help="examples/cpp build dir (default: a temporary one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    labels = args.labels or ["//models:mlp", "//vision:classifier"]
    with tempfile.TemporaryDirectory() as tmp:
        binary = build_cpp(args.cpp_build or Path(tmp) / "cpp")
        results = []
        for label in labels:
            files = loader.locate(label, workspace=args.workspace)
            files.check_digest("pt2")
            # Alternate languages so a burst of load from other processes hits both alike.
            runs: dict[str, list[dict[str, float]]] = {lang: [] for lang in LANGS}
            for _ in range(args.runs):
                runs["cpp"].append(cpp_run(binary, files, args.repeats))
                runs["python"].append(python_run(files, args.repeats, "aotbuild"))
                runs["python-inductor"].append(python_run(files, args.repeats, "inductor"))
            results.append({"label": label, **{lang: medians(r) for lang, r in runs.items()},
                            "inputs": _shapes(files)})
    machine = {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
               "torch": files.manifest["torch"], "runs": args.runs, "repeats": args.repeats}
    print(f"{machine}\n")
    print(f"{'target':22} {'consumer':16} {'process s':>9} {'import ms':>9} {'load ms':>8} "
          f"{'first ms':>9} {'(best)':>8} {'median ms':>9} {'p90 ms':>8}")
    for r in results:
        for lang in LANGS:
            m = r[lang]
            print(f"{r['label']:22} {lang:16} {m['process_s']:9.2f} {m.get('import_ms', 0):9.0f} "
                  f"{m['load_ms']:8.1f} "
                  f"{m['first_call_ms']:9.2f} {m['first_call_min_ms']:8.2f} {m['median_ms']:9.4f} {m['p90_ms']:8.4f}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")


def _shapes(files: loader.TargetFiles) -> list[list[int]]:
    import torch

    return [list(t.shape) for t in torch.load(files.reference_io, weights_only=True)["cases"][0]["inputs"]]


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
