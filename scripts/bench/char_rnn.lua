-- Char-RNN training (and sampling) throughput, the moonflow side of
-- ../shared/bench/torch_charrnn.py: the same flags, model, batching and JSON
-- fields, so the two can be run side by side (scripts/bench/compare.sh).
--   lua5.4 scripts/bench/char_rnn.lua --input ../shared/data/tinyshakespeare.txt \
--     [--cell lstm|gru|rnn] [--embed 64] [--hidden 128] [--layers 2] [--batch 50] \
--     [--seq 50] [--steps 30] [--warmup 5] [--threads 0] [--lr 2e-3] [--clip 5] \
--     [--seed 0] [--sample N] [--dtype float32|float64]
-- One training step = one sess:run of forward + backward + clip + Adam update
-- on batch x seq tokens, the state carried across steps (truncated BPTT).
-- Prints one JSON line (the peer's fields, then gemm_kernel: which float32
-- GEMM ran); progress goes to stderr.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/../lib/?.lua;" .. package.path

local argparse = require("argparse")
local cjson = require("cjson")
local tf = require("moonflow")
local bench = require("moonflow.bench")
local D = require("char_data")
local M = require("char_model")

local function int(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 0 then return nil, "expected a non-negative integer, got '" .. s .. "'" end
  return n
end
local p = argparse("bench/char_rnn.lua", "Char-RNN training/sampling benchmark (peer: torch_charrnn.py).")
p:option("--input", "Training text."):args(1)
p:option("--cell", "lstm, gru or rnn."):choices(M.cell_types):default("lstm")
p:option("--embed", "Embedding size."):default("64"):convert(int)
p:option("--hidden", "RNN units per layer."):default("128"):convert(int)
p:option("--layers", "RNN layers."):default("2"):convert(int)
p:option("--batch", "Batch size (streams)."):default("50"):convert(int)
p:option("--seq", "Sequence length."):default("50"):convert(int)
p:option("--steps", "Timed steps."):default("30"):convert(int)
p:option("--warmup", "Untimed steps first."):default("5"):convert(int)
p:option("--threads", "GEMM (intra-op) threads; 0 = moonflow's default."):default("0"):convert(int)
p:option("--inter_threads", "Inter-op threads (independent ops in parallel)."):default("1"):convert(int)
p:option("--lr", "Adam learning rate."):default("2e-3"):convert(tonumber)
p:option("--clip", "Global-norm gradient clipping."):default("5"):convert(tonumber)
p:option("--seed", "Random seed."):default("0"):convert(int)
p:option("--sample", "After training, time generating N characters one at a time."):default("0"):convert(int)
p:option("--dtype", "Weights, state and activations: float32 or float64 (moonflow only)."):choices({ "float32", "float64" })
 :default("float32")
local a = p:parse(arg)
if not a.input then p:error("--input is required") end

local text = D.read_file(a.input)
local vocab, index = D.build_vocab(text)
local ids = D.encode(text, index)
local batches = D.batcher(ids, a.batch, a.seq)
if not batches then error("the input is too small for one batch", 0) end

tf.set_random_seed(a.seed)
math.randomseed(a.seed)
local o = { vocab_size = #vocab, model = a.cell, rnn_size = a.hidden, num_layers = a.layers,
            wordvec_size = a.embed, seq_length = a.seq, dtype = a.dtype }
local model = M.build(tf, o)
local train_op = M.train_op(tf, model.loss, { learning_rate = a.lr, grad_clip = a.clip })
local sampler
if a.sample > 0 then
  sampler = M.sampler(tf, { vocab_size = #vocab, model = a.cell, rnn_size = a.hidden, num_layers = a.layers,
                            wordvec_size = a.embed, reuse = true, temperature = 1.0, seed = a.seed,
                            dtype = a.dtype })
end

local sess <close> = tf.Session{ config = { inter_op_threads = a.inter_threads, intra_op_threads = a.threads } }
sess:run(tf.global_variables_initializer())

local state = M.zero_state(tf, o, a.batch)
local times, loss = {}, 0 / 0
for step = 0, a.warmup + a.steps - 1 do
  local x, y = batches:get(step % batches.num_batches + 1)
  local t0 = bench.now()
  local r = sess:run({ loss = model.loss, state = model.final_state, _ = train_op },
                     M.feed_state({ [model.x] = x, [model.y] = y }, model.init_state, state))
  state = r.state
  local dt = bench.now() - t0
  loss = r.loss:item()
  if step >= a.warmup then times[#times + 1] = dt end
  if step % 10 == 0 then io.stderr:write(string.format("step %d loss %.4f %.1f ms\n", step, loss, dt * 1000)) end
end

local function median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local n = #s
  if n == 0 then return 0 / 0 end
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end
local function mean(t)
  local s = 0
  for _, v in ipairs(t) do s = s + v end
  return s / #t
end
local function round(x, d)
  local m = 10 ^ d
  return math.floor(x * m + 0.5) / m
end

local med = median(times)
local out = { framework = "moonflow", version = tf.version, cell = a.cell, embed = a.embed, hidden = a.hidden,
              layers = a.layers, batch = a.batch, seq = a.seq, threads = a.threads, dtype = a.dtype,
              step_ms_median = round(med * 1000, 3), step_ms_mean = round(mean(times) * 1000, 3),
              tokens_per_s = round(a.batch * a.seq / med, 1), final_loss = round(loss, 4) }

if sampler then
  -- As the peer does: one character per step, sampled from the softmax (in
  -- the graph here), the state carried (in the session here).
  sess:run(sampler.next, { [sampler.id_in] = { { index[text:byte(1)] } } })
  local t0 = bench.now()
  for _ = 1, a.sample do sess:run(sampler.next) end
  out.sample_chars_per_s = round(a.sample / (bench.now() - t0), 1)
end

for line in io.lines("/proc/self/status") do
  local kb = line:match("^VmHWM:%s*(%d+)")
  if kb then out.peak_rss_mb = round(tonumber(kb) / 1024, 1) end
end

-- keys in the peer's order
out.gemm_kernel = a.dtype == "float32" and tf.sysconfig.cpu_gemm_kernel() or "openblas" -- float64: dgemm
local order = { "framework", "version", "cell", "embed", "hidden", "layers", "batch", "seq", "threads", "dtype",
                "step_ms_median", "step_ms_mean", "tokens_per_s", "final_loss", "sample_chars_per_s", "peak_rss_mb",
                "gemm_kernel" }
local parts = {}
for _, k in ipairs(order) do
  if out[k] ~= nil then parts[#parts + 1] = cjson.encode(k) .. ": " .. cjson.encode(out[k]) end
end
print("{" .. table.concat(parts, ", ") .. "}")
