#!/usr/bin/env bash
# tests/cli/test_campaign_grid.sh — seed 000's workflows on a grid split into
# bias-free phases: baseline (the whole grid), serial (phase by phase) and
# parallel (phase k+1 simulated while phase k trains), which must compute
# exactly what serial computes.
# usage: bash test_campaign_grid.sh /path/to/braggflow   (env BF_SOURCE_DIR = repo root)
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"
cat >grid.ini <<INI
[run]
seed = 2
sampler = grid
[instrument]
instprm = $INST
[class.cubic]
cif = $NACL
a = 3.5 4.5
a_step = 0.02
[class.tetragonal]
cif = $EX/cif/BaTiO3-P4mm.cif
a = 3.8 4.2
c = 3.8 4.2
a_step = 0.04
c_step = 0.04
[campaign]
workflow = parallel
phases = 2
val = 30
test = 30
sim_threads = 1
train_threads = 1
[train]
epochs = 3
batch = 16
hidden = 16
INI

samples() { awk -F, -v t="$2" '$1 == t { print $6 }' "$1/timeline.csv"; }

CASE="baseline trains once on the whole grid"
run_ok campaign grid.ini --workflow baseline --out base
[ "$(($(wc -l <base/metrics.csv) - 1))" -eq 1 ] || fail "expected one phase"
whole=$(awk -F, 'NR == 2 { print $2 }' base/metrics.csv)
ok

CASE="serial and parallel train on the two bias-free halves of that grid"
run_ok campaign grid.ini --workflow serial --out ser
run_ok campaign grid.ini --out par
grep -q "Speed-up over the serial run of the same config" "$TMP/stdout" ||
    fail "no speed-up over the serial campaign next to it"
for d in ser par; do
    [ "$(($(wc -l <$d/metrics.csv) - 1))" -eq 2 ] || fail "$d: expected two phases"
    n0=$(awk -F, 'NR == 2 { print $2 }' $d/metrics.csv)
    n1=$(awk -F, 'NR == 3 { print $2 }' $d/metrics.csv)
    [ $((n0 + n1)) -eq "$whole" ] || fail "$d: phases hold $n0 + $n1 cells, the grid $whole"
done
ok

CASE="parallel simulates phase 1 during phase 0's training and computes what serial does"
grep -q "^PG_0," par/timeline.csv || fail "no parallel group"
s1=$(awk -F, '$1 == "S_1" { print $3 }' par/timeline.csv)
t0_end=$(awk -F, '$1 == "T_0" { print $4 }' par/timeline.csv)
awk -v s="$s1" -v e="$t0_end" 'BEGIN { exit !(s < e) }' || fail "S_1 did not start before T_0 ended"
cmp -s ser/metrics.csv par/metrics.csv || fail "metrics differ: $(diff ser/metrics.csv par/metrics.csv)"
ok

CASE="a random-sampler config cannot run the parallel workflow"
sed -e 's/^sampler = grid/sampler = random/' -e 's/^a_step.*//' -e 's/^c_step.*//' grid.ini |
    sed 's/^\(cif = .*\)$/\1\ncount = 5/' >rand.ini
run campaign rand.ini --workflow parallel --out nothing
[ "$RC" -ne 0 ] && grep -q "sampler" "$TMP/stderr" || fail "accepted: $(cat "$TMP/stderr")"
[ ! -e nothing ] || fail "a folder was created"
ok
