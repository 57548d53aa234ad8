cd /tmp/refit-study
P=/work/main/.venv/bin/python
while pgrep -f "bash batch1.sh" >/dev/null; do sleep 5; done
for spec in "scalars 0 scalars" "scalars 1 scalars"; do
  set -- $spec
  $P compile_one.py $1 $2 /tmp/refit-study/stage/$3 out/$3/w$2 2>&1 | grep -v Warning | grep -v "return cls" | tail -3
done
for s in 0 1; do
  $P compile_one.py cnn $s /tmp/refit-study/stage/cnn_freeze out/cnn_freeze/w$s freezing=true 2>&1 | grep -v Warning | grep -v "return cls" | tail -3
done
for s in 0 1; do
  $P compile_one.py cnn $s /tmp/refit-study/stage/cnn_rcf out/cnn_rcf/w$s aot_inductor.use_runtime_constant_folding=true 2>&1 | grep -v Warning | grep -v "return cls" | tail -3
done
echo BATCH2 DONE
