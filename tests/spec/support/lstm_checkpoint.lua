-- A small char-LSTM (embedding, fused 2-layer LSTM, softmax cross-entropy,
-- Adam) for checkpoints that cross devices, run as a separate process so
-- that "the CPU-only machine" is a process without the test device:
--   lua5.4 tests/spec/support/lstm_checkpoint.lua DEVICE MODE PATH
-- DEVICE: a device name for every op ("" for the default placement).
-- MODE: "train": 3 Adam steps, save to PATH, print the loss after them;
--       "loss": restore PATH, print the loss;
--       "resume": restore PATH, 2 more steps, save to PATH, print the loss.
-- Prints "loss <%.17g>" on success. Run from the repository root.
local tf = require("moonflow")

local device, mode, path = arg[1], arg[2], arg[3]
local V, E, H, B, T = 11, 6, 8, 3, 5

-- Fixed data, the same in every process.
local x, y = {}, {}
for b = 1, B do
  x[b], y[b] = {}, {}
  for t = 1, T do
    x[b][t] = (b * 7 + t * 3) % V + 1
    y[b][t] = (b * 5 + t * 2) % V + 1
  end
end

local function build()
  local emb = tf.get_variable("emb", { V, E }, { initializer = tf.random_uniform_initializer { minval = -0.5, maxval = 0.5, seed = 1 } })
  local inputs = tf.nn.embedding_lookup(emb, tf.constant(x, "int32"))
  local cell = tf.nn.rnn_cell.MultiRNNCell({ tf.nn.rnn_cell.LSTMCell(H), tf.nn.rnn_cell.LSTMCell(H) })
  local out = tf.nn.dynamic_rnn(cell, inputs, { dtype = "float32" })
  local w = tf.get_variable("w", { H, V }, { initializer = tf.random_uniform_initializer { minval = -0.5, maxval = 0.5, seed = 2 } })
  local logits = tf.matmul(tf.reshape(out, { B * T, H }), w)
  local loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits {
    labels = tf.reshape(tf.constant(y, "int32"), { B * T }), logits = logits })
  return loss, tf.train.AdamOptimizer(0.05):minimize(loss)
end

local loss, step
if device ~= "" then
  loss, step = tf.device(device, build)
else
  loss, step = build()
end
local saver = tf.train.Saver()
local sess = tf.Session()
if mode == "train" then
  sess:run(tf.global_variables_initializer())
  for _ = 1, 3 do sess:run(step) end
  saver:save(sess, path)
elseif mode == "loss" then
  saver:restore(sess, path)
elseif mode == "resume" then
  saver:restore(sess, path)
  for _ = 1, 2 do sess:run(step) end
  saver:save(sess, path)
else
  error("mode must be train, loss or resume")
end
print(string.format("loss %.17g", sess:run(loss):totable()))
