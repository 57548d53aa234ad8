"""Benchmark aotbuild against the hand-written script and plain ninja; prints a table and writes JSON.

    .venv/bin/python bench/run.py [--quick] [--json bench-results.json]

Every scenario runs on this machine in this run, so ratios between rows are meaningful even on a noisy box.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.synthetic import generate  # noqa: E402

EXAMPLE = REPO / "example_project"
PY = sys.executable


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB, the largest single process in the tree) of one command."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    out = subprocess.run([PY, "-c", probe, *cmd], cwd=cwd, env={**os.environ, **env}, capture_output=True,
                         text=True, check=True).stdout.split()
    if out[2] != "0":
        raise SystemExit(f"benchmark command failed ({out[2]}): {' '.join(cmd)} in {cwd}")
    return float(out[0]), int(out[1]) // 1024


def median_of(n: int, cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    runs = [timed(cmd, cwd, env) for _ in range(n)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def aotbuild(*args: str) -> list[str]:
    return [PY, "-m", "aotbuild", *args]


def copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("aot-out", "__pycache__"))
    return dest


def ninja_goals(ws: Path) -> list[str]:
    from aotbuild.planning.plan_index import read_plan

    plan = read_plan(ws / "aot-out")
    assert plan is not None, f"no plan in {ws}"
    return [t["goals"]["compile"] for t in plan.targets.values()]


def example_scenarios(tmp: Path, rows: list[dict], repeats: int, baseline: bool) -> None:
    env = {"AOTBUILD_CACHE_DIR": str(tmp / "cache")}
    ws = copy_example(tmp / "ws")

    def row(name: str, seconds: float, rss: int, note: str = "") -> None:
        rows.append({"scenario": name, "seconds": round(seconds, 3), "peak_rss_mib": rss, "note": note})
        print(f"  {name}: {seconds:.3f}s", flush=True)

    cold = timed(aotbuild("build", "//..."), ws, env)
    row("example: cold build (empty cache)", *cold, "7 targets, -j default")
    if baseline:
        base_env = {"TORCHINDUCTOR_CACHE_DIR": str(tmp / "base-inductor"), "TMPDIR": str(tmp / "base-tmp")}
        (tmp / "base-tmp").mkdir()
        script = [PY, str(REPO / "bench" / "handwritten_baseline.py"), str(ws), str(tmp / "base-out")]
        row("baseline: hand-written script, cold", *timed(script, REPO, base_env), "one process, sequential")
        row("baseline: hand-written script, rerun", *timed(script, REPO, base_env), "warm inductor cache, no skip")
    row("example: no-op build", *median_of(repeats, aotbuild("build", "//..."), ws, env), f"median of {repeats}")
    ninja_bin = str(Path(__import__("ninja").BIN_DIR) / "ninja")
    row("plain ninja: no-op on build.ninja",
        *median_of(repeats, [ninja_bin, "-C", "aot-out", "-f", ".aotbuild/build.ninja", *ninja_goals(ws)], ws, env), f"median of {repeats}")
    with open(ws / "models" / "cnn.py", "a") as f:
        f.write("\n# comment-only edit\n")
    row("example: comment edit (cnn.py)", *timed(aotbuild("build", "//..."), ws, env), "re-export, no compile")
    cnn = ws / "models" / "cnn.py"
    cnn.write_text(cnn.read_text().replace("width: int = 8", "width: int = 10"))
    row("example: real edit (cnn width)", *timed(aotbuild("build", "//..."), ws, env), "1 export + 1 compile")
    fresh = copy_example(tmp / "fresh")
    row("example: fresh checkout, warm local cache", *timed(aotbuild("build", "//..."), fresh, env),
        "no torch import")
    rows.append({"scenario": "_ratios", "noop_vs_ninja": rows_ratio(rows, "example: no-op build",
                                                                    "plain ninja: no-op on build.ninja"),
                 "cold_vs_fresh_checkout": rows_ratio(rows, "example: cold build (empty cache)",
                                                      "example: fresh checkout, warm local cache")})


def rows_ratio(rows: list[dict], a: str, b: str) -> float:
    by = {r["scenario"]: r.get("seconds") for r in rows}
    return round(by[a] / by[b], 2)


def scale_scenarios(tmp: Path, rows: list[dict], packages: int, per_package: int, repeats: int) -> None:
    env = {"AOTBUILD_CACHE_DIR": str(tmp / "scale-cache")}
    ws = tmp / "scale"
    labels = generate(ws, packages, per_package)
    n = len(labels)

    def row(name: str, seconds: float, rss: int, note: str = "") -> None:
        rows.append({"scenario": name, "seconds": round(seconds, 3), "peak_rss_mib": rss, "note": note})
        print(f"  {name}: {seconds:.3f}s", flush=True)

    row(f"scale: plan {n} targets", *median_of(repeats, aotbuild("plan"), ws, env), f"median of {repeats}")
    # Build every target: 10 distinct graphs compile; the rest are action/artifact-cache hits.
    row(f"scale: first build of {n} targets", *timed(aotbuild("build", "//...", "-j", "4"), ws, env),
        "10 distinct models; the rest share cache entries")
    row(f"scale: no-op of {n} targets", *median_of(repeats, aotbuild("build", "//..."), ws, env),
        f"median of {repeats}")
    ninja_bin = str(Path(__import__("ninja").BIN_DIR) / "ninja")
    row(f"plain ninja: no-op of {n} targets",
        *median_of(repeats, [ninja_bin, "-C", "aot-out", "-f", ".aotbuild/build.ninja", *ninja_goals(ws)], ws, env), f"median of {repeats}")
    build_file = ws / "group0" / "pkg0" / "BUILD.aot.yaml"
    os.utime(build_file)
    row("scale: touch one BUILD file", *timed(aotbuild("build", "//..."), ws, env), "replan, nothing rebuilt")
    build_file.write_text(build_file.read_text().replace("shape: [2,", "shape: [3,", 1))
    row("scale: edit one target in one package", *timed(aotbuild("build", "//..."), ws, env),
        "replan + 1 export + 1 compile")


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": __import__("importlib.metadata").metadata.version("torch")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="skip the hand-written baseline and the 1,000-target scale run")
    p.add_argument("--packages", type=int, default=100)
    p.add_argument("--per-package", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default="bench-results.json")
    args = p.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="aotbuild-bench-") as tmp:
        example_scenarios(Path(tmp), rows, args.repeats, baseline=not args.quick)
        if not args.quick:
            scale_scenarios(Path(tmp), rows, args.packages, args.per_package, args.repeats)
    result = {"machine": machine(), "rows": rows, "when": time.strftime("%Y-%m-%d")}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nmachine: {result['machine']}")
    print(f"{'scenario':52} {'seconds':>9} {'peak MiB':>9}  note")
    for r in rows:
        if r["scenario"] == "_ratios":
            continue
        print(f"{r['scenario']:52} {r['seconds']:9.3f} {r['peak_rss_mib']:9d}  {r['note']}")
    ratios = next(r for r in rows if r["scenario"] == "_ratios")
    print(f"\nno-op / plain ninja no-op: {ratios['noop_vs_ninja']}x; "
          f"cold build / fresh checkout with warm cache: {ratios['cold_vs_fresh_checkout']}x")


if __name__ == "__main__":
    main()
