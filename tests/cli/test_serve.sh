#!/usr/bin/env bash
# tests/cli/test_serve.sh — `braggflow serve` and `serve-client` through the real
# binaries: a trained model answers a patch file with the error it has offline, the
# stats reply is JSON, a model replaced on disk is swapped in, a corrupt one refused,
# SIGTERM drains and exits 0; bad input exits 2 with one line.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"
EP="ipc://$TMP/svc.ipc"
SERVER=
trap '[ -n "$SERVER" ] && kill -9 "$SERVER" 2>/dev/null; rm -rf "$TMP"' EXIT

# wait_ready: polls --stats until the service answers (10 s at most).
wait_ready() {
    for _ in $(seq 100); do
        "$BF" serve-client --connect "$EP" --stats --timeout 0.2 >"$TMP/stats" 2>/dev/null && return 0
        kill -0 "$SERVER" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# stat KEY: a number from the stats JSON ("swaps", "failed_loads", "requests", ...).
stat() {
    "$BF" serve-client --connect "$EP" --stats >"$TMP/stats" || return 1
    sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$TMP/stats"
}

CASE=setup_a_trained_model_and_patches
run sample-peaks --count 1500 --seed 3 --out train.h5 && run sample-peaks --count 300 --seed 4 --out val.h5
[ "$RC" -eq 0 ] || fail "sample-peaks: $RC"
run train --model braggnn --train train.h5 --val val.h5 --epochs 2 --batch 128 --out a.safetensors
[ "$RC" -eq 0 ] || fail "train: $RC"
run train --model braggnn --train train.h5 --val val.h5 --epochs 1 --batch 128 --seed 9 --out b.safetensors
[ "$RC" -eq 0 ] || fail "train b: $RC"
cp a.safetensors served.safetensors
ok

CASE=served_centres_have_the_offline_error
"$BF" serve --model served.safetensors --bind "$EP" --max-batch 64 2>"$TMP/server.log" &
SERVER=$!
wait_ready || fail "the service did not come up: $(cat "$TMP/server.log")"
run serve-client --connect "$EP" --data val.h5 --batch 7 --concurrency 3 --inflight 2 --json
[ "$RC" -eq 0 ] || fail "serve-client exit $RC"
online=$(sed -n 's/.*"error_px": {"mean": \([0-9.]*\).*/\1/p' stdout)
grep -q '"requests": 43, "items": 300, "errors": 0, "faults": 0' stdout || fail "counts: $(cat stdout)"
run peaks --model a.safetensors --data val.h5 --out c.csv
offline=$(sed -n 's/^  all braggnn *[0-9]* *\([0-9.]*\).*/\1/p' stderr)
[ -n "$online" ] && [ "$online" = "$offline" ] || fail "online mean $online, offline $offline"
run serve-client --connect "$EP" --data val.h5 --batch 16 --dtype uint16
[ "$RC" -eq 0 ] || fail "uint16 requests: exit $RC"
grep -q "^requests      19 (300 items" stdout || fail "$(cat stdout)"
ok

CASE=a_service_and_client_on_one_core_answer_everything
EP1="ipc://$TMP/svc_core.ipc"
"$BF" serve --model a.safetensors --bind "$EP1" --core 0 --no-watch --quiet 2>"$TMP/core.log" &
core_server=$!
for _ in $(seq 100); do
    "$BF" serve-client --connect "$EP1" --stats --timeout 0.2 >/dev/null 2>&1 && break
    sleep 0.1
done
run serve-client --connect "$EP1" --data val.h5 --core 0
[ "$RC" -eq 0 ] && grep -q "^requests      300 (300 items" stdout || fail "core 0: $RC $(cat stdout stderr)"
# the main thread and ZeroMQ's I/O thread run where core 0's CPUs are, the worker anywhere
main_cpus=$(sed -n 's/^Cpus_allowed_list:\t*//p' "/proc/$core_server/task/$core_server/status")
io_cpus=
for t in /proc/$core_server/task/*; do
    [ "$(cat "$t/comm")" = "ZMQbg/IO/0" ] && io_cpus=$(sed -n 's/^Cpus_allowed_list:\t*//p' "$t/status")
done
all_cpus=$(sed -n 's/^Cpus_allowed_list:\t*//p' /proc/self/status)
run serve --model a.safetensors --core 65535
cores=$(sed -n 's/.*the machine has \([0-9]*\) .*/\1/p' stderr)
[ "$RC" -eq 2 ] && [ -n "$cores" ] || fail "core 65535: $RC $(cat stderr)"
[ -n "$main_cpus" ] && [ "$main_cpus" = "$io_cpus" ] || fail "main on $main_cpus, I/O on $io_cpus"
if [ "$cores" -gt 1 ]; then
    [ "$main_cpus" != "$all_cpus" ] || fail "main thread not bound: $main_cpus of $all_cpus"
fi
kill -TERM "$core_server" && wait "$core_server" || fail "serve --core exit $?"
ok

CASE=a_replaced_model_is_swapped_in_and_a_corrupt_one_refused
cp b.safetensors tmp.safetensors && mv tmp.safetensors served.safetensors
for _ in $(seq 100); do [ "$(stat swaps)" = 1 ] && break; sleep 0.1; done
[ "$(stat swaps)" = 1 ] || fail "no swap: $(cat "$TMP/stats")"
hash_b=$(sha256sum b.safetensors | cut -c1-12)
run serve-client --connect "$EP" --data val.h5 --batch 50
grep -q "model         $hash_b... answered 6 requests" stdout || fail "not model b: $(cat stdout)"
head -c 1000 b.safetensors >tmp.safetensors && mv tmp.safetensors served.safetensors
for _ in $(seq 100); do [ "$(stat failed_loads)" = 1 ] && break; sleep 0.1; done
[ "$(stat failed_loads)" = 1 ] || fail "corrupt file not refused: $(cat "$TMP/stats")"
grep -q "new model refused, still serving $hash_b" "$TMP/server.log" || fail "$(cat "$TMP/server.log")"
run serve-client --connect "$EP" --data val.h5 --batch 50
[ "$RC" -eq 0 ] && grep -q "model         $hash_b... answered 6" stdout || fail "old model gone: $(cat stdout)"
ok

CASE=sigterm_drains_and_exits_0
"$BF" serve-client --connect "$EP" --data train.h5 --batch 4 --repeat 3 >/dev/null 2>&1 &
client=$!
sleep 0.3
kill -TERM "$SERVER"
wait "$SERVER"
rc=$?
SERVER=
[ "$rc" -eq 0 ] || fail "serve exited $rc: $(cat "$TMP/server.log")"
grep -q "drained;" "$TMP/server.log" || fail "no drain line"
wait "$client" # the client either finished or got UNAVAILABLE/no reply: it exits, not hangs
ok

CASE=bad_input_exits_2_with_one_line
run serve --model missing.safetensors --bind "$EP"
[ "$RC" -eq 2 ] && grep -q "missing.safetensors" stderr || fail "missing model: $RC $(cat stderr)"
run serve --model a.safetensors --bind "nonsense://x"
[ "$RC" -eq 2 ] && grep -q "nonsense://x: cannot bind" stderr || fail "bad endpoint: $(cat stderr)"
run serve --model a.safetensors --bind "$EP" --core 65535
[ "$RC" -eq 2 ] && grep -q -- "--core 65535: core 65535 requested, the machine has" stderr ||
    fail "core 65535: $(cat stderr)"
run serve-client --connect "$EP" --data val.h5 --core -1
[ "$RC" -eq 2 ] && grep -q -- "--core" stderr || fail "core -1: $(cat stderr)"
run serve --model a.safetensors --max-batch 0
[ "$RC" -eq 2 ] && grep -q -- "--max-batch" stderr || fail "max-batch 0: $(cat stderr)"
run serve-client --connect "$EP" --data val.h5 --dtype float64
[ "$RC" -eq 2 ] && grep -q "float32 or uint16" stderr || fail "dtype: $(cat stderr)"
run serve-client --data val.h5
[ "$RC" -eq 2 ] && grep -q -- "--connect" stderr || fail "no connect: $(cat stderr)"
run serve-client --connect "$EP" --stats --timeout 0.3
[ "$RC" -eq 2 ] && grep -q "no stats reply within 0.3 s" stderr || fail "no service: $(cat stderr)"
ok
