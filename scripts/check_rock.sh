#!/usr/bin/env bash
# Installs the rock from a clean clone into a temporary tree and loads it
# from outside the checkout, exactly as a user would.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# What a clean clone holds: tracked files plus new ones git would commit
# (no build directories).
mkdir "$work/clone"
(cd "$src" && git ls-files --cached --others --exclude-standard -z |
   xargs -0 -r cp --parents -t "$work/clone" --)
tree="$work/tree"
(cd "$work/clone" && luarocks --lua-version=5.4 make --tree="$tree" rockspec/moonflow-scm-1.rockspec >/dev/null)
cd "$work"
eval "$(luarocks --lua-version=5.4 --tree="$tree" path)"
v=$(lua5.4 -e 'print(require("moonflow").version)')
echo "installed moonflow $v"
lua5.4 -e '
local tf = require("moonflow")
local s = tf.Session()
assert(s:run(tf.constant(2) * 21):item() == 42)
print("rock works: 2 * 21 = 42")'
