#!/usr/bin/env bash
# CUDA end to end on a GPU machine, for BENCHMARKS.md: the static-libstdc++ guard with the machine's own CXX,
# then (with a plain g++) a cold build of //gpu:all, test, a no-op, a fresh checkout from the warm cache, bench.
# Run from the repository root with aotbuild installed: bash bench/cuda_check.sh
set -uo pipefail
repo=$(pwd)
work=$(mktemp -d)
TIMEFORMAT='  -> %R s wall'
step() { echo; echo "== $*"; }

nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
echo "CXX=${CXX:-unset} ($(${CXX:-g++} --version | head -1))"

step "guard: build //gpu:mlp with this machine's CXX (${CXX:-g++})"
cp -r "$repo/example_project" "$work/guard" && rm -rf "$work/guard/aot-out"
(cd "$work/guard" && AOTBUILD_CACHE_DIR="$work/guard-cache" aotbuild build //gpu:mlp 2>&1 | tail -4)

export CXX=/usr/bin/g++ CC=/usr/bin/gcc AOTBUILD_CACHE_DIR="$work/cache"
cp -r "$repo/example_project" "$work/a" && rm -rf "$work/a/aot-out"
cd "$work/a"
step "cold build //gpu:all"; time aotbuild build //gpu:all --report "$work/cold.json"
python3 -c "import json; r=json.load(open('$work/cold.json')); print({a['label']+' '+a['action']: a['seconds'] for a in r['actions']})"
step "test //gpu:all"; time aotbuild test //gpu:all
step "no-op build"; time aotbuild build //gpu:all
step "bare .so: loads on its own (test above ran it); what the manifest says it needs"
python3 - <<'PY'
import json, torch
for t in ("mlp", "cnn_dynamic"):
    m = json.load(open(f"aot-out/gpu/@{t}/manifest.json"))
    torch._C._aoti.AOTIModelContainerRunnerCuda(f"aot-out/gpu/@{t}/{t}.so", 1, "cuda")  # loads by itself
    print(t, "so_needs_kernel_files:", m.get("so_needs_kernel_files"), "options:", {k: v for k, v in m["options"].items() if "embed" in k})
PY
cp -r "$repo/example_project" "$work/b" && rm -rf "$work/b/aot-out"
cd "$work/b"
step "fresh checkout, warm cache"; time aotbuild build //gpu:all
step "bench //gpu:all"; aotbuild bench //gpu:all --warmup 20 --repeats 200
step "CPU targets too, on this machine's cores (cold)"; time aotbuild build //models:all //vision:all -j "$(nproc)" | tail -1
