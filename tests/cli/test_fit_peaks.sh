#!/usr/bin/env bash
# tests/cli/test_fit_peaks.sh — `braggflow fit-peaks` on patches from `sample-peaks`:
# fits.h5 and the summary, the same file for any thread count, flagged
# non-convergence, and bad input (exit 2, one line, no output file).
source "$(dirname "$0")/common.bash" "$1"

CASE=sample_peaks_exists
if ! "$BF" sample-peaks --help >/dev/null 2>&1; then
    echo "skip $CASE: braggflow has no sample-peaks command, so there are no patches to fit"
    exit 0
fi
ok

run sample-peaks --count 400 --seed 5 --out patches.h5
[ "$RC" = 0 ] || fail "sample-peaks rc $RC"

CASE=fit_writes_fits_and_prints_the_centre_error
run fit-peaks --data patches.h5 --out fits.h5 --threads 2
[ "$RC" = 0 ] || fail "rc $RC"
[ -s fits.h5 ] || fail "no fits.h5"
grep -q "400 patches of 11 x 11 -> fits.h5: [0-9]* converged" stderr || fail "summary"
grep -q "patches/s" stderr || fail "no speed"
mean=$(sed -n 's/.*centre error (px, all 400 fits): mean \([0-9.]*\),.*/\1/p' stderr)
[ -n "$mean" ] || fail "no centre error line"
conv=$(sed -n 's/.*-> fits.h5: \([0-9]*\) converged.*/\1/p' stderr)
# measured: mean 0.06 px, 395 of 400 converged
awk -v m="$mean" 'BEGIN { exit !(m > 0 && m < 0.09) }' || fail "mean centre error $mean px"
[ "$conv" -ge 390 ] || fail "only $conv of 400 converged"
if command -v h5ls >/dev/null; then
    h5ls fits.h5 >"$TMP/ls"
    for d in centre peak background chi2 chi2_per_dof iterations converged status masked; do
        grep -q "^$d " "$TMP/ls" || fail "fits.h5 lacks '$d'"
    done
    grep -q "^centre .*{400, 2}" "$TMP/ls" || fail "centre shape: $(grep ^centre "$TMP/ls")"
fi
ok

CASE=fits_do_not_depend_on_the_thread_count
run fit-peaks --data patches.h5 --out fits1.h5 --threads 1
[ "$RC" = 0 ] || fail "rc $RC"
cmp -s fits.h5 fits1.h5 || fail "fits.h5 differs between 1 and 2 threads"
ok

CASE=max_iter_1_flags_every_fit
run fit-peaks --data patches.h5 --out short.h5 --max-iter 1
[ "$RC" = 0 ] || fail "rc $RC"
grep -q -- "-> short.h5: 0 converged" stderr || fail "expected 0 converged"
ok

CASE=bad_input_exits_2_with_one_line_and_no_output
echo keep >old.h5
for args in "--out x.h5" "--data patches.h5" "--data missing.h5 --out old.h5" \
    "--data patches.h5 --out old.txt" "--data patches.h5 --out x.h5 --max-iter 0" \
    "--data patches.h5 --out x.h5 --threads -1" "--data patches.h5 --out x.h5 --read-sigma 0" \
    "--data fits.h5 --out old.h5" "--data patches.h5 --out nodir/x.h5" \
    "--data patches.h5 --out x.h5 --bogus"; do
    # shellcheck disable=SC2086
    run fit-peaks $args
    [ "$RC" = 2 ] || fail "'$args': rc $RC"
    [ "$(wc -l <stderr)" = 1 ] || fail "'$args': not one line"
    grep -q "^braggflow" stderr || fail "'$args': $(cat stderr)"
    [ ! -e x.h5 ] || fail "'$args' left x.h5"
    [ "$(cat old.h5)" = keep ] || fail "'$args' replaced old.h5"
    ls | grep -q "\.tmp\." && fail "'$args' left a temporary file"
done
ok
