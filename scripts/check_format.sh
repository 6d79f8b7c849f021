#!/usr/bin/env bash
# Lists the C, header and CUDA files that clang-format (with the root's
# .clang-format) would change, with how many places in each; exits non-zero
# if there is any. `clang-format -i FILE` formats one.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format is missing (scripts/deps.sh installs it)" >&2; exit 2; }
bad=0
while IFS= read -r -d '' f; do
  n=$(clang-format --dry-run "$f" 2>&1 | grep -c ': warning:' || true)
  if [ "$n" -gt 0 ]; then
    printf '%4d  %s\n' "$n" "$f"
    bad=$((bad + 1))
  fi
done < <(find csrc include lua/core tests/c tests/fuzz gpu -type f \
           \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0 | sort -z)
if [ $bad -gt 0 ]; then
  echo "$bad files need clang-format ($(clang-format --version | head -1))" >&2
  exit 1
fi
