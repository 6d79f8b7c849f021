-- The Lua half of examples/embed/host.c (and tests/c/test_embed.c): linear
-- regression on data the host owns. require returns the training function;
-- the host calls it with its Arrays (borrowed host memory, never copied).
local tf = require("moonflow")

-- train(X {n, d}, Y {n, 1}, steps, learning_rate) -> w {d, 1}, b {1}, final loss
return function(X, Y, steps, learning_rate)
  local n, d = table.unpack(X:shape())
  local g = tf.Graph()
  return g:as_default(function()
    local x = tf.placeholder(tf.float32, { -1, d }, "x")
    local y = tf.placeholder(tf.float32, { -1, 1 }, "y")
    local w = tf.Variable(tf.zeros({ d, 1 }), { name = "w" })
    local b = tf.Variable(tf.zeros({ 1 }), { name = "b" })
    local loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
    local train = tf.train.GradientDescentOptimizer(learning_rate or 0.1):minimize(loss)
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local feeds = { [x] = X, [y] = Y }
    for _ = 1, steps do sess:run(train, feeds) end
    local r = sess:run({ w, b, loss }, feeds)
    assert(n == Y:shape()[1], "X and Y have different row counts")
    return r[1], r[2], r[3]:item()
  end)
end
