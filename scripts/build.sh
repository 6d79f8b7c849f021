#!/usr/bin/env bash
# Configures and builds moonflow into build/ (or $1 with extra cmake flags).
# CUDA's nvcc is used when found (PATH or /usr/local/cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"
shift || true
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Quiet when it works; the whole log when it does not.
if ! { cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" && cmake --build "$dir" -j"$(nproc)"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "build failed" >&2
  exit 1
fi
grep -i "warning" "$log" >&2 || true
