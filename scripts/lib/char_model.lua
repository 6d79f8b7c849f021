-- The character-level RNN graph shared by scripts/char_rnn.lua,
-- scripts/sample.lua and scripts/bench/char_rnn.lua, so that all three use
-- the same variable names (and checkpoints load in any of them):
--   char_rnn/embedding                                   [V, wordvec]
--   char_rnn/rnn/multi_rnn_cell/cell_<k>/<cell>/...       the RNN layers
--   char_rnn/softmax/kernel, char_rnn/softmax/bias        [rnn_size, V], [V]
-- Inputs and the initial state are placeholders with an unknown batch size
-- (so one graph serves training batches and a smaller validation batch); the
-- final state is fetched and fed back as the next run's initial state
-- (truncated backpropagation through time).
local M = {}

local cell_ctor = { lstm = "LSTMCell", gru = "GRUCell", rnn = "BasicRNNCell" }
M.cell_types = { "lstm", "gru", "rnn" }

-- M.build(tf, o): o = {vocab_size, model, rnn_size, num_layers, wordvec_size,
-- seq_length (or -1), batch (or -1), dropout (0 = none), reuse, seed, dtype
-- (of the weights, state and logits: "float32", the default, or "float64")}. Returns
-- a table: x, y (int32 placeholders {batch, seq}, 1-based ids), init_state
-- (placeholders, the cell's state structure), final_state, logits
-- ({batch*seq, V}), loss (mean cross-entropy, nats per character), probs
-- (softmax of logits / temperature when o.temperature is a tensor).
function M.build(tf, o)
  assert(cell_ctor[o.model], "unknown model " .. tostring(o.model))
  local B, T, H = o.batch or -1, o.seq_length or -1, o.rnn_size
  local dtype = o.dtype or "float32"
  local m = {}
  tf.variable_scope("char_rnn", { reuse = o.reuse }, function()
    local suffix = o.reuse and "_eval" or ""
    m.x = tf.placeholder("int32", { B, T }, "x" .. suffix)
    m.y = tf.placeholder("int32", { B, T }, "y" .. suffix)
    local cells = {}
    for k = 1, o.num_layers do
      local c = tf.nn.rnn_cell[cell_ctor[o.model]](H)
      if (o.dropout or 0) > 0 then
        -- dropout between layers and before the softmax, as char-rnn does
        c = tf.nn.rnn_cell.DropoutWrapper(c, { output_keep_prob = 1 - o.dropout, seed = o.seed and o.seed + k })
      end
      cells[k] = c
    end
    local cell = tf.nn.rnn_cell.MultiRNNCell(cells)
    m.init_state = {}
    for k = 1, o.num_layers do
      local name = string.format("state%s_%d", suffix, k - 1)
      if o.model == "lstm" then
        m.init_state[k] = { c = tf.placeholder(dtype, { B, H }, name .. "_c"),
                            h = tf.placeholder(dtype, { B, H }, name .. "_h") }
      else
        m.init_state[k] = tf.placeholder(dtype, { B, H }, name)
      end
    end
    -- N(0, 1) embeddings, as torch-rnn's and PyTorch's lookup tables start
    -- (a Glorot-scaled table, ~0.12 standard deviation, learns markedly slower).
    local embedding = tf.get_variable("embedding", { o.vocab_size, o.wordvec_size },
                                      { dtype = dtype,
                                        initializer = tf.random_normal_initializer{ mean = 0.0, stddev = 1.0 } })
    local inputs = tf.nn.embedding_lookup(embedding, m.x)                  -- {B, T, wordvec}
    local outputs, final = tf.nn.dynamic_rnn(cell, inputs, { initial_state = m.init_state })
    m.final_state = final
    local flat = tf.reshape(outputs, { -1, H })                               -- {B*T, H}
    m.logits = tf.layers.dense(flat, o.vocab_size, { name = "softmax" })    -- {B*T, V}
    local labels = tf.reshape(m.y, { -1 })
    m.loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits{ labels = labels, logits = m.logits })
    if o.temperature then m.probs = tf.nn.softmax(m.logits / o.temperature) end
  end)
  return m
end

-- M.sampler(tf, o): a one-character step for generation that keeps the
-- current character and the RNN state in the session (variables), so each
-- step is one sess:run with no feeds: embedding -> cells -> logits /
-- temperature -> tf.multinomial (or argmax), and the new id and state are
-- assigned back. o = {vocab_size, model, rnn_size, num_layers, wordvec_size,
-- temperature, argmax, seed, reuse (true when the training graph is in the
-- same graph), vocab (optional: the characters, a string per id), dtype (as
-- M.build's)}. Returns
-- {next (fetch: the new id, int32 {1, 1}), id_in (feed: this step's input
-- id, by default the id sampled last), temperature (feed: a scalar of
-- o.dtype, float32 by default, by default o.temperature), reset (op zeroing the state),
-- model_vars (the variables to restore), vocab (with o.vocab: a string
-- tensor of the characters)}.
function M.sampler(tf, o)
  local s = {}
  local H, dtype = o.rnn_size, o.dtype or "float32"
  local state_vars, state_read = {}, {}
  tf.variable_scope("sampler_state", function()
    for k = 1, o.num_layers do
      local function var(name) return tf.Variable(tf.zeros({ 1, H }, dtype), { name = name, trainable = false }) end
      if o.model == "lstm" then
        state_vars[k] = { c = var("c" .. k), h = var("h" .. k) }
        state_read[k] = { c = state_vars[k].c, h = state_vars[k].h }
      else
        state_vars[k] = var("h" .. k)
        state_read[k] = state_vars[k]
      end
    end
    s.id = tf.Variable(tf.ones({ 1, 1 }, "int32"), { name = "id", trainable = false })
  end)
  local before = #tf.trainable_variables()
  tf.variable_scope("char_rnn", { reuse = o.reuse }, function()
    local cells = {}
    for k = 1, o.num_layers do cells[k] = tf.nn.rnn_cell[cell_ctor[o.model]](H) end
    local embedding = tf.get_variable("embedding", { o.vocab_size, o.wordvec_size }, { dtype = dtype })
    s.id_in = tf.placeholder_with_default(s.id, { 1, 1 }, "id_in")
    s.temperature = tf.placeholder_with_default(tf.constant(o.temperature or 1.0, dtype), {}, "temperature")
    local inputs = tf.nn.embedding_lookup(embedding, s.id_in)                -- {1, 1, wordvec}
    local outputs, final = tf.nn.dynamic_rnn(tf.nn.rnn_cell.MultiRNNCell(cells), inputs,
                                             { initial_state = state_read })
    local logits = tf.layers.dense(tf.reshape(outputs, { 1, H }), o.vocab_size, { name = "softmax" })
    local next_id
    if o.argmax then
      next_id = tf.cast(tf.argmax(logits, 2), "int32")
    else
      next_id = tf.cast(tf.multinomial(logits / s.temperature, 1, { seed = o.seed }), "int32")
    end
    next_id = tf.reshape(next_id, { 1, 1 })
    -- the new state and id go back into the variables (after this step's reads)
    local updates = { s.id:assign(next_id).op }
    for k = 1, o.num_layers do
      if o.model == "lstm" then
        updates[#updates + 1] = state_vars[k].c:assign(final[k].c).op
        updates[#updates + 1] = state_vars[k].h:assign(final[k].h).op
      else
        updates[#updates + 1] = state_vars[k]:assign(final[k]).op
      end
    end
    s.next = tf.control_dependencies(updates, function() return tf.identity(next_id) end)
  end)
  s.model_vars = {}
  local all = tf.trainable_variables()
  for i = before + 1, #all do s.model_vars[#s.model_vars + 1] = all[i] end
  if o.vocab then s.vocab = tf.constant(o.vocab, tf.string, nil, "vocab") end
  local zero = {}
  for _, v in ipairs(tf.global_variables()) do
    if v.name:match("^sampler_state/[ch]%d") then zero[#zero + 1] = v:assign(tf.zeros({ 1, H }, dtype)).op end
  end
  s.reset = tf.group(zero)
  return s
end

-- M.train_op(tf, loss, o): Adam on the clipped gradients; o = {learning_rate,
-- lr_decay_every (steps, 0 = never), lr_decay_factor, grad_clip}. Returns
-- train_op, global_step, learning_rate (tensor), global norm.
function M.train_op(tf, loss, o)
  local step = tf.train.get_or_create_global_step()
  local lr = o.learning_rate
  if (o.lr_decay_every or 0) > 0 then
    lr = tf.train.exponential_decay(lr, step, o.lr_decay_every, o.lr_decay_factor, { staircase = true })
  else
    lr = tf.constant(lr + 0.0)
  end
  -- compute_gradients gives the embedding a sparse gradient (the rows the
  -- batch touched), not a dense vocabulary-sized one.
  local opt = tf.train.AdamOptimizer(lr)
  if o.wrap_optimizer then opt = o.wrap_optimizer(opt) end -- mpi.DistributedOptimizer
  local gv = opt:compute_gradients(loss, tf.trainable_variables())
  local grads, vars = { n = #gv }, {}
  for i, p in ipairs(gv) do grads[i], vars[i] = p[1], p[2] end
  local norm
  if (o.grad_clip or 0) > 0 then grads, norm = tf.clip_by_global_norm(grads, o.grad_clip + 0.0)
  else norm = tf.global_norm(grads) end
  for i, v in ipairs(vars) do gv[i] = { grads[i], v } end
  local op = opt:apply_gradients(gv, { global_step = step })
  return op, step, lr, norm, gv
end

-- A zero state (Arrays of o.dtype, float32 by default) for `batch` rows, in
-- the cell's state structure.
function M.zero_state(tf, o, batch)
  local row = {}
  for i = 1, o.rnn_size do row[i] = 0.0 end
  local rows = {}
  for b = 1, batch do rows[b] = row end
  local function z() return tf.array(rows, o.dtype or "float32") end
  local s = {}
  for k = 1, o.num_layers do
    if o.model == "lstm" then s[k] = { c = z(), h = z() } else s[k] = z() end
  end
  return s
end

-- Adds {placeholder = value} pairs for a state structure to `feeds`.
function M.feed_state(feeds, placeholders, values)
  for k, p in pairs(placeholders) do
    if type(p) == "table" and p.op == nil then M.feed_state(feeds, p, values[k])
    else feeds[p] = values[k] end
  end
  return feeds
end

return M
