cd /tmp/refit-study
P=/work/main/.venv/bin/python
for spec in "mlp 1 mlp_other" "cnn 0 cnn" "cnn 1 cnn" "block 0 block" "block 1 block" "mlp_dyn 0 mlp_dyn" "mlp_dyn 1 mlp_dyn"; do
  set -- $spec
  $P compile_one.py $1 $2 /tmp/refit-study/stage/$3 out/$3/w$2 2>&1 | grep -v Warning | grep -v "return cls" | tail -3
done
echo BATCH1 DONE
