#!/usr/bin/env bash
# tests/cli/test_device.sh — --device on train, evaluate, predict, peaks: cpu is the
# default and gives the same bits; cuda on a machine without a GPU (or a build without
# CUDA) is exit 2 with one line saying why, before any file is read; a bad value is a
# usage error naming --device. Where a GPU is present, cuda must work instead and agree
# with the CPU (centres within 1e-3 px).
source "$(dirname "$0")/common.bash" "$1"

run sample-peaks --count 200 --seed 21 --out train.h5
[ "$RC" = 0 ] || fail "sample-peaks rc $RC"
run sample-peaks --count 100 --seed 22 --out val.h5
[ "$RC" = 0 ] || fail "sample-peaks rc $RC"

CASE=train_and_peaks_with_device_cpu_are_the_default
run train --model braggnn --train train.h5 --val val.h5 --out a.safetensors --epochs 1 \
    --batch 32 --threads 2 --device cpu
[ "$RC" = 0 ] || fail "train --device cpu rc $RC"
run train --model braggnn --train train.h5 --val val.h5 --out b.safetensors --epochs 1 \
    --batch 32 --threads 2
[ "$RC" = 0 ] || fail "train rc $RC"
cmp -s a.safetensors b.safetensors || fail "--device cpu changed the checkpoint"
run peaks --model a.safetensors --data val.h5 --out cpu.csv --threads 2 --device cpu
[ "$RC" = 0 ] || fail "peaks --device cpu rc $RC"
run peaks --model a.safetensors --data val.h5 --out default.csv --threads 2
cmp -s cpu.csv default.csv || fail "--device cpu changed the centres"
ok

# One line on stderr, exit 2, naming the device and the reason.
cuda_unavailable() {
    [ "$RC" = 2 ] || fail "rc $RC"
    [ "$(wc -l <stderr)" = 1 ] || fail "$(wc -l <stderr) lines on stderr"
    grep -Eq "^braggflow: $1 --device $2: backend '$2': (no CUDA device \(cudaGetDeviceCount: .+\)|this build has no CUDA backend)" stderr ||
        fail "message: $(cat stderr)"
    [ ! -s stdout ] || fail "stdout: $(cat stdout)"
}

CASE=peaks_with_device_cuda_fails_with_one_line_or_works_on_a_gpu
run peaks --model a.safetensors --data val.h5 --out gpu.csv --device cuda
if [ "$RC" = 0 ]; then
    # a GPU is here: the same centres as the CPU's to 1e-3 pixel
    paste -d, cpu.csv gpu.csv | awk -F, 'NR > 1 { d = $2 - $5; e = $3 - $6;
        if (d < 0) d = -d; if (e < 0) e = -e; if (d > 1e-3 || e > 1e-3) bad++ }
        END { exit bad > 0 }' || fail "GPU centres differ from the CPU's"
else
    cuda_unavailable peaks cuda
    [ ! -e gpu.csv ] || fail "wrote gpu.csv"
fi
ok

CASE=train_evaluate_predict_with_device_cuda_without_a_gpu_fail_with_one_line
if [ "$(grep -c . <<<"$("$BF" peaks --model a.safetensors --data val.h5 --device cuda 2>&1 >/dev/null)")" = 0 ]; then
    echo "ok $CASE (skipped: a GPU is present)"
else
    run train --model braggnn --train train.h5 --val val.h5 --out c.safetensors --epochs 1 \
        --device cuda
    cuda_unavailable train cuda
    [ ! -e c.safetensors ] || fail "wrote a checkpoint"
    run evaluate --model a.safetensors --data val.h5 --device cuda:1
    cuda_unavailable evaluate cuda:1
    run predict --model missing.safetensors --csv missing.csv --device cuda
    cuda_unavailable predict cuda # the device is checked before any file is read
    ok
fi

CASE=device_bogus_is_a_usage_error_naming_the_option
for cmd in train evaluate predict peaks; do
    case $cmd in
    train) args=(--train train.h5 --val val.h5 --out x.safetensors) ;;
    *) args=(--model a.safetensors --data val.h5) ;;
    esac
    for bad in bogus gpu cuda: cuda:x cuda:-1 reference; do
        run "$cmd" "${args[@]}" --device "$bad"
        [ "$RC" = 2 ] || fail "$cmd --device $bad: rc $RC"
        grep -q "^braggflow $cmd: --device: '$bad' is not cpu, cuda or cuda:N (see braggflow $cmd --help)$" stderr ||
            fail "$cmd --device $bad: $(cat stderr)"
    done
done
ok

CASE=help_lists_device
for cmd in train evaluate predict peaks; do
    "$BF" "$cmd" --help | grep -q -- "--device D .*cpu (default), cuda" || fail "$cmd --help"
done
ok
