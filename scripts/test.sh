#!/usr/bin/env bash
# Installs what is missing, checks the sources (luacheck; clang-format),
# builds with warnings as errors, checks the library's exported symbols, and
# runs every test: C tests, busted specs (with the best GEMM kernel for the
# CPU, the AVX2 one, and OpenBLAS, then with the test device standing in for
# a GPU), both again under AddressSanitizer + UBSan, the threaded tests under
# ThreadSanitizer, the fuzzers (bounded), and the LuaRocks install check.
# `scripts/test.sh --quick` skips the last four.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/deps.sh
step() { printf '\n== %s\n' "$*"; }

# tests/spec/summary_spec.lua reads our event files with TensorBoard's own
# reader (PyPI's tensorboard). Offline the install fails: the note says so,
# and that spec then fails loudly (it never skips).
step "tensorboard from PyPI (for summary_spec's reader check)"
python3 -c 'import tensorboard' 2>/dev/null ||
  python3 -m pip install --user --quiet tensorboard ||
  python3 -m pip install --user --quiet --break-system-packages tensorboard || # Debian's PEP 668
  echo "note: pip could not install tensorboard (offline?): summary_spec will fail" >&2

step "luacheck (lua/, scripts/)"
luacheck -q --no-color lua scripts
step "clang-format check (csrc/, include/, lua/core/, tests/c/, gpu/)"
scripts/check_format.sh

# CI builds treat warnings as errors (MF_WERROR); installs do not.
step "build"
scripts/build.sh build -DMF_WERROR=ON
step "exported symbols: mf_ alone (libmoonflow.so), luaopen_ alone (the Lua module), mf_lua_ alone (libmoonflow_lua.so)"
lib=$(nm -D --defined-only build/libmoonflow.so)
mod=$(nm -D --defined-only build/lua/moonflow/core.so)
emb=$(nm -D --defined-only build/libmoonflow_lua.so)
extra=$(grep -v ' mf_' <<<"$lib"; grep ' mf_lua_' <<<"$lib"
        grep -v ' luaopen_moonflow_core$' <<<"$mod"; grep -v ' mf_lua_' <<<"$emb") || true
# libmoonflow_lua runs on libmoonflow.so's runtime, with no copy of its own.
# (grep reads all of nm's output: with -q, nm could die of SIGPIPE and pipefail fail the check)
nm -D --undefined-only build/libmoonflow_lua.so | grep ' mf_session_run$' >/dev/null ||
  extra+=" libmoonflow_lua.so does not take mf_session_run from libmoonflow.so"
if [ -n "$extra" ]; then
  printf '%s\n' "$extra" "symbols exported beyond the API" >&2
  exit 1
fi
step "C tests"
ctest --test-dir build --output-on-failure
step "the installed C library: hosts built with pkg-config and with find_package(moonflow)"
scripts/check_install.sh
step "busted specs"
( . scripts/env.sh build; busted --lua=lua5.4 tests/spec )
for gemm in avx2 blas; do
  step "busted specs with MOONFLOW_GEMM=$gemm (the AVX2 kernel; OpenBLAS for every GEMM)"
  ( . scripts/env.sh build; MOONFLOW_GEMM=$gemm busted --lua=lua5.4 tests/spec )
done
# The test device (CPU-backed, poisoned memory) as the default device for
# the ops it has kernels for, as a GPU would be: every spec then runs across
# device boundaries, and device_spec / conformance_spec run in full.
step "busted specs with MOONFLOW_TEST_DEVICE=prefer (placement, copies, device conformance)"
( . scripts/env.sh build; MOONFLOW_TEST_DEVICE=prefer busted --lua=lua5.4 tests/spec )

[ $quick -eq 1 ] && exit 0

step "AddressSanitizer + UndefinedBehaviorSanitizer build (CPU only)"
scripts/build.sh build-asan -DMF_WERROR=ON -DMF_ASAN=ON -DMF_UBSAN=ON -DMF_WITH_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
# Any undefined behaviour aborts (-fno-sanitize-recover), with a stack.
export UBSAN_OPTIONS=print_stacktrace=1
step "C tests under AddressSanitizer + UBSan"
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure
step "busted specs under AddressSanitizer + UBSan"
# The interpreter is not instrumented: preload ASan's runtime (it must come
# first); the module pulls in UBSan's itself (libubsan is in its NEEDED).
# Lua's own allocations at exit are not ours to report, so leak checking
# stays with the C tests.
( . scripts/env.sh build-asan
  LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 MF_SPEC_ASAN=1 \
    MOONFLOW_TEST_DEVICE=1 \
    busted --lua=lua5.4 tests/spec )
# Again with the test device as the default: the CUDA kernels' source (its
# kernels) runs every spec under the sanitizers, so an index past a buffer
# in a GPU kernel is a report here.
step "busted specs under AddressSanitizer + UBSan, CUDA kernels' host build as default"
( . scripts/env.sh build-asan
  LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 MF_SPEC_ASAN=1 \
    MOONFLOW_TEST_DEVICE=prefer \
    busted --lua=lua5.4 tests/spec )

step "ThreadSanitizer build (CPU only)"
scripts/build.sh build-tsan -DMF_WERROR=ON -DMF_TSAN=ON -DMF_WITH_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
step "threaded C tests under ThreadSanitizer"
# test_threads: one session run from several threads, the inter-op pool,
# the intra-op team (also across the test device); test_api: the inter-op
# pool again; test_tracing: tracing toggled and read during runs from 4
# threads; test_summary: one summary writer from 4 threads. (test_gemm's team
# checks fork, which TSan refuses once threads exist, and take minutes.)
ctest --test-dir build-tsan --output-on-failure -R '^test_(threads|threads_testdev|api|tracing|summary)$'
step "session, execution, lua_func and control flow specs under ThreadSanitizer"
# The runtime is preloaded into the uninstrumented interpreter, run directly:
# `busted --lua=` and the specs that start processes go through /bin/sh,
# which crashes with libtsan preloaded (as bash does).
( . scripts/env.sh build-tsan
  LD_PRELOAD="$(gcc -print-file-name=libtsan.so)" MF_SPEC_TSAN=1 lua5.4 "$(command -v busted)" \
    --filter-out="exits cleanly" --filter-out="MOONFLOW_GEMM narrows" \
    tests/spec/execution_spec.lua tests/spec/session_spec.lua tests/spec/lua_func_spec.lua \
    tests/spec/control_flow_spec.lua )

step "fuzzers: device names, checkpoint files and restore, the Lua argument layer; 60 s each"
scripts/fuzz.sh 60

step "LuaRocks install from a clean tree"
scripts/check_rock.sh
printf '\nall tests passed\n'
