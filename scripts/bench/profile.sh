#!/usr/bin/env bash
# Where a char-RNN training step's time goes, by category (GEMM, cells,
# softmax, optimizer, embedding, executor, Lua, ...): builds moonflow with
# debug information into build-prof (the same -O3 code, plus symbols' source
# files) and runs scripts/bench/profile.lua, which says how.
#   scripts/bench/profile.sh [--tool callgrind|perf] [--short 1] [--long 3] [--threads 1]
#       [--cell --embed --hidden --layers --batch --seq] [--input FILE]
# Config a (instructions):  scripts/bench/profile.sh --tool callgrind
# Config b (CPU time):      scripts/bench/profile.sh --tool perf --embed 128 --hidden 512 --short 2 --long 6
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${PROF_BUILD:-$root/build-prof}"
input="$root/../shared/data/tinyshakespeare.txt"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --input) input="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
"$root/scripts/build.sh" "$dir" -DCMAKE_C_FLAGS=-g -DMF_WITH_CUDA=OFF -DMF_WITH_MPI=OFF
. "$root/scripts/env.sh" "$dir"
exec lua5.4 "$root/scripts/bench/profile.lua" --input "$input" --core "$dir/lua/moonflow/core.so" "${args[@]}"
