cd /tmp/refit-study
P=/work/main/.venv/bin/python
for s in 0 1; do $P compile_one.py scalars $s /tmp/refit-study/stage/scalars_keep out/scalars_keep/w$s always_keep_tensor_constants=true 2>&1 | grep -v Warning | grep -v "return cls" | tail -2; done
echo BATCH5 DONE
