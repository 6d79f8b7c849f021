-- Writes the seed corpus of fuzz_graph_import: small graphs moonflow
-- exports (constants of each dtype with strings, a dense layer with
-- gradients, a cond and a while_loop: the function library), each under
-- 4096 bytes (scripts/fuzz.sh's -max_len).
--   (. scripts/env.sh build; lua5.4 tests/fuzz/make_graph_seeds.lua)
local tf = require("moonflow")
local out = "tests/fuzz/corpus/graph_import/"
os.execute("mkdir -p " .. out)

local function write(name, build)
  local g = tf.Graph()
  g:as_default(build)
  local bytes = g:as_graph_def():SerializeToString()
  assert(#bytes <= 4096, name .. " is " .. #bytes .. " bytes")
  local f = assert(io.open(out .. name, "wb"))
  f:write(bytes)
  f:close()
end

write("consts", function()
  tf.constant({ "a", "bc\0" }, { name = "s" })
  tf.constant({ 1, 2 }, { dtype = "int64" })
  tf.constant({ true, false })
  tf.constant(2.5, { dtype = "float64" })
  tf.random_normal({ 2 }, { mean = 0.1, seed = 3 })
end)
write("dense", function()
  local x = tf.placeholder("float32", { -1, 2 }, "x")
  local w = tf.Variable({ { 1.0 }, { 2.0 } }, { name = "w" })
  local loss = tf.reduce_sum(tf.matmul(x, w))
  tf.gradients(loss, { w })
end)
write("cond", function()
  local x = tf.placeholder("float32", {}, "x")
  local y = tf.cond(tf.greater(x, 0), function() return x * x end, function() return -x end)
  tf.gradients(y, { x })
end)
write("while", function()
  local x = tf.placeholder("float32", {}, "x")
  local r = tf.while_loop(function(i) return tf.less(i, 3) end, function(i, a) return i + 1, a * x end,
                          { tf.constant(0), tf.constant(1.0) })
  tf.identity(r[2], "out")
end)
