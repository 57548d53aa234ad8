"""Real-size models through aotbuild, against plain torch.export + a sha256 of the weights, in one run.

    python bench/real_size.py                                   # gpt2-medium and llama-1b: export columns only
    python bench/real_size.py --models gpt2-small               # the full pipeline: compile, verify, no-op, checkout
    python bench/real_size.py --models llama-1b --device cuda   # on the GPU machine

Each model (bench/real_size_models.py, random weights saved once as the target's `weights:` file) is built in a
fresh workspace with an empty cache. Per model, in this order:
  baseline   a fresh process: import torch, build the model, load the weights (mmap), torch.export, sha256 of
             every weight's bytes: what any export tool must do, nothing more
  export     a fresh process (ninja on the export edge, --no-workers): aotbuild's export action as a build
             runs it, which also runs the eager reference forward, hashes the graph, stores the program
  compile, verify, no-op build, fresh checkout (the same sources in a new directory, the same cache)
Wall seconds are whole commands (process start and `import torch` included on both sides). Peak memory is the
RSS high-water (VmHWM) of the process running each action, sampled from /proc while it runs. The load average
is printed beside each row: the 2-core machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
MODELS = {  # name -> (factory, kwargs, sequence length); "tiny" checks the bench itself in seconds
    "tiny": ("gpt2", {"layers": 2, "d": 128, "heads": 4, "vocab": 1000, "context": 64}, 16),
    "gpt2-small": ("gpt2", {"layers": 12, "d": 768, "heads": 12}, 32),
    "gpt2-medium": ("gpt2", {"layers": 24, "d": 1024, "heads": 16}, 32),
    "llama-1b": ("llama", {"layers": 16, "d": 2048, "heads": 32, "kv_heads": 8, "ffn": 8192, "dtype": "bfloat16"},
                 32),
}
BASELINE = '''
import hashlib, json, sys, time
started = time.monotonic()
import torch
sys.path.insert(0, sys.argv[1])
from models import real
from aotbuild.actions import graph_hash
kwargs, weights, seq, device = json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
imported = time.monotonic()
model = getattr(real, kwargs.pop("factory"))(**kwargs)
model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True, mmap=True))
model = model.to(device)
loaded = time.monotonic()
with torch.no_grad():
    ep = torch.export.export(model, (torch.randint(0, 1000, (1, seq), device=device),))
exported = time.monotonic()
h = hashlib.sha256()
for name, t in sorted(ep.state_dict.items()):
    h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
hashed = time.monotonic()
graph_hash.graph_hash(ep)
ours = time.monotonic() - hashed
saved = time.monotonic()
torch.export.save(ep, sys.argv[6])  # not in the baseline's total: what storing the program alone costs
save = time.monotonic() - saved
nbytes = sum(t.numel() * t.element_size() for t in ep.state_dict.values())
unique = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in ep.state_dict.values()}
print(json.dumps({"unique_bytes": sum(unique.values()), "import": imported - started, "load": loaded - imported, "export": exported - loaded,
                  "sha256": hashed - exported, "total": hashed - started, "graph_hash": ours, "save": save, "bytes": nbytes}))
'''


class PeakSampler:
    """VmHWM of every descendant process whose command line names an action, sampled every 20 ms."""

    def __init__(self, root_pid: int) -> None:
        self.root, self.peaks, self.stop = root_pid, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _children(self, pid: int) -> list[int]:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            return []
        return kids + [g for k in kids for g in self._children(k)]

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            for pid in [self.root, *self._children(self.root)]:
                try:
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
                    hwm = next(int(line.split()[1]) << 10 for line in open(f"/proc/{pid}/status")
                               if line.startswith("VmHWM"))
                except (OSError, StopIteration, ValueError):
                    continue
                kind = next((k for k in ("export", "compile", "verify") if f"aotbuild.actions.{k}" in cmd), None)
                if kind or pid == self.root:
                    key = kind or "command"
                    self.peaks[key] = max(self.peaks.get(key, 0), hwm)

    def finish(self) -> dict[str, int]:
        self.stop.set()
        self.thread.join()
        return self.peaks


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, dict[str, int], str]:
    load = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = PeakSampler(proc.pid)
    out, _ = proc.communicate()
    seconds, peaks = time.monotonic() - started, sampler.finish()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}) in {cwd}:\n{out[-4000:]}")
    peaks["load"] = load
    return seconds, peaks, out


def workspace(ws: Path, name: str, device: str, weights: Path) -> None:
    factory, kwargs, seq = MODELS[name]
    (ws / "models").mkdir(parents=True)
    (ws / "WORKSPACE.aot.yaml").write_text("")
    (ws / "models" / "__init__.py").write_text("")
    shutil.copy(REPO / "bench" / "real_size_models.py", ws / "models" / "real.py")
    os.link(weights, ws / "models" / "weights.pt") if weights.stat().st_dev == ws.stat().st_dev \
        else shutil.copy(weights, ws / "models" / "weights.pt")
    vocab = kwargs.get("vocab", 32000 if factory == "llama" else 50257)
    (ws / "models" / "BUILD.aot.yaml").write_text(json.dumps({"targets": {name.replace("-", "_"): {
        "model": f"models.real:{factory}", "kwargs": kwargs, "weights": "weights.pt", "device": device,
        "inputs": {"tokens": {"shape": [1, seq], "dtype": "int64", "low": 0, "high": vocab}},
        "tolerance": {"atol": 0.05, "rtol": 0.05}}}}, indent=2))


def make_weights(name: str, dest: Path) -> None:
    factory, kwargs, _ = MODELS[name]
    code = ("import sys, json, torch; sys.path.insert(0, sys.argv[1]); import real_size_models as m; "
            "torch.save(getattr(m, sys.argv[2])(**json.loads(sys.argv[3])).state_dict(), sys.argv[4])")
    subprocess.run([PY, "-c", code, str(REPO / "bench"), factory, json.dumps(kwargs), str(dest)], check=True)


def mib(n: float) -> str:
    return f"{n / (1 << 20):,.0f} MiB"


def bench_model(name: str, tmp: Path, device: str, skip_compile: bool) -> list[tuple[str, str, str, str]]:
    factory, kwargs, seq = MODELS[name]
    tmp.mkdir(parents=True, exist_ok=True)
    weights = tmp / f"{name}.pt"
    make_weights(name, weights)
    ws, cache = tmp / f"{name}-ws", tmp / f"{name}-cache"
    workspace(ws, name, device, weights)
    target = name.replace("-", "_")
    env = {**os.environ, "AOTBUILD_CACHE_DIR": str(cache), "AOTBUILD_WORKERS": "0",
           "TORCHINDUCTOR_AOTBUILD_BENCH_RUN": f"{os.getpid()}-{time.time_ns()}"}
    rows = []
    base_s, base_peak, out = run([PY, "-c", BASELINE, str(ws), json.dumps({"factory": factory, **kwargs}),
                                  str(weights), str(seq), device, str(tmp / "baseline.pt2")], ws, env)
    base = json.loads(out.strip().splitlines()[-1])
    base_s -= base["save"] + base["graph_hash"]  # timed after the rest in the same process, for reference only
    (tmp / "baseline.pt2").unlink()
    size = base["unique_bytes"]  # tied weights share one storage
    rows.append(("weights", mib(size), "", f"{weights.stat().st_size / (1 << 20):,.0f} MiB on disk, "
                 f"{mib(base['bytes'])} hashed (each name of a tied weight is hashed)"))
    rows.append(("plain torch.export + sha256", f"{base_s:.1f} s", mib(base_peak["command"]),
                 f"load {base_peak['load']:.1f}; import {base['import']:.1f} s, load weights {base['load']:.1f} s, "
                 f"export {base['export']:.1f} s, sha256 {base['sha256']:.1f} s"))
    rows.append(("(torch.export.save of it)", f"{base['save']:.1f} s", "", "to a file, not fsynced; taken out of the row above"))
    rows.append(("graph hash (aotbuild)", f"{base['graph_hash']:.2f} s", "",
                 f"{base['bytes'] / base['graph_hash'] / 1e9:.2f} GB/s; sha256 of the same tensors "
                 f"{base['bytes'] / base['sha256'] / 1e9:.2f} GB/s"))
    run([PY, "-m", "aotbuild", "plan"], ws, env)
    goal = f"models/@{target}/graph.json"
    events = tmp / f"{name}-events.jsonl"
    ninja = [PY, "-c", "import ninja, os, sys; os.execv(os.path.join(ninja.BIN_DIR, 'ninja'), ['ninja'] + sys.argv[1:])",
             "-C", "aot-out", "-f", ".aotbuild/build.ninja", goal]
    exp_s, exp_peak, _ = run(ninja, ws, {**env, "AOTBUILD_EVENTS": str(events)})
    phases = next(json.loads(line)["phases"] for line in events.read_text().splitlines()
                  if json.loads(line)["action"] == "export")
    with_save = base_s + base["save"]
    rows.append(("aotbuild export", f"{exp_s:.1f} s ({exp_s / base_s:.2f}x; {exp_s / with_save:.2f}x of baseline + save)", mib(exp_peak.get("export", 0)),
                 f"load {exp_peak['load']:.1f}; peak {exp_peak.get('export', 0) / size:.2f}x the weights; "
                 + ", ".join(f"{k} {v:.1f}" for k, v in phases.items() if v >= 0.1)))
    if skip_compile:
        return rows
    report = tmp / f"{name}-report.json"
    cmp_s, cmp_peak, _ = run([PY, "-m", "aotbuild", "build", f"//models:{target}", "--report", str(report)], ws, env)
    manifest = json.loads((ws / "aot-out" / "models" / f"@{target}" / "manifest.json").read_text())
    sizes = ", ".join(f"{k} {mib(v['size'])}" for k, v in manifest["artifacts"].items())
    rows.append(("compile", f"{cmp_s:.1f} s", mib(cmp_peak.get("compile", 0)), f"load {cmp_peak['load']:.1f}; {sizes}"))
    ver_s, ver_peak, _ = run([PY, "-m", "aotbuild", "test", f"//models:{target}"], ws, env)
    rows.append(("verify (aotbuild test)", f"{ver_s:.1f} s", mib(ver_peak.get("verify", 0)), f"load {ver_peak['load']:.1f}"))
    noop_s, noop_peak, _ = run([PY, "-m", "aotbuild", "build", f"//models:{target}"], ws, env)
    rows.append(("no-op build", f"{noop_s:.2f} s", mib(noop_peak["command"]), f"load {noop_peak['load']:.1f}"))
    fresh = tmp / f"{name}-checkout"
    shutil.copytree(ws, fresh, ignore=shutil.ignore_patterns("aot-out", "__pycache__"))
    fresh_s, fresh_peak, _ = run([PY, "-m", "aotbuild", "build", f"//models:{target}"], fresh, env)
    rows.append(("fresh checkout, warm cache", f"{fresh_s:.2f} s", mib(fresh_peak["command"]),
                 f"load {fresh_peak['load']:.1f}; no action process: {sorted(k for k in fresh_peak if k in ('export', 'compile'))}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="gpt2-medium,llama-1b", help=f"comma-separated: {', '.join(MODELS)}")
    parser.add_argument("--skip-compile", action="store_true", help="export columns only")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temp dir)")
    args = parser.parse_args()
    names = args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="aotbuild-real-size-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        for name in names:
            rows = bench_model(name, tmp / name, args.device, args.skip_compile)
            print(f"\n### {name} ({args.device}, {os.cpu_count()} cores)\n")
            print("| step | wall | peak RSS | notes |\n| --- | --- | --- | --- |")
            for row in rows:
                print("| " + " | ".join(row) + " |", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
