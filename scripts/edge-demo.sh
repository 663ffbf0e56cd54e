#!/usr/bin/env bash
# make edge-demo: seed 002's retrain loop (its Fig. 2 / Table 1, DESIGN §9) on one
# machine. A BraggNN model is served; the experiment drifts; a share p of the new
# patches is labelled by the conventional fit (fit-peaks --labelled), the served
# model is fine-tuned on those labels (train --init), the new checkpoint is renamed
# onto the served path and the service swaps it in while a stream is running. Prints
# each step's seconds beside the paper's Table 1, writes out/edge-demo/timings.ini
# (the contract of docs/serve.md "Cost model") and ends with `braggflow plan --measure`.
#
# usage: scripts/edge-demo.sh [BUILD_DIR]      (default build; make edge-demo)
# environment: BRAGGFLOW=path/to/braggflow (instead of BUILD_DIR/braggflow),
#   EDGE_DEMO_OUT=DIR (default out/edge-demo; emptied first if an earlier run made it),
#   EDGE_DEMO_SIZE=full|ci
#   (ci: tiny sizes for tests/cli/test_edge_demo.sh; the same loop, numbers that
#   mean little).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
bf=${BRAGGFLOW:-$build/braggflow}
case $bf in /*) ;; *) bf=$PWD/$bf ;; esac
out=${EDGE_DEMO_OUT:-$root/out/edge-demo}
case $out in /*) ;; *) out=$PWD/$out ;; esac
size=${EDGE_DEMO_SIZE:-full}
[ -x "$bf" ] || { echo "edge-demo: no braggflow at $bf (run make build)" >&2; exit 2; }

# Sizes. full: under a minute on 2 idle cores; ci: seconds. p = 10 % is seed 002's
# share (its Sec. 4.2).
case $size in
full) base_n=6000 base_val=1000 base_epochs=3 stream_n=20000 eval_n=5000
      tune_epochs=8 rate=5000 ;;
ci)   base_n=1000 base_val=200 base_epochs=1 stream_n=2000 eval_n=500
      tune_epochs=2 rate=4000 ;;
*) echo "edge-demo: EDGE_DEMO_SIZE is full or ci, not '$size'" >&2; exit 2 ;;
esac
label_n=$((stream_n / 10))
threads=$(nproc 2>/dev/null || echo 2)
drift=$root/examples/peaks/edge-drift.ini
shown=${out#"$root"/}                 # the out folder as printed

# emptied first, but only a folder this script made (EDGE_DEMO_OUT may be anything)
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -e "$out/.edge-demo" ]; then
    echo "edge-demo: $out exists and is not an earlier edge-demo's output; not emptying it" >&2
    exit 2
fi
rm -rf "$out"
mkdir -p "$out/served"
touch "$out/.edge-demo"
cd "$out"                             # every file below is relative to it
served=served/model.safetensors
next=served/model.next.safetensors    # train writes here; then renamed onto $served
# a socket file in the out folder: no port to clash, and a relative name stays
# within the 107 bytes an ipc path may have however deep the checkout is
endpoint=ipc://serve.sock
export BF_PROGRESS=0

server_pid=""
client_pid=""
cleanup() {
    local rc=$?
    set +e                            # a kill of a process already gone must not stop this
    [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    if [ "$rc" -ne 0 ]; then
        echo "edge-demo: FAILED (exit $rc); the service's log: $out/serve.log" >&2
        [ -s serve.log ] && sed 's/^/  serve: /' serve.log >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM              # through cleanup: the service goes too

die() { echo "edge-demo: $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
indent() { sed 's/^/   /'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# jfield KEY JSON: a scalar of a one-line JSON object (the service's statistics)
jfield() { sed -n "s/.*\"$1\": \"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" <<<"$2"; }
stats_json() { "$bf" serve-client --connect "$endpoint" --stats --timeout 5; }
stats() { jfield "$1" "$(stats_json)"; }
# stream NAME FILE [serve-client options]: streams FILE at the service, keeps the
# report in NAME.txt and shows it
stream() {
    local name=$1 file=$2
    shift 2
    "$bf" serve-client --connect "$endpoint" --data "$file" "$@" >"$name.txt"
    indent <"$name.txt"
}
field() { sed -n "s/^$2 *//p" "$1.txt"; }       # a line of a stream's report
err_mean() { field "$1" 'error (px)' | awk '{ print $2 }'; }
items_per_s() { field "$1" throughput | awk '{ print $1 }'; }
p50_us() { field "$1" 'round trip' | awk '{ print $2 }'; }

t_start=$(now)
echo "== braggflow $("$bf" --version | cut -d' ' -f2): the retrain loop at the edge (seed 002 Fig. 2,"
echo "   Table 1; DESIGN §9) on one machine, $threads cores; outputs in $shown/ ($size size)"
echo
echo "-- 1. The model in service: BraggNN trained on the default experiment"
echo "      ($base_n patches x $base_epochs epochs), served from $shown/$served"
"$bf" sample-peaks --count "$base_n" --seed 1 --out before-train.h5 2>/dev/null
"$bf" sample-peaks --count "$base_val" --seed 2 --out before-val.h5 2>/dev/null
"$bf" sample-peaks --count "$eval_n" --seed 3 --out before-test.h5 2>/dev/null
"$bf" train --model braggnn --train before-train.h5 --val before-val.h5 \
    --epochs "$base_epochs" --batch 64 --lr 2e-3 --threads "$threads" --out "$served" \
    >train-base.txt
awk '/^best epoch/ || /^checkpoint/' train-base.txt | indent
"$bf" serve --model "$served" --bind "$endpoint" 2>serve.log &
server_pid=$!
for _ in $(seq 100); do
    "$bf" serve-client --connect "$endpoint" --stats --timeout 1 >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || die "the service exited at start"
    sleep 0.1
done
old_hash=$(stats hash)
[ "$old_hash" = "$(sha "$served")" ] || die "the service reports model '$old_hash', not the file's"
sed 's/^braggflow //' serve.log | indent
echo "   on $eval_n new patches of that experiment:"
stream before-test before-test.h5 --batch 64 --inflight 2 | grep -E '^   (model|error)'
echo
echo "-- 2. The experiment drifts (examples/peaks/edge-drift.ini: peaks up to 2 px off"
echo "      the patch centre, broader, on a higher background). The detector streams"
echo "      $stream_n patches at $rate patches/s; the old model answers:"
"$bf" sample-peaks --config "$drift" --count "$stream_n" --seed 21 --out drift-stream.h5 \
    2>/dev/null
"$bf" sample-peaks --config "$drift" --count "$eval_n" --seed 31 --out drift-test.h5 2>/dev/null
stream drift-stream drift-stream.h5 --batch 64 --inflight 2 --rate "$rate"
echo "   and on $eval_n held-out patches of the drifted experiment (scored again in step 6):"
stream drift-test-old drift-test.h5 --batch 64 --inflight 2 | grep -E '^   error'
echo
echo "-- 3. Labelling: the conventional fit labels the stream's first $label_n patches"
echo "      (p = 10 %); converged fits become labels, the first 80 % for training"
# sample-peaks draws patch i from random stream (seed, i): these are the stream's
# first label_n patches, exactly (tests/cli/test_edge_demo.sh checks it)
"$bf" sample-peaks --config "$drift" --count "$label_n" --seed 21 --out label-patches.h5 \
    2>/dev/null
t0=$(now)
"$bf" fit-peaks --data label-patches.h5 --out label-fits.h5 --labelled labels-train.h5 \
    --labelled-val labels-val.h5 --threads "$threads" 2>fit-peaks.txt
t1=$(now)
label_s=$(elapsed "$t0" "$t1")
sed 's/^braggflow fit-peaks: //' fit-peaks.txt | indent
n_train=$(sed -n 's/.*labels-train.h5 (\([0-9]*\)).*/\1/p' fit-peaks.txt)
[ -n "$n_train" ] || die "fit-peaks did not report its labels"
echo "   labelling: $label_s s"
echo
echo "-- 4. Training: fine-tune the served model on the $n_train fitted labels ($tune_epochs epochs,"
echo "      train --init; its val error is against the fitted labels, not the truth)"
t0=$(now)
"$bf" train --model braggnn --init "$served" --train labels-train.h5 --val labels-val.h5 \
    --epochs "$tune_epochs" --batch 128 --lr 1e-3 --threads "$threads" --out "$next" \
    >train-tune.txt
t1=$(now)
train_s=$(elapsed "$t0" "$t1")
awk 'NR == 1 || /^best epoch/' train-tune.txt | indent
echo "   training: $train_s s"
echo
echo "-- 5. Deployment: the new checkpoint is renamed onto the served path while the"
echo "      detector streams; timed from the rename to the service reporting the new model"
new_hash=$(sha "$next")
[ "$new_hash" != "$old_hash" ] || die "the fine-tuned checkpoint equals the served one"
model_bytes=$(stat -c %s "$next")
# 6000 patches or more over 3 s: the swap falls inside the stream
repeat=$(((6000 + eval_n - 1) / eval_n))
swap_rate=$((eval_n * repeat / 3))
"$bf" serve-client --connect "$endpoint" --data drift-test.h5 --batch 32 --rate "$swap_rate" \
    --repeat "$repeat" >drift-swap.txt &
client_pid=$!
sleep 0.5
# The optimiser state first, so that a later --init of the served path finds the
# state that goes with its weights; then the weights: a rename(2) within a directory
# is atomic, the service never sees half a file.
mv served/model.next.optim.safetensors served/model.optim.safetensors
t0=$(now)
mv "$next" "$served"
while :; do
    js=$(stats_json)
    [ "$(jfield hash "$js")" = "$new_hash" ] && break
    [ "$(jfield failed_loads "$js")" = 0 ] ||
        die "the service refused the new model: $(jfield last_load_error "$js")"
    [ "$(elapsed "$t0" "$(now)" | cut -d. -f1)" -lt 30 ] || die "no swap within 30 s"
done
t1=$(now)
deploy_s=$(elapsed "$t0" "$t1")
kill -0 "$client_pid" 2>/dev/null ||
    die "the stream ended before the swap (deployment took $deploy_s s)"
wait "$client_pid" || die "the stream across the swap failed (drift-swap.txt)"
client_pid=""
# (its error line scores each patch's last answer, the new model's: step 6 has it)
grep -v '^error' drift-swap.txt | indent
grep 'swapped in' serve.log | sed 's/^braggflow //' | indent
swaps=$(stats swaps)
[ "$swaps" = 1 ] || die "the service counts $swaps swaps, expected 1"
n_models=$(grep -c '^model ' drift-swap.txt || true)
[ "$n_models" = 2 ] || die "$n_models models answered the stream across the swap, expected 2"
echo "   deployment: $deploy_s s"
end_to_end_s=$(awk -v a="$label_s" -v b="$train_s" -v c="$deploy_s" \
    'BEGIN { printf "%.3f", a + b + c }')
echo
echo "-- 6. The new model on the held-out drifted patches, as fast as the service goes"
echo "      (batch 128, 4 in flight, twice over):"
stream drift-test-new drift-test.h5 --batch 128 --inflight 4 --repeat 2
grep -q "^model *${new_hash:0:12}" drift-test-new.txt || die "the new model did not answer"
inference_items=$(sed -n 's/^requests *[0-9]* (\([0-9]*\) items.*/\1/p' drift-test-new.txt)
inference_s=$(field drift-test-new throughput | awk '{ print $4 }')
echo
echo "-- 7. Seed 002 Table 1 on this machine (s)"
awk -v l="$label_s" -v t="$train_s" -v d="$deploy_s" -v e="$end_to_end_s" \
    -v nl="$label_n" -v nt="$n_train" -v ep="$tune_epochs" 'BEGIN {
    f = "   %-36s %8s  %8s %9s %10s\n"
    printf f, "step", "here", "V100", "Cerebras", "SambaNova"
    printf f, "labelling (fit-peaks, " nl " patches)", sprintf("%.2f", l), "-", "-", "-"
    printf f, "data transfer", "local", "N/A", "7", "7"
    printf f, "training (" nt " labels x " ep " epochs)", sprintf("%.2f", t), "1102", "19", "139"
    printf f, "model transfer (here: rename + swap)", sprintf("%.2f", d), "N/A", "5", "5"
    printf f, "end to end as the paper (no labels)", sprintf("%.2f", t + d), "1102", "31", "151"
    printf f, "end to end with the labelling", sprintf("%.2f", e), "-", "-", "-"
}'
echo "   The paper's columns: BraggNN trained on its dataset on one V100 at the experiment,"
echo "   or on Cerebras / SambaNova systems 3000 km away with the data and the model moved"
echo "   over the wide-area network (ESnet); its end to end leaves the labelling out. Here"
echo "   every step is local: nothing crosses a network, the model is fine-tuned on $n_train"
echo "   fitted labels rather than trained from scratch, and the model transfer is the"
echo "   rename until the service reports the new model's hash."
awk -v a="$(items_per_s drift-stream)" -v b="$(p50_us drift-stream)" \
    -v c="$(items_per_s drift-test-new)" -v r="$rate" 'BEGIN {
    printf "   service: %.0f patches/s at the detector'\''s %d (round trip p50 %.0f us), %.0f flat out\n", a, r, b, c }'
awk -v b="$(err_mean drift-test-old)" -v a="$(err_mean drift-test-new)" \
    -v o="$(err_mean before-test)" 'BEGIN {
    printf "   centre error on the held-out drifted patches: %.3f px before the loop, %.3f px\n", b, a
    printf "   after (the old model on its own experiment: %.3f px)\n", o }'

# The contract of docs/serve.md "Cost model", read by `braggflow plan --measure`;
# written to a temporary name and renamed, like every output.
cat >timings.ini.tmp <<INI
# $shown/timings.ini — written by scripts/edge-demo.sh (seed 002 Table 1 on one machine)
[edge]
threads = $threads
label_items = $label_n
label_s = $label_s
train_items = $n_train
train_s = $train_s
deploy_s = $deploy_s
inference_items = $inference_items
inference_s = $inference_s
item_bytes = 484
model_bytes = $model_bytes
end_to_end_s = $end_to_end_s
INI
mv timings.ini.tmp timings.ini
echo
echo "-- 8. The cost model with these measurements (braggflow plan --measure $shown)"
(cd "$root" && "$bf" plan --measure "$shown") | indent
echo
kill -TERM "$server_pid"
serve_rc=0
wait "$server_pid" || serve_rc=$?
server_pid=""
[ "$serve_rc" = 0 ] || die "the service exited $serve_rc after SIGTERM"
echo "The service drained and exited 0 after SIGTERM. The whole demo took" \
    "$(elapsed "$t_start" "$(now)") s."
