-- TensorFlow 1.x's "MNIST for ML beginners" tutorial
-- (tensorflow/examples/tutorials/mnist/mnist_softmax.py) ported line by line,
-- on the 8x8 digits instead of MNIST (see digits.lua): softmax regression,
-- y = x W + b, trained with plain SGD on sparse softmax cross-entropy.
--   lua5.4 scripts/examples/mnist_softmax.lua [--data FILE] [--steps 1000]
--     [--batch 100] [--lr 0.5] [--seed 0]
-- The last line is "test accuracy A" (A in [0, 1], on the 359 held-out images).
-- Differences from the Python: classes (and so tf.argmax's result) are
-- 1-based, axes are 1-based (tf.argmax(y, 2) is TF's tf.argmax(y, 1)), the
-- images have 64 pixels, not 784; an unknown dimension is -1 (a Lua table
-- cannot hold TF's None).
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/../lib/?.lua;" .. package.path
local argparse = require("argparse")
local tf = require("moonflow")
local input_data = dofile(script_dir .. "/digits.lua")

local integer = require("cli").integer
local parser = argparse("mnist_softmax.lua", "Softmax regression on the 8x8 digits (TF's mnist_softmax.py).")
parser:option("--data", "The digits CSV (gzipped or not)."):default(input_data.default_path)
parser:option("--steps", "Training steps."):default("1000"):convert(integer(1))
parser:option("--batch", "Images per step."):default("100"):convert(integer(1))
parser:option("--lr", "SGD learning rate."):default("0.5"):convert(tonumber)
parser:option("--seed", "Random seed (graph and batch order)."):default("0"):convert(integer(0))
local FLAGS = parser:parse()

local function main()
  math.randomseed(FLAGS.seed)
  tf.set_random_seed(FLAGS.seed)
  -- Import data
  local mnist = input_data.read_data_sets(FLAGS.data)

  -- Create the model
  local x = tf.placeholder(tf.float32, { -1, input_data.pixels })
  local W = tf.Variable(tf.zeros({ input_data.pixels, 10 }))
  local b = tf.Variable(tf.zeros({ 10 }))
  local y = tf.matmul(x, W) + b

  -- Define loss and optimizer
  local y_ = tf.placeholder(tf.int64, { -1 })

  -- The raw formulation of cross-entropy,
  --   tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(tf.nn.softmax(y)), 2))
  -- can be numerically unstable.
  --
  -- So here we use tf.losses.sparse_softmax_cross_entropy on the raw
  -- logit outputs of 'y', and then average across the batch.
  local cross_entropy = tf.losses.sparse_softmax_cross_entropy{ labels = y_, logits = y }
  local train_step = tf.train.GradientDescentOptimizer(FLAGS.lr):minimize(cross_entropy)

  local sess = tf.InteractiveSession()
  tf.global_variables_initializer():run()
  -- Train
  for _ = 1, FLAGS.steps do
    local batch_xs, batch_ys = mnist.train:next_batch(FLAGS.batch)
    sess:run(train_step, { [x] = batch_xs, [y_] = batch_ys })
  end

  -- Test trained model
  local correct_prediction = tf.equal(tf.argmax(y, 2), y_)
  local accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
  print(string.format("test accuracy %.4f",
    sess:run(accuracy, { [x] = mnist.test.images, [y_] = mnist.test.labels }):item()))
  sess:close()
end

main()
