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

CASE=labelled_writes_the_usable_fits_as_labels_split_80_20
run fit-peaks --data patches.h5 --out fl.h5 --labelled lt.h5 --labelled-val lv.h5 --threads 2
[ "$RC" = 0 ] || fail "rc $RC"
cmp -s fits.h5 fl.h5 || fail "--labelled changed fits.h5"
line=$(grep "labels: " stderr) || fail "no labels line"
kept=$(sed -n 's/.*labels: \([0-9]*\) of 400 patches.*/\1/p' <<<"$line")
[ "$kept" = "$conv" ] || fail "kept $kept labels, $conv fits converged: $line"
nt=$(sed -n 's/.*-> lt.h5 (\([0-9]*\)), lv.h5 (\([0-9]*\)).*/\1/p' <<<"$line")
nv=$(sed -n 's/.*-> lt.h5 (\([0-9]*\)), lv.h5 (\([0-9]*\)).*/\2/p' <<<"$line")
[ "$nt" = $((kept * 4 / 5)) ] && [ "$nv" = $((kept - nt)) ] || fail "split $nt / $nv of $kept"
grep -q "label error (px, the $kept labels against the true centres)" stderr || fail "no label error"
if command -v h5ls >/dev/null; then
    h5ls lt.h5 >"$TMP/ls"
    grep -q "^centre .*{$nt, 2}" "$TMP/ls" || fail "lt.h5 centre: $(cat "$TMP/ls")"
    grep -q "^patches .*{$nt, 11, 11}" "$TMP/ls" || fail "lt.h5 patches: $(cat "$TMP/ls")"
    grep -qE "^(peak|background|read_sigma|neighbour)" "$TMP/ls" && fail "lt.h5 keeps the truth"
    h5ls lv.h5 | grep -q "^centre .*{$nv, 2}" || fail "lv.h5 centre"
    h5dump -a kind lt.h5 | grep -q '"fitted"' || fail "lt.h5 kind"
    h5dump -a source lv.h5 | grep -q "validation rows $nt\.\.$((kept - 1)) of the kept" ||
        fail "lv.h5 source: $(h5dump -a source lv.h5)"
fi
run fit-peaks --data patches.h5 --out fl.h5 --labelled all.h5
[ "$RC" = 0 ] || fail "rc $RC"
grep -q -- "-> all.h5 ($kept)$" stderr || fail "one file: $(grep labels: stderr)"
ok

CASE=labelled_val_needs_two_usable_fits
run sample-peaks --count 1 --seed 5 --out one.h5
run fit-peaks --data one.h5 --out f1.h5 --labelled l1.h5 --labelled-val v1.h5
[ "$RC" = 2 ] || fail "rc $RC"
grep -q "cannot be split 80/20" stderr || fail "$(cat stderr)"
[ ! -e f1.h5 ] && [ ! -e l1.h5 ] && [ ! -e v1.h5 ] || fail "a failed run wrote a file"
ok

CASE=bad_input_exits_2_with_one_line_and_no_output
echo keep >old.h5
for args in "--out x.h5" "--data patches.h5" "--data missing.h5 --out old.h5" \
    "--data patches.h5 --out old.txt" "--data patches.h5 --out x.h5 --max-iter 0" \
    "--data patches.h5 --out x.h5 --threads -1" "--data patches.h5 --out x.h5 --read-sigma 0" \
    "--data fits.h5 --out old.h5" "--data patches.h5 --out nodir/x.h5" \
    "--data patches.h5 --out x.h5 --bogus" "--data patches.h5 --out x.h5 --labelled-val v.h5" \
    "--data patches.h5 --out x.h5 --labelled x.h5" "--data patches.h5 --out x.h5 --labelled l.txt" \
    "--data patches.h5 --out x.h5 --labelled l.h5 --labelled-val l.h5" \
    "--data patches.h5 --out x.h5 --labelled nodir/l.h5"; do
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
