#!/usr/bin/env bash
# tests/cli/test_mpi_sample.sh — `sample` and `sample-peaks` split over MPI ranks (DESIGN §10 "As built"):
# under mpirun with 2 and 3 ranks the file is the plain run's, byte for byte (the
# blocks of 8 chunks are simulated and deflated by rank k mod N, rank 0 stores them in
# row order), for both dataset layouts and for patches, and a count of several blocks plus a partial one; a
# rank that cannot read its config stops the job with one line, exit 2, and no file.
# usage: bash test_mpi_sample.sh /path/to/braggflow
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"
CASE=mpirun_on_path
need_mpirun

# 3 x 1000 = 3000 patterns: 4 blocks of 744 and one of 24 (2 ranks: 3 + 2 blocks,
# 3 ranks: 2 + 2 + 1)
write_seed_ini bf 7 1000
write_seed_ini seed 8 300 "layout = seed"
for ini in bf seed; do
    run_ok sample --config $ini.ini --out $ini.1.h5 --threads 2
    for n in 2 3; do
        CASE="$ini layout: mpirun -np $n gives the plain run's file, byte for byte"
        mpi_ok $n sample --config $ini.ini --out $ini.$n.h5 --threads 1
        [ "$(grep -c '^braggflow sample: ' "$TMP/stderr")" -eq 1 ] || fail "rank 0 alone reports"
        grep -q "on $n ranks" "$TMP/stderr" || fail "no 'on $n ranks' in the report"
        cmp -s $ini.1.h5 $ini.$n.h5 || fail "$ini.$n.h5 differs from $ini.1.h5"
        ls $ini.$n.h5.tmp.* >/dev/null 2>&1 && fail "temporary files left"
        ok
    done
done

CASE="the comparison can fail: another seed gives another file"
write_seed_ini other 9 1000
mpi_ok 2 sample --config other.ini --out other.2.h5 --threads 1
cmp -s bf.1.h5 other.2.h5 && fail "seed 9 wrote seed 7's file"
ok

CASE="a rank that cannot read its config: one line, exit 2, no file"
"${MPIRUN[@]}" -np 1 "$BF" sample --config bf.ini --out fail.h5 : \
    -np 1 "$BF" sample --config missing.ini --out fail.h5 >"$TMP/stdout" 2>"$TMP/stderr"
RC=$?
[ "$RC" -eq 2 ] || fail "exit status $RC, expected 2"
[ "$(grep -c '^braggflow: ' "$TMP/stderr")" -eq 1 ] || fail "expected exactly one braggflow: line"
grep -q '^braggflow: rank 1: .*missing.ini' "$TMP/stderr" || fail "the line does not name rank 1's file"
ls fail.h5* >/dev/null 2>&1 && fail "outputs left: $(ls fail.h5*)"
ok

CASE="a rank whose config names a missing CIF: one line, exit 2, no file"
sed "s|$NACL|$TMP/gone.cif|" bf.ini >gone.ini
"${MPIRUN[@]}" -np 2 "$BF" sample --config bf.ini --out fail.h5 : \
    -np 1 "$BF" sample --config gone.ini --out fail.h5 >"$TMP/stdout" 2>"$TMP/stderr"
RC=$?
[ "$RC" -eq 2 ] || fail "exit status $RC, expected 2"
[ "$(grep -c '^braggflow: ' "$TMP/stderr")" -eq 1 ] || fail "expected exactly one braggflow: line"
grep -q '^braggflow: rank 2: .*gone.cif' "$TMP/stderr" || fail "the line does not name rank 2's CIF"
ls fail.h5* >/dev/null 2>&1 && fail "outputs left: $(ls fail.h5*)"
ok

# 11 x 11 patches: 2166 a 1 MiB chunk, 17328 a block; 40000 = 2 blocks and a partial one
run_ok sample-peaks --count 40000 --seed 5 --out p.1.h5 --threads 2
cp "$TMP/stderr" p.1.log
for n in 2 3; do
    CASE="sample-peaks: mpirun -np $n gives the plain run's file, byte for byte"
    mpi_ok $n sample-peaks --count 40000 --seed 5 --out p.$n.h5 --threads 1
    [ "$(grep -c '^braggflow sample-peaks: ' "$TMP/stderr")" -eq 1 ] || fail "rank 0 alone reports"
    grep -q "on $n ranks" "$TMP/stderr" || fail "no 'on $n ranks' in the report"
    # the neighbour count is the whole file's, not rank 0's share
    [ "$(grep -o '([0-9]* with a neighbour)' "$TMP/stderr")" = "$(grep -o '([0-9]* with a neighbour)' p.1.log)" ] ||
        fail "neighbour counts differ: $(cat "$TMP/stderr") vs $(cat p.1.log)"
    cmp -s p.1.h5 p.$n.h5 || fail "p.$n.h5 differs from p.1.h5"
    ok
done

CASE="sample-peaks: a rank with a bad config: one line, exit 2, no file"
printf '[run]\npatch_size = 2\n' >bad.ini
"${MPIRUN[@]}" -np 1 "$BF" sample-peaks --count 100 --out pfail.h5 : \
    -np 1 "$BF" sample-peaks --config bad.ini --count 100 --out pfail.h5 >"$TMP/stdout" 2>"$TMP/stderr"
RC=$?
[ "$RC" -eq 2 ] || fail "exit status $RC, expected 2"
[ "$(grep -c '^braggflow: ' "$TMP/stderr")" -eq 1 ] || fail "expected exactly one braggflow: line"
grep -q '^braggflow: rank 1: .*bad.ini' "$TMP/stderr" || fail "the line does not name rank 1's config"
ls pfail.h5* >/dev/null 2>&1 && fail "outputs left: $(ls pfail.h5*)"
ok
