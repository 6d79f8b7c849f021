-- The graphs scripts/oracle/check_graphdef.py checks with TensorFlow: the char-RNN
-- training graph, a cond with gradients and string constants, in DIR (arg 1).
package.path = "scripts/lib/?.lua;" .. package.path
local tf = require("moonflow")
local char_model = require("char_model")
local dir = arg[1]
tf.Graph():as_default(function()
  local m = char_model.build(tf, { vocab_size = 11, model = "lstm", rnn_size = 8, num_layers = 2, wordvec_size = 5,
                                   seq_length = 6, batch = 2, seed = 5 })
  char_model.train_op(tf, m.loss, { learning_rate = 0.01, grad_clip = 5 })
  local x = tf.placeholder("float32", {}, "cx")
  local c = tf.cond(tf.greater(x, 0), function() return x * x end, function() return -x end)
  tf.gradients(c, { x })
  tf.constant({ "hello", "a\0\255" }, { name = "s" })
  local g = tf.get_default_graph()
  tf.train.write_graph(g, dir, "graph.pb", false)
  tf.train.write_graph(g, dir, "graph.pbtxt", true)
  tf.train.export_meta_graph(dir .. "/model.meta")
end)
