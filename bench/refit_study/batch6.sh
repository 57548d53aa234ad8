cd /tmp/refit-study
P=/work/main/.venv/bin/python
for m in tied tiny; do for s in 0 1; do $P compile_one.py $m $s /tmp/refit-study/stage/$m out/$m/w$s 2>&1 | grep -v Warning | grep -v "return cls" | tail -2; done; done
for s in 0 1; do $P compile_one.py mlp $s /tmp/refit-study/stage/mlp_cppconsts out/mlp_cppconsts/w$s aot_inductor.use_consts_asm_build=false 2>&1 | grep -v Warning | grep -v "return cls" | tail -2; done
echo BATCH6 DONE
