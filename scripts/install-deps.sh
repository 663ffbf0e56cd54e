#!/usr/bin/env bash
# Installs braggflow's build and test dependencies from Debian 12 packages.
# Idempotent: does nothing (and needs no root) when everything is present.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # sgemm for the nn engine (OpenMP build: one thread pool)
  libhdf5-dev hdf5-tools   # datasets (+ h5dump/h5ls for inspecting them)
  libopenmpi-dev openmpi-bin   # multi-machine campaigns
  libhwloc-dev             # thread pinning
  libcif-dev libicu-dev    # CIF API (COMCIFS) + ICU UChar strings
  libsymspg-dev            # spglib space-group database
  libinih-dev              # INI configs
  libgsl-dev               # Levenberg-Marquardt peak fitting
  libsqlite3-dev           # campaign metadata
  libzmq3-dev              # inference service
  clang libclang-rt-14-dev libomp-14-dev # libFuzzer targets (clang + its OpenMP)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
