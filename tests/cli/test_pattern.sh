#!/usr/bin/env bash
# tests/cli/test_pattern.sh — predict --pattern: a measured pattern (xy, xye, GSAS
# FXYE / ESD) regridded onto the model's recorded grid gives the same prediction as
# predict --csv of the same pattern; the grid is in the checkpoint; bad files and old
# checkpoints fail with exit 2 and a message naming the file (and line).
# usage: bash test_pattern.sh /path/to/braggflow   (env BF_SOURCE_DIR = repo root)
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"

write_seed_ini train 1 12
write_seed_ini val 2 4
for s in train val; do run_ok sample --config $s.ini --out $s.h5; done
run_ok train --train train.h5 --val val.h5 --hidden 8 --batch 16 --threads 1 --epochs 2 \
    --out m.safetensors

CASE="train records the training set's grid in the checkpoint"
header=$(head -c 6000 m.safetensors | tr -d '\0')
grep -q '"x_unit":"tof_us"' <<<"$header" || fail "no x_unit"
grep -q '"x_count":"2806"' <<<"$header" || fail "no x_count 2806"
grep -q '"x_spacing":"geometric"' <<<"$header" || fail "grid not recorded as geometric"
ok

run_ok simulate --cif "$NACL" --instprm "$INST" --cell "5.5 5.5 5.5 90 90 90" --out p.csv
run_ok predict --model m.safetensors --csv p.csv
cp "$TMP/stdout" want.txt

CASE="predict --pattern on an xy file gives predict --csv's class and cell"
awk -F, 'NR == 1 { print "# x y exported from p.csv"; print "tof intensity"; next }
         { print $1 "  " $2 }' p.csv >p.xy
run_ok predict --model m.safetensors --pattern p.xy
cmp -s want.txt "$TMP/stdout" || fail "xy: $(cat "$TMP/stdout") vs $(cat want.txt)"
ok

CASE="xye (comma separated, '!' comments) and --format"
awk -F, 'NR == 1 { print "! xye"; next } { print $1 ", " $2 ", " sqrt($2 + 1) }' p.csv >p.dat
run_ok predict --model m.safetensors --pattern p.dat --format xye
cmp -s want.txt "$TMP/stdout" || fail "xye differs"
run_ok predict --model m.safetensors --pattern p.csv --format csv
cmp -s want.txt "$TMP/stdout" || fail "--pattern csv differs"
ok

CASE="GSAS FXYE with a SLOG BANK line (TOF in us) gives the same prediction"
n=$(($(wc -l <p.csv) - 1))
awk -F, -v n="$n" 'NR == 1 { printf "%-80s\n", "NaCl simulated"
                             printf "%-80s\n", "Instrument parameter file:nomad-like-bank4.instprm"
                             next }
     NR == 2 { t0 = $1 }
     NR == 3 { printf "BANK 1 %d %d SLOG %.6f %.6f %.9f 0 FXYE\n", n, n, t0, 18919, $1 / t0 - 1 }
     NR >= 2 { lines[NR] = $0 }
     END { for (i = 2; i <= NR; i++) { split(lines[i], f, ",")
             printf "%20.6f%20.9g%20.9g\n", f[1], f[2], sqrt(f[2] + 1) } }' p.csv >p.fxye
run_ok predict --model m.safetensors --pattern p.fxye
cmp -s want.txt "$TMP/stdout" || fail "fxye differs: $(cat "$TMP/stdout")"
ok

CASE="--pattern with --device: cpu changes nothing; cuda works or fails with one line"
run_ok predict --model m.safetensors --pattern p.xy --format xy --device cpu
cmp -s want.txt "$TMP/stdout" || fail "--device cpu changed the prediction"
run predict --model m.safetensors --pattern p.xy --format xy --device cuda
if [ "$RC" -eq 0 ]; then # a GPU is here: the same classes as the CPU's
    [ "$(cut -d, -f2 "$TMP/stdout")" = "$(cut -d, -f2 want.txt)" ] || fail "cuda: other classes"
else
    run_fails "^braggflow: predict --device cuda: backend 'cuda': " \
        predict --model m.safetensors --pattern p.xy --format xy --device cuda
    [ ! -s "$TMP/stdout" ] || fail "--device cuda wrote to stdout"
fi
run_fails "^braggflow predict: --device: 'gpu' is not cpu, cuda or cuda:N" \
    predict --model m.safetensors --pattern p.xy --device gpu
ok

CASE="bad measured files: exit 2, file:line"
awk -F, 'NR == 1 { next } NR == 50 { print 1000 " " $2; next } { print $1 " " $2 }' p.csv >bad.xy
run_fails "bad.xy:49: x 1000 does not increase" predict --model m.safetensors --pattern bad.xy
printf '1000 1\n1001 nan\n' >nan.xy
run_fails "nan.xy:2: intensity is not finite" predict --model m.safetensors --pattern nan.xy
printf '100 1\n200 2\n300 1\n' >far.xy
run_fails "far.xy: x 100..300 us does not overlap the model's grid" \
    predict --model m.safetensors --pattern far.xy
printf '1000 1\n' >one.xy
run_fails "one.xy: 1 point" predict --model m.safetensors --pattern one.xy
printf 'title\nBANK 1 x 1 CONST 1 1 FXYE\n' >bad.gsa
run_fails "bad.gsa:2: BANK line: NCHAN 'x'" predict --model m.safetensors --pattern bad.gsa
run_fails "cannot tell the format" predict --model m.safetensors --pattern p.unknown
run_fails "--format: 'dat'" predict --model m.safetensors --pattern p.xy --format dat
run_fails "--format goes with --pattern" predict --model m.safetensors --csv p.csv --format xy
ok

CASE="a checkpoint without a grid (older braggflow): --pattern says so"
# the same checkpoint with its x_unit key renamed (header length unchanged)
sed 's/"x_unit"/"y_unit"/' m.safetensors >old.safetensors
run_ok predict --model old.safetensors --csv p.csv
run_fails "does not record the grid it was trained on" \
    predict --model old.safetensors --pattern p.xy
ok

CASE="sample [measured]: same seed -> identical file; the settings in the 'measured' attribute"
write_seed_ini noisy 1 12
cat >>noisy.ini <<INI
[measured]
zero_shift = 0.5
background_terms = 3
poisson_counts = 1e6
INI
run_ok sample --config noisy.ini --out noisy.h5 --threads 1
run_ok sample --config noisy.ini --out noisy2.h5 --threads 2
cmp -s noisy.h5 noisy2.h5 || fail "same seed, different threads: files differ"
cmp -s noisy.h5 train.h5 && fail "[measured] changed nothing"
if command -v h5dump >/dev/null 2>&1; then
    h5dump -a measured noisy.h5 >attr.txt 2>&1 || fail "no 'measured' attribute"
    grep -q "background_terms=3 background_coeff=0 0.050000000000000003 poisson_counts=1000000 zero_shift=0.5" attr.txt ||
        fail "measured attribute: $(cat attr.txt)"
    h5dump -a measured train.h5 >/dev/null 2>&1 && fail "a 'measured' attribute without [measured]"
else
    echo "skipped: h5dump not found (the attribute check)"
fi
# a model trained on measured-like data predicts the measured xy file
run_ok train --train noisy.h5 --val val.h5 --hidden 8 --batch 16 --threads 1 --epochs 1 \
    --out noisy.safetensors
run_ok predict --model noisy.safetensors --pattern p.xy
[ "$(wc -l <"$TMP/stdout")" -eq 2 ] || fail "expected one prediction"
ok
