#!/usr/bin/env bash
# tests/cli/test_peaks_data.sh — sample-peaks and import-peaks: outputs, thread-count
# independence, the example INI equals the defaults, BraggNN files made with
# h5import (hdf5-tools), and bad input (exit 2, one line, no output file).
# usage: bash test_peaks_data.sh /path/to/braggflow   (env BF_SOURCE_DIR = repo root)
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"
command -v h5import >/dev/null && command -v h5dump >/dev/null ||
    { CASE=setup; fail "h5import/h5dump (hdf5-tools) not found"; }

# expect_error OUT PATTERN: exit 2, exactly one stderr line starting 'braggflow'
# and matching PATTERN (grep -E), nothing on stdout, OUT and OUT.tmp.* absent.
expect_error() {
    [ "$RC" -eq 2 ] || fail "exit status $RC, expected 2"
    [ "$(wc -l <"$TMP/stderr")" -eq 1 ] || fail "stderr is not exactly one line"
    grep -q '^braggflow' "$TMP/stderr" || fail "stderr does not start with 'braggflow'"
    grep -Eq -- "$2" "$TMP/stderr" || fail "stderr does not match /$2/"
    [ ! -s "$TMP/stdout" ] || fail "something was written to stdout"
    [ ! -e "$1" ] || fail "output file $1 exists"
    [ -z "$(find "$(dirname "$1")" -maxdepth 1 -name '*.tmp.*' -print -quit)" ] ||
        fail "temporary file left behind"
}

# h5 NAME PATH CLASS SIZE DIMS VALUES...: one dataset for h5import (TEXTIN/TEXTFP input)
h5part() {
    local name=$1 class=$2 size=$3 dims=$4
    shift 4
    echo "$*" >"$name.txt"
    local in=TEXTIN
    [ "$class" = FP ] && in=TEXTFP
    printf 'PATH %s\nINPUT-CLASS %s\nRANK %s\nDIMENSION-SIZES %s\nOUTPUT-CLASS %s\nOUTPUT-SIZE %s\n' \
        "$name" "$in" "$(echo "$dims" | wc -w)" "$dims" "$class" "$size" >"$name.conf"
    PARTS+=("$name.txt" -c "$name.conf")
}

CASE="sample-peaks writes N patches of S x S with their truth, identical for 1 and 3 threads"
run sample-peaks --out t1.h5 --count 300 --seed 5 --threads 1
[ "$RC" -eq 0 ] || fail "exit status $RC"
run sample-peaks --out t3.h5 --count 300 --seed 5 --threads 3
[ "$RC" -eq 0 ] || fail "exit status $RC"
cmp -s t1.h5 t3.h5 || fail "files differ between 1 and 3 threads"
h5dump -H t1.h5 >hdr.txt
grep -q 'DATASET "patches"' hdr.txt && grep -q '( 300, 11, 11 )' hdr.txt || fail "patches shape"
for d in centre peak background read_sigma neighbour neighbour_peak; do
    grep -q "DATASET \"$d\"" hdr.txt || fail "no dataset $d"
done
h5dump -a kind t1.h5 | grep -q '"simulated"' || fail "kind attribute"
h5dump -a seed t1.h5 | grep -q '(0): 5$' || fail "seed attribute"
ok

CASE="examples/peaks/peaks-default.ini gives the same file as no --config"
run sample-peaks --out def.h5 --count 40
[ "$RC" -eq 0 ] || fail "exit status $RC"
run sample-peaks --config "$EX/peaks/peaks-default.ini" --out ex.h5 --count 40
[ "$RC" -eq 0 ] || fail "exit status $RC"
cmp -s def.h5 ex.h5 || fail "the example INI is not the defaults"
ok

CASE="sample-peaks: a malformed INI is one line naming file:line, no output"
printf '[run]\ncount = 10\n[peak]\nsigma = 2 1\n' >bad.ini
run sample-peaks --config bad.ini --out bad.h5
expect_error bad.h5 "bad\.ini:4: \[peak\] sigma: '2 1': lo > hi"
printf '[run]\npatch_size = 12\n' >bad.ini
run sample-peaks --config bad.ini --out bad.h5
expect_error bad.h5 'bad\.ini:2: \[run\] patch_size: 12 must be odd'
printf '[peak]\nwidth = 1\n' >bad.ini
run sample-peaks --config bad.ini --out bad.h5
expect_error bad.h5 'bad\.ini:2: \[peak\] width: unknown key'
run sample-peaks --config missing.ini --out bad.h5
expect_error bad.h5 'missing\.ini'
run sample-peaks --out bad.h5 --count 0
expect_error bad.h5 '--count'
ok

# BraggNN files: 2 frames of 16 x 16, pixel value 100 f + 16 r + c; four peaks:
# kept (frame 1, (6.5, 9.25)), npeaks 2, deviation 1 (both dropped), kept at the
# frame edge (frame 0, (1.75, 0.5)).
PARTS=()
vals=""
for f in 0 1; do for r in $(seq 0 15); do for c in $(seq 0 15); do
    vals+="$((100 * f + 16 * r + c)) "
done; done; done
h5part frames FP 32 "2 16 16" $vals
h5import "${PARTS[@]}" -o frames.h5 || { CASE=setup; fail "h5import frames"; }
write_peaks() { # FIDX of the last row
    PARTS=()
    h5part peak_fidx UIN 32 4 1 1 0 "$1"
    h5part peak_row FP 32 4 6.5 3 3 1.75
    h5part peak_col FP 32 4 9.25 3 3 0.5
    h5part npeaks UIN 16 4 1 2 1 1
    h5part deviations FP 32 4 0.1 0.1 1 0.3
    rm -f peaks.h5
    h5import "${PARTS[@]}" -o peaks.h5 || { CASE=setup; fail "h5import peaks"; }
}
write_peaks 0

CASE="import-peaks keeps BraggNN's rows, crops 11 x 11 and pads the frame edge with zeros"
run import-peaks --frames frames.h5 --peaks peaks.h5 --out imp.h5
[ "$RC" -eq 0 ] || fail "exit status $RC"
h5dump -H imp.h5 | grep -q '( 2, 11, 11 )' || fail "expected 2 patches of 11 x 11"
# peak 0: rows 6-5 .. 6+5, columns 9-5 .. 9+5; peak 3: rows -4..6 keep 0..6 (4 zero rows:
# 2 before, 2 after) -> origin -2; columns -5..5 keep 0..5 (5 zeros: 2 before, 3 after) -> -2
h5dump -d origin -y -w 200 imp.h5 | tr -s ' \n' ' ' | grep -q 'DATA { 1, 4, -2, -2 }' ||
    fail "origins: $(h5dump -d origin -y -w 200 imp.h5 | tr -s ' \n' ' ')"
h5dump -d centre -y -w 200 imp.h5 | tr -s ' \n' ' ' | grep -q 'DATA { 5.5, 5.25, 3.75, 2.5 }' ||
    fail "centres: $(h5dump -d centre -y -w 200 imp.h5 | tr -s ' \n' ' ')"
h5dump -d frame_index -y -w 200 imp.h5 | tr -s ' \n' ' ' | grep -q 'DATA { 1, 0 }' ||
    fail "frame_index"
# patch 1, row 2 (frame row 0): 2 zeros, then frame columns 0..5 = 0..5, then 3 zeros
h5dump -d patches -s "1,2,0" -c "1,1,11" -y -w 300 imp.h5 | tr -s ' \n' ' ' |
    grep -q 'DATA { 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0 }' ||
    fail "edge row: $(h5dump -d patches -s "1,2,0" -c "1,1,11" -y -w 300 imp.h5 | tr -s ' \n' ' ')"
h5dump -a source imp.h5 | grep -q "sha256=$(sha256sum frames.h5 | cut -c1-64)" ||
    fail "no frames SHA-256 in source"
ok

CASE="import-peaks: a frame index outside the frames file"
write_peaks 7
run import-peaks --frames frames.h5 --peaks peaks.h5 --out bad.h5
expect_error bad.h5 'peaks\.h5: peak_fidx: row 3 is 7, frames\.h5 has 2 frames'
ok

CASE="import-peaks: an empty peaks file and one without the peak table"
PARTS=()
for d in peak_fidx peak_row peak_col npeaks deviations; do
    : >"$d.txt"
    printf 'PATH %s\nINPUT-CLASS TEXTFP\nRANK 1\nDIMENSION-SIZES 0\nOUTPUT-CLASS FP\nOUTPUT-SIZE 32\n' \
        "$d" >"$d.conf"
    PARTS+=("$d.txt" -c "$d.conf")
done
rm -f empty.h5
h5import "${PARTS[@]}" -o empty.h5 || { CASE=setup; fail "h5import empty"; }
run import-peaks --frames frames.h5 --peaks empty.h5 --out bad.h5
expect_error bad.h5 'empty\.h5: peak_fidx: empty \(no peaks\)'
run import-peaks --frames frames.h5 --peaks frames.h5 --out bad.h5
expect_error bad.h5 "frames\.h5: no dataset 'peak_fidx'"
: >zero.h5
run import-peaks --frames frames.h5 --peaks zero.h5 --out bad.h5
expect_error bad.h5 'zero\.h5: not an HDF5 file'
run import-peaks --frames frames.h5 --peaks peaks.h5 --out bad.h5 --size 10
expect_error bad.h5 '--size: 10 is even'
ok

CASE="--help of both commands shows an example"
run sample-peaks --help
[ "$RC" -eq 0 ] && grep -q '^example:' "$TMP/stdout" || fail "sample-peaks --help"
run import-peaks --help
[ "$RC" -eq 0 ] && grep -q '^example:' "$TMP/stdout" || fail "import-peaks --help"
ok
