#!/usr/bin/env bash
# tests/cli/test_sweep.sh — `braggflow sweep`: a 4-trial grid on tiny data records every
# trial in registry.sqlite (status, starts, host, metrics per epoch, checkpoint SHA-256);
# a sweep killed (SIGKILL) after its first trial resumes without rerunning it; --report
# names the trial with the lowest val_score; the same as an MPI task farm on 2 and 3
# ranks when mpirun exists; bad INIs exit 2 with one line naming file:line and key and
# leave no output folder.
# usage: bash test_sweep.sh /path/to/braggflow
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"

HAVE_SQLITE=0
command -v sqlite3 >/dev/null 2>&1 && HAVE_SQLITE=1
q() { sqlite3 "$1/registry.sqlite" "$2"; }

CASE=tiny_data
write_seed_ini train 1 10
write_seed_ini val 2 4
for s in train val; do run_ok sample --config $s.ini --out $s.h5; done
ok

# sweep.ini OUT: 2 x 2 grid, 2 epochs each
write_sweep() {
    cat >sweep-$1.ini <<INI
[sweep]
model = structure_net
train = train.h5        ; next to this file
val = val.h5
out = $1
threads = 1
[grid]
lr = 1e-3, 3e-4
batch = 8, 16
hidden = 8
epochs = 2
INI
}

# check_sweep DIR: every trial done once or more, checkpoint hashes right, report best
check_sweep() {
    local d=$1
    [ -s "$d/report.html" ] || fail "no $d/report.html"
    grep -q '<svg' "$d/report.html" || fail "$d/report.html has no plot"
    run_ok sweep --report "$d"
    grep -q '4 trials: 4 done, 0 failed, 0 pending, 0 running' "$TMP/stdout" ||
        fail "--report: $(head -1 "$TMP/stdout")"
    for i in 0000 0001 0002 0003; do
        [ -s "$d/trials/$i/model.safetensors" ] && [ -s "$d/trials/$i/train.log" ] ||
            fail "trial $i: no checkpoint or train.log"
    done
    if [ $HAVE_SQLITE = 1 ]; then
        [ "$(q "$d" "select count(*) from trials where status = 'done'")" = 4 ] ||
            fail "$d: not 4 done trials"
        [ "$(q "$d" "select count(*) from epochs")" = 8 ] || fail "$d: not 8 epoch rows"
        [ "$(q "$d" "select count(*) from trials where host is null or host = '' or
              config not like '%\"batch\":%' or seconds is null")" = 0 ] ||
            fail "$d: trials without host, config or time"
        for i in 0 1 2 3; do
            local want got
            want=$(q "$d" "select checkpoint_sha256 from trials where id = $i")
            got=$(sha256sum "$d/trials/000$i/model.safetensors" | cut -d' ' -f1)
            [ "$want" = "$got" ] || fail "trial $i: registry sha256 $want, file $got"
        done
        local best
        best=$(q "$d" "select printf('%04d', id) from trials order by metric, id limit 1")
        grep -q "^best: trial $best " "$TMP/stdout" ||
            fail "--report does not name trial $best best: $(grep '^best' "$TMP/stdout")"
    else
        echo "note: sqlite3 not found: registry checked through --report only"
        grep -q '^best: trial 00' "$TMP/stdout" || fail "--report names no best trial"
    fi
}

CASE=one_process_4_trials
write_sweep one
run_ok sweep sweep-one.ini
grep -q '^sweep .*: 4 trials (grid), 0 already done; 1 rank' "$TMP/stdout" || fail "no start line"
[ "$(grep -c '^trial 000[0-3] done' "$TMP/stdout")" -eq 4 ] || fail "not 4 trials run"
check_sweep one
ok

CASE=killed_sweep_resumes_without_rerunning_finished_trials
write_sweep kill
BF_SWEEP_KILL_AFTER=1 "$BF" sweep sweep-kill.ini >"$TMP/stdout" 2>"$TMP/stderr"
RC=$?
[ "$RC" -eq 137 ] || fail "killed sweep: exit status $RC, expected 137 (SIGKILL)"
if [ $HAVE_SQLITE = 1 ]; then
    [ "$(q kill "select group_concat(status || ':' || starts) from trials order by id")" = \
      "done:1,running:1,pending:0,pending:0" ] || fail "after the kill: $(q kill 'select id, status, starts from trials')"
    t0=$(q kill "select started from trials where id = 0")
fi
run_ok sweep sweep-kill.ini
grep -q '4 trials (grid), 1 already done' "$TMP/stdout" || fail "resume: $(head -1 "$TMP/stdout")"
grep -q '^trial 0000' "$TMP/stdout" && fail "trial 0000 ran again"
[ "$(grep -c '^trial 000[1-3] done' "$TMP/stdout")" -eq 3 ] || fail "resume did not run 3 trials"
if [ $HAVE_SQLITE = 1 ]; then
    [ "$(q kill "select group_concat(starts) from trials order by id")" = "1,2,1,1" ] ||
        fail "starts: $(q kill 'select id, starts from trials')"
    [ "$(q kill "select started from trials where id = 0")" = "$t0" ] ||
        fail "trial 0's start time changed"
fi
check_sweep kill
ok

CASE=a_failed_trial_does_not_stop_the_others_and_runs_again_on_resume
write_sweep fail
BF_SWEEP_KILL_AFTER=1 "$BF" sweep sweep-fail.ini >"$TMP/stdout" 2>"$TMP/stderr"
: >fail/trials/0002 # a file where trial 2's folder goes: its checkpoint cannot be written
run sweep sweep-fail.ini
[ "$RC" -eq 2 ] || fail "exit status $RC with a failing trial"
[ "$(wc -l <"$TMP/stderr")" -eq 1 ] &&
    grep -q '^braggflow: .*fail: 1 of the 3 trials run failed; first: trial 0002: ' "$TMP/stderr" ||
    fail "message: $(cat "$TMP/stderr")"
[ "$(grep -c '^trial 000[13] done' "$TMP/stdout")" -eq 2 ] || fail "the other trials did not run"
[ $HAVE_SQLITE = 1 ] && { [ "$(q fail "select status from trials where id = 2")" = failed ] ||
    fail "trial 2 not 'failed'"; }
rm fail/trials/0002
run_ok sweep sweep-fail.ini
[ "$(grep -c '^trial 0002 done' "$TMP/stdout")" -eq 1 ] && [ "$(grep -c '^trial ' "$TMP/stdout")" -eq 1 ] ||
    fail "resume did not rerun only trial 2"
check_sweep fail
ok

CASE=another_config_cannot_reuse_the_folder
sed -i 's/epochs = 2/epochs = 1/' sweep-kill.ini
run sweep sweep-kill.ini
[ "$RC" -eq 2 ] && grep -q 'another configuration' "$TMP/stderr" || fail "exit $RC"
ok

CASE=bad_ini_is_one_line_exit_2_and_no_output
printf '[sweep]\ntrain = train.h5\nval = val.h5\nout = bad1\ncolour = red\n[grid]\nlr = 1\n' >bad1.ini
printf '[sweep]\ntrain = train.h5\nval = val.h5\nout = bad2\nmode = random\ncount = 2\n[random]\nlr = 1e-2..1e-3\n' >bad2.ini
printf '[sweep]\ntrain = train.h5\nval = val.h5\nout = bad3\n[grid]\nbatch =\n' >bad3.ini
printf '[sweep]\ntrain = missing.h5\nval = val.h5\nout = bad4\n[grid]\nbatch = 8\n' >bad4.ini
for c in "bad1:bad1.ini:5: \[sweep\] colour: unknown key" \
         "bad2:bad2.ini:8: \[random\] lr: empty range" \
         "bad3:bad3.ini:6: \[grid\] batch: empty list" \
         "bad4:missing.h5"; do
    n=${c%%:*}
    run sweep $n.ini
    [ "$RC" -eq 2 ] || fail "$n: exit status $RC"
    [ "$(wc -l <"$TMP/stderr")" -eq 1 ] || fail "$n: not one line"
    grep -q "^braggflow: .*${c#*:}" "$TMP/stderr" || fail "$n: $(cat "$TMP/stderr")"
    [ ! -e $n ] || fail "$n: output folder left"
done
run sweep --report nowhere
[ "$RC" -eq 2 ] && [ "$(wc -l <"$TMP/stderr")" -eq 1 ] || fail "--report nowhere: exit $RC"
ok

CASE=mpi_task_farm
need_mpirun
write_sweep mpi
"${MPIRUN[@]}" -np 2 "$BF" sweep sweep-mpi.ini >"$TMP/stdout" 2>"$TMP/stderr" ||
    fail "mpirun -np 2: exit status $?"
grep -q '4 trials (grid), 0 already done; 2 rank' "$TMP/stdout" || fail "no start line"
[ "$(grep -c '^trial 000[0-3] done: .* rank 1,' "$TMP/stdout")" -eq 4 ] ||
    fail "not 4 trials on rank 1"
check_sweep mpi
# the best trial of a 2-rank sweep is the 1-process one's (same seeds)
[ "$(grep '^best' "$TMP/stdout" | cut -d' ' -f3-5)" = \
  "$("$BF" sweep --report one | grep '^best' | cut -d' ' -f3-5)" ] || fail "best differs"
ok

CASE=mpi_killed_sweep_resumes
write_sweep mkill
BF_SWEEP_KILL_AFTER=2 "${MPIRUN[@]}" -np 3 "$BF" sweep sweep-mkill.ini >"$TMP/stdout" 2>"$TMP/stderr"
RC=$?
[ "$RC" -ne 0 ] || fail "the killed farm exited 0"
[ $HAVE_SQLITE = 1 ] && { [ "$(q mkill "select count(*) from trials where status = 'done'")" -ge 2 ] ||
    fail "after the kill: $(q mkill 'select id, status from trials')"; }
"${MPIRUN[@]}" -np 3 "$BF" sweep sweep-mkill.ini >"$TMP/stdout" 2>"$TMP/stderr" ||
    fail "resume under mpirun: exit status $?"
grep -q '4 trials (grid), [23] already done; 3 rank' "$TMP/stdout" || fail "$(head -1 "$TMP/stdout")"
if [ $HAVE_SQLITE = 1 ]; then
    [ "$(q mkill "select count(*) from trials where status = 'done' and starts = 1")" -ge 2 ] ||
        fail "finished trials ran again: $(q mkill 'select id, starts from trials')"
fi
check_sweep mkill
ok
