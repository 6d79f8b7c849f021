#!/usr/bin/env bash
# Installs what is missing, builds, and runs a Lua script with moonflow on
# the path:   scripts/run.sh scripts/example.lua [args...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh" >&2
"$root/scripts/build.sh" build >&2
. "$root/scripts/env.sh" "$root/build"
exec lua5.4 "$@"
