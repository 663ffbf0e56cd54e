#!/usr/bin/env bash
# tests/cli/test_layering.sh — the layers' include rules (DESIGN §2, CONTRIBUTING): the nn
# engine knows no task, dataset or physics (no data/sim/crystal/fit/task/al/flow header
# under src/nn) and no MPI (only src/dist includes mpi.h), and no library layer includes
# the CLI's headers.
source "$(dirname "$0")/common.bash" "$1"

CASE=the_nn_engine_includes_no_task_data_or_physics_header
bad=$(grep -rnE '#include "braggflow/(data|sim|crystal|fit|task|al|flow)\.h"' "$SRC/src/nn" || true)
[ -z "$bad" ] || fail "$bad"
[ -n "$(ls "$SRC"/src/nn/*.c 2>/dev/null)" ] || fail "no sources under $SRC/src/nn"
ok

CASE=only_the_dist_layer_includes_mpi
# the engine talks to other ranks through bf_comm (nn.h), never MPI (DESIGN §10)
bad=$(grep -rnE '#include [<"]mpi\.h[>"]|#include "braggflow/dist\.h"' "$SRC/src/nn" "$SRC/include/braggflow/nn.h" || true)
[ -z "$bad" ] || fail "$bad"
bad=$(grep -rlE '#include [<"]mpi\.h[>"]' "$SRC/src" "$SRC/include" | grep -v "^$SRC/src/dist/" || true)
[ -z "$bad" ] || fail "mpi.h outside src/dist: $bad"
ok

CASE=no_library_layer_includes_the_cli
bad=$(grep -rn '#include "cli/' "$SRC/src" --include=*.c --include=*.h | grep -v "^$SRC/src/cli/" || true)
[ -z "$bad" ] || fail "$bad"
ok

CASE=only_the_cli_and_serve_include_the_serve_header
bad=$(grep -rn '#include "braggflow/serve.h"\|#include "serve/' "$SRC/src" --include=*.c --include=*.h |
    grep -v "^$SRC/src/cli/\|^$SRC/src/serve/" || true)
[ -z "$bad" ] || fail "$bad"
ok
