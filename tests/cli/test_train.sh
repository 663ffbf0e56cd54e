#!/usr/bin/env bash
# tests/cli/test_train.sh — train, evaluate and predict on tiny datasets: the
# checkpoint round trip, warm restarts, bad input (wrong pattern length, NaN,
# labels out of range, truncated or corrupted checkpoints) and a diverging run
# that stops with a message and keeps its best checkpoint.
# usage: bash test_train.sh /path/to/braggflow   (env BF_SOURCE_DIR = repo root)
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"

# tiny three-class datasets
write_seed_ini train 1 20
write_seed_ini val 2 8
write_seed_ini seedlayout 3 4 "layout = seed"
for s in train val seedlayout; do run_ok sample --config $s.ini --out $s.h5; done
TRAIN=(train --train train.h5 --val val.h5 --hidden 8 --batch 16 --threads 2)

CASE="train writes a checkpoint, its optimiser sidecar and one line per epoch"
run_ok "${TRAIN[@]}" --epochs 3 --out m.safetensors
[ -s m.safetensors ] && [ -s m.optim.safetensors ] || fail "checkpoint or sidecar missing"
[ "$(grep -c '^epoch ' "$TMP/stdout")" -eq 3 ] || fail "expected 3 epoch lines"
grep -q "best epoch" "$TMP/stdout" || fail "no summary line"
ok

CASE="the checkpoint is safetensors with the seed's state_dict names and metadata"
header=$(head -c 4000 m.safetensors | tr -d '\0')
for name in conv1.weight conv1.bias conv2.weight conv2.bias fc1.weight fc1.bias fc2.weight \
            fc2.bias regression_layer.weight regression_layer.bias; do
    grep -q "\"$name\"" <<<"$header" || fail "no tensor $name"
done
grep -q '"class_names":"trigonal,tetragonal,cubic"' <<<"$header" || fail "class names"
grep -q '"train_sha256":"[0-9a-f]\{64\}"' <<<"$header" || fail "no training data hash"
ok

CASE="same seed and threads give an identical checkpoint"
run_ok "${TRAIN[@]}" --epochs 3 --out m2.safetensors
cmp -s m.safetensors m2.safetensors || fail "checkpoints differ"
ok

CASE="evaluate prints a table and --json one object with the metrics"
run_ok evaluate --model m.safetensors --data val.h5
grep -q "accuracy" "$TMP/stdout" && grep -q "confusion" "$TMP/stdout" || fail "table"
run_ok evaluate --model m.safetensors --data val.h5 --json
for key in accuracy class_loss mse mae a_A c_A alpha_deg mean_sigma2 confusion; do
    grep -q "\"$key\"" "$TMP/stdout" || fail "JSON lacks $key"
done
[ "$(wc -l <"$TMP/stdout")" -eq 1 ] || fail "JSON is not one line"
ok

CASE="evaluate reads the seed workflow's HDF5 layout"
run_ok evaluate --model m.safetensors --data seedlayout.h5 --json
grep -q '"n":12' "$TMP/stdout" || fail "expected 12 patterns"
ok

CASE="predict prints class, probabilities and a, c, alpha with sigma"
run_ok predict --model m.safetensors --data val.h5
[ "$(head -n 1 "$TMP/stdout")" = "index,class,p_trigonal,p_tetragonal,p_cubic,a_A,sigma_a_A,c_A,sigma_c_A,alpha_deg,sigma_alpha_deg" ] ||
    fail "header: $(head -n 1 "$TMP/stdout")"
[ "$(wc -l <"$TMP/stdout")" -eq 25 ] || fail "expected 24 predictions"
ok

CASE="predict --csv takes a pattern written by simulate"
run_ok simulate --cif "$NACL" --instprm "$INST" --cell "4.2 4.2 4.2 90 90 90" --out p.csv
run_ok predict --model m.safetensors --csv p.csv
[ "$(wc -l <"$TMP/stdout")" -eq 2 ] || fail "expected one prediction"
ok

CASE="--init warm-starts from a checkpoint and continues the epoch count"
run_ok "${TRAIN[@]}" --epochs 1 --init m.safetensors --out warm.safetensors
grep -q "^epoch   4/4" "$TMP/stdout" || fail "epoch count did not continue: $(cat "$TMP/stdout")"
ok

CASE="a pattern length that does not fit the model is rejected"
run_ok simulate --cif "$NACL" --instprm "$INST" --cell "4.2 4.2 4.2 90 90 90" --tof-max 10 --out short.csv
run_fails "points but model 'structure_net' takes 2806" predict --model m.safetensors --csv short.csv
ok

CASE="NaN in a pattern is rejected naming the pattern and point"
awk -F, 'NR == 100 { print $1 ",nan"; next } { print }' p.csv >nan.csv
run_fails "nan.csv:100: intensity is not finite" predict --model m.safetensors --csv nan.csv
ok

CASE="class labels out of range are rejected"
# a fourth (custom) class takes label 3, which a three-class model does not know
cat val.ini >four.ini
printf '[class.extra]\ncif = %s\ncount = 2\na = 4 4.1\nb = = a\nc = = a\nalpha = 90\nbeta = 90\ngamma = 90\n' "$NACL" >>four.ini
run_ok sample --config four.ini --out four.h5
run_fails "has class label 3" evaluate --model m.safetensors --data four.h5
ok

CASE="a truncated checkpoint is rejected with a message naming it"
head -c 3000 m.safetensors >trunc.safetensors
run_fails "trunc.safetensors" evaluate --model trunc.safetensors --data val.h5
ok

CASE="a corrupted checkpoint header is rejected"
cp m.safetensors bad.safetensors
printf 'XXXX' | dd of=bad.safetensors bs=1 seek=20 conv=notrunc 2>/dev/null
run_fails "bad.safetensors" evaluate --model bad.safetensors --data val.h5
ok

CASE="a checkpoint whose tensors do not match its declared shape is rejected naming the tensor"
# same-length edit of the metadata: declares hidden 8 while the tensors are hidden 9
run_ok "${TRAIN[@]}" --epochs 1 --hidden 9 --out h9.safetensors
perl -0777 -pe 's/"shape":"2806 9 3"/"shape":"2806 8 3"/' h9.safetensors >mixed.safetensors
cmp -s h9.safetensors mixed.safetensors && fail "metadata edit did not apply"
run_fails "tensor 'fc1.weight' has shape \[9,11200\], model needs \[8,11200\]" \
    evaluate --model mixed.safetensors --data val.h5
ok

CASE="a diverging run stops with a message and keeps its best checkpoint"
run_ok "${TRAIN[@]}" --epochs 1 --out keep.safetensors
cp keep.safetensors keep.before
run_fails "training diverged" "${TRAIN[@]}" --epochs 5 --lr 10 --clip 1e30 --init keep.safetensors --out keep.safetensors
[ -s keep.safetensors ] || fail "best checkpoint lost"
run_ok evaluate --model keep.safetensors --data val.h5 --json
ok

CASE="bad options are usage errors"
run_fails "--train, --val and --out are required" train --train train.h5
run_fails "--epochs" "${TRAIN[@]}" --epochs 0 --out x.safetensors
run_fails "--out must end in .safetensors" "${TRAIN[@]}" --out x.bin
run_fails "not a known model" "${TRAIN[@]}" --model resnet --out x.safetensors
run_fails "one of --data, --csv or --pattern" predict --model m.safetensors
ok
