#!/usr/bin/env bash
# tools/cuda_emu/run.sh [BUILD] [TEST-NAME...] — runs tests/nn/test_backend_cuda.c against
# src/nn/backend_cuda.cu EMULATED ON THE HOST (cuda_emu.h: serial blocks, fibers for the
# threads of a block, host memory, a reference cuBLAS with cuBLAS's argument checks),
# with the kernels and the emulation under AddressSanitizer. It executes the kernels'
# index arithmetic, barriers and shuffles, the cuBLAS transposition/stride mapping and
# the error paths on a machine without a GPU; it is not a GPU (no races, timing, memory
# model or real cuBLAS: see cuda_emu.h). BUILD (default build) must hold a configured
# build; the test's objects and libbraggflow.a come from it, with backend_cpu.c
# recompiled to dispatch "cuda" to the emulated backend.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
shift || true
OUT=$BUILD/cuda_emu
mkdir -p "$OUT"
cmake --build "$BUILD" --target nn_test_backend_cuda -j2 >/dev/null
python3 "$SRC/tools/cuda_emu/translate.py" "$SRC/src/nn/backend_cuda.cu" >"$OUT/backend_cuda_emu.cpp"
INC=(-I"$SRC/include" -I"$SRC/src" -I/usr/include/hdf5/serial)
g++ -std=c++17 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -Wall -Wextra \
    -include "$SRC/tools/cuda_emu/cuda_emu.h" "${INC[@]}" -DBF_HAVE_CUDA=1 \
    -c "$OUT/backend_cuda_emu.cpp" -o "$OUT/backend_cuda_emu.o"
gcc -std=gnu17 -O2 -fopenmp -Wall -Wextra -Wno-unused-parameter "${INC[@]}" -DBF_HAVE_CUDA=1 \
    -c "$SRC/src/nn/backend_cpu.c" -o "$OUT/backend_cpu_cuda.o"
cd "$BUILD/tests"
# the test's own link line, with the emulated backend ahead of libbraggflow.a
link=$(cat CMakeFiles/nn_test_backend_cuda.dir/link.txt)
link=${link/-o nn_test_backend_cuda/-o $OUT/test_backend_cuda_emu $OUT/backend_cuda_emu.o $OUT/backend_cpu_cuda.o -fsanitize=address,undefined}
eval "$link -lstdc++"
ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    BF_CUDA_EMU=1 "$OUT/test_backend_cuda_emu" "$@"
