-- TensorFlow 1.x's "Deep MNIST for experts" tutorial
-- (tensorflow/examples/tutorials/mnist/mnist_deep.py) ported line by line,
-- on the 8x8 digits instead of MNIST (see digits.lua): two 5x5 convolutions
-- (32 and 64 filters, SAME) each followed by 2x2 max pooling, a fully
-- connected layer of 1024 units with dropout, and a softmax layer; Adam.
--   lua5.4 scripts/examples/mnist_deep.lua [--data FILE] [--steps 3000]
--     [--batch 50] [--lr 1e-3] [--seed 0] [--log_every 100]
-- The last line is "test accuracy A" (A in [0, 1], on the 359 held-out images).
-- Differences from the Python: 8x8 inputs, so the pooled map is 2x2x64
-- (not 7x7x64); fewer steps (3000, not 20000) at a larger learning rate
-- (1e-3, not 1e-4), since the data set is 1438 images; classes and axes are
-- 1-based; an unknown dimension is -1 (a Lua table cannot hold None).
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/../lib/?.lua;" .. package.path
local argparse = require("argparse")
local tf = require("moonflow")
local input_data = dofile(script_dir .. "/digits.lua")

local integer = require("cli").integer
local parser = argparse("mnist_deep.lua", "A convolutional network on the 8x8 digits (TF's mnist_deep.py).")
parser:option("--data", "The digits CSV (gzipped or not)."):default(input_data.default_path)
parser:option("--steps", "Training steps."):default("3000"):convert(integer(1))
parser:option("--batch", "Images per step."):default("50"):convert(integer(1))
parser:option("--lr", "Adam learning rate."):default("1e-3"):convert(tonumber)
parser:option("--seed", "Random seed (initial weights, dropout and batch order)."):default("0"):convert(integer(0))
parser:option("--log_every", "Print the training accuracy every N steps (0 = never)."):default("100"):convert(integer(0))
local FLAGS = parser:parse()

local SIDE = 8 -- image height and width

-- conv2d returns a 2d convolution layer with full stride.
local function conv2d(x, W)
  return tf.nn.conv2d(x, W, { 1, 1, 1, 1 }, "SAME")
end

-- max_pool_2x2 downsamples a feature map by 2X.
local function max_pool_2x2(x)
  return tf.nn.max_pool(x, { 1, 2, 2, 1 }, { 1, 2, 2, 1 }, "SAME")
end

-- weight_variable generates a weight variable of a given shape.
local function weight_variable(shape)
  local initial = tf.truncated_normal(shape, { stddev = 0.1 })
  return tf.Variable(initial)
end

-- bias_variable generates a bias variable of a given shape.
local function bias_variable(shape)
  local initial = tf.constant(0.1, { shape = shape })
  return tf.Variable(initial)
end

-- deepnn builds the graph for a deep net for classifying digits.
-- x: an input tensor with the dimensions (N_examples, 64).
-- Returns (y, keep_prob): y is a tensor of shape (N_examples, 10), with
-- values equal to the logits of classifying the digit into one of 10
-- classes; keep_prob is a scalar placeholder for the probability of dropout.
local function deepnn(x)
  -- Reshape to use within a convolutional neural net.
  -- Last dimension is for "features" - there is only one here, since images
  -- are grayscale -- it would be 3 for an RGB image, 4 for RGBA, etc.
  local x_image = tf.name_scope("reshape", function()
    return tf.reshape(x, { -1, SIDE, SIDE, 1 })
  end)

  -- First convolutional layer - maps one grayscale image to 32 feature maps.
  local h_conv1 = tf.name_scope("conv1", function()
    local W_conv1 = weight_variable({ 5, 5, 1, 32 })
    local b_conv1 = bias_variable({ 32 })
    return tf.nn.relu(conv2d(x_image, W_conv1) + b_conv1)
  end)

  -- Pooling layer - downsamples by 2X.
  local h_pool1 = tf.name_scope("pool1", function() return max_pool_2x2(h_conv1) end)

  -- Second convolutional layer -- maps 32 feature maps to 64.
  local h_conv2 = tf.name_scope("conv2", function()
    local W_conv2 = weight_variable({ 5, 5, 32, 64 })
    local b_conv2 = bias_variable({ 64 })
    return tf.nn.relu(conv2d(h_pool1, W_conv2) + b_conv2)
  end)

  -- Second pooling layer.
  local h_pool2 = tf.name_scope("pool2", function() return max_pool_2x2(h_conv2) end)

  -- Fully connected layer 1 -- after 2 round of downsampling, our 8x8 image
  -- is down to 2x2x64 feature maps -- maps this to 1024 features.
  local flat = (SIDE // 4) * (SIDE // 4) * 64
  local h_fc1 = tf.name_scope("fc1", function()
    local W_fc1 = weight_variable({ flat, 1024 })
    local b_fc1 = bias_variable({ 1024 })
    local h_pool2_flat = tf.reshape(h_pool2, { -1, flat })
    return tf.nn.relu(tf.matmul(h_pool2_flat, W_fc1) + b_fc1)
  end)

  -- Dropout - controls the complexity of the model, prevents co-adaptation of
  -- features.
  local keep_prob, h_fc1_drop = tf.name_scope("dropout", function()
    local kp = tf.placeholder(tf.float32)
    return kp, tf.nn.dropout(h_fc1, kp)
  end)

  -- Map the 1024 features to 10 classes, one for each digit
  local y_conv = tf.name_scope("fc2", function()
    local W_fc2 = weight_variable({ 1024, 10 })
    local b_fc2 = bias_variable({ 10 })
    return tf.matmul(h_fc1_drop, W_fc2) + b_fc2
  end)
  return y_conv, keep_prob
end

local function main()
  math.randomseed(FLAGS.seed)
  tf.set_random_seed(FLAGS.seed)
  -- Import data
  local mnist = input_data.read_data_sets(FLAGS.data)

  -- Create the model
  local x = tf.placeholder(tf.float32, { -1, input_data.pixels })

  -- Define loss and optimizer
  local y_ = tf.placeholder(tf.int64, { -1 })

  -- Build the graph for the deep net
  local y_conv, keep_prob = deepnn(x)

  local cross_entropy = tf.name_scope("loss", function()
    return tf.losses.sparse_softmax_cross_entropy{ labels = y_, logits = y_conv }
  end)
  cross_entropy = tf.reduce_mean(cross_entropy)

  local train_step = tf.name_scope("adam_optimizer", function()
    return tf.train.AdamOptimizer(FLAGS.lr):minimize(cross_entropy)
  end)

  local correct_prediction = tf.name_scope("accuracy", function()
    local c = tf.equal(tf.argmax(y_conv, 2), y_)
    return tf.cast(c, tf.float32)
  end)
  local accuracy = tf.reduce_mean(correct_prediction)

  local sess <close> = tf.Session()
  sess:run(tf.global_variables_initializer())
  for i = 0, FLAGS.steps - 1 do
    local bx, by = mnist.train:next_batch(FLAGS.batch)
    if FLAGS.log_every > 0 and i % FLAGS.log_every == 0 then
      local train_accuracy = accuracy:eval({ [x] = bx, [y_] = by, [keep_prob] = 1.0 }, sess):item()
      print(string.format("step %d, training accuracy %g", i, train_accuracy))
    end
    sess:run(train_step, { [x] = bx, [y_] = by, [keep_prob] = 0.5 })
  end

  print(string.format("test accuracy %.4f", accuracy:eval({ [x] = mnist.test.images, [y_] = mnist.test.labels,
                                                             [keep_prob] = 1.0 }, sess):item()))
end

main()
