-- Per-op wall time of a char-RNN training step, from the session's own
-- tracing (sess:set_tracing): the same model and step as
-- scripts/bench/char_rnn.lua, then, over the timed steps, each op type's
-- summed time per step and its share of the step. One JSON line per op type
-- (largest first), then one for the step:
--   lua5.4 scripts/bench/op_times.lua --input ../shared/data/tinyshakespeare.txt \
--     [--cell lstm] [--embed 64] [--hidden 128] [--layers 2] [--batch 50] [--seq 50] \
--     [--steps 10] [--warmup 3] [--threads 0]
-- Ops that run at the same time (inter-op threads > 1) would add up to more
-- than the step; this runs them one at a time (inter_op_threads 1), so the
-- rest of the step ("outside ops") is the executor's and Lua's part.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/../lib/?.lua;" .. package.path

local argparse = require("argparse")
local cjson = require("cjson")
local tf = require("moonflow")
local bench = require("moonflow.bench")
local D = require("char_data")
local M = require("char_model")

local p = argparse("bench/op_times.lua", "Per-op time of a char-RNN training step.")
p:option("--input", "Training text."):args(1)
p:option("--cell", "lstm, gru or rnn."):choices(M.cell_types):default("lstm")
for _, o in ipairs({ { "embed", 64 }, { "hidden", 128 }, { "layers", 2 }, { "batch", 50 }, { "seq", 50 },
                     { "steps", 10 }, { "warmup", 3 }, { "threads", 0 } }) do
  p:option("--" .. o[1]):default(tostring(o[2])):convert(math.tointeger)
end
local a = p:parse(arg)
if not a.input then p:error("--input is required") end

local text = D.read_file(a.input)
local vocab, index = D.build_vocab(text)
local batches = assert(D.batcher(D.encode(text, index), a.batch, a.seq), "the input is too small for one batch")
tf.set_random_seed(0)
local o = { vocab_size = #vocab, model = a.cell, rnn_size = a.hidden, num_layers = a.layers,
            wordvec_size = a.embed, seq_length = a.seq }
local model = M.build(tf, o)
local train_op = M.train_op(tf, model.loss, { learning_rate = 2e-3, grad_clip = 5 })
local sess <close> = tf.Session{ config = { inter_op_threads = 1, intra_op_threads = a.threads } }
sess:run(tf.global_variables_initializer())

local per_type, count, step_s = {}, {}, 0
local state = M.zero_state(tf, o, a.batch)
for step = 1, a.warmup + a.steps do
  local x, y = batches:get((step - 1) % batches.num_batches + 1)
  local timed = step > a.warmup
  sess:set_tracing(timed)
  local t0 = bench.now()
  local r = sess:run({ state = model.final_state, _ = train_op },
                     M.feed_state({ [model.x] = x, [model.y] = y }, model.init_state, state))
  local dt = bench.now() - t0
  state = r.state
  if timed then
    step_s = step_s + dt
    for _, e in ipairs(sess:last_trace()) do
      per_type[e.type] = (per_type[e.type] or 0) + (e.end_ns - e.start_ns) * 1e-9
      count[e.type] = (count[e.type] or 0) + 1
    end
  end
end

local rows, in_ops = {}, 0
for t, s in pairs(per_type) do
  rows[#rows + 1] = { t, s }
  in_ops = in_ops + s
end
table.sort(rows, function(x, y) return x[2] > y[2] end)
local step_ms = step_s / a.steps * 1e3
for _, r in ipairs(rows) do
  local ms = r[2] / a.steps * 1e3
  print(cjson.encode({ bench = "op_times", op = r[1], per_step = count[r[1]] // a.steps, ms_per_step = ms,
                       share = ms / step_ms }))
end
print(cjson.encode({ bench = "op_times", op = "(outside ops: executor, feeds, fetches, Lua)",
                     ms_per_step = step_ms - in_ops / a.steps * 1e3, share = 1 - in_ops / step_s }))
print(cjson.encode({ bench = "op_times_step", cell = a.cell, embed = a.embed, hidden = a.hidden, layers = a.layers,
                     batch = a.batch, seq = a.seq, threads = a.threads, steps = a.steps, step_ms = step_ms }))
