#!/usr/bin/env python3
"""tools/cuda_emu/translate.py SRC.cu > OUT.cpp: rewrites the CUDA-only syntax of
src/nn/backend_cuda.cu for the host emulation in cuda_emu.h: the two CUDA includes go
(cuda_emu.h is force-included), `extern __shared__ T name[];` points at the emulated
dynamic shared memory, and every launch `k<<<grid, block, shmem, stream>>>(args);`
becomes `emu::launch(grid, block, shmem, stream, fibers, [=]() { k(args); });`, fibers
being 1 for kernels that synchronise (__syncthreads, __shfl_down_sync, block_sum) and 0
for the others, whose threads then run one after another as plain calls."""
import re
import sys

src = open(sys.argv[1]).read()
src = re.sub(r'#include <(cublas_v2|cuda_runtime)\.h>\n', '', src)
src = re.sub(r'extern __shared__ (\w+) (\w+)\[\];', r'\1 *\2 = (\1 *)emu::dyn_shared;', src)

# kernels that synchronise: the text from their __global__ to the next one mentions a barrier
sync = set()
for chunk in src.split('__global__')[1:]:
    m = re.match(r'\s*void\s+(\w+)', chunk)
    if m and re.search(r'__syncthreads|__shfl_down_sync|block_sum', chunk):
        sync.add(m.group(1))

out, i = [], 0
pat = re.compile(r'(\w+)<<<')
while True:
    m = pat.search(src, i)
    if not m:
        out.append(src[i:])
        break
    out.append(src[i:m.start()])
    j = src.index('>>>', m.end())
    cfg = src[m.end():j]
    assert src[j + 3] == '(', src[m.start():j + 10]
    depth, k = 0, j + 3
    while True:  # the matching parenthesis of the arguments
        c = src[k]
        depth += c == '('
        depth -= c == ')'
        k += 1
        if depth == 0:
            break
    args = src[j + 4:k - 1]
    out.append('emu::launch(%s, %d, [=]() { %s(%s); })' % (cfg, m.group(1) in sync, m.group(1), args))
    i = k
sys.stdout.write(''.join(out))
