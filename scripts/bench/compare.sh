#!/usr/bin/env bash
# Runs scripts/bench/char_rnn.lua (moonflow) and ../shared/bench/torch_charrnn.py
# (PyTorch, CPU) alternately for several rounds on the same flags, and prints
# the medians and the ratios moonflow / PyTorch. The peer is run at each of
# its thread settings (torch threads / OpenBLAS threads) every round and
# compared at its best one, as ../shared/bench/README.md asks.
#
#   scripts/bench/compare.sh [--rounds 3] [--peer_settings "1/1 1/2 2/1"] \
#       [--moonflow_threads 0] [peer flags: --cell --embed --hidden --layers \
#        --batch --seq --steps --warmup --lr --clip --seed --sample --input]
#
# Config a (quick):  scripts/bench/compare.sh --steps 20 --warmup 3
# Config b:          scripts/bench/compare.sh --embed 128 --hidden 512
# Needs: apt-get install -y python3-torch python3-numpy (run with /usr/bin/python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peer="${PEER:-$root/../shared/bench/torch_charrnn.py}"
python="${PYTHON:-/usr/bin/python3}"
rounds=3
settings="1/1 1/2 2/1"
mf_threads=0
input="$root/../shared/data/tinyshakespeare.txt"
flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --peer_settings) settings="$2"; shift 2 ;;
    --moonflow_threads) mf_threads="$2"; shift 2 ;;
    --input) input="$2"; shift 2 ;;
    --threads) echo "compare.sh: use --moonflow_threads and --peer_settings instead of --threads" >&2; exit 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) flags+=("$1" "$2"); shift 2 ;;
  esac
done
[ -f "$peer" ] || { echo "compare.sh: peer script not found: $peer" >&2; exit 1; }
[ -f "$input" ] || { echo "compare.sh: input not found: $input" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null || {
  echo "compare.sh: PyTorch is missing: apt-get install -y python3-torch python3-numpy" >&2; exit 1; }
[ -n "${LUA_CPATH:-}" ] || . "$root/scripts/env.sh" "$root/build"

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for r in $(seq 1 "$rounds"); do
  line="$(lua5.4 "$root/scripts/bench/char_rnn.lua" --input "$input" --threads "$mf_threads" "${flags[@]}" 2>/dev/null | tail -1)"
  echo "round $r moonflow: $line" >&2
  echo "moonflow $line" >> "$results"
  for s in $settings; do
    tt="${s%/*}"; bt="${s#*/}"
    line="$(OPENBLAS_NUM_THREADS="$bt" OMP_NUM_THREADS="$tt" "$python" "$peer" --input "$input" --threads "$tt" "${flags[@]}" 2>/dev/null | tail -1)"
    echo "round $r pytorch $s: $line" >&2
    echo "pytorch/$s $line" >> "$results"
  done
done

lua5.4 - "$results" <<'EOF'
local cjson = require("cjson")
local runs = {}
for line in io.lines(arg[1]) do
  local who, json = line:match("^(%S+) (.*)$")
  local ok, v = pcall(cjson.decode, json)
  if ok and type(v) == "table" then
    runs[who] = runs[who] or {}
    table.insert(runs[who], v)
  else
    io.stderr:write("unparsable result from " .. who .. ": " .. json .. "\n")
  end
end
local function median(list, key)
  local t = {}
  for _, v in ipairs(list) do if v[key] then t[#t + 1] = v[key] end end
  if #t == 0 then return nil end
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end
local mf = runs.moonflow
if not mf then error("no moonflow results") end
local best, best_tps
for who, list in pairs(runs) do
  if who ~= "moonflow" then
    local tps = median(list, "tokens_per_s")
    print(string.format("%-16s tokens/s median %9.1f  step ms median %8.2f  peak RSS %7.1f MB%s", who, tps,
      median(list, "step_ms_median"), median(list, "peak_rss_mb") or 0,
      median(list, "sample_chars_per_s") and string.format("  sample chars/s %.1f", median(list, "sample_chars_per_s")) or ""))
    if not best_tps or tps > best_tps then best, best_tps = who, tps end
  end
end
local tps = median(mf, "tokens_per_s")
print(string.format("%-16s tokens/s median %9.1f  step ms median %8.2f  peak RSS %7.1f MB%s", "moonflow", tps,
  median(mf, "step_ms_median"), median(mf, "peak_rss_mb") or 0,
  median(mf, "sample_chars_per_s") and string.format("  sample chars/s %.1f", median(mf, "sample_chars_per_s")) or ""))
if best then
  local pl = runs[best]
  print(string.format("ratios vs %s (best peer setting, medians over %d rounds):", best, #mf))
  print(string.format("  training tokens/s  moonflow / pytorch = %.2fx", tps / best_tps))
  local ms, ps = median(mf, "sample_chars_per_s"), median(pl, "sample_chars_per_s")
  if ms and ps then print(string.format("  sampling chars/s  moonflow / pytorch = %.2fx", ms / ps)) end
  local mr, pr = median(mf, "peak_rss_mb"), median(pl, "peak_rss_mb")
  if mr and pr then print(string.format("  peak RSS          moonflow / pytorch = %.2f", mr / pr)) end
end
EOF
