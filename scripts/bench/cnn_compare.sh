#!/usr/bin/env bash
# Runs scripts/bench/cnn.lua (moonflow) and scripts/bench/torch_cnn.py
# (PyTorch, CPU) alternately for several rounds on the same flags and prints
# one JSON line per framework (medians over the rounds, each at its best
# thread setting) and one with the ratio moonflow / PyTorch of examples/s
# (best against best, and at each thread count both were run at).
# Progress and each run's line go to stderr.
#
#   scripts/bench/cnn_compare.sh [--rounds 3] [--peer_threads "1 2"]
#       [--moonflow_threads "1 2"] [--size 8] [--batch 64] [--steps 30]
#       [--warmup 5] [--lr 0.05] [--seed 0]
#
# The peer is PyPI's current torch in a venv at $TORCH_VENV (default
# /tmp/torchvenv), installed there when missing (`pip install torch`: large,
# a few GB with its CUDA wheels; only the CPU is used). PYTHON=/usr/bin/python3
# uses another interpreter instead (e.g. Debian's python3-torch). Each
# thread setting is run every round and the best median is compared: on a
# shared 2-core machine torch's default of 2 threads can be 2x slower than 1.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${TORCH_VENV:-/tmp/torchvenv}"
rounds=3
peer_threads="1 2"
mf_threads="1 2"
flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --peer_threads) peer_threads="$2"; shift 2 ;;
    --moonflow_threads) mf_threads="$2"; shift 2 ;;
    --threads) echo "cnn_compare.sh: use --moonflow_threads and --peer_threads instead of --threads" >&2; exit 2 ;;
    --size|--batch|--steps|--warmup|--lr|--seed) flags+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cnn_compare.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
done

python="${PYTHON:-}"
if [ -z "$python" ]; then
  python="$venv/bin/python"
  if ! "$python" -c "import torch" 2>/dev/null; then
    echo "cnn_compare.sh: installing torch from PyPI into $venv (large; once)" >&2
    [ -x "$python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch numpy >&2 || {
      echo "cnn_compare.sh: pip install torch failed; PYTHON=/usr/bin/python3 uses Debian's python3-torch" >&2
      exit 1; }
  fi
fi
"$python" -c "import torch" 2>/dev/null || { echo "cnn_compare.sh: $python cannot import torch" >&2; exit 1; }
[ -n "${LUA_CPATH:-}" ] || . "$root/scripts/env.sh" "$root/build"

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for r in $(seq 1 "$rounds"); do
  for t in $mf_threads; do
    line="$(lua5.4 "$root/scripts/bench/cnn.lua" --threads "$t" "${flags[@]}" 2>/dev/null | tail -1)"
    echo "round $r moonflow threads $t: $line" >&2
    echo "moonflow/$t $line" >> "$results"
  done
  for t in $peer_threads; do
    # OpenBLAS (Debian's torch) gets as many threads as torch; PyPI's uses oneDNN/MKL.
    line="$(OPENBLAS_NUM_THREADS="$t" OMP_NUM_THREADS="$t" "$python" "$root/scripts/bench/torch_cnn.py" \
      --threads "$t" "${flags[@]}" 2>/dev/null | tail -1)"
    echo "round $r pytorch threads $t: $line" >&2
    echo "pytorch/$t $line" >> "$results"
  done
done

lua5.4 - "$results" "$rounds" <<'EOF'
local cjson = require("cjson")
local runs = {}
for line in io.lines(arg[1]) do
  local who, json = line:match("^(%S+) (.*)$")
  local ok, v = pcall(cjson.decode, json)
  if ok and type(v) == "table" and v.examples_per_s then
    runs[who] = runs[who] or {}
    table.insert(runs[who], v)
  else
    io.stderr:write("unparsable result from " .. who .. ": " .. json .. "\n")
  end
end
local function median(list, key)
  local t = {}
  for _, v in ipairs(list) do t[#t + 1] = v[key] end
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end
-- The best thread setting of each framework by its median examples/s.
local best = {}
for who, list in pairs(runs) do
  local fw = who:match("^(%a+)/")
  local eps = median(list, "examples_per_s")
  if not best[fw] or eps > best[fw].examples_per_s then
    local r = list[1]
    best[fw] = { framework = r.framework, version = r.version, size = r.size, batch = r.batch, threads = r.threads,
                 runs = #list, step_ms_median = median(list, "step_ms_median"), examples_per_s = eps,
                 final_loss = median(list, "final_loss"), gemm_kernel = r.gemm_kernel, setting = who }
  end
end
local order = { "framework", "version", "size", "batch", "threads", "runs", "step_ms_median", "examples_per_s",
                "final_loss", "gemm_kernel" }
local function line(t, keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = cjson.encode(k) .. ": " .. cjson.encode(t[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end
if not best.moonflow or not best.pytorch then
  io.stderr:write("cnn_compare.sh: missing results (moonflow " .. tostring(best.moonflow ~= nil) .. ", pytorch "
    .. tostring(best.pytorch ~= nil) .. ")\n")
  os.exit(1)
end
print(line(best.moonflow, order))
print(line(best.pytorch, order))
local function r3(v) return math.floor(v * 1000 + 0.5) / 1000 end
local ratio = r3(best.moonflow.examples_per_s / best.pytorch.examples_per_s)
-- Also at equal thread counts: on a shared machine the 2-thread runs of
-- either side are the ones other processes disturb most.
local by_threads = {}
for who, list in pairs(runs) do
  local t = who:match("^moonflow/(%d+)$")
  local peer = t and runs["pytorch/" .. t]
  if peer then by_threads[t] = r3(median(list, "examples_per_s") / median(peer, "examples_per_s")) end
end
print(line({ compare = "moonflow over pytorch", examples_per_s_ratio = ratio, target = 1.5, meets_target = ratio >= 1.5,
             rounds = tonumber(arg[2]), ratio_at_equal_threads = next(by_threads) and by_threads or nil },
           { "compare", "examples_per_s_ratio", "target", "meets_target", "rounds", "ratio_at_equal_threads" }))
EOF
