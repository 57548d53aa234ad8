"""Cold build of the example project against the hand-written loop script, interleaved, in one run.

    python bench/cold_vs_script.py                       # 1 round: script, then aotbuild (workers)
    python bench/cold_vs_script.py --rounds 2 --no-workers-too
    CXX=/usr/bin/g++ CC=/usr/bin/gcc /opt/torch/.venv/bin/python bench/cold_vs_script.py   # the GPU machine

Each round runs the script (bench/handwritten_baseline.py: one process, imports torch once, exports and
compiles the 7 CPU models in a loop, fresh inductor cache and $TMPDIR) and then `aotbuild build //...` on a
fresh copy of example_project/ (without its gpu/ package) with an empty cache, and optionally the same with
--no-workers. Everything aotbuild keeps between builds outside its cache is cleared first, so both start cold:
its precompiled headers (/tmp/aotbuild-<uid>/tmp/torchinductor_*), its CPU-ISA answers
(/tmp/aotbuild-<uid>/isa) and any warm worker (the idle timeout is
waited out). Prints a table with wall seconds, the load average before each command, the ratio to the
script in the same round, and where aotbuild's compile seconds went (summed phases from --report).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
BASE = Path("/tmp") / f"aotbuild-{os.getuid()}"


def load() -> float:
    return os.getloadavg()[0]


def workspace(dest: Path) -> Path:
    shutil.copytree(REPO / "example_project", dest, ignore=shutil.ignore_patterns("aot-out", "__pycache__", "gpu"))
    return dest


def run_script(tmp: Path) -> float:
    ws = workspace(tmp / "script-ws")
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp / "script-inductor"), "TMPDIR": str(tmp / "script-tmp")}
    (tmp / "script-tmp").mkdir()
    started = time.monotonic()
    subprocess.run([PY, str(REPO / "bench" / "handwritten_baseline.py"), str(ws), str(tmp / "script-out")],
                   cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def clear_aotbuild_state() -> None:
    """What a cold aotbuild must not find: precompiled headers and a warm worker of an earlier build.
    The headers are shared by every build of this uid: run this where no other build of the uid runs."""
    for pch in (BASE / "tmp").glob("torchinductor_*"):
        shutil.rmtree(pch, ignore_errors=True)
    shutil.rmtree(BASE / "isa", ignore_errors=True)  # inductor's CPU-ISA answers (actions/isa_probe.py)
    deadline = time.monotonic() + 60
    while any((BASE / "workers").glob("*.sock")) and time.monotonic() < deadline:
        time.sleep(1)  # servers exit after AOTBUILD_WORKER_IDLE_S (default 10 s) with nothing to do


def run_aotbuild(tmp: Path, name: str, workers: bool, args_isolate: bool,
                 extra_env: dict[str, str] | None = None) -> tuple[float, dict]:
    clear_aotbuild_state()
    ws = workspace(tmp / f"{name}-ws")
    report = tmp / f"{name}.json"
    env = {**os.environ, "AOTBUILD_CACHE_DIR": str(tmp / f"{name}-cache"), **(extra_env or {})}
    if args_isolate:
        # An unused inductor variable enters the toolchain key: compile keys no other build on this machine
        # has, so no staging dir is shared with (and waited for from) other users of this uid.
        env["TORCHINDUCTOR_AOTBUILD_BENCH_RUN"] = f"{os.getpid()}-{name}-{time.time_ns()}"
    cmd = [PY, "-m", "aotbuild", "build", "//...", "--report", str(report)] + ([] if workers else ["--no-workers"])
    started = time.monotonic()
    subprocess.run(cmd, cwd=ws, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds, parsed = time.monotonic() - started, json.loads(report.read_text())
    print(f"{name}: {seconds:.1f} s; per action (phases, seconds):", flush=True)
    for action in parsed["actions"]:
        phases = " ".join(f"{k}={v:.1f}" for k, v in action.get("phases", {}).items())
        print(f"  {action['label']:<24} {action['action']:<8} {phases}", flush=True)
    return seconds, parsed


def staging_wait(report: dict) -> float:
    """Seconds compiles waited for a key's staging dir held by another build (on a shared machine: another
    user of the same uid compiling the same model). Summed over actions; 0 on a machine of one's own."""
    return sum(a.get("phases", {}).get("staging", 0.0) for a in report["actions"])


def phase_totals(report: dict) -> dict[str, float]:
    totals: dict[str, float] = {}
    for action in report["actions"]:
        for name, seconds in action.get("phases", {}).items():
            key = f"{action['action']}.{name}"
            totals[key] = totals.get(key, 0.0) + seconds
    return totals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--no-workers-too", action="store_true", help="also time `aotbuild build --no-workers`")
    p.add_argument("--isolate", action="store_true", help="compile keys of this run only (a shared machine where "
                   "other builds of the example under this uid would hold the same staging dirs)")
    p.add_argument("--also-env", action="append", default=[], metavar="K=V",
                   help="also time a workers build with this variable set (repeatable: one build per K=V)")
    args = p.parse_args()
    rows: list[tuple[int, str, float, float, float]] = []  # round, command, seconds, load before, staging wait
    phases: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="aotbuild-cold-") as tmp_name:
        for r in range(args.rounds):
            tmp = Path(tmp_name) / f"round{r}"
            tmp.mkdir()
            before = load()
            rows.append((r, "hand-written script", run_script(tmp), before, 0.0))
            before = load()
            seconds, report = run_aotbuild(tmp, "workers", workers=True, args_isolate=args.isolate)
            rows.append((r, "aotbuild build //... (workers)", seconds, before, staging_wait(report)))
            for name, value in phase_totals(report).items():
                phases[name] = phases.get(name, 0.0) + value / args.rounds
            if args.no_workers_too:
                before = load()
                seconds, report = run_aotbuild(tmp, "alone", workers=False, args_isolate=args.isolate)
                rows.append((r, "aotbuild build //... --no-workers", seconds, before, staging_wait(report)))
            for i, assignment in enumerate(args.also_env):
                key, _, value = assignment.partition("=")
                before = load()
                seconds, report = run_aotbuild(tmp, f"env{i}", workers=True, args_isolate=args.isolate,
                                               extra_env={key: value})
                rows.append((r, f"workers, {assignment}", seconds, before, staging_wait(report)))
    cores = os.cpu_count()
    print(f"machine: {cores} cores, python {sys.version.split()[0]}, CXX={os.environ.get('CXX', '(unset)')}")
    print(f"{'round':>5}  {'command':<36} {'seconds':>8} {'load before':>11} {'/ script':>9} {'staging wait':>12}")
    ratios: dict[str, list[float]] = {}
    for r, name, seconds, before, waited in rows:
        script = next(s for rr, n, s, _, _ in rows if rr == r and n == "hand-written script")
        ratio = seconds / script
        ratios.setdefault(name, []).append(ratio)
        print(f"{r:>5}  {name:<36} {seconds:>8.1f} {before:>11.2f} {ratio:>8.2f}x {waited:>12.1f}")
    for name, values in ratios.items():
        if name != "hand-written script":
            print(f"median ratio, {name}: {statistics.median(values):.2f}x the script")
    print("\naotbuild (workers): seconds per phase, summed over actions (parallel actions overlap)")
    for name, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<32} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
