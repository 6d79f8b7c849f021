-- The report of scripts/bench/compare.sh: reads its results file (one line
-- per run, "CONTENDER/SETTING {json}"), takes medians over the rounds for
-- each contender at each thread setting, picks each contender's best setting
-- (highest median tokens/s), and prints every ratio moonflow / peer as a JSON
-- line, then a short table. The functions are separate so that
-- tests/spec/bench_spec.lua can check them without running a benchmark.
--   lua5.4 -e 'package.path = "scripts/bench/lib/?.lua;" .. package.path' \
--     -e 'require("peer_compare").main("RESULTS")'
local cjson = require("cjson")

local M = {}

-- The median of a list of numbers (nil for an empty list).
function M.median(xs)
  local t = table.move(xs, 1, #xs, 1, {})
  if #t == 0 then return nil end
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

-- "pytorch/1/2" -> "pytorch", "1/2"; "moonflow" -> "moonflow", "".
function M.split_who(who)
  local name, setting = who:match("^([^/]+)/(.*)$")
  if name then return name, setting end
  return who, ""
end

-- One results line -> who, the decoded JSON table; or nil and a message.
-- The peers name the sampling rate chars_per_s (torch_charrnn.py,
-- tf_charrnn.py), moonflow sample_chars_per_s: one name after this.
function M.parse_line(line)
  local who, json = line:match("^(%S+) (.*)$")
  if not who then return nil, "not 'WHO {json}': " .. line end
  local ok, v = pcall(cjson.decode, json)
  if not ok or type(v) ~= "table" or type(v.tokens_per_s) ~= "number" then
    return nil, "unparsable result from " .. who .. ": " .. json
  end
  if v.sample_chars_per_s == nil and type(v.chars_per_s) == "number" then v.sample_chars_per_s = v.chars_per_s end
  return who, v
end

-- Lines -> { [who] = { run, run, ... } } in the order seen, and the list of
-- contenders (who) in first-seen order; unparsable lines go to `errors`.
function M.collect(lines, errors)
  local runs, order = {}, {}
  for _, line in ipairs(lines) do
    local who, v = M.parse_line(line)
    if who then
      if not runs[who] then runs[who] = {}; order[#order + 1] = who end
      table.insert(runs[who], v)
    elseif errors then
      errors[#errors + 1] = v
    end
  end
  return runs, order
end

-- The GEMM FLOPs of one training step of the char-RNN (the model's count,
-- as a framework that runs every product computes it): per layer l with
-- input width I_l (embed, then hidden) and g gate blocks (LSTM 4, GRU 3,
-- RNN 1), the gate products over all N = batch * seq tokens,
-- 2 * N * (I_l + H) * g * H, and the output layer 2 * N * H * V; backward
-- twice the forward (the input and the weight gradient of each product,
-- the first layer's input gradient included, as the embedding is trained).
-- Elementwise work (gates, softmax, Adam) is under 1 % and not counted.
local GATES = { lstm = 4, gru = 3, rnn = 1 }

-- Those products one by one, as a fused sequence kernel runs them (the
-- recurrent ones once per time step over the batch's rows): a list of
-- { m, n, k, transpose_a, transpose_b, count, what } for C[m, n] = op(A) op(B)
-- (A [m, k] or, transposed, [k, m]; B likewise). A GRU's g blocks may be
-- split into more products of the same total size.
function M.step_gemms(c)
  local g = assert(GATES[c.cell], "cell must be lstm, gru or rnn")
  local n, h, b, t = c.batch * c.seq, c.hidden, c.batch, c.seq
  local list = {}
  local function add(m, nn, k, ta, tb, count, what)
    list[#list + 1] = { m, nn, k, ta, tb, count, what }
  end
  local width = c.embed
  for l = 1, c.layers do
    local L = "layer " .. l .. ": "
    add(n, g * h, width, false, false, 1, L .. "input projection x W_x")
    add(b, g * h, h, false, false, t, L .. "recurrent h W_h, per step")
    add(b, h, g * h, false, true, t, L .. "recurrent gradient dZ W_h^T, per step")
    add(width + h, g * h, n, true, false, 1, L .. "kernel gradient [x, h]^T dZ")
    add(n, width, g * h, false, true, 1, L .. "input gradient dZ W_x^T")
    width = h
  end
  add(n, c.vocab, h, false, false, 1, "logits h W_s")
  add(n, h, c.vocab, false, true, 1, "output layer's input gradient dlogits W_s^T")
  add(h, c.vocab, n, true, false, 1, "output layer's kernel gradient h^T dlogits")
  return list
end

function M.step_flops(c)
  local f = 0
  for _, p in ipairs(M.step_gemms(c)) do f = f + 2 * p[1] * p[2] * p[3] * p[6] end
  return f
end

local METRICS = { "tokens_per_s", "step_ms_median", "sample_chars_per_s", "peak_rss_mb" }

-- Medians over the rounds of one contender's runs.
function M.summarize(who, list)
  local name, setting = M.split_who(who)
  local s = { who = who, name = name, setting = setting, rounds = #list, framework = list[1].framework,
              version = list[1].version }
  for _, k in ipairs(METRICS) do
    local xs = {}
    for _, v in ipairs(list) do if type(v[k]) == "number" then xs[#xs + 1] = v[k] end end
    s[k] = M.median(xs)
  end
  return s
end

-- { [name] = summary at its best setting } and the names in first-seen order.
function M.best_settings(runs, order)
  local best, names = {}, {}
  for _, who in ipairs(order) do
    local s = M.summarize(who, runs[who])
    local b = best[s.name]
    if not b then names[#names + 1] = s.name end
    if not b or s.tokens_per_s > b.tokens_per_s then best[s.name] = s end
  end
  return best, names
end

-- The ratio records: moonflow (at its best setting) against every peer (at
-- its best) and against the best peer, for tokens/s, sampling chars/s and
-- peak RSS (where both have them). Needs a contender named "moonflow".
function M.ratios(best, names)
  local mf = best.moonflow
  if not mf then return nil, "no moonflow results" end
  local out, top = {}, nil
  for _, name in ipairs(names) do
    local p = best[name]
    if name ~= "moonflow" and (not top or p.tokens_per_s > top.tokens_per_s) then top = p end
  end
  local function add(p, against)
    for _, k in ipairs({ "tokens_per_s", "sample_chars_per_s", "peak_rss_mb" }) do
      if mf[k] and p[k] then
        out[#out + 1] = { kind = "ratio", metric = k, against = against, moonflow = mf.who, peer = p.who,
                          peer_version = p.version, moonflow_value = mf[k], peer_value = p[k],
                          ratio = math.floor(mf[k] / p[k] * 1000 + 0.5) / 1000 }
      end
    end
  end
  for _, name in ipairs(names) do
    if name ~= "moonflow" then add(best[name], name) end
  end
  if top then add(top, "best_peer") end
  return out
end

-- cjson writes "/" as "\/"; the settings read better without.
local function enc(v) return (cjson.encode(v):gsub("\\/", "/")) end

-- Keys first in this order, then the rest sorted: stable, readable lines.
local KEY_ORDER = { "kind", "metric", "against", "who", "name", "setting", "framework", "version", "moonflow",
                    "peer", "peer_version", "rounds", "tokens_per_s", "step_ms_median", "sample_chars_per_s",
                    "peak_rss_mb", "step_gflop", "gflops_per_s", "pct_of_peak", "moonflow_value", "peer_value", "ratio" }
function M.encode(t)
  local seen, parts = {}, {}
  for _, k in ipairs(KEY_ORDER) do
    if t[k] ~= nil then parts[#parts + 1] = enc(k) .. ": " .. enc(t[k]); seen[k] = true end
  end
  local rest = {}
  for k in pairs(t) do if not seen[k] then rest[#rest + 1] = k end end
  table.sort(rest)
  for _, k in ipairs(rest) do parts[#parts + 1] = enc(k) .. ": " .. enc(t[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function fmt(x, f) return x and string.format(f, x) or "-" end

-- The whole report for a results file, on `out` (default io.stdout).
-- opts: vocab (the corpus's symbol count) to print each contender's GFLOP/s
-- (M.step_flops over its median step), and peak_gflops for its % of peak.
function M.main(path, out, opts)
  out, opts = out or io.stdout, opts or {}
  local lines = {}
  for line in io.lines(path) do lines[#lines + 1] = line end
  local errors = {}
  local runs, order = M.collect(lines, errors)
  for _, e in ipairs(errors) do io.stderr:write(e, "\n") end
  for _, who in ipairs(order) do
    local s = M.summarize(who, runs[who])
    s.kind = "median"
    local r = runs[who][1]
    if opts.vocab and GATES[r.cell] and s.step_ms_median then
      local f = M.step_flops({ cell = r.cell, embed = r.embed, hidden = r.hidden, layers = r.layers, batch = r.batch,
                               seq = r.seq, vocab = opts.vocab })
      s.step_gflop = math.floor(f / 1e6 + 0.5) / 1e3
      s.gflops_per_s = math.floor(f / (s.step_ms_median * 1e-3) / 1e8 + 0.5) / 10
      if opts.peak_gflops then s.pct_of_peak = math.floor(s.gflops_per_s / opts.peak_gflops * 1000 + 0.5) / 10 end
    end
    out:write(M.encode(s), "\n")
  end
  local best, names = M.best_settings(runs, order)
  local ratios, err = M.ratios(best, names)
  if not ratios then error(err, 0) end
  for _, r in ipairs(ratios) do out:write(M.encode(r), "\n") end

  local tps = {}
  for _, r in ipairs(ratios) do if r.metric == "tokens_per_s" then tps[r.peer] = r.ratio end end
  out:write(string.format("\n%-24s %-18s %-8s %6s %10s %9s %10s %8s %8s\n", "contender (best setting)", "version",
                          "setting", "rounds", "tokens/s", "ms/step", "sample c/s", "RSS MB", "mf/peer"))
  for _, name in ipairs(names) do
    local s = best[name]
    out:write(string.format("%-24s %-18s %-8s %6d %10.0f %9.2f %10s %8s %8s\n", name, tostring(s.version),
                            s.setting, s.rounds, s.tokens_per_s, s.step_ms_median or 0 / 0,
                            fmt(s.sample_chars_per_s, "%.0f"), fmt(s.peak_rss_mb, "%.0f"),
                            name == "moonflow" and "" or fmt(tps[s.who], "%.2fx")))
  end
  for _, r in ipairs(ratios) do
    if r.against == "best_peer" and r.metric == "tokens_per_s" then
      out:write(string.format("moonflow / best peer (%s): %.2fx tokens/s\n", r.peer, r.ratio))
    end
  end
end

return M
