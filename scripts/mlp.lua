-- A two-hidden-layer MLP on the two-spirals problem (generated here, seeded):
-- trains with Adam on a full batch and reports training and held-out accuracy.
--   scripts/run.sh scripts/mlp.lua [--points N] [--hidden H] [--steps S] [--seed K]
local tf = require("moonflow")

local opts = { points = 500, hidden = 64, steps = 1500, seed = 1, lr = 0.01, quiet = false }
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-(.+)$")
  if not k or opts[k] == nil then error("unknown option " .. arg[i] .. " (--points --hidden --steps --seed --lr --quiet)") end
  if type(opts[k]) == "boolean" then opts[k] = true; i = i + 1
  else opts[k] = tonumber(arg[i + 1]); i = i + 2 end
end
local function log(...) if not opts.quiet then print(string.format(...)) end end

-- Two interleaved spirals, `points` per class, radius growing with the angle.
math.randomseed(opts.seed)
local function spirals(n)
  local xs, ys = {}, {}
  for c = 0, 1 do
    for k = 1, n do
      local t = 0.25 + 3.0 * math.pi * k / n
      local r = t / (3.0 * math.pi)
      local a = t + c * math.pi
      xs[#xs + 1] = { r * math.cos(a) + 0.01 * (math.random() - 0.5), r * math.sin(a) + 0.01 * (math.random() - 0.5) }
      ys[#ys + 1] = c + 1 -- class ids count from 1
    end
  end
  return xs, ys
end
local X, Y = spirals(opts.points)
-- A random 80/20 split into training and held-out points.
local order = {}
for k = 1, #X do order[k] = k end
for k = #order, 2, -1 do local j = math.random(k); order[k], order[j] = order[j], order[k] end
local train_x, train_y, test_x, test_y = {}, {}, {}, {}
for n, k in ipairs(order) do
  if n <= #order * 0.8 then train_x[#train_x + 1], train_y[#train_y + 1] = X[k], Y[k]
  else test_x[#test_x + 1], test_y[#test_y + 1] = X[k], Y[k] end
end

tf.set_random_seed(opts.seed)
local x = tf.placeholder("float32", { -1, 2 }, "x")
local y = tf.placeholder("int32", { -1 }, "y")
local h1 = tf.layers.dense(x, opts.hidden, { activation = tf.nn.relu, name = "hidden1" })
local h2 = tf.layers.dense(h1, opts.hidden, { activation = tf.nn.relu, name = "hidden2" })
local logits = tf.layers.dense(h2, 2, { name = "logits" })
local loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits{ labels = y, logits = logits })
local accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.cast(tf.argmax(logits, 2), "int32"), y), "float32"))
local step = tf.train.get_or_create_global_step()
local train = tf.train.AdamOptimizer(opts.lr):minimize(loss, { global_step = step })

local sess <close> = tf.Session()
sess:run(tf.global_variables_initializer())
local train_feed = { [x] = train_x, [y] = train_y }
local test_feed = { [x] = test_x, [y] = test_y }
local t0 = os.clock()
for s = 1, opts.steps do
  local r = sess:run({ loss = loss, _ = train }, train_feed)
  if s % 250 == 0 or s == 1 then
    log("step %4d  loss %.4f  train acc %.3f", s, r.loss:item(), sess:run(accuracy, train_feed):item())
  end
end
local train_acc = sess:run(accuracy, train_feed):item()
local test_acc = sess:run(accuracy, test_feed):item()
print(string.format("train accuracy %.4f  held-out accuracy %.4f  (%d steps, %.1f s CPU)",
  train_acc, test_acc, opts.steps, os.clock() - t0))
return { train = train_acc, test = test_acc }
