#!/usr/bin/env bash
# tests/cli/test_bad_input.sh — the acceptance rule for bad input:
#   one line on stderr naming the file and line (or the field), exit status 2,
#   no output file, no temporary "*.tmp.*" file left in the output folder.
# usage: bash test_bad_input.sh /path/to/braggflow   (env BF_SOURCE_DIR = repo root)
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common.bash" "$@"
OUTDIR=$TMP/out
mkdir "$OUTDIR"

# expect_error OUT PATTERN... -- ARGS...: braggflow ARGS must exit 2 with exactly
# one line on stderr that starts with "braggflow" and matches every (grep -E)
# PATTERN; nothing on stdout; OUT (a path, or '-') must not exist afterwards and
# the output folder must hold no temporary file.
expect_error() {
    local out=$1
    shift
    local patterns=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        patterns+=("$1")
        shift
    done
    shift
    run "$@"
    [ "$RC" -eq 2 ] || fail "exit status $RC, expected 2 (braggflow $*)"
    [ -s "$TMP/stderr" ] || fail "nothing on stderr"
    local lines
    lines=$(wc -l <"$TMP/stderr")
    [ "$lines" -eq 1 ] || fail "stderr has $lines lines, expected exactly one"
    [ "$(tail -c 1 "$TMP/stderr" | od -An -c | tr -d ' ')" = '\n' ] ||
        fail "stderr line does not end in a newline"
    grep -q '^braggflow' "$TMP/stderr" || fail "stderr line does not start with 'braggflow'"
    local p
    for p in "${patterns[@]}"; do
        grep -Eq -- "$p" "$TMP/stderr" || fail "stderr does not match /$p/"
    done
    [ ! -s "$TMP/stdout" ] || fail "something was written to stdout"
    if [ "$out" != "-" ]; then
        [ ! -e "$out" ] || fail "output file $out exists"
        local d
        d=$(dirname "$out")
        if [ -d "$d" ] && [ -n "$(find "$d" -maxdepth 1 -name '*.tmp.*' -print -quit)" ]; then
            fail "temporary file left in $d: $(find "$d" -maxdepth 1 -name '*.tmp.*')"
        fi
    fi
}

for f in "$NACL" "$INST" "$EX/sample-small.ini"; do
    [ -r "$f" ] || { CASE=setup; fail "missing example file $f (BF_SOURCE_DIR=$SRC)"; }
done

# The inputs are sound: the command these cases break succeeds as given.
CASE="control: the unbroken inputs simulate"
run simulate --cif "$NACL" --instprm "$INST" --cell "$CELL" --out "$OUTDIR/control.csv"
[ "$RC" -eq 0 ] || fail "exit status $RC"
[ -s "$OUTDIR/control.csv" ] || fail "no output"
rm -f "$OUTDIR/control.csv"
ok

# ---- 1-3: CIF -------------------------------------------------------------------
# simulate with a given CIF into both output kinds.
cif_error() { # CIF PATTERN...
    local cif=$1
    shift
    local ext
    for ext in csv h5; do
        expect_error "$OUTDIR/x.$ext" "$@" -- simulate --cif "$cif" --instprm "$INST" \
            --cell "$CELL" --out "$OUTDIR/x.$ext"
    done
    expect_error - "$@" -- simulate --cif "$cif" --instprm "$INST" --cell "$CELL" --out -
    expect_error - "$@" -- reflections --cif "$cif" --instprm "$INST" --cell "$CELL"
}

CASE="cif syntax error (unterminated quote) names file and line"
sed "s/^_symmetry_space_group_name_H-M .*/_symmetry_space_group_name_H-M   'F m -3 m/" \
    "$NACL" >bad-syntax.cif
grep -q "'F m -3 m\$" bad-syntax.cif || fail "could not break the CIF"
line=$(grep -n "'F m -3 m\$" bad-syntax.cif | cut -d: -f1)
cif_error bad-syntax.cif "bad-syntax\\.cif:$line(:|[^0-9])"
ok

CASE="cif without _cell_length_a names _cell_length_a"
grep -v '^_cell_length_a' "$NACL" >no-cell.cif
cif_error no-cell.cif 'no-cell\.cif' '_cell_length_a'
ok

CASE="cif with unknown element Xx names Xx"
sed 's/^Na1 Na+1 /Na1 Xx /' "$NACL" >bad-element.cif
grep -q '^Na1 Xx ' bad-element.cif || fail "could not break the CIF"
cif_error bad-element.cif 'bad-element\.cif' "Xx"
ok

CASE="missing cif file names it"
expect_error "$OUTDIR/x.csv" 'no-such\.cif' -- simulate --cif no-such.cif --instprm "$INST" \
    --cell "$CELL" --out "$OUTDIR/x.csv"
ok

# ---- 4: instrument ----------------------------------------------------------------
CASE="instprm without difC: 'FILE: difC: missing'"
grep -v '^difC:' "$INST" >no-difc.instprm
grep -q '^difA:' no-difc.instprm || fail "difA went too"
for ext in csv h5; do
    expect_error "$OUTDIR/x.$ext" 'no-difc\.instprm: difC: missing' -- simulate --cif "$NACL" \
        --instprm no-difc.instprm --cell "$CELL" --out "$OUTDIR/x.$ext"
done
expect_error - 'no-difc\.instprm: difC: missing' -- reflections --cif "$NACL" \
    --instprm no-difc.instprm --cell "$CELL"
ok

# ---- 5: cells that cannot be simulated -------------------------------------------------
CASE="sample: tetragonal box that breaks |a - c| > 0.001 names the class and key"
cat >bad-class.ini <<EOF
[run]
seed = 1
[instrument]
instprm = $INST
[class.tetragonal]
cif = $EX/cif/BaTiO3-P4mm.cif
count = 5
a = 3.9 3.9
c = 3.9 3.9
EOF
expect_error "$OUTDIR/x.h5" 'bad-class\.ini:[0-9]+' 'tetragonal' '(^|[^A-Za-z_])a([^A-Za-z_]|$)' \
    -- sample --config bad-class.ini --out "$OUTDIR/x.h5" --threads 1
ok

CASE="simulate: a cell with no reflection in range says so"
for ext in csv h5; do
    expect_error "$OUTDIR/x.$ext" 'no reflection' -- simulate --cif "$NACL" --instprm "$INST" \
        --cell "0.5 0.5 0.5 90 90 90" --out "$OUTDIR/x.$ext"
done
expect_error - 'no reflection' -- simulate --cif "$NACL" --instprm "$INST" \
    --cell "0.5 0.5 0.5 90 90 90" --out -
ok

# ---- 6: unwritable output ------------------------------------------------------------
CASE="output in a missing folder"
for ext in csv h5; do
    expect_error "/nonexistent-dir-$$/x.$ext" "/nonexistent-dir-$$/x\\.$ext" -- simulate \
        --cif "$NACL" --instprm "$INST" --cell "$CELL" --out "/nonexistent-dir-$$/x.$ext"
done
expect_error "/nonexistent-dir-$$/x.h5" "/nonexistent-dir-$$/x\\.h5" -- sample \
    --config "$EX/sample-small.ini" --out "/nonexistent-dir-$$/x.h5" --threads 2
ok

CASE="output under a regular file (not a folder)"
: >"$OUTDIR/plain"
for ext in csv h5; do
    expect_error "$OUTDIR/plain/x.$ext" "plain/x\\.$ext" -- simulate --cif "$NACL" \
        --instprm "$INST" --cell "$CELL" --out "$OUTDIR/plain/x.$ext"
done
rm -f "$OUTDIR/plain"
ok

CASE="output path is a folder (rename fails after the write): no temporary file left"
for ext in csv h5; do
    mkdir "$OUTDIR/dir.$ext"
    run simulate --cif "$NACL" --instprm "$INST" --cell "$CELL" --out "$OUTDIR/dir.$ext"
    [ "$RC" -eq 2 ] || fail "exit status $RC for --out dir.$ext"
    [ "$(wc -l <"$TMP/stderr")" -eq 1 ] || fail "stderr is not one line"
    grep -q "dir\\.$ext" "$TMP/stderr" || fail "message does not name dir.$ext"
    [ -z "$(find "$OUTDIR" -maxdepth 1 -name '*.tmp.*' -print -quit)" ] ||
        fail "temporary file left: $(find "$OUTDIR" -maxdepth 1 -name '*.tmp.*')"
    [ -z "$(ls -A "$OUTDIR/dir.$ext")" ] || fail "something was written into dir.$ext"
    rmdir "$OUTDIR/dir.$ext"
done
ok

CASE="read-only output folder"
if [ "$(id -u)" -eq 0 ]; then
    echo "ok $CASE # skip: running as root, permissions do not block writes"
else
    mkdir "$TMP/ro"
    chmod 555 "$TMP/ro"
    for ext in csv h5; do
        expect_error "$TMP/ro/x.$ext" "ro/x\\.$ext" -- simulate --cif "$NACL" --instprm "$INST" \
            --cell "$CELL" --out "$TMP/ro/x.$ext"
    done
    expect_error "$TMP/ro/x.h5" "ro/x\\.h5" -- sample --config "$EX/sample-small.ini" \
        --out "$TMP/ro/x.h5" --threads 2
    chmod 755 "$TMP/ro"
    ok
fi

# ---- 7: malformed INI ----------------------------------------------------------------
# write_ini NAME BODY-LINES...: a valid config (instprm, one cubic class) with
# BODY appended to [instrument]'s lines; the broken line's number is printed.
ini_head() {
    printf '%s\n' '; a config that braggflow must reject' '[run]' 'seed = 3' '[instrument]' \
        "instprm = $INST"
}
ini_tail() {
    printf '%s\n' '[class.cubic]' "cif = $NACL" 'count = 2' 'a = 5 6'
}

CASE="control: the INI skeleton is valid"
{ ini_head; ini_tail; } >good.ini
run sample --config good.ini --out "$OUTDIR/good.h5" --threads 1
[ "$RC" -eq 0 ] || fail "exit status $RC"
[ -s "$OUTDIR/good.h5" ] || fail "no output"
rm -f "$OUTDIR/good.h5"
ok

ini_error() { # NAME BROKEN-LINE PATTERN...
    local name=$1 broken=$2
    shift 2
    { ini_head; echo "$broken"; ini_tail; } >"$name"
    local line
    line=$(grep -nxF -- "$broken" "$name" | cut -d: -f1)
    expect_error "$OUTDIR/x.h5" "${name//./\\.}:$line([^0-9]|\$)" "$@" -- sample \
        --config "$name" --out "$OUTDIR/x.h5" --threads 1
}

CASE="ini line without '=' names file and line"
ini_error no-equals.ini 'tof_min_ms 1.5'
ok

CASE="ini unknown key names file, line and key"
ini_error unknown-key.ini 'tof_minimum_ms = 1.5' 'tof_minimum_ms'
ok

CASE="ini bad number names file, line and key"
ini_error bad-number.ini 'tof_min_ms = 1.5x' 'tof_min_ms' '1\.5x'
ok

CASE="ini unknown section names file and line"
{ ini_head; echo '[clas.cubic]'; echo 'x = 1'; ini_tail; } >bad-section.ini
expect_error "$OUTDIR/x.h5" 'bad-section\.ini:6([^0-9]|$)' 'clas\.cubic' -- sample \
    --config bad-section.ini --out "$OUTDIR/x.h5"
ok

CASE="ini missing file names it"
expect_error "$OUTDIR/x.h5" 'no-such\.ini' -- sample --config no-such.ini --out "$OUTDIR/x.h5"
ok

# ---- 8: command line --------------------------------------------------------------------
CASE="unknown option names it"
expect_error "$OUTDIR/x.csv" "'--bogus'" -- simulate --bogus --cif "$NACL" --instprm "$INST" \
    --cell "$CELL" --out "$OUTDIR/x.csv"
expect_error - "'--bogus'" -- reflections --cif "$NACL" --bogus
expect_error "$OUTDIR/x.h5" "'--bogus'" -- sample --bogus --config "$EX/sample-small.ini" \
    --out "$OUTDIR/x.h5"
expect_error - "'-x'" -- simulate -x
ok

CASE="option without its value names it"
expect_error - "'--cif'" -- simulate --cif
expect_error - "'--cell'" -- reflections --cif "$NACL" --instprm "$INST" --cell
expect_error - "'--config'" -- sample --config
ok

CASE="missing required option"
expect_error "$OUTDIR/x.csv" -- simulate --cif "$NACL" --instprm "$INST" --out "$OUTDIR/x.csv"
expect_error - -- simulate --cif "$NACL" --instprm "$INST" --cell "$CELL"
expect_error - -- reflections --cif "$NACL" --cell "$CELL"
expect_error "$OUTDIR/x.h5" -- sample --out "$OUTDIR/x.h5"
expect_error - -- sample --config "$EX/sample-small.ini"
ok

CASE="--cell with five numbers or a non-number names --cell"
expect_error "$OUTDIR/x.csv" '--cell' -- simulate --cif "$NACL" --instprm "$INST" \
    --cell "5.64 5.64 5.64 90 90" --out "$OUTDIR/x.csv"
expect_error "$OUTDIR/x.csv" '--cell' -- simulate --cif "$NACL" --instprm "$INST" \
    --cell "5.64 5.64 five 90 90 90" --out "$OUTDIR/x.csv"
expect_error - '--cell' -- reflections --cif "$NACL" --instprm "$INST" \
    --cell "5.64 5.64 5.64 90 90 90 90"
expect_error "$OUTDIR/x.csv" '--cell' -- simulate --cif "$NACL" --instprm "$INST" \
    --cell "5.64 -5.64 5.64 90 90 90" --out "$OUTDIR/x.csv"
ok

CASE="a value with a newline still gives one line"
expect_error "$OUTDIR/x.csv" '--cell' -- simulate --cif "$NACL" --instprm "$INST" \
    --cell $'5.64 5.64 5.64\n90 90 90' --out "$OUTDIR/x.csv"
ok

CASE="bad numbers for --tof-*, --scale, --threads name the option"
expect_error "$OUTDIR/x.csv" '--tof-min' -- simulate --cif "$NACL" --instprm "$INST" \
    --cell "$CELL" --tof-min abc --out "$OUTDIR/x.csv"
expect_error "$OUTDIR/x.csv" '--tof-step' -- simulate --cif "$NACL" --instprm "$INST" \
    --cell "$CELL" --tof-step 1e999 --out "$OUTDIR/x.csv"
expect_error "$OUTDIR/x.csv" '--scale' -- simulate --cif "$NACL" --instprm "$INST" \
    --cell "$CELL" --scale -1 --out "$OUTDIR/x.csv"
expect_error "$OUTDIR/x.h5" '--threads' -- sample --config "$EX/sample-small.ini" \
    --threads two --out "$OUTDIR/x.h5"
ok

CASE="--out with an unknown extension"
expect_error "$OUTDIR/x.txt" '--out' -- simulate --cif "$NACL" --instprm "$INST" \
    --cell "$CELL" --out "$OUTDIR/x.txt"
expect_error "$OUTDIR/x.csv" '--out' -- sample --config "$EX/sample-small.ini" \
    --out "$OUTDIR/x.csv"
ok

CASE="unknown command, no command, stray argument"
expect_error - "frobnicate" -- frobnicate
expect_error - -- 
expect_error - "stray" -- reflections --cif "$NACL" --instprm "$INST" --cell "$CELL" stray
ok

CASE="--help, CMD --help, --version"
for args in "--help" "simulate --help" "reflections --help" "sample --help" "simulate -h"; do
    # shellcheck disable=SC2086
    run $args
    [ "$RC" -eq 0 ] || fail "braggflow $args: exit status $RC"
    grep -q 'usage:' "$TMP/stdout" || fail "braggflow $args: no 'usage:' on stdout"
    [ ! -s "$TMP/stderr" ] || fail "braggflow $args: stderr not empty"
done
for cmd in simulate reflections sample; do
    run "$cmd" --help
    grep -q "usage: braggflow $cmd" "$TMP/stdout" || fail "$cmd --help is not $cmd's usage"
    run --help
    grep -q "^  $cmd " "$TMP/stdout" || fail "--help does not list $cmd"
done
version=$(sed -n 's/^#define BF_VERSION "\(.*\)"/\1/p' "$SRC/include/braggflow/core.h")
[ -n "$version" ] || fail "cannot read BF_VERSION from core.h"
run --version
[ "$RC" -eq 0 ] || fail "--version: exit status $RC"
[ "$(cat "$TMP/stdout")" = "braggflow $version" ] ||
    fail "--version printed '$(cat "$TMP/stdout")', expected 'braggflow $version'"
ok

# Constant-wavelength instruments (issue 12): one line naming the file and key, exit 2.
CWX=$EX/instrument/cuka-lab.instprm
printf 'Type:PXY\nLam:1.54\nU:1\nV:0\nW:1\n' >"$TMP/type.instprm"
printf 'Type:PXC\nU:1\nV:0\nW:1\n' >"$TMP/nolam.instprm"
printf 'Type:PNC\nLam:1.54\nV:0\nW:1\n' >"$TMP/nou.instprm"
printf 'Type:PNC\nLam:20\nU:1\nV:0\nW:1\n' >"$TMP/long.instprm"
CASE="CW instprm of unknown Type names file, line and key"
expect_error "$OUTDIR/p.csv" "type.instprm:1: Type: 'PXY'" -- simulate --cif "$NACL" \
    --instprm "$TMP/type.instprm" --cell "$CELL" --out "$OUTDIR/p.csv"
ok
CASE="CW instprm without Lam or U names file and key"
expect_error "$OUTDIR/p.csv" "nolam.instprm: Lam: missing" -- simulate --cif "$NACL" \
    --instprm "$TMP/nolam.instprm" --cell "$CELL" --out "$OUTDIR/p.csv"
expect_error "$OUTDIR/p.csv" "nou.instprm: U: missing" -- simulate --cif "$NACL" \
    --instprm "$TMP/nou.instprm" --cell "$CELL" --out "$OUTDIR/p.csv"
ok
CASE="a 2theta range outside (0, 180) names the option"
expect_error "$OUTDIR/p.csv" "tth_max" -- simulate --cif "$NACL" --instprm "$CWX" --cell "$CELL" \
    --tth-max 190 --out "$OUTDIR/p.csv"
expect_error "$OUTDIR/p.csv" "tth_min" -- simulate --cif "$NACL" --instprm "$CWX" --cell "$CELL" \
    --tth-min -3 --out "$OUTDIR/p.csv"
expect_error "$OUTDIR/p.csv" "--tth-step" -- simulate --cif "$NACL" --instprm "$CWX" \
    --cell "$CELL" --tth-step x --out "$OUTDIR/p.csv"
ok
CASE="a wavelength for which no reflection fits"
expect_error "$OUTDIR/p.csv" "no reflection .*2theta range" -- simulate --cif "$NACL" \
    --instprm "$TMP/long.instprm" --cell "$CELL" --out "$OUTDIR/p.csv"
ok
CASE="a bad --fprime names the option"
expect_error "$OUTDIR/p.csv" "--fprime: 'Na-1'" -- simulate --cif "$NACL" --instprm "$CWX" \
    --cell "$CELL" --fprime Na-1 --out "$OUTDIR/p.csv"
ok

CASE="an element without a scattering length (CW neutrons) or an unknown one names it"
sed 's/^Na1 Na+1 /Na1 Gd /' "$NACL" >"$TMP/gd.cif"
sed 's/^Na1 Na+1 /Na1 Es /' "$NACL" >"$TMP/es.cif"
expect_error "$OUTDIR/p.csv" "gd.cif: atom Na1: element Gd" -- simulate --cif "$TMP/gd.cif" \
    --instprm "$EX/instrument/cw-neutron-1.54A.instprm" --cell "$CELL" --out "$OUTDIR/p.csv"
expect_error "$OUTDIR/p.csv" "es.cif:.*atom Na1: unknown element in type symbol 'Es'" -- \
    simulate --cif "$TMP/es.cif" --instprm "$CWX" --cell "$CELL" --out "$OUTDIR/p.csv"
ok

# Every case above left the output folder clean.
CASE="output folder is empty at the end"
[ -z "$(ls -A "$OUTDIR")" ] || fail "left behind: $(ls -A "$OUTDIR")"
ok
