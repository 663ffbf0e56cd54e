#!/usr/bin/env bash
# tests/cli/test_train_accuracy.sh — end to end: data simulated by `braggflow
# sample` (the three seed classes, 4,500 training patterns), `train`, then
# `evaluate` on an independent test set must reach >= 95 % class accuracy and a
# lattice MSE far below (< 1/4 of) that of predicting the mean. About a minute
# on 2 cores (measured: 97.9 % and 0.020 vs 0.219).
# usage: bash test_train_accuracy.sh /path/to/braggflow   (env BF_SOURCE_DIR = repo root)
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"

CASE="a model trained on simulated data classifies >= 95 % and regresses the lattice"
write_seed_ini train 21 1500
write_seed_ini val 12 300
write_seed_ini test 23 300
for s in train val test; do
    run sample --config $s.ini --out $s.h5
    [ "$RC" -eq 0 ] || fail "sample $s: exit $RC"
done
run train --train train.h5 --val val.h5 --out model.safetensors --epochs 20 --batch 128 \
    --lr 1e-3 --seed 1 --threads 2
[ "$RC" -eq 0 ] || fail "train: exit $RC"
cat "$TMP/stdout"
run evaluate --model model.safetensors --data test.h5 --json
[ "$RC" -eq 0 ] || fail "evaluate: exit $RC"
cat "$TMP/stdout"
acc=$(grep -o '"accuracy":[0-9.eE+-]*' "$TMP/stdout" | cut -d: -f2)
mse=$(grep -o '"mse":[0-9.eE+-]*' "$TMP/stdout" | cut -d: -f2)
base=$(grep -o '"mse_baseline":[0-9.eE+-]*' "$TMP/stdout" | cut -d: -f2)
awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }' || fail "test accuracy $acc < 0.95"
awk -v m="$mse" -v b="$base" 'BEGIN { exit !(m < 0.25 * b) }' ||
    fail "test MSE $mse is not far below predicting the mean ($base)"
ok
