-- Trains a small model for the resume spec. Usage:
--   lua5.4 resume_train.lua first DIR N M   trains N steps, saves to DIR, trains M more
--   lua5.4 resume_train.lua second DIR M    restores the latest checkpoint in DIR, trains M
-- Prints one loss per line after the save point, exactly (%a).
local tf = require("moonflow")
local mode, dir = arg[1], arg[2]

tf.set_random_seed(11)
local x = tf.placeholder("float32", { 8, 3 }, "x")
local y = tf.placeholder("int32", { 8 }, "y")
local h = tf.layers.dense(x, 16, { activation = tf.nn.tanh, name = "h" })
local logits = tf.layers.dense(h, 3, { name = "out" })
local loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits{ labels = y, logits = logits })
local step = tf.train.get_or_create_global_step()
local train = tf.train.AdamOptimizer(0.05):minimize(loss, { global_step = step })
local saver = tf.train.Saver()

-- The batch for a step depends only on the global step, so both processes see the same data.
local function batch(k)
  local xs, ys = {}, {}
  for i = 1, 8 do
    local a = math.sin(k * 7.1 + i * 1.3)
    local b = math.cos(k * 3.7 - i * 0.9)
    xs[i] = { a, b, a * b }
    ys[i] = (a > 0 and 1 or 2) + (b > 0.5 and 1 or 0)
  end
  return { [x] = xs, [y] = ys }
end

local sess = tf.Session()
local function train_steps(n)
  for _ = 1, n do
    local k = sess:run(step):item()
    local r = sess:run({ loss = loss, _ = train }, batch(k))
    print(string.format("%a", r.loss:item()))
  end
end

if mode == "first" then
  sess:run(tf.global_variables_initializer())
  for _ = 1, tonumber(arg[3]) do sess:run(train, batch(sess:run(step):item())) end
  saver:save(sess, dir .. "/model", { global_step = step })
  train_steps(tonumber(arg[4]))
else
  saver:restore(sess, tf.train.latest_checkpoint(dir))
  train_steps(tonumber(arg[3]))
end
