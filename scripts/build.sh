#!/usr/bin/env bash
# Configures and builds moonflow into build/ (or $1 with extra cmake flags).
# CUDA's nvcc is used when found (PATH or /usr/local/cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
