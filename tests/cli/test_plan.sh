#!/usr/bin/env bash
# tests/cli/test_plan.sh — `braggflow plan`, seed 002's cost model: the paper's example
# by default (break-even 19,003,000 / 2.106 = 9,023,266.86 items), JSON that parses, inputs
# measured from DIR/timings.ini and overridden by options, and bad input (exit 2, one line).
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"

# json_get EXPR: evaluates EXPR on the JSON object in $TMP/stdout (as d) with python3.
json_get() {
    python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" "$TMP/stdout"
}
HAVE_PY=1
command -v python3 >/dev/null 2>&1 || HAVE_PY=0

CASE=defaults_print_the_papers_break_even
run plan
[ "$RC" -eq 0 ] || fail "exit status $RC"
grep -q "= 2.69 N us" stdout || fail "no f_c = 2.69 N us"
grep -q "= 0.584 N + 1.9003e7 us" stdout || fail "no f_ml = 0.584 N + 1.9003e7 us"
grep -q "break-even: N = 1.9003e7 / (2.69 - 0.584) = 9.02327e6 items" stdout ||
    fail "break-even line: $(grep break-even stdout)"
grep -q "the surrogate pays off beyond 9.02 million items; at N = 1e7 it saves 2.057 s" stdout ||
    fail "verdict: $(tail -n 1 stdout)"
# the paper's own rounding (0.24 us per patch): 19,003,000 / 2.1042 = 9,030,985.6
grep -q "f_c = 2.688 N, f_ml = 0.5838 N + 1.9003e7 us, break-even 9.03 million" stdout ||
    fail "no paper-rounded line"
[ "$(grep -c 'paper default' stdout)" -eq 9 ] || fail "not every input is the paper's"
ok

CASE=json_is_one_object_with_the_same_numbers
if [ "$HAVE_PY" = 0 ]; then
    echo "skipped $CASE: no python3 to parse JSON"
else
    run plan --json
    [ "$RC" -eq 0 ] || fail "exit status $RC"
    [ "$(wc -l <stdout)" -eq 1 ] || fail "more than one line"
    be=$(json_get 'd["break_even_items"]') || fail "does not parse: $(head -c 300 stdout)"
    awk -v b="$be" 'BEGIN { exit !(b > 9023266.85 && b < 9023266.86) }' || fail "break-even $be"
    [ "$(json_get 'd["inputs"]["train_s"]["source"]')" = paper ] || fail "train_s source"
    [ "$(json_get 'd["pays_off"]')" = True ] || fail "pays_off"
    [ "$(json_get 'round(d["paper_rounded"]["fc_per_item_us"], 9)')" = 2.688 ] ||
        fail "paper_rounded"
    ok
fi

CASE=never_pays_says_so
run plan --labelled-fraction 1 --json
[ "$RC" -eq 0 ] || fail "exit status $RC"
if [ "$HAVE_PY" = 1 ]; then
    [ "$(json_get 'd["break_even_items"]')" = None ] || fail "break_even_items not null"
    [ "$(json_get 'd["pays_off"]')" = False ] || fail "pays_off"
fi
run plan --inference-us 3
grep -q "the surrogate never pays off" stdout || fail "verdict: $(tail -n 1 stdout)"
grep -q "break-even: none" stdout || fail "break-even line"
ok

CASE=below_the_break_even_it_costs_more
run plan --items 1e6
[ "$RC" -eq 0 ] || fail "exit status $RC"
# f_ml - f_c = 19.003 s - (2.69 - 0.584) * 1e6 us = 19.003 - 2.106 = 16.897 s
grep -q "at N = 1e6 it costs 16.897 s more" stdout || fail "verdict: $(tail -n 1 stdout)"
ok

mkdir edge
cat >edge/timings.ini <<'INI'
# DIR/timings.ini — written by scripts/edge-demo.sh (seed 002 Table 1 on one machine)
[edge]
threads = 2                 ; cores used by every step
label_items = 2000          ; patches labelled by fit-peaks
label_s = 1.9               ; its wall time (s)
train_items = 2000          ; patches the fine-tuning trained on
train_s = 12.0              ; fine-tuning wall time (s)
deploy_s = 0.08             ; new checkpoint written -> first reply carrying its hash (s)
inference_items = 100000    ; patches answered by the service
inference_s = 2.5           ; their wall time through the service (s)
item_bytes = 484            ; one patch on the wire (11x11 float32)
model_bytes = 6000          ; the checkpoint's size
end_to_end_s = 20.0         ; labelling + training + deployment
INI

CASE=measure_takes_the_timings_and_says_which_inputs_are_measured
run plan --measure edge
[ "$RC" -eq 0 ] || fail "exit status $RC"
# A = 1.9 s / 2000 = 950 us, E = 2.5 s / 1e5 = 25 us; fixed 12 s + 6000 B / 1e9 B/s = 1.2000006e7 us;
# f_c / N = 0.484 + 950 + 0.008 = 950.492; f_ml / N = 95.0492 + 0.9 * 25 = 117.5492;
# break-even 12,000,006 / 832.9428 = 14,406.8
grep -Eq "conventional analysis +950 +us/item +measured: edge/timings.ini \(label_s / label_items, 2 threads\)" stdout ||
    fail "A row: $(grep 'conventional analysis' stdout)"
grep -Eq "surrogate inference +25 +us/item +measured" stdout || fail "E row"
grep -Eq "training +12 +s +measured" stdout || fail "T row"
grep -Eq "item on the wire +484 +bytes +measured" stdout || fail "item row"
grep -Eq "bandwidth +1e9 +bytes/s +paper default" stdout || fail "bandwidth is assumed"
grep -q "= 14406.8 items" stdout || fail "break-even: $(grep break-even stdout)"
ok

CASE=options_override_measured_values
run plan --measure edge --train-s 5 --json
[ "$RC" -eq 0 ] || fail "exit status $RC"
if [ "$HAVE_PY" = 1 ]; then
    [ "$(json_get 'd["inputs"]["train_s"]["value"], d["inputs"]["train_s"]["source"]')" = "5 option" ] ||
        fail "train_s: $(json_get 'd["inputs"]["train_s"]')"
    [ "$(json_get 'd["inputs"]["analysis_us_per_item"]["source"]')" = measured ] || fail "A source"
    [ "$(json_get 'd["measured_from"], d["measured_threads"]')" = "edge/timings.ini 2" ] ||
        fail "measured_from"
fi
ok

# expect_fail PATTERN ARGS...: exit 2, one line on stderr matching PATTERN, nothing on stdout.
expect_fail() {
    local pattern=$1
    shift
    run "$@"
    [ "$RC" -eq 2 ] || fail "braggflow $*: exit status $RC, expected 2"
    [ "$(wc -l <stderr)" -eq 1 ] || fail "braggflow $*: stderr has $(wc -l <stderr) lines"
    grep -Eq -- "$pattern" stderr || fail "braggflow $*: stderr '$(cat stderr)' lacks /$pattern/"
    [ ! -s stdout ] || fail "braggflow $*: wrote to stdout"
}

CASE=bad_options_exit_2_naming_the_option
expect_fail "--items: 'many' is not a number" plan --items many
expect_fail "--labelled-fraction: 1.5 must lie in \[0, 1\]" plan --labelled-fraction 1.5
expect_fail "--bandwidth: 0 bytes/s must be > 0" plan --bandwidth 0
expect_fail "--train-s: -1 s must be >= 0" plan --train-s -1
expect_fail "--item-bytes: 'inf' is not a number" plan --item-bytes inf
expect_fail "unknown option '--speed'" plan --speed 3
expect_fail "option '--items' needs a value" plan --items
expect_fail "unexpected argument 'now'" plan now
ok

CASE=bad_timings_exit_2_naming_file_line_and_key
expect_fail "nowhere/timings.ini: cannot open" plan --measure nowhere
mkdir bad
printf '[edge]\nthreads = 2\ncores = 4\n' >bad/timings.ini
expect_fail "bad/timings.ini:3: \[edge\] cores: unknown key" plan --measure bad
printf '[edge]\nlabel_items = 2000\nlabel_s = fast\n' >bad/timings.ini
expect_fail "bad/timings.ini:3: \[edge\] label_s: 'fast' is not a number" plan --measure bad
ok

CASE=help_exits_0_with_an_example
run plan --help
[ "$RC" -eq 0 ] || fail "exit status $RC"
grep -q "^example:" stdout || fail "no example"
ok
