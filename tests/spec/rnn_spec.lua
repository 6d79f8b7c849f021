-- RNN building blocks: cells (names, state structure, one step against plain
-- Lua), static_rnn, and dynamic_rnn's fused sequence ops against the same
-- cells composed from primitive ops — outputs, final states and gradients,
-- with and without sequence_length masking.
local tf = require("moonflow")
local G = require("moonflow.graph")

math.randomseed(4242)

local function rand_nested(shape, lo, hi)
  local function build(d)
    local t = {}
    for i = 1, shape[d] do t[i] = d == #shape and lo + (hi - lo) * math.random() or build(d + 1) end
    return t
  end
  return build(1)
end

local function flat(a)
  local out = {}
  for i = 1, a:numel() do out[i] = a:flat(i) end
  return out
end

local function max_rel(a, b)
  local fa, fb = flat(a), flat(b)
  assert(#fa == #fb, "element counts differ")
  local d, s = 0, 0
  for i = 1, #fa do
    d = math.max(d, math.abs(fa[i] - fb[i]))
    s = math.max(s, math.abs(fb[i]))
  end
  return d / math.max(s, 1e-12)
end

local cells = {
  lstm = function(n) return tf.nn.rnn_cell.LSTMCell(n, { forget_bias = 0.7 }) end,
  gru = function(n) return tf.nn.rnn_cell.GRUCell(n) end,
  rnn = function(n) return tf.nn.rnn_cell.BasicRNNCell(n) end,
}

-- Builds dynamic_rnn twice over shared variables: the fused path and the
-- composed one. Returns their outputs, final states and gradients. Large
-- shapes take the fused ops' other float32 path (weights packed once, the
-- batch rows split across threads): at least 64 rows x steps, several
-- 32-column panels of gates, a partial last one.
local function both_paths(kind, dtype, layers, masked, large)
  local g = tf.Graph()
  return g:as_default(function()
    local B, T, I, H = math.random(2, 3), math.random(3, 5), math.random(2, 4), math.random(2, 4)
    if large then B, T, I, H = math.random(5, 9), math.random(13, 20), math.random(3, 9), math.random(17, 40) end
    local x = tf.placeholder(dtype, { B, T, I }, "x")
    local seq = nil
    if masked then
      seq = {}
      for b = 1, B do seq[b] = math.random(0, T) end
      seq[1] = T
    end
    local function make()
      if layers == 1 then return cells[kind](H) end
      local list = {}
      for l = 1, layers do list[l] = cells[kind](H) end
      return tf.nn.rnn_cell.MultiRNNCell(list)
    end
    local init = tf.random_uniform_initializer{ minval = -0.7, maxval = 0.7, seed = 5 }
    local W = rand_nested({ B, T, H }, -1, 1)
    local results = {}
    for i, fused in ipairs({ true, false }) do
      local cell = make()
      local y, state = tf.variable_scope("net", { reuse = i == 2, initializer = init }, function()
        return tf.nn.dynamic_rnn(cell, x, { sequence_length = seq, fused = fused })
      end)
      local flat_state = {}
      local function collect(s)
        if G.is_tensor(s) then flat_state[#flat_state + 1] = s
        elseif s.c then collect(s.c); collect(s.h)
        else for _, v in ipairs(s) do collect(v) end end
      end
      collect(state)
      local loss = tf.reduce_sum(y * tf.constant(W, { dtype = dtype }))
      for _, s in ipairs(flat_state) do loss = loss + tf.reduce_sum(tf.square(s)) end
      local xs = { x }
      for _, v in ipairs(tf.trainable_variables()) do xs[#xs + 1] = v end
      local grads = tf.gradients(loss, xs)
      results[i] = { y = y, state = flat_state, grads = grads }
    end
    local sess = tf.Session{ graph = g }
    sess:run(tf.global_variables_initializer())
    local feed = { [x] = rand_nested({ B, T, I }, -1, 1) }
    local out = {}
    for i = 1, 2 do
      local r = results[i]
      local fetch = { r.y }
      for _, s in ipairs(r.state) do fetch[#fetch + 1] = s end
      for k = 1, r.grads.n do fetch[#fetch + 1] = r.grads[k] end
      out[i] = sess:run(fetch, feed)
    end
    -- the fused graph really used the fused op
    local fused_type = ({ lstm = "LSTMSequence", gru = "GRUSequence", rnn = "RNNSequence" })[kind]
    local seen = false
    for _, op in ipairs(g:get_operations()) do seen = seen or op.type == fused_type end
    return out[1], out[2], seen, seq
  end)
end

describe("dynamic_rnn: fused sequence ops against composed cells", function()
  for _, kind in ipairs({ "lstm", "gru", "rnn" }) do
    for _, dtype in ipairs({ "float64", "float32" }) do
      for _, case in ipairs({ "small", "masked", "large" }) do
        local masked, large = case ~= "small", case == "large"
        local layers = masked and 2 or 1
        it(string.format("%s %s, %d layer(s)%s%s: same outputs, final states and gradients", kind, dtype,
             layers, masked and ", sequence_length masking" or "", large and ", large" or ""), function()
          local fused, composed, used = both_paths(kind, dtype, layers, masked, large)
          assert.is_true(used)
          -- float32 rounding compounds over the large case's 13-20 steps: its
          -- fused and composed paths differ by ~2e-5 with either GEMM
          -- (MOONFLOW_GEMM=blas too); a wrong row or panel would be O(1).
          local tol = dtype == "float64" and 1e-10 or large and 1e-4 or 1e-5
          assert.are.equal(#composed, #fused)
          for i = 1, #composed do
            local e = max_rel(fused[i], composed[i])
            assert(e < tol, string.format("fetch %d: relative difference %.3g", i, e))
          end
        end)
      end
    end
  end
end)

describe("dynamic_rnn masking", function()
  it("zeroes outputs past each sequence's end and stops its state", function()
    local x = tf.placeholder("float64", { 2, 4, 1 })
    local cell = tf.nn.rnn_cell.BasicRNNCell(2)
    local y, s = tf.nn.dynamic_rnn(cell, x, { sequence_length = { 4, 2 } })
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local r = sess:run({ y, s }, { [x] = { { { 1 }, { 2 }, { 3 }, { 4 } }, { { 1 }, { 2 }, { 3 }, { 4 } } } })
    local yv, sv = r[1]:totable(), r[2]:totable()
    assert.are.same({ 0, 0 }, yv[2][3])
    assert.are.same({ 0, 0 }, yv[2][4])
    assert.are.same(yv[2][2], sv[2])          -- the state at its own end
    assert.are.same(yv[1][4], sv[1])
  end)
end)

describe("rnn cells", function()
  it("name their variables as TensorFlow does", function()
    local g = tf.Graph()
    g:as_default(function()
      local x = tf.placeholder("float32", { 3, 5, 4 })
      local cell = tf.nn.rnn_cell.MultiRNNCell({ tf.nn.rnn_cell.LSTMCell(6), tf.nn.rnn_cell.GRUCell(6) })
      tf.nn.dynamic_rnn(cell, x)
      local names = {}
      for _, v in ipairs(tf.trainable_variables()) do names[#names + 1] = v.name .. " " .. table.concat(v.shape, "x") end
      assert.are.same({
        "rnn/multi_rnn_cell/cell_0/lstm_cell/kernel:0 10x24", "rnn/multi_rnn_cell/cell_0/lstm_cell/bias:0 24",
        "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel:0 12x12", "rnn/multi_rnn_cell/cell_1/gru_cell/gates/bias:0 12",
        "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel:0 12x6", "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/bias:0 6",
      }, names)
    end)
  end)

  it("compute one LSTM step as TensorFlow's gate order i, j, f, o defines", function()
    local g = tf.Graph()
    g:as_default(function()
      local cell = tf.nn.rnn_cell.LSTMCell(1, { forget_bias = 1.0 })
      local x = tf.constant({ { 0.5 } }, { dtype = "float64" })
      local state = { c = tf.constant({ { 0.2 } }, { dtype = "float64" }), h = tf.constant({ { -0.3 } }, { dtype = "float64" }) }
      local h, new = cell(x, state)
      local sess = tf.Session{ graph = g }
      sess:run(tf.global_variables_initializer())
      local k = sess:run(cell.vars.kernel):totable()  -- [2, 4]: rows x, h; columns i, j, f, o
      local function sig(v) return 1 / (1 + math.exp(-v)) end
      local z = {}
      for col = 1, 4 do z[col] = 0.5 * k[1][col] + -0.3 * k[2][col] end -- bias starts at zero
      local c = sig(z[3] + 1.0) * 0.2 + sig(z[1]) * math.tanh(z[2])
      local hv = sig(z[4]) * math.tanh(c)
      local r = sess:run({ h, new.c })
      assert.is_true(math.abs(r[1]:item() - hv) < 1e-12)
      assert.is_true(math.abs(r[2]:item() - c) < 1e-12)
    end)
  end)

  it("have zero states of the right structure", function()
    local lstm = tf.nn.rnn_cell.LSTMCell(3)
    local z = lstm:zero_state(2, "float32")
    assert.are.same({ 2, 3 }, z.c.shape)
    assert.are.same({ 2, 3 }, z.h.shape)
    local multi = tf.nn.rnn_cell.MultiRNNCell({ tf.nn.rnn_cell.GRUCell(4), tf.nn.rnn_cell.LSTMCell(5) })
    local zs = multi:zero_state(7)
    assert.are.same({ 7, 4 }, zs[1].shape)
    assert.are.same({ 7, 5 }, zs[2].h.shape)
    assert.are.same({ 4, { c = 5, h = 5 } }, multi.state_size)
  end)

  it("static_rnn shares one set of weights across steps and matches dynamic_rnn", function()
    local g = tf.Graph()
    g:as_default(function()
      local x = tf.placeholder("float64", { 2, 3, 2 })
      local cell = tf.nn.rnn_cell.GRUCell(3)
      local ys, s1 = tf.nn.static_rnn(cell, tf.unstack(x, { axis = 2 }))
      local nvars = #tf.trainable_variables()
      local y2, s2 = tf.nn.dynamic_rnn(cell, x) -- the cell keeps its variables
      assert.are.equal(4, nvars)
      assert.are.equal(4, #tf.trainable_variables())
      local sess = tf.Session{ graph = g }
      sess:run(tf.global_variables_initializer())
      local r = sess:run({ s1, s2, ys[3], y2 }, { [x] = rand_nested({ 2, 3, 2 }, -1, 1) })
      assert.is_true(max_rel(r[1], r[2]) < 1e-12)
      local last = r[4]:totable()
      local y3 = r[3]:totable()
      for b = 1, 2 do for j = 1, 3 do assert.is_true(math.abs(last[b][3][j] - y3[b][j]) < 1e-12) end end
    end)
  end)

  it("carry state across runs by feeding it back (truncated BPTT)", function()
    local g = tf.Graph()
    g:as_default(function()
      local x = tf.placeholder("float64", { 1, 4, 1 })
      local cell = tf.nn.rnn_cell.LSTMCell(2)
      local c0 = tf.placeholder("float64", { 1, 2 })
      local h0 = tf.placeholder("float64", { 1, 2 })
      local y, s = tf.nn.dynamic_rnn(cell, x, { initial_state = { c = c0, h = h0 } })
      local sess = tf.Session{ graph = g }
      sess:run(tf.global_variables_initializer())
      local zero = { { 0, 0 } }
      local seq = { { { 0.1 }, { 0.2 }, { 0.3 }, { 0.4 } } }
      local whole = sess:run(s, { [x] = seq, [c0] = zero, [h0] = zero })
      -- the same 4 steps as two runs of 2 steps, the state fed back in between
      local x2 = tf.placeholder("float64", { 1, 2, 1 })
      local _, s2 = tf.nn.dynamic_rnn(cell, x2, { initial_state = { c = c0, h = h0 } })
      local a = sess:run(s2, { [x2] = { { { 0.1 }, { 0.2 } } }, [c0] = zero, [h0] = zero })
      local b = sess:run(s2, { [x2] = { { { 0.3 }, { 0.4 } } }, [c0] = a.c, [h0] = a.h })
      assert.is_true(max_rel(b.c, whole.c) < 1e-12)
      assert.is_true(max_rel(b.h, whole.h) < 1e-12)
    end)
  end)
end)

describe("DropoutWrapper", function()
  it("is the wrapped cell when both keep probabilities are 1", function()
    local g = tf.Graph()
    g:as_default(function()
      local x = tf.placeholder("float64", { 2, 3, 2 })
      local cell = tf.nn.rnn_cell.GRUCell(3)
      local y1 = tf.nn.dynamic_rnn(cell, x)
      local y2 = tf.nn.dynamic_rnn(tf.nn.rnn_cell.DropoutWrapper(cell, {}), x)
      local sess = tf.Session{ graph = g }
      sess:run(tf.global_variables_initializer())
      local r = sess:run({ y1, y2 }, { [x] = rand_nested({ 2, 3, 2 }, -1, 1) })
      assert.are.same(r[1]:totable(), r[2]:totable())
    end)
  end)

  it("drops outputs with a keep probability that a tensor can set per run", function()
    local g = tf.Graph()
    g:as_default(function()
      local x = tf.placeholder("float32", { 20, 10, 4 })
      local keep = tf.placeholder_with_default(tf.constant(1.0), {})
      local cell = tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.LSTMCell(8), { output_keep_prob = keep, seed = 3 })
      local y = tf.nn.dynamic_rnn(cell, x)
      local sess = tf.Session{ graph = g }
      sess:run(tf.global_variables_initializer())
      local feed = { [x] = rand_nested({ 20, 10, 4 }, -1, 1) }
      local full = sess:run(y, feed)
      feed[keep] = 0.5
      local half = sess:run(y, feed)
      local zeros, kept_match = 0, true
      for i = 1, full:numel() do
        local a, b = full:flat(i), half:flat(i)
        if b == 0 then zeros = zeros + 1
        elseif math.abs(b - 2 * a) > 1e-5 * math.max(1, math.abs(a)) then kept_match = false end
      end
      local frac = zeros / full:numel()
      assert.is_true(frac > 0.4 and frac < 0.6, "dropped fraction " .. frac)
      assert.is_true(kept_match) -- kept outputs are scaled by 1/keep_prob
    end)
  end)
end)

describe("dynamic_rnn over an embedding lookup", function()
  for _, case in ipairs({ { "lstm", false }, { "lstm", true }, { "gru", false }, { "gru", true } }) do
    local kind, masked = case[1], case[2]
    it(kind .. ": projects the (small) table instead of every token, with the composed cells' values and gradients"
       .. (masked and " (masked)" or ""), function()
      local g = tf.Graph()
      g:as_default(function()
        local B, T, V, E, H = 3, 5, 7, 4, 3
        local ids = tf.placeholder("int32", { B, T })
        local emb = tf.get_variable("emb", { V, E }, { dtype = "float64",
          initializer = tf.random_uniform_initializer{ minval = -1, maxval = 1, seed = 2 } })
        local x = tf.nn.embedding_lookup(emb, ids)
        local seq = masked and { 5, 2, 0 } or nil
        local init = tf.random_uniform_initializer{ minval = -0.7, maxval = 0.7, seed = 5 }
        local W = rand_nested({ B, T, H }, -1, 1)
        local results = {}
        for i, fused in ipairs({ true, false }) do
          local cell = kind == "lstm" and tf.nn.rnn_cell.LSTMCell(H) or tf.nn.rnn_cell.GRUCell(H)
          local y, s = tf.variable_scope("net", { reuse = i == 2, initializer = init }, function()
            return tf.nn.dynamic_rnn(cell, x, { sequence_length = seq, fused = fused })
          end)
          local last = kind == "lstm" and s.c or s
          local loss = tf.reduce_sum(y * tf.constant(W, { dtype = "float64" })) + tf.reduce_sum(tf.square(last))
          local grads = tf.gradients(loss, tf.trainable_variables())
          results[i] = { y, last, table.unpack(grads, 1, grads.n) }
        end
        local used = false
        local want = kind == "lstm" and "LSTMSequenceProjected" or "GRUSequenceProjected"
        for _, op in ipairs(g:get_operations()) do used = used or op.type == want end
        assert.is_true(used)
        local sess = tf.Session{ graph = g }
        sess:run(tf.global_variables_initializer())
        local feed = { [ids] = { { 1, 2, 3, 4, 5 }, { 7, 7, 1, 2, 6 }, { 3, 3, 3, 3, 3 } } }
        local a, b = sess:run(results[1], feed), sess:run(results[2], feed)
        assert.are.equal(#b, #a)
        for i = 1, #a do
          local e = max_rel(a[i], b[i])
          assert(e < 1e-10, string.format("fetch %d: relative difference %.3g", i, e))
        end
      end)
    end)
  end
end)
