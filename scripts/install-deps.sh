#!/usr/bin/env bash
# Installs braggflow's build and test dependencies: Debian 12 packages, then the npm
# package the ONNX export tests run (onnxruntime-node, into tools/onnx/).
# Idempotent: does nothing (and needs no root) when everything is present.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # sgemm for the nn engine (OpenMP build: one thread pool)
  libhdf5-dev hdf5-tools   # datasets (+ h5dump/h5ls for inspecting them)
  libopenmpi-dev openmpi-bin   # data-parallel training (src/dist), multi-machine campaigns
  libhwloc-dev             # thread pinning
  libcif-dev libicu-dev    # CIF API (COMCIFS) + ICU UChar strings
  libsymspg-dev            # spglib space-group database
  libinih-dev              # INI configs
  libgsl-dev               # Levenberg-Marquardt peak fitting
  libsqlite3-dev           # campaign metadata
  libzmq3-dev              # inference service
  libxrl-dev               # xraylib: X-ray anomalous scattering f', f'' (crystal/xray_ff.c)
  jq                       # bench/mpi_scaling.sh reads the training logs' JSON
  clang libclang-rt-14-dev libomp-14-dev # libFuzzer targets (clang + its OpenMP)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ONNX Runtime for the export tests (tests/serve, tests/cli/test_export.sh): the npm
# package onnxruntime-node, pinned by tools/onnx/package-lock.json, into
# tools/onnx/node_modules. It carries its CPU build; ONNXRUNTIME_NODE_INSTALL=skip stops
# its install script from fetching a CUDA build (DESIGN §9). Skipped when already
# there. Without npm it says so and goes on: those tests then skip where `node` is
# missing too, and fail (naming this script) where only the package is.
ONNX_DIR="$(cd "$(dirname "$0")/.." && pwd)/tools/onnx"
if [ ! -d "$ONNX_DIR/node_modules/onnxruntime-node" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "install-deps: installing onnxruntime-node into $ONNX_DIR" >&2
    (cd "$ONNX_DIR" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "install-deps: npm not found: not installing onnxruntime-node (ONNX export tests)" >&2
  fi
fi
