#!/usr/bin/env bash
# The Ray executor on a GPU machine: a one-node cluster there (this machine's CPU ISA and GPU arch as its
# resources), one CUDA and one CPU target built through it with --executor-required and verified; then a fresh
# checkout with a comment edited, whose exports run on the node; then the same targets built here without the
# executor, to compare the bytes. Needs aotbuild and ray importable, CXX=/usr/bin/g++ CC=/usr/bin/gcc, no nginx
# (bench/http_cache.py is the remote cache). Run from the repository root: bash bench/ray_gpu_check.sh
set -uo pipefail
repo=$(pwd)
work=$(mktemp -d /tmp/aotrg-XXXX)  # short: Ray's unix socket paths live under it
read -ra targets <<< "${CHECK_TARGETS:-//gpu:mlp //models:mlp}"  # CHECK_TARGETS=//models:mlp: a dry run without a GPU
TIMEFORMAT='  -> %R s wall'
step() { echo; echo "== $*"; }
ray_bin=$(python3 -c 'import ray, pathlib, sys; print(pathlib.Path(ray.__file__).parents[1] / "bin" / "ray")')
[ -x "$ray_bin" ] || ray_bin=$(command -v ray)

nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader
python3 -c "import torch, ray; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'ray', ray.__version__)"
echo "CXX=${CXX:-unset} CC=${CC:-unset}; $(nproc) CPUs"

export RAY_AUTH_MODE=disabled  # loopback only
cache_port=18080
python3 "$repo/bench/http_cache.py" "$work/remote" "$cache_port" &
remote="http://127.0.0.1:$cache_port/aotbuild"

step "one-node cluster: ray start --head --resources=$(aotbuild executor resources)"
AOTBUILD_CACHE_DIR="$work/node-cache" "$ray_bin" start --head --port=6390 --ray-client-server-port=10001 \
  --include-dashboard=false --num-cpus="$(nproc)" --num-gpus=1 --object-store-memory=1000000000 \
  --temp-dir="$work/ray" --resources="$(aotbuild executor resources)" 2>&1 | tail -3
executor=ray://127.0.0.1:10001

export AOTBUILD_CACHE_DIR="$work/client-cache"  # the node's cache is another: results come through the remote
cp -r "$repo/example_project" "$work/a" && rm -rf "$work/a/aot-out"
cd "$work/a"
step "cold build through the cluster: ${targets[*]}"
time aotbuild build "${targets[@]}" --executor "$executor" --executor-required --remote-cache "$remote" \
  --report "$work/cold.json" || failed="cold build"
where() {
  python3 - "$1" <<'PY'
import json, sys
for a in json.load(open(sys.argv[1]))["actions"]:
    if a["action"] in ("export", "compile"):
        ex = a.get("executor") or {}
        print(f"  {a['label']:16} {a['action']:8} {a['outcome']:12} {a['seconds']:7.2f} s  node={ex.get('node')}"
              f"  queue={ex.get('queue_s')}  here_because={ex.get('local_because')}")
PY
}
where "$work/cold.json"
step "aotbuild test (verify against eager, here)"; time aotbuild test "${targets[@]}"

step "fresh checkout, empty local cache, a comment added to models/mlp.py: exports ship to the node"
cp -r "$repo/example_project" "$work/b" && rm -rf "$work/b/aot-out"
echo "# a comment: the graph is unchanged" >> "$work/b/models/mlp.py"
cd "$work/b"
time AOTBUILD_CACHE_DIR="$work/client2-cache" aotbuild build "${targets[@]}" --executor "$executor" \
  --executor-required --remote-cache "$remote" --report "$work/edit.json" || failed="${failed:-} edited build"
where "$work/edit.json"
AOTBUILD_CACHE_DIR="$work/client2-cache" aotbuild test "${targets[@]}" | tail -3

step "the same targets built here, no executor, another empty cache: are the bytes the same?"
cp -r "$repo/example_project" "$work/c" && rm -rf "$work/c/aot-out"
cd "$work/c"
time AOTBUILD_CACHE_DIR="$work/local-cache" aotbuild build "${targets[@]}" | tail -2
# The control: a second local build from another empty cache. Where two local builds differ, the cluster's
# bytes cannot be expected to equal either.
cp -r "$repo/example_project" "$work/d" && rm -rf "$work/d/aot-out"
(cd "$work/d" && AOTBUILD_CACHE_DIR="$work/local2-cache" aotbuild build "${targets[@]}" | tail -1)
for t in $(for l in "${targets[@]}"; do l=${l#//}; echo "${l%%:*}/@${l#*:}/${l#*:}"; done); do
  for ext in so pt2; do
    a=$(sha256sum "$work/a/aot-out/$t.$ext" | cut -c1-16); c=$(sha256sum "$work/c/aot-out/$t.$ext" | cut -c1-16)
    d=$(sha256sum "$work/d/aot-out/$t.$ext" | cut -c1-16)
    echo "  $t.$ext cluster $a local $c $([ "$a" = "$c" ] && echo identical || echo DIFFER);" \
         "local again $d $([ "$c" = "$d" ] && echo identical || echo DIFFER)"
  done
done
"$ray_bin" stop --force > /dev/null 2>&1
kill %1 2>/dev/null
[ -z "${failed:-}" ] || { echo "FAILED through the cluster: $failed"; exit 1; }
