#!/usr/bin/env bash
# tests/cli/test_campaign.sh — campaigns at tiny sizes: baseline, serial and
# streaming end to end (folder contents, timeline, metrics), a campaign killed
# with SIGKILL in the middle of a phase and resumed gives the same checkpoints
# (tensor bytes) and metrics as an uninterrupted run, and bad configs are
# rejected before any work, naming the key.
# usage: bash test_campaign.sh /path/to/braggflow   (env BF_SOURCE_DIR = repo root)
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"

check_folder() { # DIR PHASES
    local d=$1 phases=$2
    for f in config.ini provenance.json timeline.csv metrics.csv summary.txt data/train-0.h5 \
             data/val.h5 data/test.h5; do
        [ -s "$d/$f" ] || fail "$d/$f missing"
    done
    for ((k = 0; k < phases; k++)); do
        [ -s "$d/models/phase-$k.safetensors" ] || fail "no checkpoint for phase $k"
        grep -q "^T_$k,$k," "$d/timeline.csv" || fail "timeline lacks T_$k"
    done
    [ "$(($(wc -l <"$d/metrics.csv") - 1))" -eq "$phases" ] || fail "metrics.csv rows"
    [ -z "$(find "$d" -name '*.tmp.*' -print -quit)" ] || fail "temporary files left"
    (cd "$d" && sha256sum --quiet -c SHA256SUMS) || fail "$d/SHA256SUMS does not match"
}

CASE="baseline: one phase with every training pattern up front"
tiny_ini base baseline 3
run_ok campaign base.ini --out base
check_folder base 1
grep -q "^S_0,0,.*,200$" base/timeline.csv || fail "S_0 should simulate 60 + 2x40 + 30 + 30"
ok

CASE="serial: AL phases train on everything so far"
tiny_ini ser serial 3
run_ok campaign ser.ini --out ser
check_folder ser 3
for k in 1 2; do
    grep -q "^AL_$k,$k," ser/timeline.csv || fail "timeline lacks AL_$k"
    [ -s "ser/data/al-$k.csv" ] || fail "no AL proposal for phase $k"
done
awk -F, 'NR > 1 { n[NR - 1] = $2 } END { exit !(n[1] == 60 && n[2] == 100 && n[3] == 140) }' \
    ser/metrics.csv || fail "training set sizes: $(cut -d, -f2 ser/metrics.csv | tr '\n' ' ')"
grep -q "Table III" "$TMP/stdout" && grep -q "Eq. 1" "$TMP/stdout" || fail "no summary"
ok

CASE="streaming: the study set and part of each batch are simulated during training"
tiny_ini str streaming 3
run_ok campaign str.ini --out str
check_folder str 3
for t in "S'_0" "S'_1" PG_0 PG_1; do
    grep -q "^$t," str/timeline.csv || fail "timeline lacks $t"
done
grep -q "^S'_2," str/timeline.csv && fail "the last phase must simulate its whole batch first"
awk -F, 'NR > 1 { n[NR - 1] = $2 } END { exit !(n[1] == 60 && n[2] == 84 && n[3] == 140) }' \
    str/metrics.csv || fail "training set sizes: $(cut -d, -f2 str/metrics.csv | tr '\n' ' ')"
ok

CASE="--workflow overrides the config and is kept for --resume"
run_ok campaign str.ini --workflow serial --out over
grep -q "^serial" over/tasks/workflow || fail "tasks/workflow"
run_ok campaign --resume over
grep -q "3 task(s)\|task(s) finished in an earlier run" "$TMP/stdout" || fail "nothing skipped"
ok

CASE="a campaign killed with SIGKILL mid-phase resumes to the same checkpoints and metrics"
tiny_ini kill serial "3 150 3"
run_ok campaign kill.ini --out whole
"$BF" campaign kill.ini --out killed >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do # wait until phase 1's training has saved a first checkpoint
    [ -e killed/models/phase-1.safetensors ] && break
    sleep 0.05
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ -e killed/tasks/T_1.done ] && fail "T_1 finished before the kill: make it longer"
[ -e killed/tasks/T_0.done ] || fail "T_0 did not finish before the kill"
run_ok campaign --resume killed
grep -q "skipped" "$TMP/stdout" || fail "resume redid finished tasks"
# every phase's model and optimiser state, tensor for tensor
[ "$(cd whole/models && ls)" = "$(cd killed/models && ls)" ] ||
    fail "checkpoints differ: $(ls whole/models) vs $(ls killed/models)"
n_ckpt=0
for f in whole/models/*.safetensors; do
    same_checkpoint "$f" "killed/models/${f##*/}" whole killed ||
        fail "killed/models/${f##*/} holds other tensors than $f"
    n_ckpt=$((n_ckpt + 1))
done
[ "$n_ckpt" -ge 3 ] || fail "only $n_ckpt checkpoints in whole/models"
cmp -s whole/metrics.csv killed/metrics.csv ||
    fail "metrics differ: $(diff whole/metrics.csv killed/metrics.csv)"
# the comparison can fail: one flipped tensor byte, and another folder's checkpoint
cp killed/models/phase-2.safetensors flipped.safetensors
printf '\x5a' | dd of=flipped.safetensors bs=1 seek=$(($(stat -c %s flipped.safetensors) - 3)) \
    conv=notrunc status=none
same_checkpoint whole/models/phase-2.safetensors flipped.safetensors whole killed &&
    fail "same_checkpoint misses a changed tensor byte"
same_checkpoint whole/models/phase-2.safetensors whole/models/phase-1.safetensors whole whole &&
    fail "same_checkpoint takes phase 1's model for phase 2's"
ok

CASE="bad configs are rejected before any work, naming the key"
tiny_ini bad serial 3 "policy = greedy"
run_fails "\[al\] policy" campaign bad.ini --out nothing1
[ ! -e nothing1 ] || fail "a folder was created for a bad config"
tiny_ini neg serial 3
sed -i 's/^val = 30/val = -5/' neg.ini
run_fails "\[campaign\] val" campaign neg.ini --out nothing2
tiny_ini nocif serial 3
sed -i 's|^cif = .*NaCl.cif|cif = /nonexistent/x.cif|' nocif.ini
run_fails "\[class.cubic\] cif" campaign nocif.ini --out nothing3
tiny_ini box serial 3
sed -i 's/^\[class.tetragonal\]/[class.tetragonal]\na = 4 4\nc = 4 4/' box.ini
run_fails "class.tetragonal" campaign box.ini --out nothing4
tiny_ini unk serial 3 "policy = uniform
temperature = 3"
run_fails "temperature: unknown key" campaign unk.ini --out nothing5
[ ! -e nothing2 ] && [ ! -e nothing3 ] && [ ! -e nothing4 ] && [ ! -e nothing5 ] ||
    fail "a folder was created for a bad config"
run_fails "use --resume" campaign ser.ini --out ser
ok

CASE="report: a self-contained HTML page of a campaign folder"
run_ok report str
grep -q "^report: str/report.html" "$TMP/stdout" || fail "stdout: $(cat "$TMP/stdout")"
[ -s str/report.html ] || fail "no str/report.html"
[ "$(head -c 15 str/report.html)" = "<!DOCTYPE html>" ] || fail "report.html is not HTML5"
[ "$(grep -o "<svg" str/report.html | wc -l)" -ge 4 ] || fail "fewer than 4 charts"
grep -q "<script" str/report.html && fail "report.html has a script"
run_fails "timeline.csv" report /nonexistent-dir-xyz
ok

CASE="--resume resolves the config's relative paths as the original run did"
mkdir -p rel/inputs rel/cfg
cp "$NACL" "$INST" rel/inputs/
cat >rel/cfg/rel.ini <<INI
[run]
seed = 3
[instrument]
instprm = ../inputs/$(basename "$INST")
[class.cubic]
cif = ../inputs/$(basename "$NACL")
count = 10
[campaign]
workflow = baseline
val = 10
test = 10
[train]
epochs = 1
batch = 16
hidden = 8
INI
run_ok campaign rel/cfg/rel.ini --out rel-run
run_ok campaign --resume rel-run
grep -q "not redone" "$TMP/stdout" || fail "resume did not skip the finished tasks"
ok
