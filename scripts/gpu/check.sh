#!/usr/bin/env bash
# The GPU check: everything needed to check the CUDA backend on a borrowed
# GPU machine, in one command that fits a 10-minute run.
#
#   scripts/gpu/check.sh --fetch   # here, with network: the Debian packages the GPU
#                                  # machine lacks (Lua 5.4, busted and its modules,
#                                  # OpenBLAS, lua-cjson/argparse for the benchmark,
#                                  # Open MPI for the collectives) and the corpus, into
#                                  # .gpu-debs/ (ignored; carry it)
#   scripts/gpu/check.sh           # there: unpack them, build for sm_90, then run
#
# The steps, each bounded in time, each a JSON line in $OUT/gpu-check.json
# (./gpu-results/ when OUT is unset) with its log beside it:
#   ctest          the C tests (test_devices places ops on /gpu:0 and checks a
#                  steady loop does no cudaMalloc)
#   busted         the whole spec suite, with the GPU as the default device
#   conformance    every op type with a CUDA kernel against the CPU (outputs and
#                  gradients, fresh random inputs)
#   memcheck       compute-sanitizer --tool memcheck over a representative subset
#   nccl           the MPI collectives on the GPU with NCCL (scripts/gpu/nccl_check.lua),
#                  one rank (a singleton MPI job)
#   nccl_np2       the same under mpirun -np 2: NCCL across two GPUs, or with one GPU
#                  the shared-GPU path (both ranks' GPU tensors through the host and MPI)
#   bench_b/c      char-RNN config b (LSTM 2x512, embed 128, batch 50, seq 50) and
#                  config c (LSTM 2x1024, batch 128, seq 100), moonflow then PyTorch
#                  with cuDNN on the same GPU, plus sampling chars/s
# Exit status: 0 when every step passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
debs=.gpu-debs
if [ "${1:-}" = "--fetch" ]; then
  set -e
  rm -rf "$debs" && mkdir -p "$debs"
  (cd "$debs" && apt-get download lua5.4 liblua5.4-0 liblua5.4-dev lua-busted lua-cliargs \
     lua-dkjson lua-filesystem lua-luassert lua-mediator lua-penlight lua-say lua-system \
     lua-term lua-cjson lua-argparse libopenblas0-pthread libopenblas-pthread-dev \
     libopenblas-dev libopenblas0 libgfortran5 libquadmath0 libreadline8 \
     openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev libpmix2 libhwloc15 \
     libevent-core-2.1-7 libevent-pthreads-2.1-7 libmunge2)
  cp ../shared/data/tinyshakespeare.txt "$debs/"
  du -sh "$debs"
  exit 0
fi
[ -d "$debs" ] || { echo "check.sh: $debs is missing: run scripts/gpu/check.sh --fetch here first" >&2; exit 2; }
out="${OUT:-$PWD/gpu-results}"
mkdir -p "$out"
json="$out/gpu-check.json"
: >"$json"
t_all=$(date +%s)

# ---------------------------------------------------------------- environment
root="$PWD/.gpu-root"
rm -rf "$root" && mkdir -p "$root"
for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$root"; done
arch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
blas_lib="$(find "$root" -name 'libopenblas.so.0' | head -1)"
ln -sf "$(basename "$(readlink -f "$blas_lib")")" "$(dirname "$blas_lib")/libopenblas.so"
export PATH="$root/usr/bin:$PATH"
export LD_LIBRARY_PATH="$(dirname "$blas_lib"):$root/usr/lib/$arch:$root/lib/$arch:${LD_LIBRARY_PATH:-}"
lua_share="$root/usr/share/lua/5.4"
export LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;$lua_share/?.lua;$lua_share/?/init.lua"
export LUA_CPATH="$PWD/build-gpu/lua/?.so;$root/usr/lib/$arch/lua/5.4/?.so"
corpus="$debs/tinyshakespeare.txt"
# Open MPI unpacked away from its /usr prefix: OPAL_PREFIX relocates it (mpirun,
# orted, its plugins), PMIx's plugins are named; TCP and shared memory only.
mpi_lib="$root/usr/lib/$arch/openmpi/lib"
# the names Debian's alternatives give (set up by dpkg, which did not run)
ln -sf mpirun.openmpi "$root/usr/bin/mpirun"
ln -sf mpicc.openmpi "$root/usr/bin/mpicc"
export OPAL_PREFIX="$root/usr" PMIX_MCA_mca_base_component_path="$root/usr/lib/$arch/pmix2/lib/pmix"
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_mca_base_component_show_load_errors=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# NCCL: the CUDA toolkit's, else PyTorch's wheel (nvidia-nccl-cu*).
nccl_flags=""
if ! [ -e /usr/local/cuda/include/nccl.h ] && ! [ -e /usr/include/nccl.h ]; then
  nccl_dir="$(python3 -c 'import nvidia.nccl, os; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null)"
  if [ -n "$nccl_dir" ] && [ -e "$nccl_dir/include/nccl.h" ]; then
    nccl_flags="-DNCCL_INCLUDE_DIR=$nccl_dir/include -DNCCL_LIBRARY=$(ls "$nccl_dir"/lib/libnccl.so* | head -1)"
    export LD_LIBRARY_PATH="$nccl_dir/lib:$LD_LIBRARY_PATH"
  fi
fi
gpu="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
echo "GPU: ${gpu:-none}"

# step NAME SECONDS COMMAND...: runs it with a time limit, its output in
# $out/NAME.log, and appends a JSON line with its status, time and last line.
failed=0
step() {
  local name="$1" limit="$2"
  shift 2
  local t0 rc last
  t0=$(date +%s)
  echo "== $name"
  # through bash, so that the functions below (exported) can be steps too
  timeout --kill-after=10 "$limit" bash -c '"$@"' step "$@" >"$out/$name.log" 2>&1
  rc=$?
  # the summary line where the tool prints one (busted, ctest, conformance), else the last
  last="$( (grep -E 'successes /|tests passed|comparisons,' "$out/$name.log" ||
            grep -v '^\s*$' "$out/$name.log") | tail -1 | tr -d '"\\' | cut -c1-300)"
  printf '{"step":"%s","status":%d,"seconds":%d,"last":"%s"}\n' "$name" "$rc" \
    "$(($(date +%s) - t0))" "$last" | tee -a "$json"
  [ "$rc" -eq 0 ] || failed=1
}

build() {
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMF_WITH_CUDA=ON -DMF_WERROR=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCBLAS_INCLUDE_DIR="$root/usr/include/$arch/openblas-pthread" \
    -DOPENBLAS_LIBRARY="$(dirname "$blas_lib")/libopenblas.so" \
    -DLUA_INCLUDE_DIR="$root/usr/include/lua5.4" \
    -DMPI_C_HEADER_DIR="$mpi_lib/../include" -DMPI_C_LIB_NAMES=mpi -DMPI_mpi_LIBRARY="$mpi_lib/libmpi.so" \
    $nccl_flags && cmake --build build-gpu -j"$(nproc)"
}
export root arch blas_lib corpus mpi_lib nccl_flags
export -f build
step build 300 build
[ "$failed" -eq 0 ] || { echo "build failed: $out/build.log" >&2; exit 1; }

step ctest 120 ctest --test-dir build-gpu --output-on-failure
step busted 240 lua5.4 "$root/usr/bin/busted" --lua="$root/usr/bin/lua5.4" -o plainTerminal tests/spec
step conformance 120 lua5.4 tests/spec/support/conformance_check.lua
# memcheck slows every launch by orders of magnitude: a subset, one of each family.
step memcheck 150 compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 \
  lua5.4 tests/spec/support/conformance_check.lua Add Sum Softmax SparseSoftmaxCrossEntropyWithLogits \
  MatMul GatherV2 GatherGrad ConcatV2 RandomNormal ApplyAdam LSTMSequence LSTMSequenceGrad

step nccl 90 lua5.4 scripts/gpu/nccl_check.lua
step nccl_np2 120 mpirun -np 2 -x PATH -x LD_LIBRARY_PATH -x LUA_PATH -x LUA_CPATH \
  lua5.4 scripts/gpu/nccl_check.lua

bench() {
  lua5.4 scripts/bench/char_rnn.lua --input "$corpus" --steps 20 --warmup 3 --sample 500 "$@" &&
    python3 scripts/bench/torch_charrnn_cuda.py --input "$corpus" --steps 20 --warmup 3 --sample 500 "$@"
}
export -f bench
step bench_b 120 bench --embed 128 --hidden 512 --batch 50 --seq 50
step bench_c 150 bench --embed 128 --hidden 1024 --batch 128 --seq 100
for b in bench_b bench_c; do grep '^{' "$out/$b.log" >>"$json" || true; done

printf '{"check":"gpu","gpu":"%s","failed":%d,"seconds":%d}\n' "$gpu" "$failed" \
  "$(($(date +%s) - t_all))" | tee -a "$json"
exit "$failed"
