#!/usr/bin/env bash
# Runs scripts/bench/char_rnn.lua (moonflow) and its peers alternately for N
# rounds on the same flags: PyTorch 2.x from PyPI (../shared/bench/torch_charrnn.py
# in a venv), Debian's PyTorch 1.13 (the same script under /usr/bin/python3,
# when it imports torch) and TensorFlow (scripts/bench/tf_charrnn.py, both
# --impl dynamic_rnn and --impl keras). Every contender runs at each of its
# thread settings every round; medians over the rounds are compared at each
# one's best setting. Prints every median and every ratio moonflow / peer as
# JSON lines, then a short table (scripts/bench/lib/peer_compare.lua); each
# run's line goes to stderr.
#
#   scripts/bench/compare.sh [--rounds 3] [--peers "moonflow pytorch pytorch-debian
#       tf-dynamic_rnn tf-keras"] [--moonflow_threads "0"] [--torch_settings "1 2"]
#       [--peer_settings "1/1 1/2 2/1"] [--tf_settings "1/1 2/2"] [--peak_gflops G] [--setup]
#       [flags for every contender: --cell --embed --hidden --layers --batch --seq
#        --steps --warmup --lr --clip --seed --sample --input]
#
# Settings: moonflow: intra-op threads (0 = its default); pytorch (PyPI):
# torch threads; pytorch-debian: torch threads / OpenBLAS threads; tf-*:
# intra-op / inter-op threads. Each median line carries the step's GEMM
# FLOPs (peer_compare.lua's step_flops: the formula), GFLOP/s and, given
# --peak_gflops (scripts/bench/c/fma_peak.c's figure), the % of that peak.
# Config a (quick):  scripts/bench/compare.sh --steps 20 --warmup 3
# Config b:          scripts/bench/compare.sh --embed 128 --hidden 512 --steps 10
# Setup (--setup, or automatically when a venv is missing): python3 -m venv +
# pip install torch numpy into $TORCH_VENV (/tmp/torchvenv) and tensorflow-cpu
# tf_keras numpy into $TF_VENV (/tmp/tfvenv). Debian's torch is not installed
# here (apt-get install -y python3-torch python3-numpy); PYTHON=... picks
# another interpreter for it, PEER=... another torch script.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peer="${PEER:-$root/../shared/bench/torch_charrnn.py}"
tf_peer="$root/scripts/bench/tf_charrnn.py"
debian_python="${PYTHON:-/usr/bin/python3}"
torch_venv="${TORCH_VENV:-/tmp/torchvenv}"
tf_venv="${TF_VENV:-/tmp/tfvenv}"
rounds=3
peers="moonflow pytorch pytorch-debian tf-dynamic_rnn tf-keras"
mf_threads="0"
torch_settings="1 2"
settings="1/1 1/2 2/1"
tf_settings="1/1 2/2"
setup_only=0
peak=nil
input="$root/../shared/data/tinyshakespeare.txt"
flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --peers) peers="$2"; shift 2 ;;
    --peer_settings) settings="$2"; shift 2 ;;
    --torch_settings) torch_settings="$2"; shift 2 ;;
    --tf_settings) tf_settings="$2"; shift 2 ;;
    --moonflow_threads) mf_threads="$2"; shift 2 ;;
    --input) input="$2"; shift 2 ;;
    --setup) setup_only=1; shift ;;
    --peak_gflops)
      [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "compare.sh: --peak_gflops needs a number" >&2; exit 2; }
      peak="$2"; shift 2 ;;
    --threads) echo "compare.sh: use --moonflow_threads and --*_settings instead of --threads" >&2; exit 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --cell|--embed|--hidden|--layers|--batch|--seq|--steps|--warmup|--lr|--clip|--seed|--sample)
      [ $# -ge 2 ] || { echo "compare.sh: $1 needs a value" >&2; exit 2; }
      flags+=("$1" "$2"); shift 2 ;;
    *) echo "compare.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
done

has() { case " $peers " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# venv_ready DIR IMPORT: DIR's python imports IMPORT.
venv_ready() { [ -x "$1/bin/python" ] && "$1/bin/python" -c "$2" 2>/dev/null; }
# setup_venv DIR IMPORT PACKAGES...: creates the venv and pip-installs into it.
setup_venv() {
  local dir="$1" import="$2"; shift 2
  venv_ready "$dir" "$import" && return 0
  echo "compare.sh: installing $* from PyPI into $dir (large; once)" >&2
  [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
  "$dir/bin/pip" install -q "$@" >&2 || { echo "compare.sh: pip install $* into $dir failed" >&2; return 1; }
  venv_ready "$dir" "$import"
}
if [ "$setup_only" = 1 ] || has pytorch; then setup_venv "$torch_venv" "import torch" torch numpy; fi
if [ "$setup_only" = 1 ] || has tf-dynamic_rnn || has tf-keras; then
  setup_venv "$tf_venv" "import tensorflow, tf_keras" tensorflow-cpu tf_keras numpy
fi
if [ "$setup_only" = 1 ]; then
  "$debian_python" -c "import torch" 2>/dev/null ||
    echo "compare.sh: no Debian PyTorch under $debian_python (apt-get install -y python3-torch python3-numpy); skipped in runs" >&2
  exit 0
fi
if has pytorch-debian && ! "$debian_python" -c "import torch" 2>/dev/null; then
  echo "compare.sh: $debian_python cannot import torch; pytorch-debian skipped" >&2
  peers="${peers/pytorch-debian/}"
fi

[ -f "$peer" ] || { echo "compare.sh: peer script not found: $peer" >&2; exit 1; }
[ -f "$input" ] || { echo "compare.sh: input not found: $input" >&2; exit 1; }
[ -n "${LUA_CPATH:-}" ] || . "$root/scripts/env.sh" "$root/build"

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
# run NAME SETTING COMMAND...: one run; its last stdout line is its JSON.
run() {
  local who="$1/$2" line; shift 2
  line="$("$@" 2>/dev/null | tail -1)" || true
  echo "round $r $who: $line" >&2
  echo "$who $line" >> "$results"
}
for r in $(seq 1 "$rounds"); do
  if has moonflow; then
    for t in $mf_threads; do
      run moonflow "$t" lua5.4 "$root/scripts/bench/char_rnn.lua" --input "$input" --threads "$t" "${flags[@]}"
    done
  fi
  if has pytorch; then
    for t in $torch_settings; do
      run pytorch "$t" env OMP_NUM_THREADS="$t" MKL_NUM_THREADS="$t" \
        "$torch_venv/bin/python" "$peer" --input "$input" --threads "$t" "${flags[@]}"
    done
  fi
  if has pytorch-debian; then
    for s in $settings; do
      run pytorch-debian "$s" env OPENBLAS_NUM_THREADS="${s#*/}" OMP_NUM_THREADS="${s%/*}" \
        "$debian_python" "$peer" --input "$input" --threads "${s%/*}" "${flags[@]}"
    done
  fi
  for impl in dynamic_rnn keras; do
    has "tf-$impl" || continue
    for s in $tf_settings; do
      run "tf-$impl" "$s" "$tf_venv/bin/python" "$tf_peer" --impl "$impl" --input "$input" \
        --threads "${s%/*}" --inter_threads "${s#*/}" "${flags[@]}"
    done
  done
done

# the symbols of the corpus (bytes), for the output layer's FLOPs
vocab="$(lua5.4 - "$input" <<'LUA'
local f = assert(io.open(arg[1], "rb"))
local seen, n = {}, 0
for c in f:read("a"):gmatch(".") do
  if not seen[c] then seen[c], n = true, n + 1 end
end
print(n)
LUA
)"
lua5.4 -e "package.path = '$root/scripts/bench/lib/?.lua;' .. package.path" \
  -e "require('peer_compare').main('$results', nil, { vocab = $vocab, peak_gflops = $peak })"
