#!/usr/bin/env bash
# tests/cli/test_commands.sh — the happy paths of simulate, reflections and
# sample, and that a failed run leaves an existing output file untouched.
# usage: bash test_commands.sh /path/to/braggflow   (env BF_SOURCE_DIR = repo root)
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"
N_POINTS=2806 # GSAS-II's grid for the default --tof-min/--tof-max/--tof-step
no_tmp_left() {
    [ -z "$(find "$TMP" -maxdepth 1 -name '*.tmp.*' -print -quit)" ] ||
        fail "temporary file left: $(find "$TMP" -maxdepth 1 -name '*.tmp.*')"
}
HAVE_H5DUMP=0
command -v h5dump >/dev/null 2>&1 && HAVE_H5DUMP=1
HAVE_H5LS=0
command -v h5ls >/dev/null 2>&1 && HAVE_H5LS=1

# check_pattern_csv FILE: header, N_POINTS lines "tof,intensity" with
# increasing TOF, finite non-negative intensities and some positive ones.
check_pattern_csv() {
    local f=$1
    [ "$(head -n 1 "$f")" = "tof_us,intensity" ] || fail "$f: header is '$(head -n 1 "$f")'"
    local n
    n=$(($(wc -l <"$f") - 1))
    [ "$n" -eq "$N_POINTS" ] || fail "$f: $n data lines, expected $N_POINTS"
    awk -F, -v n="$N_POINTS" '
        NR == 1 { next }
        NF != 2 || $1 !~ /^[0-9.eE+-]+$/ || $2 !~ /^[0-9.eE+-]+$/ {
            print "line " NR ": \"" $0 "\""; bad = 1; exit }
        NR > 2 && !($1 + 0 > prev) { print "line " NR ": TOF not increasing"; bad = 1; exit }
        $2 + 0 < 0 { print "line " NR ": negative intensity"; bad = 1; exit }
        { prev = $1 + 0; if ($2 + 0 > 0) pos++ }
        END { if (!bad && pos < 1) { print "no positive intensity"; bad = 1 }
              exit bad }' "$f" >"$TMP/awk.out" || fail "$f: $(cat "$TMP/awk.out")"
}

# ---- simulate ------------------------------------------------------------------------
CASE="simulate to CSV"
run_ok simulate --cif "$NACL" --instprm "$INST" --cell "$CELL" --out nacl.csv
[ -s nacl.csv ] || fail "nacl.csv missing or empty"
check_pattern_csv nacl.csv
no_tmp_left
ok

CASE="simulate to stdout (--out -) writes the same CSV"
run_ok simulate --cif "$NACL" --instprm "$INST" --cell "$CELL" --out -
cmp -s "$TMP/stdout" nacl.csv || fail "stdout differs from nacl.csv"
[ ! -e ./- ] || fail "a file named '-' was written"
ok

CASE="simulate: the cell moves the peaks"
run_ok simulate --cif "$NACL" --instprm "$INST" --cell "5.5 5.5 5.5 90 90 90" --out nacl-55.csv
check_pattern_csv nacl-55.csv
! cmp -s nacl.csv nacl-55.csv || fail "a = 5.5 and a = 5.64 give the same pattern"
ok

CASE="simulate: --scale scales the intensity"
run_ok simulate --cif "$NACL" --instprm "$INST" --cell "$CELL" --scale 2000 --out nacl-x2.csv
awk -F, 'NR == FNR { if (FNR > 1) y[FNR] = $2; next }
         FNR > 1 { d = $2 - 2 * y[FNR]; if (d < 0) d = -d
                   if (d > 1e-6 * ($2 < 0 ? -$2 : $2) + 1e-12) { print FNR; exit 1 } }' \
    nacl.csv nacl-x2.csv >"$TMP/awk.out" || fail "line $(cat "$TMP/awk.out"): not twice --scale 1000"
ok

CASE="simulate: --b-table picks the scattering lengths (GSAS-II's by default; Sears on request)"
BTO=$EX/cif/BaTiO3-P4mm.cif
run_ok simulate --cif "$BTO" --instprm "$INST" --cell "4 4 4.03 90 90 90" --out bto-g.csv
run_ok simulate --cif "$BTO" --instprm "$INST" --cell "4 4 4.03 90 90 90" --b-table gsas2 --out bto-g2.csv
run_ok simulate --cif "$BTO" --instprm "$INST" --cell "4 4 4.03 90 90 90" --b-table sears --out bto-s.csv
cmp -s bto-g.csv bto-g2.csv || fail "gsas2 is not the default"
cmp -s bto-g.csv bto-s.csv && fail "Ti's -3.37 (GSAS-II) and -3.438 fm (Sears) gave the same pattern"
# a resonant absorber: refused by GSAS-II's table, naming the atom; Sears has its thermal b
sed 's/Na/Gd/g' "$NACL" >gdcl.cif
run simulate --cif gdcl.cif --instprm "$INST" --cell "$CELL" --out gd.csv
[ "$RC" -eq 2 ] || fail "Gd: exit $RC, expected 2"
grep -q "gdcl.cif: atom Gd1: element Gd: a resonant absorber" "$TMP/stderr" || fail "no Gd line"
[ ! -e gd.csv ] || fail "a file was written"
run_ok simulate --cif gdcl.cif --instprm "$INST" --cell "$CELL" --b-table sears --out gd.csv
run simulate --cif "$BTO" --instprm "$INST" --cell "$CELL" --b-table nist --out x.csv
[ "$RC" -eq 2 ] && grep -q "b-table: 'nist'" "$TMP/stderr" || fail "--b-table nist accepted"
ok

CASE="simulate: --block picks the CIF's data block; an unknown one lists the blocks"
{ printf 'data_other\n_publ_section_title x\n'; cat "$NACL"; } >twoblocks.cif
NACL_BLOCK=$(sed -n 's/^data_\([^ ]*\).*/\1/p' "$NACL" | head -n 1)
run_ok simulate --cif twoblocks.cif --block "$NACL_BLOCK" --instprm "$INST" --cell "$CELL" --out nb.csv
cmp -s nb.csv nacl.csv || fail "--block $NACL_BLOCK: not the NaCl pattern"
run simulate --cif twoblocks.cif --block nosuch --instprm "$INST" --cell "$CELL" --out nb2.csv
[ "$RC" -eq 2 ] || fail "--block nosuch: exit $RC, expected 2"
grep -q "twoblocks.cif: no data block 'nosuch' (the file has: data_other, data_$NACL_BLOCK)" \
    "$TMP/stderr" || fail "no block list: $(cat "$TMP/stderr")"
[ ! -e nb2.csv ] || fail "a file was written"
run_ok reflections --cif twoblocks.cif --block "$NACL_BLOCK" --instprm "$INST" --cell "$CELL"
ok

CASE="sample: [class] cif_block picks a block of a CIF holding several structures"
cat "$EX/cif/BaTiO3-P4mm.cif" "$NACL" >two.cif
for v in direct block; do
    cat >"$v.ini" <<INI
[run]
seed = 3
[instrument]
instprm = $INST
[class.cubic]
count = 5
INI
done
echo "cif = $NACL" >>direct.ini
printf 'cif = two.cif\ncif_block = %s\n' "$NACL_BLOCK" >>block.ini
run_ok sample --config direct.ini --out direct.h5
run_ok sample --config block.ini --out block.h5
h5diff direct.h5 block.h5 /patterns /patterns >/dev/null || fail "cif_block did not read NaCl"
printf 'cif_block = nosuch\n' >>direct.ini
run sample --config direct.ini --out x.h5
[ "$RC" -eq 2 ] || fail "cif_block = nosuch: exit $RC"
ok

CASE="simulate to HDF5"
run_ok simulate --cif "$NACL" --instprm "$INST" --cell "$CELL" --out nacl.h5
[ -s nacl.h5 ] || fail "nacl.h5 missing or empty"
[ "$(head -c 8 nacl.h5 | od -An -tx1 | tr -d ' \n')" = "894844460d0a1a0a" ] ||
    fail "nacl.h5 is not an HDF5 file (signature)"
if [ "$HAVE_H5LS" -eq 1 ]; then
    h5ls nacl.h5 >"$TMP/h5ls" 2>&1 || fail "h5ls failed: $(cat "$TMP/h5ls")"
    grep -Eq "^patterns +Dataset \{1, $N_POINTS\}" "$TMP/h5ls" ||
        fail "no 1 x $N_POINTS patterns dataset: $(cat "$TMP/h5ls")"
    grep -Eq "^tof_us +Dataset \{$N_POINTS\}" "$TMP/h5ls" || fail "no tof_us: $(cat "$TMP/h5ls")"
fi
no_tmp_left
ok

# ---- reflections ------------------------------------------------------------------------
CASE="reflections CSV"
run_ok reflections --cif "$NACL" --instprm "$INST" --cell "$CELL"
[ "$(head -n 1 "$TMP/stdout")" = "h,k,l,mult,d,tof_us,F2,sigma2,gamma,alpha,beta" ] ||
    fail "header is '$(head -n 1 "$TMP/stdout")'"
[ "$(wc -l <"$TMP/stdout")" -ge 10 ] || fail "fewer than 9 reflections"
# 11 fields, d and TOF non-increasing, and F-centring (Fm-3m): h, k, l
# all even or all odd.
awk -F, 'NR == 1 { next }
    NF != 11 { print "line " NR ": " NF " fields"; exit 1 }
    NR > 2 && !($5 + 0 <= d) { print "line " NR ": d increases"; exit 1 }
    NR > 2 && !($6 + 0 <= t) { print "line " NR ": tof increases"; exit 1 }
    { p = ($1 % 2 + 2) % 2; if (($2 % 2 + 2) % 2 != p || ($3 % 2 + 2) % 2 != p) {
          print "line " NR ": " $1 "," $2 "," $3 " is absent in Fm-3m"; exit 1 }
      if ($4 + 0 < 1 || $7 + 0 <= 0) { print "line " NR ": mult or F2 not positive"; exit 1 }
      d = $5 + 0; t = $6 + 0 }' "$TMP/stdout" >"$TMP/awk.out" || fail "$(cat "$TMP/awk.out")"
# d of (h k l) is a / sqrt(h^2 + k^2 + l^2) for a cubic cell.
awk -F, 'NR > 1 { d = 5.64 / sqrt($1 * $1 + $2 * $2 + $3 * $3); e = $5 - d
                  if (e < 0) e = -e; if (e > 1e-6) { print "line " NR ": d " $5 " != " d; exit 1 } }' \
    "$TMP/stdout" >"$TMP/awk.out" || fail "$(cat "$TMP/awk.out")"
ok

# ---- sample -----------------------------------------------------------------------------
# same_patterns A B: 0 when the `patterns` datasets of A and B are equal, 1
# when not, 2 when no HDF5 tool can tell (h5diff, else h5dump).
HAVE_H5DIFF=0
command -v h5diff >/dev/null 2>&1 && HAVE_H5DIFF=1
same_patterns() {
    if [ "$HAVE_H5DIFF" -eq 1 ]; then
        h5diff -q "$1" "$2" /patterns /patterns >/dev/null 2>&1
        local rc=$?
        [ "$rc" -le 1 ] || fail "h5diff $1 $2 failed (status $rc)"
        return "$rc"
    fi
    [ "$HAVE_H5DUMP" -eq 1 ] || return 2
    h5dump -d patterns "$1" >"$TMP/dump1" 2>&1 || fail "h5dump $1: $(head -3 "$TMP/dump1")"
    h5dump -d patterns "$2" >"$TMP/dump2" 2>&1 || fail "h5dump $2: $(head -3 "$TMP/dump2")"
    # the dumps differ in their first line (the file name) only
    cmp -s <(tail -n +2 "$TMP/dump1") <(tail -n +2 "$TMP/dump2") && return 0
    return 1
}

CASE="sample: the file is the same for 1 and 2 threads"
run_ok sample --config "$EX/sample-small.ini" --out s1.h5 --threads 1
grep -q "300 patterns x $N_POINTS points" "$TMP/stderr" || fail "no summary line on stderr"
sleep 1 # a clock second apart: HDF5 object timestamps would make the files differ
run_ok sample --config "$EX/sample-small.ini" --out s2.h5 --threads 2
[ -s s1.h5 ] && [ -s s2.h5 ] || fail "missing output"
if [ "$HAVE_H5LS" -eq 1 ]; then
    h5ls s1.h5 >"$TMP/h5ls" 2>&1 || fail "h5ls failed: $(cat "$TMP/h5ls")"
    grep -Eq "^patterns +Dataset \{300, $N_POINTS\}" "$TMP/h5ls" ||
        fail "no 300 x $N_POINTS patterns dataset: $(cat "$TMP/h5ls")"
fi
same_patterns s1.h5 s2.h5
rc=$?
[ "$rc" -ne 1 ] || fail "the patterns differ between --threads 1 and --threads 2"
[ "$(wc -c <s1.h5)" -eq "$(wc -c <s2.h5)" ] || fail "file sizes differ"
# `sample --help`: "the file is identical for any N".
cmp -s s1.h5 s2.h5 || fail "the files differ between --threads 1 and --threads 2"
no_tmp_left
ok

CASE="sample: a run killed mid-write leaves no file at --out; the next run removes its temporary"
sed 's/^count *=.*/count = 20000/' "$EX/sample-small.ini" >"$TMP/big.ini"
sed -i "s#= *instrument/#= $EX/instrument/#; s#= *cif/#= $EX/cif/#" "$TMP/big.ini"
BF_PROGRESS=0 "$BF" sample --config "$TMP/big.ini" --out big.h5 --threads 1 \
    >"$TMP/big.out" 2>&1 &
pid=$!
# kill it once blocks are being written (the temporary file has grown past its header)
for _ in $(seq 1 200); do
    t=$(find . -maxdepth 1 -name "big.h5.tmp.$pid" -size +2000k -print -quit)
    [ -n "$t" ] && break
    sleep 0.05
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ -n "$t" ] || fail "no growing big.h5.tmp.$pid while sample ran: $(cat "$TMP/big.out")"
[ ! -e big.h5 ] || fail "a killed run left big.h5"
[ -e "big.h5.tmp.$pid" ] || fail "the killed run's temporary file is not named big.h5.tmp.PID"
run_ok sample --config "$EX/sample-small.ini" --out big.h5 --threads 2
cmp -s big.h5 s1.h5 || fail "the next run's file differs from s1.h5"
no_tmp_left
ok

CASE="sample: a different seed gives different patterns"
sed 's/^seed *=.*/seed = 43/' "$EX/sample-small.ini" >"$TMP/seed43.ini"
grep -q '^seed = 43$' "$TMP/seed43.ini" || fail "could not change the seed"
# the INI's relative paths resolve against its own folder
sed -i "s#= *instrument/#= $EX/instrument/#; s#= *cif/#= $EX/cif/#" "$TMP/seed43.ini"
run_ok sample --config "$TMP/seed43.ini" --out s43.h5 --threads 2
same_patterns s1.h5 s43.h5
rc=$?
[ "$rc" -ne 0 ] || fail "seed 42 and seed 43 give the same patterns"
! cmp -s s1.h5 s43.h5 || fail "seed 42 and seed 43 give the same file"
ok

CASE="sample and simulate agree on one cell (simulate's default --scale is sample's)"
if [ "$HAVE_H5DUMP" -eq 1 ]; then
    printf '[instrument]\ninstprm = %s\n[class.cubic]\ncif = %s\ncount = 1\na = 5.64 5.64\n' \
        "$INST" "$NACL" >one.ini
    run_ok sample --config one.ini --out one.h5 --threads 1
    h5dump -d patterns -y -w 0 -m %.9g one.h5 >"$TMP/one.dump" 2>&1 || fail "h5dump one.h5"
    awk '/DATA \{/ { on = 1; next } /\}/ { on = 0 } on { gsub(/[ ,]/, ""); print }' \
        "$TMP/one.dump" >"$TMP/one.values"
    [ "$(wc -l <"$TMP/one.values")" -eq "$N_POINTS" ] || fail "one.h5: not $N_POINTS values"
    # patterns are float32: agree to a relative 1e-6
    tail -n +2 nacl.csv | cut -d, -f2 | paste -d' ' - "$TMP/one.values" |
        awk '{ e = $1 - $2; if (e < 0) e = -e; m = $1 < 0 ? -$1 : $1
               if (e > 1e-6 * m + 1e-30) { print NR ": simulate " $1 ", sample " $2; exit 1 } }' \
            >"$TMP/awk.out" || fail "point $(cat "$TMP/awk.out")"
    ok
else
    echo "ok $CASE # skip: no h5dump"
fi

# ---- a failed run leaves an existing output alone -------------------------------------------
CASE="failed simulate leaves an existing CSV untouched"
printf 'precious,data\n1,2\n' >keep.csv
cp keep.csv keep.csv.orig
run simulate --cif "$NACL" --instprm "$INST" --cell "0.5 0.5 0.5 90 90 90" --out keep.csv
[ "$RC" -eq 2 ] || fail "exit status $RC, expected 2"
cmp -s keep.csv keep.csv.orig || fail "keep.csv was changed"
grep -v '^_cell_length_a' "$NACL" >no-cell.cif
run simulate --cif no-cell.cif --instprm "$INST" --cell "$CELL" --out keep.csv
[ "$RC" -eq 2 ] || fail "exit status $RC, expected 2"
cmp -s keep.csv keep.csv.orig || fail "keep.csv was changed"
no_tmp_left
ok

CASE="failed simulate leaves an existing HDF5 untouched"
cp nacl.h5 nacl.h5.orig
run simulate --cif "$NACL" --instprm "$INST" --cell "0.5 0.5 0.5 90 90 90" --out nacl.h5
[ "$RC" -eq 2 ] || fail "exit status $RC, expected 2"
cmp -s nacl.h5 nacl.h5.orig || fail "nacl.h5 was changed"
ok

CASE="failed sample leaves an existing HDF5 untouched"
cp s1.h5 s1.h5.orig
printf '[run]\nseed = 1\n[instrument]\ninstprm = %s\ntof_min_ms = oops\n' "$INST" >bad.ini
run sample --config bad.ini --out s1.h5 --threads 1
[ "$RC" -eq 2 ] || fail "exit status $RC, expected 2"
cmp -s s1.h5 s1.h5.orig || fail "s1.h5 was changed"
no_tmp_left
ok

# Written to a temporary file, then renamed into place: the old file's inode
# is never opened for writing, so a reader (or a hard link) never sees a half file.
CASE="a successful run replaces an existing file by renaming"
ln keep.csv keep-link.csv
inode=$(stat -c %i keep.csv)
run_ok simulate --cif "$NACL" --instprm "$INST" --cell "$CELL" --out keep.csv
cmp -s keep.csv nacl.csv || fail "keep.csv is not the new pattern"
[ "$(stat -c %i keep.csv)" != "$inode" ] || fail "keep.csv was rewritten in place, not renamed"
cmp -s keep-link.csv keep.csv.orig || fail "the old file (hard link) was changed"
inode=$(stat -c %i s1.h5)
run_ok sample --config "$EX/sample-small.ini" --out s1.h5 --threads 2
[ "$(stat -c %i s1.h5)" != "$inode" ] || fail "s1.h5 was rewritten in place, not renamed"
cmp -s s1.h5 s2.h5 || fail "s1.h5 is not the new dataset"
no_tmp_left
ok
