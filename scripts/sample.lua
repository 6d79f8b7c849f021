-- Samples text from a checkpoint written by scripts/char_rnn.lua:
--   lua5.4 scripts/sample.lua --checkpoint checkpoints --length 500 --start_text "ROMEO:"
-- Rebuilds the model as a batch-1, one-step graph (same variable names)
-- whose state and current character live in the session, restores it,
-- primes it with --start_text, then generates one character per run (the
-- sampling happens in the graph). With --export_dir it writes that graph
-- and its variables as a saved model instead (for C hosts:
-- examples/sample/sample.c prints the same text from it). `--help` lists
-- every option.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/lib/?.lua;" .. package.path

local argparse = require("argparse")
local cjson = require("cjson")
local tf = require("moonflow")
local D = require("char_data")
local M = require("char_model")

local parser = argparse("sample.lua", "Generate text from a char_rnn.lua checkpoint.")
parser:option("--checkpoint", "A checkpoint file (model-<step>) or a directory (its latest checkpoint)."):default("checkpoints")
parser:option("--length", "Number of characters to generate."):default("2000"):convert(function(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 0 then return nil, "expected a non-negative integer, got '" .. s .. "'" end
  return n
end)
parser:option("--temperature", "Softmax temperature (lower is more conservative)."):default("1"):convert(function(s)
  local t = tonumber(s)
  if not t or t <= 0 then return nil, "expected a positive number, got '" .. s .. "'" end
  return t + 0.0
end)
parser:option("--start_text", "Text to prime the model with (printed before the generated text)."):default("")
parser:option("--sample", "1: sample from the distribution; 0: take the most likely character (argmax)."):choices({ "0", "1" }):default("1")
parser:option("--seed", "Random seed for sampling."):default("123"):convert(function(s) return math.tointeger(tonumber(s)) end)
parser:option("--export_dir", "Instead of sampling, write the sampling graph (seeded with --seed, at --temperature) "
  .. "and its variables as a saved model to this directory (which must not exist), for C hosts (mf_model_load).")
parser:flag("--verbose", "Print the checkpoint used and its step to stderr.")
local opt = parser:parse(arg)

-- An export directory that exists is refused before any work.
local builder
if opt.export_dir then
  local ok, b = pcall(tf.saved_model.builder.SavedModelBuilder, opt.export_dir)
  if not ok then error((tostring(b):gsub("^[^:]*:%d+: ", "")), 0) end
  builder = b
end

local path = opt.checkpoint
local f = io.open(path .. ".json", "r")
if f then f:close() else
  path = tf.train.latest_checkpoint(opt.checkpoint)
  if not path then error("no checkpoint found at " .. opt.checkpoint, 0) end
end
local meta = cjson.decode(D.read_file(path .. ".json"))
local vocab, index = D.vocab_index(meta.vocab)
local o = meta.options
if opt.verbose then io.stderr:write(string.format("checkpoint %s (step %s)\n", path, tostring(meta.step))) end

local mo = { vocab_size = #vocab, model = o.model, rnn_size = math.tointeger(o.rnn_size),
             num_layers = math.tointeger(o.num_layers), wordvec_size = math.tointeger(o.wordvec_size),
             temperature = opt.temperature, argmax = opt.sample == "0", seed = opt.seed, vocab = {} }
for i, b in ipairs(vocab) do mo.vocab[i] = string.char(b) end
local sampler = M.sampler(tf, mo)
local sess <close> = tf.Session()
sess:run(tf.global_variables_initializer())
tf.train.Saver(sampler.model_vars):restore(sess, path)

if opt.export_dir then
  -- serving_default: one step (id in, optional; temperature, optional) -> next_id;
  -- vocab: the characters of the ids (id i is element i).
  local ok, err = pcall(function()
    builder:add_meta_graph_and_variables(sess, { tf.saved_model.SERVING }, { clear_devices = true, signature_def_map = {
      serving_default = tf.saved_model.predict_signature_def({ id = sampler.id_in, temperature = sampler.temperature },
                                                             { next_id = sampler.next }),
      vocab = tf.saved_model.build_signature_def(nil, { vocab = sampler.vocab }, tf.saved_model.PREDICT_METHOD_NAME),
    } })
    print(builder:save())
  end)
  if not ok then error((tostring(err):gsub("^[^:]*:%d+: ", "")), 0) end
  return
end

-- Prime with the start text (each character's step updates the state), or
-- with one character that is not printed: a newline when the vocabulary has
-- one, else the first character.
local prime = opt.start_text
local ids = {}
for i = 1, #prime do
  ids[i] = index[prime:byte(i)]
  if not ids[i] then error(string.format("--start_text: byte %d ('%s') is not in the model's vocabulary",
                                         prime:byte(i), prime:sub(i, i)), 0) end
end
if #ids == 0 then ids[1] = index[10] or 1 end
local next_id
for _, id in ipairs(ids) do next_id = sess:run(sampler.next, { [sampler.id_in] = { { id } } }) end

-- Each step's id was sampled in the graph and is already the next input.
local out = {}
for i = 1, opt.length do
  out[i] = string.char(vocab[next_id:item()])
  if i < opt.length then next_id = sess:run(sampler.next) end
end
io.write(prime, table.concat(out), "\n")
