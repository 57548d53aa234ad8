#!/usr/bin/env bash
# Refit vs full compile of a 28.8M-parameter Llama (the study's), through aotbuild; times from --report.
set -euo pipefail
WS=${WS:-${OUT:-/tmp/refit-bench}/ws}; rm -rf "$WS"; mkdir -p "$(dirname "$WS")"; cp -r "$(dirname "$0")/llama_ws" "$WS"; cd "$WS"
AOT=${PYTHON:-python}
export AOTBUILD_CACHE_DIR=${OUT:-/tmp/refit-bench}/cache
rm -rf aot-out "$AOTBUILD_CACHE_DIR"
$AOT weights.py a 1 b 2
summ() { $AOT -c "import json,sys; r=json.load(open('$1')); [print(a['label'], a['action'], a['outcome'], a['seconds'], {k: v for k, v in a['phases'].items() if v >= 0.05}) for a in r['actions']]"; }
/usr/bin/time -f "WALL %e s: build a+b (cold cache)" $AOT -m aotbuild build //m:all --report r1.json; summ r1.json
$AOT weights.py a 3
/usr/bin/time -f "WALL %e s: build a (new weights)" $AOT -m aotbuild build //m:a --report r2.json; summ r2.json
/usr/bin/time -f "WALL %e s: test a (verify)" $AOT -m aotbuild test //m:a --report r3.json | tail -2
# the same weights compiled in full, for the byte comparison and the warm compile time: a fresh cache
rm -rf ${OUT:-/tmp/refit-bench}/a-refit; cp -r aot-out/m/@a ${OUT:-/tmp/refit-bench}/a-refit
export AOTBUILD_CACHE_DIR=${OUT:-/tmp/refit-bench}/cache2
rm -rf aot-out "$AOTBUILD_CACHE_DIR"
/usr/bin/time -f "WALL %e s: build a (full compile of the same weights, fresh cache)" $AOT -m aotbuild build //m:a --report r4.json; summ r4.json
cmp aot-out/m/@a/a.so ${OUT:-/tmp/refit-bench}/a-refit/a.so && cmp aot-out/m/@a/a.pt2 ${OUT:-/tmp/refit-bench}/a-refit/a.pt2 && echo "BYTE-IDENTICAL so and pt2"
