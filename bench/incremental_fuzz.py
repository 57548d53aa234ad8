"""Differential fuzzer: an incremental build must equal a clean build of the same sources from an empty cache.

    .venv/bin/python bench/incremental_fuzz.py --seeds 1 2 3 --steps 100

Applies random edits from a broad menu (bench/fuzz_edits.py: sources edited with their old mtime restored,
files replaced by older ones, touched, weights swapped behind their symlink, optional modules created and
removed, PYTHONPATH switched and unset, data files and environment variables changed, plan files and stamps
deleted or emptied, targets added and removed, subset builds) to a small workspace (bench/fuzz_workspace.py).
After each edit it builds incrementally, then compares every target with a clean build of a copy of the
sources from an empty cache: whether it failed, its graph hash and its reference inputs and outputs.
It compares the export stage (the goal `export`), which every input reaches; compiling is a pure function of
the graph hash and the toolchain. Clean results are memoized by a digest of everything the build can see.
A mismatch prints the seed and the edits so far, to replay with --seeds SEED --steps N.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fuzz_edits, fuzz_workspace  # noqa: E402

RUNNER = """import json, sys
from pathlib import Path
from aotbuild.engine.build import BuildRequest, build
r = build(BuildRequest(sys.argv[2:], "export", keep_going=True), Path.cwd())
json.dump({"outcomes": r.outcomes, "failures": sorted(r.failures)}, open(sys.argv[1], "w"))
"""


@dataclass
class Fuzz:
    base: Path
    seed: int
    env: dict[str, str] = field(default_factory=dict)  # FUZZ_SCALE and PYTHONPATH, as the edits set them
    history: list[str] = field(default_factory=list)
    memo: dict[str, dict] = field(default_factory=dict)  # state digest -> clean results
    clean_builds: int = 0
    cache_pass: bool = False  # this step's incremental build runs the cache pass first
    last_output: str = ""  # the last build's stdout and stderr

    @property
    def ws(self) -> Path:
        return self.base / "ws"

    @property
    def external(self) -> list[Path]:
        return [self.base / "pythonpath1", self.base / "pythonpath2"]

    def build(self, ws: Path, cache: Path, patterns: list[str]) -> dict:
        # The cache pass (engine/cache_pass.py) answers, before ninja, every target whose artifact is missing:
        # with the export goal, all of them. Off, ninja alone decides what is stale, as for built targets.
        env = {**os.environ, "AOTBUILD_CACHE_DIR": str(cache), "AOTBUILD_WORKER_IDLE_S": "300",
               "AOTBUILD_CACHE_PASS": "1" if self.cache_pass else "0"}
        env.pop("FUZZ_SCALE", None)
        env.pop("PYTHONPATH", None)
        env.update(self.env)
        # Warm workers are keyed by the environment: this run's own, never one left by an older checkout.
        env["FUZZ_RUN"] = str(self.base)
        out = self.base / "result.json"
        out.unlink(missing_ok=True)
        proc = subprocess.run([sys.executable, "-c", RUNNER, str(out), *patterns], cwd=ws, env=env,
                              capture_output=True, text=True)
        self.last_output = proc.stdout + proc.stderr
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"the build itself failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return json.loads(out.read_text())

    def results(self, ws: Path, built: dict) -> dict[str, list]:
        """label -> [failed, graph hash, digest of reference_io.pt], for every target of the build."""
        found = {}
        for label, outcome in built["outcomes"].items():
            package, name = label[2:].split(":")
            target = ws / "aot-out" / package / f"@{name}"
            if label in built["failures"] or outcome == "failed":
                found[label] = [True, None, None]
                continue
            graph = json.loads((target / "graph.json").read_text())
            ref = hashlib.sha256((target / "reference_io.pt").read_bytes()).hexdigest()
            found[label] = [False, graph["graph_hash"], ref]
        return found

    def state_digest(self) -> str:
        h = hashlib.sha256(json.dumps(sorted(self.env.items())).encode())
        for root in [self.ws, *self.external]:
            for path in sorted(root.rglob("*")):
                if "aot-out" in path.parts or "__pycache__" in path.parts:
                    continue
                h.update(str(path.relative_to(root)).encode())
                if path.is_symlink():
                    h.update(b"->" + os.readlink(path).encode())
                elif path.is_file():
                    h.update(hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()

    def clean(self) -> dict[str, list]:
        key = self.state_digest()
        if key not in self.memo:
            clean_ws, cache = self.base / "clean" / "ws", self.base / "clean" / "cache"
            shutil.rmtree(self.base / "clean", ignore_errors=True)
            shutil.copytree(self.ws, clean_ws, symlinks=True, ignore=shutil.ignore_patterns("aot-out", "__pycache__"))
            self.cache_pass, was = False, self.cache_pass
            self.memo[key] = self.results(clean_ws, self.build(clean_ws, cache, ["//..."]))
            self.cache_pass = was
            self.clean_builds += 1
        return self.memo[key]

    def step(self, rng: random.Random) -> str | None:
        """One edit, an incremental build (sometimes of a subset first), the comparison; the mismatch or None."""
        name, edit = rng.choice(fuzz_edits.MENU)
        self.history.append(f"{name}: {edit(self, rng)}")
        self.cache_pass = rng.random() < 0.1
        if self.cache_pass:
            self.history.append("  with the cache pass")
        if rng.random() < 0.1:
            subset = rng.choice(sorted(self.clean()))
            self.build(self.ws, self.base / "cache", [subset])
            self.history.append(f"  built {subset} alone first")
        incremental = self.results(self.ws, self.build(self.ws, self.base / "cache", ["//..."]))
        clean = self.clean()
        if incremental != clean:
            diff = {label: {"incremental": incremental.get(label), "clean": clean.get(label)}
                    for label in sorted(set(incremental) | set(clean)) if incremental.get(label) != clean.get(label)}
            return json.dumps(diff, indent=1)
        return None


def run(base: Path, seed: int, steps: int, weights: list[Path], verbose: bool = False
        ) -> tuple[int, str | None, Fuzz]:
    """`steps` steps of one seed in `base`; (steps done, the first mismatch or None, the fuzzer)."""
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    fuzz = Fuzz(base, seed, {"PYTHONPATH": str(base / "pythonpath1")})
    fuzz_workspace.make(fuzz.ws, weights, fuzz.external[0])
    (fuzz.external[1]).mkdir(parents=True, exist_ok=True)
    (fuzz.external[1] / "extmod.py").write_text("E = 2\n")
    rng = random.Random(seed)
    fuzz.build(fuzz.ws, base / "cache", ["//..."])
    for i in range(steps):
        t, seen = time.monotonic(), len(fuzz.history)
        mismatch = fuzz.step(rng)
        if verbose:
            print(f"  {i + 1} ({time.monotonic() - t:.1f}s) " + "\n    ".join(fuzz.history[seen:]), flush=True)
        if mismatch is not None:
            return i + 1, mismatch, fuzz
    return steps, None, fuzz


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--dir", type=Path, default=Path("/tmp/aotbuild-fuzz"))
    p.add_argument("--verbose", action="store_true", help="print each step as it is done")
    args = p.parse_args()
    weights = fuzz_workspace.write_weights(args.dir / "weights", 3)
    total, started, failures = 0, time.monotonic(), 0
    for seed in args.seeds:
        t = time.monotonic()
        done, mismatch, fuzz = run(args.dir / f"seed{seed}", seed, args.steps, weights, args.verbose)
        total += done
        print(f"seed {seed}: {done} steps, {fuzz.clean_builds} clean builds, "
              f"{'MISMATCH' if mismatch else '0 mismatches'}, {time.monotonic() - t:.0f}s", flush=True)
        if mismatch:
            failures += 1
            print(f"seed {seed} mismatch after:\n  " + "\n  ".join(fuzz.history) + f"\n{mismatch}", flush=True)
    print(f"{total} steps over {len(args.seeds)} seeds, {failures} with a mismatch, "
          f"{time.monotonic() - started:.0f}s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
