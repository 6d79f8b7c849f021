#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each
# (build-fuzz/fuzz_*: device names, safetensors headers, checkpoint restore,
# the Lua argument layer) over its seed corpus in tests/fuzz/corpus for a
# bounded time (default 20 s each, `scripts/fuzz.sh SECONDS` to change; CI
# runs 60). An input running over 25 s is a finding (a hang), as is a crash.
# New inputs go to a temporary directory that is removed afterwards; a crash
# leaves its input in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
seconds="${1:-20}"
CC=clang CXX=clang++ scripts/build.sh build-fuzz -DMF_FUZZ=ON -DMF_WERROR=ON -DMF_WITH_CUDA=OFF \
  -DMF_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in build-fuzz/fuzz_*; do
  name="$(basename "$target")"
  corpus="tests/fuzz/corpus/${name#fuzz_}"
  mkdir -p "$work/$name"
  echo "fuzzing $name for ${seconds}s from $corpus"
  # run from a scratch directory, so that nothing a target writes lands in the tree
  mkdir -p "$work/cwd-$name"
  if ! (cd "$work/cwd-$name" && "$root/$target" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
          -max_len=4096 -artifact_prefix="$root/build-fuzz/$name-" "$work/$name" "$root/$corpus") \
        >"$work/$name.log" 2>&1; then
    tail -40 "$work/$name.log" >&2
    echo "$name found a crash (its input is in build-fuzz/)" >&2
    exit 1
  fi
  # inputs run, and the coverage reached at the end (cov: edges, ft: features)
  grep -E '^Done [0-9]+ runs' "$work/$name.log"
  { grep -aE '^#[0-9]+.* cov: ' "$work/$name.log" || true; } | tail -1 |
    sed -E 's/.*(cov: [0-9]+ ft: [0-9]+).*/  \1/'
done
