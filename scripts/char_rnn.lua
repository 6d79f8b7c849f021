-- Trains a character-level RNN (LSTM, GRU or vanilla RNN) on any file, in the
-- spirit of char-rnn / torch-rnn:
--   lua5.4 scripts/char_rnn.lua --input ../shared/data/tinyshakespeare.txt
-- then sample from the checkpoint it writes:
--   lua5.4 scripts/sample.lua --checkpoint checkpoints
-- With no --input it trains on the project's own Lua sources (always present).
-- `--help` lists every option.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/lib/?.lua;" .. package.path

local argparse = require("argparse")
local cjson = require("cjson")
local tf = require("moonflow")
local bench = require("moonflow.bench")
local D = require("char_data")
local M = require("char_model")
local CLI = require("cli")

-- ---------------------------------------------------------------- options

local integer, number = CLI.integer, CLI.number

local parser = argparse("char_rnn.lua",
  "Train a character-level RNN language model with moonflow. The file is read as bytes; the vocabulary "
  .. "is its distinct byte values. Checkpoints (safetensors + a .json sidecar with the vocabulary and "
  .. "options) are written to --checkpoint_dir; sample from them with scripts/sample.lua.")
parser:option("--input", "Training text (any file, read as bytes). Default: the project's own lua/moonflow/*.lua sources.")
parser:option("--model", "Cell type: lstm, gru or rnn (tanh)."):choices(M.cell_types):default("lstm")
parser:option("--rnn_size", "Units in each RNN layer."):default("128"):convert(integer(1))
parser:option("--num_layers", "Number of stacked RNN layers."):default("2"):convert(integer(1))
parser:option("--wordvec_size", "Size of the character embeddings."):default("64"):convert(integer(1))
parser:option("--seq_length", "Characters per window (truncated backpropagation-through-time length)."):default("50"):convert(integer(1))
parser:option("--batch_size", "Parallel streams per batch."):default("50"):convert(integer(1))
parser:option("--learning_rate", "Adam learning rate."):default("2e-3"):convert(number(0))
parser:option("--lr_decay_every", "Multiply the learning rate by --lr_decay_factor every N steps (0 = never)."):default("0"):convert(integer(0))
parser:option("--lr_decay_factor", "Learning-rate decay factor."):default("0.5"):convert(number(0))
parser:option("--grad_clip", "Clip gradients to this global norm (0 = no clipping)."):default("5"):convert(number(0))
parser:option("--dropout", "Dropout probability on each layer's output (0 = none)."):default("0"):convert(number(0, 0.99))
parser:option("--max_epochs", "Stop after this many passes over the training data."):default("50"):convert(number(0))
parser:option("--max_steps", "Stop after this many training steps in total (0 = no limit)."):default("0"):convert(integer(0))
parser:option("--val_frac", "Fraction of the text (its end) held out for validation."):default("0.1"):convert(number(0, 0.9))
parser:option("--print_every", "Print a progress line every N steps (a terminal's line is redrawn every step)."):default("10"):convert(integer(1))
parser:option("--eval_val_every", "Evaluate the validation loss every N steps (0 = only at the end)."):default("500"):convert(integer(0))
parser:option("--checkpoint_every", "Write a checkpoint every N steps (0 = only at the end)."):default("1000"):convert(integer(0))
parser:option("--checkpoint_dir", "Directory for checkpoints (model-<step> and model-<step>.json)."):default("checkpoints")
parser:option("--init_from", "Resume from a checkpoint (a file, or a directory for its latest); its model options and vocabulary are used.")
parser:option("--seed", "Random seed (initialization, dropout)."):default("123"):convert(integer(0))
parser:option("--threads", "Threads inside a kernel (GEMM); 0 = the library's default."):default("0"):convert(integer(0))
parser:option("--logdir", "TensorBoard log directory: train and validation loss, learning rate, gradient norm, "
  .. "tokens/s, weight and gradient histograms, sampled text and the graph.")
parser:option("--summary_every", "With --logdir: write scalars and histograms every N steps."):default("10"):convert(integer(1))
parser:option("--log_sample_length", "With --logdir: characters of text sampled at each checkpoint (0 = none)."):default("200"):convert(integer(0))
parser:option("--sample_length", "After training, print N characters sampled from the final checkpoint (0 = none)."):default("0"):convert(integer(0))
parser:option("--export_dir", "After training, write the final checkpoint's sampling graph (seeded with --seed) as a "
  .. "saved model to this directory (which must not exist), for C hosts: examples/sample loads it with mf_model_load.")
parser:flag("--quiet", "Only print validation results and the final summary.")
parser:flag("--distributed", "Data-parallel training over MPI (launch with mpirun -np N ... --distributed): each "
  .. "rank trains on its share of the --batch_size streams (which N must divide), gradients are averaged across "
  .. "ranks; only rank 0 writes checkpoints, logs and summaries. Resuming works on any number of ranks.")
local opt = parser:parse(arg)
if opt.export_dir then -- refused now, not after training
  local ok, err = pcall(tf.saved_model.builder.SavedModelBuilder, opt.export_dir)
  if not ok then error("--export_dir: " .. tostring(err):gsub("^[^:]*:%d+: ", ""), 0) end
end

-- Distributed: this rank's streams are rows first..last of each batch.
local mpi, rank, nranks = nil, 0, 1
if opt.distributed then
  mpi = require("moonflow.mpi")
  mpi.init()
  rank, nranks = mpi.rank(), mpi.size()
  if opt.batch_size % nranks ~= 0 then
    error(string.format("--distributed: --batch_size %d is not a multiple of the %d ranks", opt.batch_size, nranks), 0)
  end
  if rank > 0 then -- rank 0 alone writes files and logs
    opt.quiet, opt.logdir, opt.export_dir, opt.sample_length = true, nil, nil, 0
  end
end
local local_batch = opt.batch_size // nranks
local function shard(rows)
  if nranks == 1 then return rows end
  local mine = {}
  for b = 1, local_batch do mine[b] = rows[rank * local_batch + b] end
  return mine
end


-- ---------------------------------------------------------------- output

local tty = os.getenv("TERM") ~= nil and os.getenv("TERM") ~= "dumb" and os.execute("test -t 1") == true
local line_open = false
local function say(s) -- a plain line, closing a redrawn progress line first
  if rank > 0 then return end
  if line_open then io.write("\n"); line_open = false end
  io.write(s, "\n")
  io.flush()
end
local function progress(s)
  if tty then
    io.write("\r", s, "\27[K")
    line_open = true
    io.flush()
  else
    say(s)
  end
end
local function duration(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, s % 3600 // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%ds", s)
end

-- ---------------------------------------------------------------- data

local resume_path, resume_meta
if opt.init_from then
  resume_path = opt.init_from
  if not io.open(resume_path .. ".json", "r") then
    resume_path = tf.train.latest_checkpoint(opt.init_from)
    if not resume_path then error("--init_from: no checkpoint found at " .. opt.init_from, 0) end
  end
  resume_meta = cjson.decode(D.read_file(resume_path .. ".json"))
  for _, k in ipairs({ "model", "rnn_size", "num_layers", "wordvec_size" }) do
    local v = resume_meta.options[k]
    if opt[k] ~= v then
      if not opt.quiet then say(string.format("--init_from: using the checkpoint's %s = %s", k, tostring(v))) end
      opt[k] = type(v) == "number" and (math.tointeger(v) or v) or v
    end
  end
end

local text, source
if opt.input then
  text, source = D.read_file(opt.input), opt.input
else
  text, source = D.default_corpus(script_dir)
end
local vocab, index
if resume_meta then
  vocab, index = D.vocab_index(resume_meta.vocab)
else
  vocab, index = D.build_vocab(text)
end
local ids = D.encode(text, index)
local train_ids, val_ids = D.split(ids, opt.val_frac)
local train = D.batcher(train_ids, opt.batch_size, opt.seq_length)
if not train then
  error(string.format("the training split (%d characters) is too small for one batch of %d x %d",
                      #train_ids, opt.batch_size, opt.seq_length), 0)
end
local val_batch = math.min(opt.batch_size, (#val_ids - 1) // opt.seq_length)
local val = val_batch >= 1 and D.batcher(val_ids, val_batch, opt.seq_length) or nil

local total_steps = math.floor(opt.max_epochs * train.num_batches + 0.5)
if opt.max_steps > 0 then total_steps = math.min(total_steps, opt.max_steps) end

if not opt.quiet then
  say(string.format("data: %s, %d bytes, vocabulary %d; train %d chars (%d batches of %dx%d per epoch), validation %d chars%s",
    source, #text, #vocab, #train_ids, train.num_batches, opt.batch_size, opt.seq_length, #val_ids,
    val and "" or " (too few for a window: no validation)"))
end

-- ---------------------------------------------------------------- graph

tf.set_random_seed(opt.seed)
math.randomseed(opt.seed)
local mo = { vocab_size = #vocab, model = opt.model, rnn_size = opt.rnn_size, num_layers = opt.num_layers,
             wordvec_size = opt.wordvec_size, seq_length = opt.seq_length, dropout = opt.dropout, seed = opt.seed }
local model = M.build(tf, mo)
if mpi then opt.wrap_optimizer = mpi.DistributedOptimizer end -- gradients averaged across ranks
local train_op, global_step, lr, grad_norm, grads_and_vars = M.train_op(tf, model.loss, opt)
local eval = model
if opt.dropout > 0 then -- the same variables without dropout, for validation
  local eo = {}
  for k, v in pairs(mo) do eo[k] = v end
  eo.dropout, eo.reuse = 0, true
  eval = M.build(tf, eo)
end
local saver = tf.train.Saver(nil, { max_to_keep = 5 })
-- The loss reported is the whole batch's: averaged over the ranks, after the step's gradient allreduce.
local report_loss = mpi and tf.control_dependencies({ train_op }, function() return mpi.allreduce(model.loss) end)
  or model.loss
local bcast = mpi and mpi.broadcast_global_variables(0) -- rank 0's weights (initialized or restored) everywhere

-- TensorBoard (--logdir): the training summaries run with a training step
-- every --summary_every steps; values known on the host (tokens/s, the
-- validation loss, sampled text) come in through placeholders.
local summaries
if opt.logdir then
  summaries = { tokens_per_sec = tf.placeholder(tf.float32, {}, "tokens_per_sec"),
                val_loss = tf.placeholder(tf.float32, {}, "val_loss"), sample = tf.placeholder(tf.string, {}, "sample") }
  tf.summary.scalar("train/loss", model.loss)
  tf.summary.scalar("train/learning_rate", lr)
  tf.summary.scalar("train/gradient_norm", grad_norm)
  tf.summary.scalar("train/tokens_per_sec", summaries.tokens_per_sec)
  for _, gv in ipairs(grads_and_vars) do
    local g, v = gv[1], gv[2]
    local name = v.name:gsub(":%d+$", "")
    tf.summary.histogram("weights/" .. name, v)
    if g then tf.summary.histogram("gradients/" .. name, tf.is_indexed_slices(g) and g.values or g) end
  end
  summaries.train = tf.summary.merge_all()
  summaries.val = tf.summary.scalar("validation/loss", summaries.val_loss, { "validation_summaries" })
  summaries.text = tf.summary.text("samples/text", summaries.sample, { "sample_summaries" })
end

local sess <close> = tf.Session{ config = { intra_op_threads = opt.threads } }
sess:run(tf.global_variables_initializer())
if resume_path and rank == 0 then
  saver:restore(sess, resume_path)
  if not opt.quiet then say("resumed from " .. resume_path) end
end
if bcast then sess:run(bcast) end
local writer <close> = opt.logdir and setmetatable({ w = tf.summary.FileWriter(opt.logdir, sess.graph) },
  { __close = function(self) self.w:close() end }) or nil

local function validation_loss()
  if not val then return nil end
  local state = M.zero_state(tf, mo, val.batch)
  local sum = 0.0
  for w = 1, val.num_batches do
    local x, y = val:get(w)
    local r = sess:run({ loss = eval.loss, state = eval.final_state },
                       M.feed_state({ [eval.x] = x, [eval.y] = y }, eval.init_state, state))
    sum, state = sum + r.loss:item(), r.state
  end
  return sum / val.num_batches
end

-- ---------------------------------------------------------------- checkpoints

local options_saved = {}
for _, k in ipairs({ "input", "model", "rnn_size", "num_layers", "wordvec_size", "seq_length", "batch_size",
                     "learning_rate", "lr_decay_every", "lr_decay_factor", "grad_clip", "dropout", "max_epochs",
                     "max_steps", "val_frac", "seed" }) do
  options_saved[k] = opt[k]
end
options_saved.input = source

local function checkpoint(step, train_loss, val_loss)
  os.execute("mkdir -p '" .. opt.checkpoint_dir:gsub("'", "'\\''") .. "'")
  local before = saver:last_checkpoints()
  local path = saver:save(sess, opt.checkpoint_dir .. "/model", { global_step = step })
  local meta = { vocab = vocab, options = options_saved, step = step, train_loss = train_loss, val_loss = val_loss,
                 framework = "moonflow " .. tf.version }
  local f = assert(io.open(path .. ".json.tmp", "w"))
  f:write(cjson.encode(meta), "\n")
  f:close()
  assert(os.rename(path .. ".json.tmp", path .. ".json"))
  local kept = {}
  for _, p in ipairs(saver:last_checkpoints()) do kept[p] = true end
  for _, p in ipairs(before) do if not kept[p] then os.remove(p .. ".json") end end
  return path
end

-- ---------------------------------------------------------------- training

local step = math.tointeger(sess:run(global_step):item())
local state = M.zero_state(tf, mo, local_batch)
local tokens = opt.batch_size * opt.seq_length
local t_start, n_timed = bench.now(), 0
local window_t, window_n = bench.now(), 0
local rate, last_draw = 0, -math.huge
local last_loss, last_val = nil, nil
local last_ckpt
if step >= total_steps and not opt.quiet then say(string.format("already at step %d of %d", step, total_steps)) end
while step < total_steps do
  local w = step % train.num_batches + 1
  if w == 1 then state = M.zero_state(tf, mo, local_batch) end
  local x, y = train:get(w)
  x, y = shard(x), shard(y)
  local fetches = { loss = report_loss, state = model.final_state, lr = lr, _ = train_op }
  local feeds = M.feed_state({ [model.x] = x, [model.y] = y }, model.init_state, state)
  local log = writer and (step + 1) % opt.summary_every == 0
  if log then -- tokens/s: the last progress window's, or the run's so far before the first window closes
    local tps = rate
    if tps == 0 and n_timed > 0 then tps = n_timed * tokens / (bench.now() - t_start) end
    fetches.summary, feeds[summaries.tokens_per_sec] = summaries.train, tps
  end
  local r = sess:run(fetches, feeds)
  state, last_loss = r.state, r.loss:item()
  step = step + 1
  if log then writer.w:add_summary(r.summary, step) end
  n_timed, window_n = n_timed + 1, window_n + 1
  if last_loss ~= last_loss then error(string.format("the loss is NaN at step %d", step), 0) end

  local now = bench.now()
  local redraw = tty and (now - last_draw >= 0.1 or step == total_steps)
  if redraw or step % opt.print_every == 0 or step == total_steps then
    last_draw = now
    if window_n > 0 then rate, window_t, window_n = window_n * tokens / (now - window_t), now, 0 end
    local eta = (now - t_start) / n_timed * (total_steps - step)
    if not opt.quiet and (redraw or step % opt.print_every == 0) then
      progress(string.format("step %d/%d  epoch %.2f  loss %.4f  val %s  lr %.2e  %.1fk tok/s  ETA %s",
        step, total_steps, step / train.num_batches, last_loss, last_val and string.format("%.4f", last_val) or "-",
        r.lr:item(), rate / 1000, duration(eta)))
    end
  end
  local at_end = step == total_steps
  if (opt.eval_val_every > 0 and step % opt.eval_val_every == 0) or at_end then
    local t0 = bench.now()
    last_val = validation_loss()
    if last_val then
      say(string.format("step %d  epoch %.2f  train loss %.4f  val loss %.4f  (%.1f s)",
        step, step / train.num_batches, last_loss, last_val, bench.now() - t0))
      if writer then writer.w:add_summary(sess:run(summaries.val, { [summaries.val_loss] = last_val }), step) end
    end
    window_t = window_t + (bench.now() - t0)  -- keep the throughput figure about training
    t_start = t_start + (bench.now() - t0)
  end
  if ((opt.checkpoint_every > 0 and step % opt.checkpoint_every == 0) or at_end) and rank == 0 then
    last_ckpt = checkpoint(step, last_loss, last_val)
    if not opt.quiet then say("checkpoint " .. last_ckpt) end
    if writer and opt.log_sample_length > 0 then -- text sampled from it by the sampling script
      local t0 = bench.now()
      local p = io.popen(string.format("%s '%s/sample.lua' --checkpoint '%s' --length %d --temperature 0.8 --seed %d",
                                       arg[-1] or "lua5.4", script_dir, last_ckpt, opt.log_sample_length, opt.seed))
      local sampled = p:read("a")
      if p:close() then
        writer.w:add_summary(sess:run(summaries.text, { [summaries.sample] = "```\n" .. sampled .. "\n```" }), step)
      end
      window_t, t_start = window_t + (bench.now() - t0), t_start + (bench.now() - t0)
    end
  end
end

local elapsed = bench.now() - t_start
say(string.format("done: %d steps, train loss %s, val loss %s, %.1fk tokens/s, checkpoint %s",
  step, last_loss and string.format("%.4f", last_loss) or "-", last_val and string.format("%.4f", last_val) or "-",
  n_timed > 0 and n_timed * tokens / elapsed / 1000 or 0, last_ckpt or "-"))

-- The sampling graph as a saved model, written by the sampling script from
-- the checkpoint just written.
if opt.export_dir and last_ckpt then
  local cmd = string.format("%s '%s/sample.lua' --checkpoint '%s' --seed %d --export_dir '%s'", arg[-1] or "lua5.4",
                            script_dir, last_ckpt, opt.seed, (opt.export_dir:gsub("'", "'\\''")))
  local p = io.popen(cmd)
  local out = p:read("a")
  if not p:close() then error("exporting the model failed: " .. cmd .. "\n" .. out, 0) end
  say("exported " .. out:gsub("%s+$", ""))
end

-- A sample from the checkpoint just written, by the sampling script (so the
-- checkpoint is proven to load in a fresh process).
if opt.sample_length > 0 and last_ckpt then
  local lua = arg[-1] or "lua5.4"
  local cmd = string.format("%s '%s/sample.lua' --checkpoint '%s' --length %d --temperature 0.8 --seed %d",
                            lua, script_dir, last_ckpt, opt.sample_length, opt.seed)
  say("sample (" .. opt.sample_length .. " characters):")
  io.flush()
  if not os.execute(cmd) then error("sampling failed: " .. cmd, 0) end
end

if mpi then mpi.shutdown() end
