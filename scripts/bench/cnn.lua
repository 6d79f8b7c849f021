-- LeNet-style CNN training throughput on synthetic 8x8 (or --size) inputs,
-- the moonflow side of scripts/bench/torch_cnn.py (PyTorch, the same flags,
-- model and JSON fields); scripts/bench/cnn_compare.sh runs both alternately
-- and prints the ratio:
--   lua5.4 scripts/bench/cnn.lua [--size 8] [--batch 64] [--steps 30]
--     [--warmup 5] [--threads 0] [--lr 0.05] [--seed 0]
-- Model: conv 5x5 SAME (16) + relu, max pool 2, conv 5x5 SAME (32) + relu,
-- max pool 2, dense 64 + relu, dense 10; softmax cross-entropy; plain SGD.
-- One training step = one sess:run of forward + backward + update. Prints
-- one JSON line; progress goes to stderr.
local argparse = require("argparse")
local cjson = require("cjson")
local tf = require("moonflow")
local bench = require("moonflow.bench")

local function int(s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 then return nil, "expected a positive integer, got '" .. s .. "'" end
  return n
end
local p = argparse("bench/cnn.lua", "LeNet-style CNN training benchmark.")
p:option("--size", "Input height and width (a multiple of 4)."):default("8"):convert(int)
p:option("--batch", "Batch size."):default("64"):convert(int)
p:option("--steps", "Timed steps."):default("30"):convert(int)
p:option("--warmup", "Untimed steps first."):default("5"):convert(int)
p:option("--threads", "Intra-op threads; 0 = moonflow's default."):default("0"):convert(tonumber)
p:option("--lr", "SGD learning rate."):default("0.05"):convert(tonumber)
p:option("--seed", "Random seed."):default("0"):convert(tonumber)
local a = p:parse(arg)
if a.size % 4 ~= 0 then p:error("--size must be a multiple of 4") end

tf.set_random_seed(a.seed)
math.randomseed(a.seed)
local x = tf.placeholder("float32", { -1, a.size, a.size, 1 }, "x")
local y = tf.placeholder("int32", { -1 }, "y")
local h = tf.layers.conv2d(x, 16, 5, { padding = "same", activation = tf.nn.relu })
h = tf.layers.max_pooling2d(h, 2, 2)
h = tf.layers.conv2d(h, 32, 5, { padding = "same", activation = tf.nn.relu })
h = tf.layers.max_pooling2d(h, 2, 2)
h = tf.layers.dense(tf.layers.flatten(h), 64, { activation = tf.nn.relu })
local logits = tf.layers.dense(h, 10)
local loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits{ labels = y, logits = logits })
local train_op = tf.train.GradientDescentOptimizer(a.lr):minimize(loss)

-- A learnable synthetic task: the class is which of 10 fixed random
-- templates the (noisy) image is.
local n = a.size * a.size
local templates = {}
for c = 1, 10 do
  templates[c] = {}
  for i = 1, n do templates[c][i] = math.random() end
end
local function batch()
  local xs, ys = {}, {}
  for b = 1, a.batch do
    local c = math.random(1, 10)
    local img = {}
    for r = 1, a.size do
      local row = {}
      for q = 1, a.size do row[q] = { templates[c][(r - 1) * a.size + q] + 0.3 * (math.random() - 0.5) } end
      img[r] = row
    end
    xs[b], ys[b] = img, c
  end
  return tf.array(xs, "float32"), tf.array(ys, "int32")
end
local batches = {}
for i = 1, 8 do batches[i] = { batch() } end

local sess <close> = tf.Session{ config = { intra_op_threads = a.threads } }
sess:run(tf.global_variables_initializer())
local times, last = {}, 0 / 0
for step = 0, a.warmup + a.steps - 1 do
  local b = batches[step % #batches + 1]
  local t0 = bench.now()
  local r = sess:run({ loss = loss, _ = train_op }, { [x] = b[1], [y] = b[2] })
  local dt = bench.now() - t0
  last = r.loss:item()
  if step >= a.warmup then times[#times + 1] = dt end
  if step % 10 == 0 then io.stderr:write(string.format("step %d loss %.4f %.2f ms\n", step, last, dt * 1000)) end
end

local function median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local m = #s
  return m % 2 == 1 and s[(m + 1) // 2] or (s[m // 2] + s[m // 2 + 1]) / 2
end
local function round(v, d)
  local m = 10 ^ d
  return math.floor(v * m + 0.5) / m
end
local med = median(times)
local out = { framework = "moonflow", version = tf.version, size = a.size, batch = a.batch, threads = a.threads,
              step_ms_median = round(med * 1000, 3), examples_per_s = round(a.batch / med, 1),
              final_loss = round(last, 4), gemm_kernel = tf.sysconfig.cpu_gemm_kernel() }
local order = { "framework", "version", "size", "batch", "threads", "step_ms_median", "examples_per_s", "final_loss",
                "gemm_kernel" }
local parts = {}
for _, k in ipairs(order) do parts[#parts + 1] = cjson.encode(k) .. ": " .. cjson.encode(out[k]) end
print("{" .. table.concat(parts, ", ") .. "}")
