#!/usr/bin/env bash
# tests/cli/test_peaks.sh — BraggNN end to end through the commands: sample-peaks ->
# train --model braggnn (epoch lines with errors in pixels) -> peaks (CSV of centres,
# errors next to the conventional fit's, split by height and neighbour), a bare
# BraggNN state_dict, and bad input (exit 2, one line, no output file).
source "$(dirname "$0")/common.bash" "$1"
FIX=$SRC/tests/nn/fixtures

run sample-peaks --count 600 --seed 11 --out train.h5
[ "$RC" = 0 ] || fail "sample-peaks rc $RC"
run sample-peaks --count 200 --seed 12 --out val.h5
[ "$RC" = 0 ] || fail "sample-peaks rc $RC"

CASE=train_braggnn_prints_errors_in_pixels_per_epoch
run train --model braggnn --train train.h5 --val val.h5 --out peaks.safetensors --epochs 3 \
    --batch 64 --lr 1e-3 --threads 2
[ "$RC" = 0 ] || fail "rc $RC"
[ "$(grep -c '^epoch .* error px mean [0-9.]* p50 [0-9.]* p75 [0-9.]* p95 [0-9.]* p99.5' stdout)" = 3 ] ||
    fail "epoch lines: $(cat stdout)"
grep -q "600 training, 200 validation patches of 11 x 11; batch 64, lr 0.001" stdout ||
    fail "header: $(head -1 stdout)"
grep -q "^best epoch [123]: val mse" stdout || fail "no summary line"
[ -s peaks.safetensors ] && [ -s peaks.optim.safetensors ] || fail "no checkpoint + sidecar"
ok

CASE=train_braggnn_defaults_to_braggnns_lr_and_no_clipping
run train --model braggnn --train train.h5 --val val.h5 --out d.safetensors --epochs 1
[ "$RC" = 0 ] || fail "rc $RC"
grep -q "lr 0.0003" stdout || fail "$(head -1 stdout)"
grep -aq 'clip_norm\\":0,' d.safetensors || fail "training_config does not record clip_norm 0"
ok

CASE=peaks_writes_centres_and_errors_next_to_the_fit
run sample-peaks --count 300 --seed 13 --out test.h5
run fit-peaks --data test.h5 --out fits.h5
[ "$RC" = 0 ] || fail "fit-peaks rc $RC"
run peaks --model peaks.safetensors --data test.h5 --fits fits.h5 --out centres.csv --batch 100
[ "$RC" = 0 ] || fail "rc $RC: $(cat stderr)"
[ "$(head -1 centres.csv)" = "index,row_px,col_px" ] || fail "header $(head -1 centres.csv)"
[ "$(wc -l <centres.csv)" = 301 ] || fail "$(wc -l <centres.csv) lines"
# 300 rows of finite numbers (the model is barely trained: no claim on their accuracy)
awk -F, 'NR > 1 && !($1 == NR - 2 && $2 + 0 == $2 && $3 + 0 == $3) { bad++ }
         END { exit bad > 0 }' centres.csv || fail "malformed rows"
grep -q "error (px) against the true centres, 300 patches" stderr || fail "$(cat stderr)"
for row in "all braggnn" "all fit" "height 500-1581 braggnn" "with a neighbour fit" \
    "single peak braggnn"; do
    grep -q "^  $row  *[0-9]" stderr || fail "no row '$row': $(cat stderr)"
done
# the fit's mean error is what fit-peaks prints for the same patches
fit_mean=$(awk '/^  all fit / { print $4 }' stderr)
awk -v m="$fit_mean" 'BEGIN { exit !(m > 0 && m < 0.1) }' || fail "fit mean $fit_mean"
ok

CASE=peaks_on_fitted_labels_names_them_not_the_truth
run fit-peaks --data test.h5 --out fits2.h5 --labelled labelled.h5
[ "$RC" = 0 ] || fail "fit-peaks rc $RC"
run peaks --model peaks.safetensors --data labelled.h5 --out lc.csv
[ "$RC" = 0 ] || fail "rc $RC: $(cat stderr)"
grep -q "error (px) against the file's fitted centres" stderr || fail "$(cat stderr)"
grep -q "true centres" stderr && fail "fitted centres called true: $(cat stderr)"
ok

CASE=peaks_without_out_writes_the_csv_to_stdout_and_the_same_centres
# same batch and threads: the same bits (others change sgemm's summation order)
run peaks --model peaks.safetensors --data test.h5 --batch 100
[ "$RC" = 0 ] || fail "rc $RC"
cmp -s stdout centres.csv || fail "stdout differs from centres.csv"
ok

CASE=a_bare_braggnn_state_dict_runs_on_patches_of_its_size
cat >p15.ini <<INI
[run]
patch_size = 15
count = 20
INI
run sample-peaks --config p15.ini --out p15.h5
[ "$RC" = 0 ] || fail "sample-peaks rc $RC"
run peaks --model "$FIX/braggnn_state_dict.safetensors" --data p15.h5
[ "$RC" = 0 ] || fail "rc $RC: $(cat stderr)"
[ "$(wc -l <stdout)" = 21 ] || fail "$(wc -l <stdout) lines"
ok

CASE=peaks_refuses_another_patch_size_naming_it
run peaks --model peaks.safetensors --data p15.h5 --out bad.csv
[ "$RC" = 2 ] || fail "rc $RC"
grep -q "^braggflow: p15.h5: patches: 15 x 15 pixels, the model takes 11 x 11$" stderr ||
    fail "$(cat stderr)"
[ ! -e bad.csv ] || fail "partial output"
ok

CASE=peaks_refuses_a_structure_checkpoint
write_seed_ini s 1 4
run sample --config s.ini --out s.h5
run train --train s.h5 --val s.h5 --out s.safetensors --epochs 1 --hidden 8
[ "$RC" = 0 ] || fail "train rc $RC"
run peaks --model s.safetensors --data test.h5 --out bad.csv
[ "$RC" = 2 ] || fail "rc $RC"
grep -q "s.safetensors: model 'structure_net' is not a peaks model (braggnn)" stderr ||
    fail "$(cat stderr)"
[ ! -e bad.csv ] || fail "partial output"
run evaluate --model peaks.safetensors --data s.h5
[ "$RC" = 2 ] || fail "evaluate rc $RC"
grep -q "peaks.safetensors: model 'braggnn' is not a structure model (structure_net)" stderr ||
    fail "$(cat stderr)"
ok

CASE=train_braggnn_refuses_a_structure_dataset_and_bad_options
run train --model braggnn --train s.h5 --val val.h5 --out x.safetensors --epochs 1
[ "$RC" = 2 ] || fail "rc $RC"
[ "$(wc -l <stderr)" = 1 ] && grep -q "^braggflow: s.h5" stderr || fail "$(cat stderr)"
run train --model braggnn --train train.h5 --val val.h5 --out x.safetensors --hidden 8
[ "$RC" = 2 ] && grep -q -- "--hidden is structure_net's" stderr || fail "$(cat stderr)"
run train --train s.h5 --val s.h5 --out x.safetensors --augment
[ "$RC" = 2 ] && grep -q -- "--augment is braggnn's" stderr || fail "$(cat stderr)"
run train --model nonet --train s.h5 --val s.h5 --out x.safetensors
[ "$RC" = 2 ] && grep -q "'nonet' is not a known model (structure_net, braggnn)" stderr ||
    fail "$(cat stderr)"
[ ! -e x.safetensors ] || fail "partial output"
ok

CASE=fits_of_other_patches_are_refused
run sample-peaks --count 10 --seed 14 --out other.h5
run peaks --model peaks.safetensors --data other.h5 --fits fits.h5
[ "$RC" = 2 ] || fail "rc $RC"
grep -q "fits.h5: 300 fits of 11 x 11 patches, other.h5 holds 10 of 11 x 11" stderr ||
    fail "$(cat stderr)"
ok
