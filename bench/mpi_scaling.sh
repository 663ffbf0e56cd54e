#!/usr/bin/env bash
# bench/mpi_scaling.sh — 1 process × 2 threads against 2 ranks × 1 thread (issue 11 item 5):
# structure_net training (samples/s, gradient-sum wait and bytes per step) and `sample`
# (patterns/s). Prints one JSON object, the input of tools/scaling_model.py (README
# "Scaling beyond one node (a model)"). Tiny sizes: well under a minute on 2 cores.
#
#   bench/mpi_scaling.sh [BRAGGFLOW]        (default: build/braggflow)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BF=${1:-$ROOT/build/braggflow}

skip() {
    printf '{"skipped":"%s"}\n' "$1"
    exit 0
}
command -v mpirun >/dev/null 2>&1 || skip "mpirun not found"
command -v jq >/dev/null 2>&1 || skip "jq not found"
[ -x "$BF" ] || skip "no $BF (build first)"
BF=$(cd "$(dirname "$BF")" && pwd)/$(basename "$BF") # we cd to a scratch folder below
# Open MPI refuses root without these (containers; README "Running on MPI")
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
MPIRUN=(mpirun --oversubscribe -np 2)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
die() {
    printf '{"error":"%s"}\n' "$1"
    exit 1
}

# ini NAME SEED COUNT: the example three-class config with absolute paths
ini() {
    sed -e "s/^seed = 42/seed = $2/" -e "s/^count = 100/count = $3/" \
        -e "s#= cif/#= $ROOT/examples/cif/#" -e "s#= instrument/#= $ROOT/examples/instrument/#" \
        "$ROOT/examples/sample-small.ini" >"$1.ini"
}
ini train 42 400 # 1200 patterns
ini val 43 100
ini sim 44 2000 # 6000 patterns, 9 blocks of 744
for s in train val; do
    "$BF" sample --config $s.ini --out $s.h5 --threads 2 >/dev/null 2>&1 || die "sample $s failed"
done

EPOCHS=3
TRAIN=(train --train train.h5 --val val.h5 --batch 128 --epochs "$EPOCHS" --patience 0)
"$BF" "${TRAIN[@]}" --threads 2 --log-json t1.json --out m1.safetensors >/dev/null 2>&1 ||
    die "train (1 process) failed"
"${MPIRUN[@]}" "$BF" "${TRAIN[@]}" --threads 1 --log-json t2.json --out m2.safetensors \
    >/dev/null 2>&1 || die "mpirun train failed"

# the parameter count from the checkpoint's safetensors header (8-byte length, JSON)
HLEN=$(od -An -tu8 -N8 m1.safetensors | tr -d ' ')
PARAMS=$(tail -c +9 m1.safetensors | head -c "$HLEN" |
    jq '[to_entries[] | select(.key != "__metadata__") | .value.shape | reduce .[] as $d (1; . * $d)] | add')

# epochs after the first (warm-up: first touch of the arrays): mean samples/s and wait per step
summary() {
    jq -s '.[1:] | (map(.steps) | add) as $steps | {samples_per_s: (map(.samples_per_s) | add / length),
        allreduce_s_per_step: ((map(.allreduce_s) | add) / $steps),
        steps_per_epoch: .[0].steps}' "$1"
}

# rate CMD...: the patterns/s that `sample` prints (rank 0's line under mpirun)
rate() {
    "$@" 2>&1 | sed -n 's/.*; \([0-9.]*\) patterns\/s).*/\1/p' | tail -1
}
S1=$(rate "$BF" sample --config sim.ini --out s1.h5 --threads 2)
S2=$(rate "${MPIRUN[@]}" "$BF" sample --config sim.ini --out s2.h5 --threads 1)
if [ -z "$S1" ] || [ -z "$S2" ]; then die "sample rate not found"; fi
cmp -s s1.h5 s2.h5 && SAME=true || SAME=false

jq -n --argjson p "$PARAMS" --argjson t1 "$(summary t1.json)" --argjson t2 "$(summary t2.json)" \
    --argjson s1 "$S1" --argjson s2 "$S2" --argjson same "$SAME" --argjson ep $EPOCHS \
    --arg host "$(uname -n)" --argjson cores "$(nproc)" '{
  host: $host, cores: $cores,
  train: {model: "structure_net", patterns: 1200, batch: 128, epochs: $ep,
          params: $p, allreduce_bytes_per_step: ($p * 4),
          "1x2": $t1, "2x1": $t2},
  sample: {patterns: 6000, "1x2_patterns_per_s": $s1, "2x1_patterns_per_s": $s2,
           files_identical: $same}}'
