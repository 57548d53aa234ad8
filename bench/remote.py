"""Benchmark fresh checkouts built from a warm remote cache (nginx, Bazel's HTTP cache protocol, on loopback).

    .venv/bin/python bench/remote.py [--warm-cache DIR] [--synthetic-cache DIR] [--skip-scale | --skip-example]
                                     [--no-pass] [--sign] [--json remote-results.json]

For the example project and for the 1,000-target synthetic workspace (bench/synthetic.py): one build with an
empty remote fills it (`--remote-upload`; from --warm-cache's local cache if given, else a cold build; the
synthetic one from a 10-target checkout of its 10 distinct models, with --synthetic-cache's local cache if
given), then each timed run is a new checkout in a new directory with an empty local cache, reading the remote
only. Reports wall time, HTTP requests (nginx's access log) and bytes downloaded, beside the same fresh checkout
built from a warm *local* cache for comparison. --no-pass also times one fresh checkout with the CLI's cache pass
off (AOTBUILD_CACHE_PASS=0: one action process per hit, as before engine/cache_pass.py). --sign makes a key
pair: the filling build signs what it uploads, and every timed remote build verifies each entry's signature.
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
sys.path.insert(0, str(REPO))
from bench.synthetic import generate  # noqa: E402
from tests.remote_servers import Nginx, free_port  # noqa: E402 - the same nginx the tests run

EXAMPLE = REPO / "example_project"
PY = sys.executable


def build(ws: Path, cache: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    report = ws / ".bench-report.json"
    started = time.perf_counter()
    proc = subprocess.run([PY, "-m", "aotbuild", "build", "//...", "--report", str(report), *extra], cwd=ws,
                          env={**os.environ, "AOTBUILD_CACHE_DIR": str(cache), **(env or {})},
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"build failed in {ws}:\n{proc.stdout}\n{proc.stderr}")
    return seconds, json.loads(report.read_text())


def scenario(name: str, make_checkout, make_seed, base: Path, nginx: Nginx, warm_cache: Path | None, runs: int,
             no_pass: bool, keys: tuple[str, str] | None = None) -> dict:
    prefix = nginx.new_prefix()
    url = nginx.url(prefix)
    cache = warm_cache or base / f"{name}-cache"
    seeded = make_seed(base / f"{name}-seed")
    sign = {"AOTBUILD_SIGNING_KEY": keys[0]} if keys else {}
    verify = {"AOTBUILD_REMOTE_VERIFY_KEYS": keys[1]} if keys else {}
    fill_s, report = build(seeded, cache, "--remote-cache", url, "--remote-upload", env=sign)
    uploads = report["remote"]["uploads"]
    remote_runs, local_runs, no_pass_runs = [], [], []
    for i in range(runs):
        ws = make_checkout(base / f"{name}-fresh-{i}")
        before = len(nginx.requests())
        seconds, report = build(ws, base / f"{name}-empty-{i}", "--remote-cache", url, env=verify)
        outcomes = set(report["targets"].values())
        assert outcomes == {"artifact-cache hit"} and not report["remote"]["warnings"], (outcomes, report["remote"])
        remote_runs.append({"seconds": seconds, "requests": len(nginx.requests()) - before,
                            "bytes_down": report["remote"]["bytes_down"], "hits": report["remote"]["hits"]})
        ws = make_checkout(base / f"{name}-local-{i}")
        local_runs.append(build(ws, cache, "--remote-cache", "")[0])
        if no_pass and i == 0:  # once: without the pass, 1,000 targets take minutes
            ws = make_checkout(base / f"{name}-no-pass-{i}")
            no_pass_runs.append(build(ws, cache, "--remote-cache", "", env={"AOTBUILD_CACHE_PASS": "0"})[0])
    best = min(remote_runs, key=lambda r: r["seconds"])
    return {"scenario": name, "targets": len(report["targets"]), "fill_seconds": round(fill_s, 2),
            "uploads": uploads, "remote_seconds": [round(r["seconds"], 2) for r in remote_runs],
            "remote_median_s": round(statistics.median(r["seconds"] for r in remote_runs), 2),
            "requests": best["requests"], "bytes_down": best["bytes_down"], "remote_hits": best["hits"],
            "local_median_s": round(statistics.median(local_runs), 2),
            "no_pass_local_median_s": round(statistics.median(no_pass_runs), 2) if no_pass_runs else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warm-cache", type=Path, help="a local cache already holding the example's results")
    p.add_argument("--synthetic-cache", type=Path, help="a local cache already holding the synthetic models")
    p.add_argument("--skip-scale", action="store_true", help="only the example project")
    p.add_argument("--skip-example", action="store_true", help="only the 1,000-target workspace")
    p.add_argument("--no-pass", action="store_true", help="also time local-cache builds without the cache pass")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--sign", action="store_true", help="sign the uploads and verify every remote entry")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="aotbuild-bench-remote-"))
    base.chmod(0o755)  # nginx's workers (nobody, when started by root) read its root
    nginx = Nginx(base / "nginx", free_port())
    nginx.start()
    rows = []
    keys = None
    if args.sign:
        from aotbuild.cache import signing

        keys = signing.generate()
    try:
        def example(dest: Path) -> Path:
            shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("aot-out", "__pycache__", "gpu"))  # no GPU here
            return dest

        if not args.skip_example:
            rows.append(scenario("example", example, example, base, nginx, args.warm_cache, args.runs, args.no_pass,
                                 keys))
        if not args.skip_scale:
            def synthetic(dest: Path) -> Path:
                generate(dest, 100, 10)
                return dest

            def synthetic_models(dest: Path) -> Path:
                generate(dest, 1, 10)  # the same 10 distinct models: filling the remote costs 10 targets, not 1,000
                return dest

            rows.append(scenario("synthetic-1000", synthetic, synthetic_models, base, nginx, args.synthetic_cache,
                                 args.runs, args.no_pass, keys))
    finally:
        nginx.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"cores: {os.cpu_count()}")
    print(f"{'scenario':16} {'targets':>7} {'remote s':>9} {'local s':>8} {'no-pass s':>9} {'requests':>8} "
          f"{'MB down':>8} {'fill s':>7}")
    for r in rows:
        no_pass = f"{r['no_pass_local_median_s']:9.2f}" if r["no_pass_local_median_s"] is not None else f"{'-':>9}"
        print(f"{r['scenario']:16} {r['targets']:7} {r['remote_median_s']:9.2f} {r['local_median_s']:8.2f} {no_pass} "
              f"{r['requests']:8} {r['bytes_down'] / 1e6:8.1f} {r['fill_seconds']:7.1f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
