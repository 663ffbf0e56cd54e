#!/usr/bin/env bash
# tests/cli/test_cw.sh — constant-wavelength instruments end to end (issue 12):
# simulate (CSV header, grid), reflections (CW columns, Bragg's law, Ka2 partner),
# sample on a 2theta grid (the HDF5 x axis is two_theta_deg), train + predict on it,
# and the X-ray f' override.
# usage: bash test_cw.sh /path/to/braggflow   (env BF_SOURCE_DIR = repo root)
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"
LAB=$EX/instrument/cuka-lab.instprm
CWN=$EX/instrument/cw-neutron-1.54A.instprm

CASE="simulate on a lab X-ray 2theta grid: header, point count, peaks present"
run_ok simulate --cif "$NACL" --instprm "$LAB" --cell "$CELL" --tth-min 20 --tth-max 80 \
    --tth-step 0.02 --out lab.csv
[ "$(head -1 lab.csv)" = "two_theta_deg,intensity" ] || fail "header: $(head -1 lab.csv)"
[ "$(($(wc -l <lab.csv) - 1))" -eq 3001 ] || fail "$(wc -l <lab.csv) lines, expected 3001 + header"
sed -n 2p lab.csv | grep -q '^20.000000,' || fail "first point $(sed -n 2p lab.csv)"
tail -1 lab.csv | grep -q '^80.000000,' || fail "last point $(tail -1 lab.csv)"
# NaCl 200 (d = 2.82 A) with Cu Ka1 sits at 2 asin(1.5405 / 5.64) = 31.70 deg: the maximum
awk -F, 'NR > 1 && $2 > m { m = $2; x = $1 } END { if (x < 31.6 || x > 31.8) exit 1 }' lab.csv ||
    fail "the strongest point is not at NaCl 200 (31.70 deg)"
ok

CASE="reflections: CW columns, Bragg's law with Zero, Ka2 partners"
run_ok reflections --cif "$NACL" --instprm "$LAB" --cell "$CELL" --tth-min 10 --tth-max 120
head -1 "$TMP/stdout" | grep -q '^h,k,l,mult,d,two_theta_deg,two_theta2_deg,F2,sig_cdeg2,gam_cdeg,icorr$' ||
    fail "header $(head -1 "$TMP/stdout")"
awk -F, 'NR > 1 { t = 2 * atan2(1.5405 / (2 * $5), sqrt(1 - (1.5405 / (2 * $5))^2)) * 45 / atan2(1, 1)
                  if ((t - $6)^2 > 1e-14 || $7 <= $6) exit 1 }' "$TMP/stdout" ||
    fail "a Ka1 position is off Bragg's law, or Ka2 is not above it"
run_ok reflections --cif "$NACL" --instprm "$CWN" --cell "$CELL" --tth-min 5 --tth-max 150 \
    --tth-step 0.05
awk -F, 'NR > 1 && $7 != 0 { exit 1 }' "$TMP/stdout" || fail "a one-line neutron file has Ka2"
ok

CASE="--fprime changes X-ray intensities and nothing else"
run_ok reflections --cif "$NACL" --instprm "$LAB" --cell "$CELL" --fprime "Na:2.0:0.1"
cut -d, -f1-7 "$TMP/stdout" >a.csv
cut -d, -f8 "$TMP/stdout" >fa.csv
run_ok reflections --cif "$NACL" --instprm "$LAB" --cell "$CELL"
cut -d, -f1-7 "$TMP/stdout" >b.csv
cut -d, -f8 "$TMP/stdout" >fb.csv
cmp -s a.csv b.csv || fail "positions changed with --fprime"
! cmp -s fa.csv fb.csv || fail "|F|^2 did not change with --fprime"
ok

CASE="sample on a CW neutron grid, train and predict on it"
cat >cw.ini <<INI
[run]
seed = 7
[instrument]
instprm = $CWN
tth_min = 10
tth_max = 100
tth_step = 0.1
[class.cubic]
cif = $NACL
count = 40
[class.tetragonal]
cif = $EX/cif/BaTiO3-P4mm.cif
count = 40
INI
run_ok sample --config cw.ini --out cw.h5
h5ls cw.h5 | grep -q '^two_theta_deg .*{901}' || fail "no two_theta_deg axis of 901 points: $(h5ls cw.h5)"
h5ls cw.h5 | grep -q '^patterns .*{80, 901}' || fail "patterns: $(h5ls cw.h5)"
run_ok train --train cw.h5 --val cw.h5 --epochs 2 --batch 16 --hidden 16 --out cw.safetensors
run_ok predict --model cw.safetensors --data cw.h5
[ "$(wc -l <"$TMP/stdout")" -eq 81 ] || fail "predict printed $(wc -l <"$TMP/stdout") lines"
ok

CASE="a measured 2theta pattern (xy, GSAS CONST FXYE in centidegrees) predicts as on the grid"
run_ok simulate --cif "$NACL" --instprm "$CWN" --cell "5.5 5.5 5.5 90 90 90" --tth-min 10 \
    --tth-max 100 --tth-step 0.1 --out q.csv
run_ok predict --model cw.safetensors --csv q.csv
cp "$TMP/stdout" want.txt
awk -F, 'NR == 1 { print "# 2theta intensity"; next } { print $1, $2 }' q.csv >q.xy
run_ok predict --model cw.safetensors --pattern q.xy
cmp -s want.txt "$TMP/stdout" || fail "xy: $(cat "$TMP/stdout") vs $(cat want.txt)"
n=$(($(wc -l <q.csv) - 1))
awk -F, -v n="$n" 'NR == 1 { printf "%-80s\n", "NaCl, CW neutrons"; next }
     NR == 2 { printf "BANK 1 %d %d CONST %.4f %.4f 0 0 FXYE\n", n, n, 100 * $1, 10 }
     { printf "%20.6f%20.9g%20.9g\n", 100 * $1, $2, sqrt($2 + 1) }' q.csv >q.fxye
run_ok predict --model cw.safetensors --pattern q.fxye
cmp -s want.txt "$TMP/stdout" || fail "fxye: $(cat "$TMP/stdout") vs $(cat want.txt)"
ok

CASE="a campaign and its report on a CW instrument"
cat >>cw.ini <<INI
[campaign]
workflow = serial
phases = 2
val = 20
test = 20
study_per_class = 10
new_per_phase = 20
sim_threads = 1
train_threads = 1
[train]
epochs = 2
batch = 16
hidden = 16
[al]
policy = seed-mix
INI
sed -i 's/^count = 40$/count = 20/' cw.ini
run_ok campaign cw.ini --out run
run_ok report run
grep -q 'vs 2θ' run/report.html || fail "the report's pattern chart is not against 2θ"
h5ls run/data/test.h5 | grep -q '^two_theta_deg ' || fail "test.h5 has no 2theta axis"
ok
