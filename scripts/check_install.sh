#!/usr/bin/env bash
# Installs the C library from build/ into a temporary prefix, as a private
# prefix would be, and builds the C host examples/sample/sample.c against it
# twice, as the README shows: with pkg-config (and an rpath), and with
# CMake's find_package(moonflow). Both run a char-RNN model exported by
# scripts/char_rnn.lua --export_dir and must print what the in-tree build
# prints.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install build --prefix "$prefix" >/dev/null

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc -O2 -o "$work/sample_pc" examples/sample/sample.c $(pkg-config --cflags --libs moonflow) \
  -Wl,-rpath,"$(pkg-config --variable=libdir moonflow)"
cmake -S examples/cmake_host -B "$work/host" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/host" >/dev/null

( . scripts/env.sh build
  lua5.4 scripts/char_rnn.lua --rnn_size 16 --wordvec_size 8 --batch_size 4 --seq_length 8 --max_steps 3 \
    --checkpoint_dir "$work/ck" --export_dir "$work/model" --quiet >/dev/null )
want=$(build/examples/sample "$work/model" --length 80 --start_text "local ")
for host in "$work/sample_pc" "$work/host/sample"; do
  # the installed library, not the build tree's
  loaded=$(ldd "$host" | awk '$1 == "libmoonflow.so.0" { print $3 }')
  [ "$(realpath "$loaded")" = "$(realpath "$prefix/lib/libmoonflow.so.0")" ] ||
    { echo "$host loads '$loaded', not $prefix's libmoonflow" >&2; exit 1; }
  got=$("$host" "$work/model" --length 80 --start_text "local ")
  [ "$got" = "$want" ] || { printf 'installed host printed\n%s\nnot\n%s\n' "$got" "$want" >&2; exit 1; }
done
echo "installed library: pkg-config and find_package(moonflow) hosts print the in-tree host's text"
