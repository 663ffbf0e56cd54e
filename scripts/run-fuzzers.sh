#!/usr/bin/env bash
# Runs each libFuzzer target in BUILD_DIR for SECONDS, starting from the
# committed seed corpus (fuzz/corpus/<target>/) and a scratch copy of it.
set -euo pipefail
build=${1:-build-fuzz}
seconds=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  work=$(mktemp -d)
  cp -r "$root/fuzz/corpus/${name#fuzz_}/." "$work/" 2>/dev/null || true
  echo "== $name (${seconds}s)"
  if ! "$bin" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$build/$name-" "$work" 2>"$build/$name.log"; then
    tail -40 "$build/$name.log"
    status=1
  else
    grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "$build/$name.log" | tail -1 || true
  fi
  rm -rf "$work"
done
exit $status
