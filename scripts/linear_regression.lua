-- Linear regression by gradient descent: recovers the weights that
-- generated the data.   scripts/run.sh scripts/linear_regression.lua [--steps N]
local tf = require("moonflow")

local steps = 300
for i = 1, #arg do if arg[i] == "--steps" then steps = tonumber(arg[i + 1]) end end

-- Data: y = x·w_true + b_true + small noise, drawn in the graph with a seed.
tf.set_random_seed(7)
local n, d = 1000, 4
local w_true = tf.constant({ { 1.5 }, { -2.0 }, { 0.5 }, { 3.0 } })
local b_true = 0.7
local X = tf.Variable(tf.random_normal({ n, d }), { name = "X", trainable = false })
local noise = tf.Variable(tf.random_normal({ n, 1 }, { stddev = 0.01 }), { name = "noise", trainable = false })
local Y = tf.matmul(X, w_true) + b_true + noise

local w = tf.Variable(tf.zeros({ d, 1 }), "w")
local b = tf.Variable(0.0, "b")
local loss = tf.losses.mean_squared_error(Y, tf.matmul(X, w) + b)
local train = tf.train.GradientDescentOptimizer(0.1):minimize(loss)

local sess <close> = tf.Session()
sess:run(tf.global_variables_initializer())
for step = 1, steps do
  local r = sess:run({ loss = loss, _ = train })
  if step == 1 or step % 100 == 0 then print(string.format("step %4d  loss %.6f", step, r.loss:item())) end
end
local wv, bv = table.unpack(sess:run({ w, b }))
local want = { 1.5, -2.0, 0.5, 3.0 }
local worst = math.abs(bv:item() - b_true)
for i = 1, d do worst = math.max(worst, math.abs(wv[i][1] - want[i])) end
print(string.format("w = {%.4f, %.4f, %.4f, %.4f}  b = %.4f  (max error %.2e)",
  wv[1][1], wv[2][1], wv[3][1], wv[4][1], bv:item(), worst))
if worst > 1e-3 then error(string.format("did not recover the weights: max error %.3g", worst)) end
