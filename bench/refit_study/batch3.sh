cd /tmp/refit-study
P=/work/main/.venv/bin/python
while pgrep -f "bash batch2.sh" >/dev/null; do sleep 5; done
# cold: fresh inductor dir (aotbuild-like), W0
/usr/bin/time -f "WALL %e s (process) llama w0 fresh-dir" $P compile_one.py llama 0 /tmp/refit-study/stage/llama out/llama/w0 2>&1 | grep -v Warning | grep -v "return cls" | tail -2
# warm: fresh process, same dir, inductor cache kept, W1
/usr/bin/time -f "WALL %e s (process) llama w1 warm (cache kept)" $P compile_one.py llama 1 /tmp/refit-study/stage/llama out/llama/w1_warm --keep-cache 2>&1 | grep -v Warning | grep -v "return cls" | tail -2
# aotbuild-like: fresh inductor dir again, W1 (the byte-identity reference)
/usr/bin/time -f "WALL %e s (process) llama w1 fresh-dir" $P compile_one.py llama 1 /tmp/refit-study/stage/llama out/llama/w1 2>&1 | grep -v Warning | grep -v "return cls" | tail -2
for i in 1 2; do /usr/bin/time -f "WALL %e s (process) refit" $P refit_time.py out/llama/w0 out/llama/w1 out/llama/patched 2>&1 | grep -v Warn; done
echo BATCH3 DONE
