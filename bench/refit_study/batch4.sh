cd /tmp/refit-study
P=/work/main/.venv/bin/python
for i in 1 2; do /usr/bin/time -f "WALL %e s (process) llama w1 warm (cache kept) run $i" $P compile_one.py llama 1 /tmp/refit-study/stage/llama out/llama/w1_warm$i --keep-cache 2>&1 | grep -v Warning | grep -v "return cls" | tail -2; done
/usr/bin/time -f "WALL %e s (process) llama w1 fresh inductor dir (aotbuild-like)" $P compile_one.py llama 1 /tmp/refit-study/stage/llama out/llama/w1_fresh2 2>&1 | grep -v Warning | grep -v "return cls" | tail -2
for i in 1 2 3; do /usr/bin/time -f "WALL %e s (process) refit run $i" $P refit_time.py out/llama/w0 out/llama/w1 out/llama/patched 2>&1 | grep -v Warn; done
for s in 0 1; do $P compile_one.py cnn $s /tmp/refit-study/stage/cnn_freeze_ng out/cnn_freeze_ng/w$s freezing=true --no-grad 2>&1 | grep -v Warning | grep -v "return cls" | tail -2; done
echo BATCH4 DONE
