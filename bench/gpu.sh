#!/usr/bin/env bash
# bench/gpu.sh — the CUDA backend's one prepared check, for a machine WITH an NVIDIA GPU.
#
# IT HAS NEVER RUN: it was written on a machine without a GPU (issue 13), where it cannot
# run (the CUDA test only reports "skipped" there and --device cuda is refused). Expect to
# fix small things on its first run; every step is logged under $OUT.
#
# Steps (well under 10 minutes on 16 cores + one H100/H200):
#   1. Release build with -DBF_CUDA=ON (nvcc must be found: PATH, CUDACXX or
#      /usr/local/cuda/bin/nvcc) into $BUILD (default build-gpu), timed;
#   2. tests/nn/test_backend_cuda.c: every op and both models' training step against the
#      CPU backend (1e-4); it must pass and must not say "skipped";
#   3. end to end: train braggnn 2 epochs on --device cuda and on --device cpu from the
#      same small patch files, and `peaks --device cuda` against the CPU's centres;
#   4. training and inference throughput of structure_net and braggnn on --device cuda
#      (bench/train_throughput: training at batch 512, inference through bf_model_predict,
#      host arrays in and out, batches 1..4096);
#   5. the PyTorch peer on the same GPU (bench/torch_peer_gpu.py --device cuda: eager and
#      jit.script device-resident, and eager_host_io, the same work as bf_model_predict),
#      when python3 has torch with CUDA;
# then prints ONE JSON object on stdout (logs on stderr and in $OUT).
#
#   bash bench/gpu.sh                      # from the repository root
#   BUILD=build-gpu OUT=/tmp/gpu JOBS=16 bash bench/gpu.sh
set -uo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
cd "$SRC" || exit 1
BUILD=${BUILD:-build-gpu}
OUT=${OUT:-$(mktemp -d /tmp/bf-gpu-XXXXXX)}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
SECONDS_TRAIN=${SECONDS_TRAIN:-4}
SECONDS_INFER=${SECONDS_INFER:-0.4}
REPS=${REPS:-3}
BATCHES=${BATCHES:-1,4,16,64,256,1024,4096}
mkdir -p "$OUT"
log() { echo "gpu.sh: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))' 2>/dev/null ||
    sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/"/' | tr -d '\n'; }

GPU_NAME=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
log "GPU: ${GPU_NAME:-nvidia-smi not found}; out $OUT"

# ---- 1. build ----------------------------------------------------------------------------
t0=$(now)
BUILD_RC=0
{ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBF_CUDA=ON &&
    cmake --build "$BUILD" -j"$JOBS"; } >"$OUT/build.log" 2>&1 || BUILD_RC=$?
BUILD_S=$(elapsed "$t0")
BUILD_WARNINGS=$(grep -ci "warning" "$OUT/build.log" || true)
log "build rc $BUILD_RC in $BUILD_S s ($BUILD_WARNINGS warning lines; $OUT/build.log)"
if [ "$BUILD_RC" != 0 ]; then
    tail -20 "$OUT/build.log" >&2
    echo "{\"bench\":\"gpu\",\"gpu\":$(echo "$GPU_NAME" | json_str),\"build_rc\":$BUILD_RC,\"build_seconds\":$BUILD_S,\"build_log_tail\":$(tail -20 "$OUT/build.log" | json_str)}"
    exit 1
fi
BF=$BUILD/braggflow

# ---- 2. the CUDA test ------------------------------------------------------------------------
t0=$(now)
TEST_RC=0
timeout 300 "$BUILD/tests/nn_test_backend_cuda" >"$OUT/test_backend_cuda.log" 2>&1 || TEST_RC=$?
TEST_S=$(elapsed "$t0")
TEST_SUMMARY=$(tail -1 "$OUT/test_backend_cuda.log")
TEST_SKIPPED=$(grep -c "skipped:" "$OUT/test_backend_cuda.log" || true)
if [ "$TEST_SKIPPED" != 0 ] && [ "$TEST_RC" = 0 ]; then
    TEST_RC=77 # "skipped" on a machine with a GPU is a failure
fi
log "test_backend_cuda rc $TEST_RC in $TEST_S s: $TEST_SUMMARY ($TEST_SKIPPED skipped)"
grep -E "CHECK|differ|values apart|skipped:" "$OUT/test_backend_cuda.log" | head -20 >&2

# ---- 3. end to end through the command line -----------------------------------------------------
t0=$(now)
E2E_RC=0
end_to_end() {
    "$BF" sample-peaks --count 4000 --seed 31 --out "$OUT/ptrain.h5" &&
        "$BF" sample-peaks --count 1000 --seed 32 --out "$OUT/pval.h5" || return $?
    for dev in cpu cuda; do
        timeout 120 "$BF" train --model braggnn --train "$OUT/ptrain.h5" --val "$OUT/pval.h5" \
            --epochs 2 --batch 256 --device "$dev" --out "$OUT/peaks_$dev.safetensors" \
            >"$OUT/train_$dev.txt" || return $?
        # the CPU-trained model on both devices
        "$BF" peaks --model "$OUT/peaks_cpu.safetensors" --data "$OUT/pval.h5" --device "$dev" \
            --out "$OUT/centres_$dev.csv" || return $?
    done
}
end_to_end >"$OUT/e2e.log" 2>&1 || E2E_RC=$?
E2E_S=$(elapsed "$t0")
# the same CPU-trained model's centres on both devices: the largest difference in pixels
CENTRE_DIFF=$(paste -d, "$OUT/centres_cpu.csv" "$OUT/centres_cuda.csv" 2>/dev/null | awk -F, '
    NR > 1 { d = $2 - $5; e = $3 - $6; d = d < 0 ? -d : d; e = e < 0 ? -e : e;
             m = d > m ? d : m; m = e > m ? e : m; n++ }
    END { if (n) printf "%.3g", m; else printf "null" }')
VAL_CUDA=$(grep -o "val mse [0-9.e+-]*" "$OUT/train_cuda.txt" 2>/dev/null | tail -1 | awk '{print $3}')
VAL_CPU=$(grep -o "val mse [0-9.e+-]*" "$OUT/train_cpu.txt" 2>/dev/null | tail -1 | awk '{print $3}')
SPS_CUDA=$(grep -o "[0-9]* samples/s" "$OUT/train_cuda.txt" 2>/dev/null | tail -1 | awk '{print $1}')
SPS_CPU=$(grep -o "[0-9]* samples/s" "$OUT/train_cpu.txt" 2>/dev/null | tail -1 | awk '{print $1}')
log "end to end rc $E2E_RC in $E2E_S s: val mse cuda ${VAL_CUDA:-?} cpu ${VAL_CPU:-?}, " \
    "centre diff ${CENTRE_DIFF} px, train ${SPS_CUDA:-?} vs ${SPS_CPU:-?} samples/s"

# ---- 4. braggflow throughput on the GPU ----------------------------------------------------------
BF_JSON=()
for model in structure_net braggnn; do
    t0=$(now)
    j=$(timeout 240 "$BUILD/bench/train_throughput" --model "$model" --device cuda --no-peer \
        --threads "$JOBS" --seconds "$SECONDS_TRAIN" --infer-seconds "$SECONDS_INFER" \
        --reps "$REPS" --infer-batches "$BATCHES" 2>>"$OUT/throughput.log")
    [ -n "$j" ] || j=null
    BF_JSON+=("\"$model\":$j")
    log "braggflow $model on cuda in $(elapsed "$t0") s: $j"
done

# ---- 5. the PyTorch peer on the same GPU ------------------------------------------------------------
t0=$(now)
PEER_RC=0
timeout 300 python3 bench/torch_peer_gpu.py --device cuda --threads "$JOBS" \
    --models multitask,braggnn --train-seconds "$SECONDS_TRAIN" --infer-seconds "$SECONDS_INFER" \
    --reps "$REPS" --infer-batches "$BATCHES" --variants eager,jit_script \
    --tag gpu --out "$OUT/torch_gpu.json" >"$OUT/torch_gpu.log" 2>&1 || PEER_RC=$?
log "torch peer rc $PEER_RC in $(elapsed "$t0") s ($OUT/torch_gpu.log)"

# ---- one JSON object --------------------------------------------------------------------------------
META="\"gpu\":$(echo "$GPU_NAME" | json_str),\"build_seconds\":$BUILD_S,\"build_warning_lines\":$BUILD_WARNINGS,\
\"cuda_test\":{\"rc\":$TEST_RC,\"seconds\":$TEST_S,\"summary\":$(echo "$TEST_SUMMARY" | json_str),\"skipped\":$TEST_SKIPPED},\
\"end_to_end\":{\"rc\":$E2E_RC,\"seconds\":$E2E_S,\"val_mse_cuda\":${VAL_CUDA:-null},\"val_mse_cpu\":${VAL_CPU:-null},\
\"train_samples_per_s_cuda\":${SPS_CUDA:-null},\"train_samples_per_s_cpu\":${SPS_CPU:-null},\"max_centre_diff_px\":$CENTRE_DIFF}"
BFJ="{$(IFS=,; echo "${BF_JSON[*]}")}"
if command -v python3 >/dev/null; then
    META=$META BFJ=$BFJ BATCHES=$BATCHES python3 - "$OUT/torch_gpu.json" "$PEER_RC" <<'PY'
import json, os, sys
meta = json.loads("{" + os.environ["META"] + "}")
bf = json.loads(os.environ["BFJ"])
peer, why = None, None
try:
    peer = json.load(open(sys.argv[1])) if sys.argv[2] == "0" else None
    if peer is None:
        why = "torch peer exit %s (see torch_gpu.log)" % sys.argv[2]
except Exception as e:
    why = repr(e)
out = {"bench": "gpu", **meta, "batches": os.environ["BATCHES"], "braggflow": bf, "pytorch": None,
       "peer_error": why, "ratio": {}}
if peer:
    names = {"structure_net": "multitask", "braggnn": "braggnn"}
    out["pytorch"] = {"torch": peer.get("torch_version"), "cuda": peer.get("cuda_version"),
                      "gpu": peer.get("gpu"), "models": {}}
    for ours, theirs in names.items():
        p = peer["models"].get(theirs, {})
        rows = p.get("infer", {}).get("rows", [])
        by = {}
        for r in rows:
            by.setdefault(r["variant"], {})[str(r["batch"])] = r["samples_per_s_median"]
        pm = {"train_samples_per_s": p.get("train", {}).get("samples_per_s_median"),
              "infer": by}
        out["pytorch"]["models"][ours] = pm
        b = bf.get(ours) or {}
        bfi = (b.get("braggflow") or {}).get("infer_sweep", {})
        bft = (b.get("braggflow") or {}).get("train_samples_per_s")
        ratio = {"train": (bft / pm["train_samples_per_s"]) if bft and pm["train_samples_per_s"] else None,
                 "infer_vs_eager_host_io": {}, "infer_vs_best_device_resident": {}}
        for k, v in bfi.items():
            hio = by.get("eager_host_io", {}).get(k)
            best = max([by[vv][k] for vv in by if vv != "eager_host_io" and k in by[vv]] or [0])
            ratio["infer_vs_eager_host_io"][k] = v / hio if v and hio else None
            ratio["infer_vs_best_device_resident"][k] = v / best if v and best else None
        out["ratio"][ours] = ratio
print(json.dumps(out))
PY
else
    echo "{\"bench\":\"gpu\",$META,\"braggflow\":$BFJ,\"pytorch\":null,\"peer_error\":\"no python3\"}"
fi
