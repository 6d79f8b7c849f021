-- Writes the seed corpus of fuzz_saved_model: small saved models that
-- tf.saved_model writes, each as one input (a 4-byte little-endian length,
-- saved_model.pb, then variables/variables.safetensors), under 4096 bytes
-- (scripts/fuzz.sh's -max_len).
--   (. scripts/env.sh build; lua5.4 tests/fuzz/make_saved_model_seeds.lua)
local tf = require("moonflow")
local P = dofile("tests/spec/support/process.lua")
local read = P.read_file
local out = "tests/fuzz/corpus/saved_model/"
os.execute("mkdir -p " .. out)

local function write(name, build)
  local g = tf.Graph()
  local sess, sigs, opts
  g:as_default(function()
    sigs, opts = build()
    sess = tf.Session({ graph = g })
    sess:run(tf.global_variables_initializer())
  end)
  local dir = os.tmpname()
  os.remove(dir)
  local b = tf.saved_model.Builder(dir)
  opts = opts or {}
  opts.signature_def_map = sigs
  b:add_meta_graph_and_variables(sess, { "serve" }, opts)
  b:save()
  sess:close()
  local pb, vars = read(dir .. "/saved_model.pb"), read(dir .. "/variables/variables.safetensors")
  os.execute("rm -rf '" .. dir .. "'")
  local bytes = string.pack("<I4", #pb) .. pb .. vars
  assert(#bytes <= 4096, name .. " is " .. #bytes .. " bytes")
  local f = assert(io.open(out .. name, "wb"))
  f:write(bytes)
  f:close()
end

local S = tf.saved_model.signature_def_utils
write("dense", function()
  local x = tf.placeholder("float32", { -1, 2 }, "x")
  local w = tf.Variable({ { 1.0 }, { 2.0 } }, { name = "w" })
  local b = tf.Variable({ 0.5 }, { name = "b" })
  return { serving_default = S.predict_signature_def({ x = x }, { y = tf.matmul(x, w) + b }) }
end)
write("main_op", function()
  local c = tf.Variable(0, { name = "c", collections = { tf.GraphKeys.LOCAL_VARIABLES } })
  local v = tf.Variable({ 1, 2, 3 }, { name = "v", dtype = "int64" })
  return { count = S.build_signature_def(nil, { n = c:assign_add(1), v = tf.identity(v) }, "m") },
         { main_op = tf.local_variables_initializer() }
end)
write("strings", function()
  local s = tf.constant({ "a", "bc" }, tf.string, nil, "vocab")
  return { vocab = S.build_signature_def(nil, { vocab = s }, "tensorflow/serving/predict"),
           serving_default = S.build_signature_def({ s = s }, { t = tf.identity(s) }, "p") }
end)
