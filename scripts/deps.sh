#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages moonflow needs, if any is missing.
# Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail
pkgs=(build-essential cmake pkg-config lua5.4 liblua5.4-dev luarocks lua-busted lua-cjson lua-argparse
      libopenblas-dev openmpi-bin libopenmpi-dev lua-check clang-format clang libclang-rt-14-dev
      protobuf-c-compiler libprotobuf-c-dev zlib1g-dev protobuf-compiler python3-pip
      python3-sklearn "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
