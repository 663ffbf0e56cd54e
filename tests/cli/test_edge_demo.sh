#!/usr/bin/env bash
# tests/cli/test_edge_demo.sh — scripts/edge-demo.sh (make edge-demo) at CI size: the
# loop runs end to end, the labels are the stream's first patches with fitted (not
# true) centres, the service swapped models once while a stream ran (two hashes
# answered it), timings.ini is what `plan --measure` reads, the service exited 0 on
# SIGTERM; a step failing after the service started stops the script and the
# service with it; a folder the script did not make is not emptied.
source "$(dirname "$0")/common.bash" "$1"
SCRIPT=$SRC/scripts/edge-demo.sh

CASE=serve_exists
if ! "$BF" serve --help >/dev/null 2>&1; then
    echo "skip $CASE: braggflow has no serve command"
    exit 0
fi
ok

CASE=ci_run_completes
start=$EPOCHREALTIME
BRAGGFLOW=$BF EDGE_DEMO_OUT=$TMP/edge EDGE_DEMO_SIZE=ci bash "$SCRIPT" >stdout 2>stderr
RC=$?
[ "$RC" = 0 ] || fail "rc $RC: $(tail -5 stdout)"
echo "   (ci run: $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s)"
grep -q "drained and exited 0 after SIGTERM" stdout || fail "no clean exit of the service"
ok

E=$TMP/edge
CASE=two_models_answered_the_stream_across_the_swap
[ "$(grep -c '^model ' "$E/drift-swap.txt")" = 2 ] || fail "$(cat "$E/drift-swap.txt")"
grep -q '^swap order *ok' "$E/drift-swap.txt" || fail "swap order not ok"
[ "$(grep -c 'swapped in' "$E/serve.log")" = 1 ] || fail "serve.log: $(cat "$E/serve.log")"
old=$(sed -n 's/^model *\([0-9a-f]*\)\.\.\..*/\1/p' "$E/before-test.txt")
new=$(sed -n 's/^model *\([0-9a-f]*\)\.\.\..*/\1/p' "$E/drift-test-new.txt")
[ -n "$old" ] && [ -n "$new" ] && [ "$old" != "$new" ] || fail "old '$old', new '$new'"
[ "$new" = "$(sha256sum "$E/served/model.safetensors" | cut -c1-12)" ] ||
    fail "the new model is not the served file"
grep -q "swapped in $new (was $old)" "$E/serve.log" || fail "serve.log: $(cat "$E/serve.log")"
ok

CASE=timings_ini_has_every_key_and_plan_measures_from_it
for k in threads label_items label_s train_items train_s deploy_s inference_items inference_s \
    item_bytes model_bytes end_to_end_s; do
    grep -q "^$k = [0-9.]*$" "$E/timings.ini" || fail "timings.ini: no '$k': $(cat "$E/timings.ini")"
done
ls "$E" | grep -q '\.tmp' && fail "a temporary file is left"
run plan --measure "$E"
[ "$RC" = 0 ] || fail "plan rc $RC"
grep -q "measured" stdout || fail "plan measured nothing"
# the label step's own numbers: A = label_s / label_items
grep -q "label_s / label_items" stdout || fail "A not measured"
ok

CASE=labels_are_the_fitted_centres_of_the_streams_first_patches
if ! command -v h5dump >/dev/null || ! command -v h5ls >/dev/null; then
    echo "skipped $CASE: no h5dump/h5ls (hdf5-tools) to read the files"
else
    n=$(h5ls "$E/label-patches.h5" | sed -n 's/^patches .*{\([0-9]*\),.*/\1/p')
    [ "$n" -ge 1 ] || fail "label-patches.h5 has no patches"
    h5dump -d patches -s 0,0,0 -c "$n,11,11" -y -w 0 "$E/label-patches.h5" | sed -n '/DATA {/,/}/p' >a.txt
    h5dump -d patches -s 0,0,0 -c "$n,11,11" -y -w 0 "$E/drift-stream.h5" | sed -n '/DATA {/,/}/p' >b.txt
    [ -s a.txt ] && cmp -s a.txt b.txt || fail "label patches differ from the stream's first $n"
    h5ls "$E/labels-train.h5" >ls.txt
    grep -q '^centre ' ls.txt || fail "labels-train.h5 has no centre"
    grep -qE '^(peak|background|neighbour) ' ls.txt && fail "labels-train.h5 carries the truth"
    h5dump -a kind "$E/labels-train.h5" | grep -q '"fitted"' || fail "kind is not fitted"
fi
ok

CASE=a_folder_it_did_not_make_is_not_emptied
mkdir mine && echo keep >mine/file
BRAGGFLOW=$BF EDGE_DEMO_OUT=$TMP/mine EDGE_DEMO_SIZE=ci bash "$SCRIPT" >stdout 2>stderr
RC=$?
[ "$RC" = 2 ] || fail "rc $RC"
grep -q "not an earlier edge-demo's output" stderr || fail "$(cat stderr)"
[ "$(cat mine/file)" = keep ] || fail "mine/file is gone"
ok

CASE=a_failing_step_stops_the_script_and_the_service
# a braggflow whose fine-tuning fails: the service is up by then
cat >bf-failing <<SH
#!/usr/bin/env bash
if [ "\$1" = train ] && [[ " \$* " == *" --init "* ]]; then
    echo "braggflow: train: injected failure" >&2
    exit 2
fi
exec "$BF" "\$@"
SH
chmod +x bf-failing
BRAGGFLOW=$TMP/bf-failing EDGE_DEMO_OUT=$TMP/edge-fail EDGE_DEMO_SIZE=ci bash "$SCRIPT" \
    >stdout 2>stderr
RC=$?
[ "$RC" != 0 ] || fail "the script succeeded although training failed"
grep -q "edge-demo: FAILED" stderr || fail "no failure message"
grep -q "serving braggnn" "$TMP/edge-fail/serve.log" || fail "the service had not started"
sleep 0.2
pgrep -f "$TMP/edge-fail/serve.sock" >/dev/null && fail "the service is still running"
[ -e "$TMP/edge-fail/timings.ini" ] && fail "timings.ini written by a failed run"
ok
