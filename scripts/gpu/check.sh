#!/usr/bin/env bash
# The GPU check, one command on a machine with an NVIDIA GPU:
#
#   scripts/gpu/check.sh --fetch   # here, with network: the Debian packages the
#                                  # GPU machine lacks (OpenBLAS, Lua headers) into .gpu-debs/
#   scripts/gpu/check.sh           # there: unpack them, build with CUDA, run the C tests
#
# The GPU machine has CUDA and cmake but no Lua, no OpenBLAS and no network,
# so the packages travel with the tree (.gpu-debs/ is ignored by git; carry
# it). The C tests then run with the GPU present: test_devices places ops on
# /gpu:0, copies values there and back and checks that a steady loop does no
# cudaMalloc. Prints the device, every test's result and a JSON summary line.
set -euo pipefail
cd "$(dirname "$0")/../.."
debs=.gpu-debs
if [ "${1:-}" = "--fetch" ]; then
  mkdir -p "$debs"
  (cd "$debs" && apt-get download libopenblas0-pthread libopenblas-pthread-dev libopenblas-dev \
     libopenblas0 liblua5.4-dev liblua5.4-0 libgfortran5)
  ls -l "$debs"
  exit 0
fi
root="$PWD/.gpu-root"
rm -rf "$root" && mkdir -p "$root"
for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$root"; done
arch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
blas_lib="$(find "$root" -name 'libopenblas.so*' | head -1)"
ln -sf "$(basename "$blas_lib")" "$(dirname "$blas_lib")/libopenblas.so"
export LD_LIBRARY_PATH="$(dirname "$blas_lib"):$root/usr/lib/$arch:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
start=$(date +%s)
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMF_WITH_CUDA=ON \
  -DCBLAS_INCLUDE_DIR="$root/usr/include/$arch/openblas-pthread" \
  -DOPENBLAS_LIBRARY="$(dirname "$blas_lib")/libopenblas.so" \
  -DLUA_INCLUDE_DIR="$root/usr/include/lua5.4" >/dev/null
cmake --build build-gpu -j"$(nproc)" 2>&1 | grep -iE "error|warning" || true
status=0
ctest --test-dir build-gpu --output-on-failure || status=$?
printf '{"check":"gpu","gpus":%s,"ctest_status":%d,"seconds":%d}\n' \
  "$(nvidia-smi -L 2>/dev/null | wc -l)" "$status" "$(( $(date +%s) - start ))"
exit $status
