-- A first moonflow program: build a graph, run it in a session, train a
-- variable by hand-written gradient steps, and print values.
--   scripts/run.sh scripts/example.lua
local tf = require("moonflow")

-- Constants, operators and a session.
local a = tf.constant({ { 1, 2 }, { 3, 4 } }, { dtype = "float32" })
local b = tf.constant({ { 0.5 }, { -1 } })
local c = tf.matmul(a, b) * 2 + 1
local sess <close> = tf.Session()
print("matmul(a, b) * 2 + 1 =")
print(sess:run(c))

-- Placeholders and reductions: the mean of squares of a fed batch.
local x = tf.placeholder("float32", { -1, 3 }, "x")
local msq = tf.reduce_mean(tf.square(x), 2)
print("mean of squares per row =")
print(sess:run(msq, { [x] = { { 1, 2, 3 }, { 4, 5, 6 } } }))

-- Variables: fit w in y = w * x to data from w = 3 by gradient descent,
-- with the gradient d/dw mean((w x - y)^2) = mean(2 (w x - y) x) written out.
tf.set_random_seed(42)
local xs = tf.random_uniform({ 100 }, { minval = -1, maxval = 1 })
local ys = xs * 3.0
local w = tf.Variable(0.0, "w")
local grad = tf.reduce_mean(2.0 * (w * xs - ys) * xs)
local step = w:assign_sub(0.5 * grad)
sess:run(tf.global_variables_initializer())
for i = 1, 30 do
  local v = sess:run(step)
  if i % 10 == 0 then print(string.format("step %2d: w = %.6f", i, v:item())) end
end

-- Names, scopes and random values.
do
  local _ <close> = tf.name_scope("layer")
  local r = tf.random_normal({ 2, 3 }, { stddev = 0.1, seed = 7 })
  print(r.name, r.shape[1] .. "x" .. r.shape[2])
  print(sess:run(r))
end
