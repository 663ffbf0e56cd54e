# tests/cli/common.bash — sourced by the tests/cli/*.sh scripts (not a test
# itself: ctest runs only *.sh). Sets BF (absolute path of braggflow, $1),
# SRC, EX, NACL, INST, CELL, a scratch folder TMP (removed on exit, also the
# working folder), and the helpers fail, ok, run, run_ok, run_fails, need_mpirun, mpi_ok,
# same_checkpoint and tiny_ini.
BF=${1:?usage: $0 /path/to/braggflow}
case $BF in /*) ;; *) BF=$PWD/$BF ;; esac # the cases run in a temporary folder
SRC=${BF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export BF_PROGRESS=0
EX=$SRC/examples
NACL=$EX/cif/NaCl.cif
INST=$EX/instrument/nomad-like-bank4.instprm
CELL="5.64 5.64 5.64 90 90 90"

TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

fail() {
    echo "FAIL $CASE: $*" >&2
    if [ -s "$TMP/stderr" ]; then
        echo "---- stderr:" >&2
        cat "$TMP/stderr" >&2
    fi
    exit 1
}
ok() { echo "ok $CASE"; }

# write_seed_ini NAME SEED COUNT [EXTRA]: NAME.ini for `sample`: the three seed classes
# (their built-in boxes) on braggflow's example CIFs, COUNT patterns each; EXTRA
# lines go into [run].
write_seed_ini() {
    cat >"$1.ini" <<INI
[run]
seed = $2
${4:-}
[instrument]
instprm = $INST
[class.cubic]
cif = $NACL
count = $3
[class.trigonal]
cif = $EX/cif/LaAlO3-R-3c-rhombohedral.cif
count = $3
[class.tetragonal]
cif = $EX/cif/BaTiO3-P4mm.cif
count = $3
INI
}

# run CMD...: braggflow's stdout and stderr go to $TMP/stdout, $TMP/stderr; rc in RC.
run() {
    "$BF" "$@" >"$TMP/stdout" 2>"$TMP/stderr"
    RC=$?
}
# run_fails PATTERN CMD...: run, which must fail as every error does (the README's
# contract): exit status 2, one line on stderr, holding PATTERN (grep).
run_fails() {
    local pattern=$1
    shift
    run "$@"
    [ "$RC" -eq 2 ] || fail "braggflow $*: exit status $RC, expected 2"
    [ "$(wc -l <"$TMP/stderr")" -eq 1 ] || fail "braggflow $*: stderr is not one line"
    grep -q -- "$pattern" "$TMP/stderr" || fail "stderr lacks '$pattern'"
}
# run_ok CMD...: run, which must succeed.
run_ok() {
    run "$@"
    [ "$RC" -eq 0 ] || fail "braggflow $*: exit status $RC"
}

# need_mpirun: the MPI cases that follow need mpirun; without it the script prints
# "skipped: mpirun not found" and exits 0. Sets MPIRUN (as an array) and lets Open MPI
# start as root (a container).
need_mpirun() {
    if ! command -v mpirun >/dev/null 2>&1; then
        echo "skipped: mpirun not found"
        exit 0
    fi
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    MPIRUN=(mpirun --oversubscribe)
}
# mpi_ok N CMD...: mpirun -np N braggflow CMD, which must succeed.
mpi_ok() {
    local n=$1
    shift
    "${MPIRUN[@]}" -np "$n" "$BF" "$@" >"$TMP/stdout" 2>"$TMP/stderr"
    RC=$?
    [ "$RC" -eq 0 ] || fail "mpirun -np $n braggflow $*: exit status $RC"
}

# same_checkpoint A B DIR_A DIR_B: the safetensors files A and B hold the same tensors,
# byte for byte (the data after the u64 LE header length N and the N-byte JSON
# header), and the same header once DIR_A/ is read as DIR_B/ (the training_config
# names the folder the initial weights came from) and the padding is dropped.
header_len() { od -An --endian=little -t u8 -N8 "$1" | tr -d ' '; }
same_checkpoint() {
    local a=$1 b=$2 na nb
    na=$(header_len "$a") && nb=$(header_len "$b") || return 1
    [ -n "$na" ] && [ -n "$nb" ] && [ "$na" -gt 0 ] && [ "$nb" -gt 0 ] || return 1
    cmp -s <(tail -c +$((8 + na + 1)) "$a") <(tail -c +$((8 + nb + 1)) "$b") || return 1
    [ "$(($(stat -c %s "$a") - 8 - na))" -gt 0 ] || return 1 # no tensor bytes at all
    cmp -s <(head -c $((8 + na)) "$a" | tail -c "$na" | sed "s#\"$3/#\"$4/#g; s/ *\$//") \
        <(head -c $((8 + nb)) "$b" | tail -c "$nb" | sed 's/ *$//')
}

# tiny_ini NAME WORKFLOW EPOCHS [extra [al] lines]
tiny_ini() {
    write_seed_ini "$1" 5 20
    cat >>"$1.ini" <<INI
[campaign]
workflow = $2
phases = 3
val = 30
test = 30
study_per_class = 10
new_per_phase = 40
sim_threads = 1
train_threads = 1
[train]
epochs = $3
batch = 16
hidden = 16
[al]
${4:-policy = seed-mix}
INI
}
