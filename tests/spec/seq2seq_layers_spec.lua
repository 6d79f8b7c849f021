-- tf.nn.bidirectional_dynamic_rnn, the RNN cell wrappers and
-- tf.contrib.seq2seq (attention, helpers, decoders, dynamic_decode,
-- sequence_loss): values against plain float64 Lua references or against
-- the same computation composed by hand, gradients by central differences.
local tf = require("moonflow")
local s2s = tf.contrib.seq2seq

local function tanh(x) -- (math.tanh is gone from Lua 5.4 unless built with compatibility)
  if x > 20 then return 1 elseif x < -20 then return -1 end
  local e = math.exp(2 * x)
  return (e - 1) / (e + 1)
end

local function randn(shape)
  local function make(d)
    if d > #shape then
      local u1, u2 = math.random(), math.random()
      return math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
    end
    local t = {}
    for i = 1, shape[d] do t[i] = make(d + 1) end
    return t
  end
  return make(1)
end

local function flat(x)
  if type(x) ~= "table" then x = x:totable() end
  local out = {}
  local function walk(v) if type(v) == "table" then for _, w in ipairs(v) do walk(w) end else out[#out + 1] = v end end
  walk(x)
  return out
end

local function close(expected, got, tol, what)
  local e, g = flat(expected), flat(got)
  assert.are.equal(#e, #g, what)
  for i = 1, #e do
    assert(math.abs(e[i] - g[i]) <= tol * math.max(1, math.abs(e[i])),
           string.format("%s: element %d: expected %.12g, got %.12g", what, i, e[i], g[i]))
  end
end

local function matvec(x, W) -- x [n], W [n][m] -> [m]
  local out = {}
  for j = 1, #W[1] do
    local s = 0
    for i = 1, #x do s = s + x[i] * W[i][j] end
    out[j] = s
  end
  return out
end

local function softmax(s)
  local m = -math.huge
  for _, v in ipairs(s) do m = math.max(m, v) end
  local z, out = 0, {}
  for i, v in ipairs(s) do out[i] = math.exp(v - m); z = z + out[i] end
  for i = 1, #out do out[i] = out[i] / z end
  return out
end

local function concat(a, b)
  local out = {}
  for _, v in ipairs(a) do out[#out + 1] = v end
  for _, v in ipairs(b) do out[#out + 1] = v end
  return out
end

-- Central differences of f (a Lua function of a fed array) against the
-- symbolic gradient of the scalar `loss` with respect to placeholder ph.
local function check_gradient(sess, loss, ph, value, feeds, what)
  local grad = tf.gradients(loss, { ph })[1]
  local function run(v)
    local f = {}
    for k, x in pairs(feeds) do f[k] = x end
    f[ph] = v
    return f
  end
  local g = flat(sess:run(grad, run(tf.array(value, "float64"))))
  local base = flat(value)
  local shape = tf.array(value, "float64"):shape()
  local h = 1e-6
  local n = #base
  local picks = {}
  for i = 1, math.min(n, 12) do picks[i] = math.random(n) end
  for _, i in ipairs(picks) do
    local plus, minus = {}, {}
    for k = 1, n do plus[k], minus[k] = base[k], base[k] end
    plus[i], minus[i] = base[i] + h, base[i] - h
    local lp = sess:run(loss, run(tf.array(plus, "float64"):reshape(shape))):item()
    local lm = sess:run(loss, run(tf.array(minus, "float64"):reshape(shape))):item()
    local num = (lp - lm) / (2 * h)
    assert(math.abs(num - g[i]) <= 1e-5 * math.max(1, math.abs(num)),
           string.format("%s: gradient element %d: central difference %.10g, symbolic %.10g", what, i, num, g[i]))
  end
end

describe("bidirectional_dynamic_rnn and the cell wrappers", function()
  before_each(function() tf.reset_default_graph(); math.randomseed(11) end)

  it("matches a float64 reference (backward reversed within each length) and has central-difference gradients", function()
    local B, T, F, H = 3, 5, 2, 3
    local x = tf.placeholder("float64", { B, T, F })
    local lens = { 5, 3, 1 }
    local fw, bw = tf.nn.rnn_cell.BasicRNNCell(H), tf.nn.rnn_cell.BasicRNNCell(H)
    local outs, states = tf.nn.bidirectional_dynamic_rnn(fw, bw, x, lens, { dtype = "float64" })
    local names = {}
    for _, v in ipairs(tf.global_variables()) do names[#names + 1] = v.name end
    assert.are.same({ "bidirectional_rnn/fw/basic_rnn_cell/kernel:0", "bidirectional_rnn/fw/basic_rnn_cell/bias:0",
                      "bidirectional_rnn/bw/basic_rnn_cell/kernel:0", "bidirectional_rnn/bw/basic_rnn_cell/bias:0" }, names)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local xv = randn({ B, T, F })
    local r = sess:run({ outs[1], outs[2], states[1], states[2] }, { [x] = tf.array(xv, "float64") })
    local vars = sess:run(tf.global_variables())
    local Wf, bf, Wb, bb = vars[1]:totable(), vars[2]:totable(), vars[3]:totable(), vars[4]:totable()
    local function step(W, b, xt, h)
      local z = matvec(concat(xt, h), W)
      for j = 1, H do z[j] = tanh(z[j] + b[j]) end
      return z
    end
    local ofw, obw, sfw, sbw = {}, {}, {}, {}
    for i = 1, B do
      ofw[i], obw[i] = {}, {}
      local h = { 0, 0, 0 }
      for t = 1, T do
        if t <= lens[i] then h = step(Wf, bf, xv[i][t], h); ofw[i][t] = h else ofw[i][t] = { 0, 0, 0 } end
      end
      sfw[i] = h
      h = { 0, 0, 0 }
      for t = lens[i], 1, -1 do h = step(Wb, bb, xv[i][t], h); obw[i][t] = h end
      for t = lens[i] + 1, T do obw[i][t] = { 0, 0, 0 } end
      sbw[i] = h
    end
    close(ofw, r[1], 1e-10, "forward outputs")
    close(obw, r[2], 1e-10, "backward outputs")
    close(sfw, r[3], 1e-10, "forward state")
    close(sbw, r[4], 1e-10, "backward state")
    local wts = tf.constant(randn({ B, T, H }), { dtype = "float64" })
    local loss = tf.reduce_sum(outs[1] * wts) + tf.reduce_sum(outs[2] * outs[2] * wts) + tf.reduce_sum(states[2])
    check_gradient(sess, loss, x, xv, {}, "bidirectional_dynamic_rnn")
  end)

  it("DropoutWrapper, ResidualWrapper and DeviceWrapper compose as TF's", function()
    local B, F, H = 4, 3, 3
    local x = tf.constant(randn({ B, F }), { dtype = "float64" })
    local lstm = tf.nn.rnn_cell.LSTMCell(H)
    local s0 = { c = tf.constant(randn({ B, H }), { dtype = "float64" }), h = tf.constant(randn({ B, H }), { dtype = "float64" }) }
    local out, st = lstm(x, s0)
    local keep1 = tf.contrib.rnn.DropoutWrapper(lstm, 1.0, 1.0, 1.0)
    local out1, st1 = keep1(x, s0)
    local drop = tf.nn.rnn_cell.DropoutWrapper(lstm, { state_keep_prob = 0.5, output_keep_prob = 0.25, seed = 5 })
    local out2, st2 = drop(x, s0)
    local res = tf.nn.rnn_cell.ResidualWrapper(lstm)
    local out3 = res(x, s0)
    local dev = tf.nn.rnn_cell.DeviceWrapper(lstm, "/cpu:0")
    local out4 = dev(x, s0)
    assert.are.equal("/device:CPU:0", out4.op.device)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local r = sess:run({ out, st.c, st.h, out1, st1.c, st1.h, out2, st2.c, st2.h, out3, out4, x })
    close(r[1], r[4], 0, "keep 1: output")
    close(r[2], r[5], 0, "keep 1: c")
    close(r[3], r[6], 0, "keep 1: h")
    close(r[2], r[8], 0, "state dropout leaves an LSTM's c")
    local o, o2, h, h2 = flat(r[1]), flat(r[7]), flat(r[3]), flat(r[9])
    local dropped = 0
    for i = 1, #o do
      assert(o2[i] == 0 or math.abs(o2[i] - 4 * o[i]) < 1e-12, "output dropout: 0 or output / 0.25")
      assert(h2[i] == 0 or math.abs(h2[i] - 2 * h[i]) < 1e-12, "state dropout: 0 or h / 0.5")
      if h2[i] == 0 then dropped = dropped + 1 end
    end
    assert(dropped > 0 and dropped < #h, "some of h dropped")
    local xs = flat(r[12])
    local sum = {}
    for i = 1, #o do sum[i] = o[i] + xs[i] end
    close(sum, r[10], 1e-12, "residual: input + output")
    close(r[1], r[11], 0, "device wrapper: same values")
  end)

  it("dynamic_rnn runs wrapped cells (state dropout off the fused path)", function()
    local x = tf.constant(randn({ 2, 4, 3 }), { dtype = "float64" })
    local cell = tf.nn.rnn_cell.GRUCell(3)
    local y1 = tf.nn.dynamic_rnn(cell, x, { sequence_length = { 4, 2 }, scope = "a" })
    local y2 = tf.nn.dynamic_rnn(tf.nn.rnn_cell.DropoutWrapper(cell, { state_keep_prob = 1.0 }), x,
                                 { sequence_length = { 4, 2 }, scope = "a", fused = false })
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local r = sess:run({ y1, y2 })
    close(r[1], r[2], 1e-12, "fused and looped")
  end)

  it("rejects bad arguments by name", function()
    assert.has_error(function() tf.nn.bidirectional_dynamic_rnn(1, 2, tf.zeros({ 1, 2, 3 })) end,
                     "tf.nn.bidirectional_dynamic_rnn: cell_fw must be an RNN cell, got number")
    assert.has_error(function() tf.nn.rnn_cell.DropoutWrapper(tf.nn.rnn_cell.GRUCell(2), 0) end,
                     "DropoutWrapper: input_keep_prob must be in (0, 1], got 0")
    assert.has_error(function() tf.nn.rnn_cell.ResidualWrapper("x") end,
                     "ResidualWrapper: cell must be an RNN cell, got string")
  end)
end)

describe("tf.contrib.seq2seq", function()
  before_each(function() tf.reset_default_graph(); math.randomseed(23) end)

  -- Plain Lua attention: alignments [B][T] for queries [B][Dq].
  local function ref_alignments(kind, mem, lens, query, Wm, Wq, v, g, b, normalize, scale)
    local out = {}
    for i = 1, #mem do
      local scores = {}
      local pq = Wq and matvec(query[i], Wq) or query[i]
      local vv = v
      if normalize then
        local n2 = 0
        for _, x in ipairs(v) do n2 = n2 + x * x end
        vv = {}
        for u = 1, #v do vv[u] = g * v[u] / math.sqrt(n2) end
      end
      for t = 1, #mem[i] do
        local row = {}
        for d = 1, #mem[i][t] do row[d] = t <= lens[i] and mem[i][t][d] or 0 end
        local key = matvec(row, Wm)
        local s = 0
        if kind == "bahdanau" then
          for u = 1, #key do s = s + vv[u] * tanh(key[u] + pq[u] + (normalize and b[u] or 0)) end
        else
          for u = 1, #key do s = s + pq[u] * key[u] end
          if scale then s = s * g end
        end
        scores[t] = t <= lens[i] and s or -math.huge
      end
      out[i] = softmax(scores)
    end
    return out
  end

  for _, case in ipairs({ { "bahdanau", false }, { "bahdanau", true }, { "luong", false }, { "luong", true } }) do
    local kind, flag = case[1], case[2]
    it(string.format("%s attention (%s) scores against a float64 reference, with memory masking", kind,
                     kind == "bahdanau" and "normalize " .. tostring(flag) or "scale " .. tostring(flag)), function()
      local B, T, D, U = 3, 4, 3, 5
      local memv, qv = randn({ B, T, D }), randn({ B, U })
      local lens = { 4, 2, 1 }
      local mem = tf.constant(memv, { dtype = "float64" })
      local q = tf.constant(qv, { dtype = "float64" })
      local mech
      if kind == "bahdanau" then
        mech = s2s.BahdanauAttention(U, mem, lens, { normalize = flag })
      else
        mech = s2s.LuongAttention(U, mem, lens, { scale = flag })
      end
      local al = mech(q, mech:initial_alignments(B, "float64"))
      local sess = tf.Session()
      sess:run(tf.global_variables_initializer())
      -- variables perturbed away from their initial values (g = 1, b = 0)
      for _, var in ipairs(tf.global_variables()) do
        local val = sess:run(var)
        local shape = val:shape()
        sess:run(var:assign(tf.constant(#shape == 0 and 0.7 or randn(shape), { dtype = "float64" })))
      end
      local vals = {}
      for _, var in ipairs(tf.global_variables()) do vals[var.name:match("([%w_]+):0$")] = sess:run(var):totable() end
      local got = sess:run(al)
      local Wm = sess:run(tf.get_default_graph():get_tensor_by_name("memory_layer/kernel:0")):totable()
      local Wq = kind == "bahdanau" and
                 sess:run(tf.get_default_graph():get_tensor_by_name("bahdanau_attention/query_layer/kernel:0")):totable()
      local function var(n) return vals[n] end
      local want = ref_alignments(kind, memv, lens, qv, Wm, Wq or nil, var("attention_v"), var("attention_g"),
                            var("attention_b"), kind == "bahdanau" and flag, kind == "luong" and flag)
      close(want, got, 1e-10, kind .. " alignments")
      local a = flat(got)
      for i = 1, B do for t = lens[i] + 1, T do assert.are.equal(0, a[(i - 1) * T + t]) end end
    end)
  end

  it("attention scores have central-difference gradients (memory and query; masked)", function()
    local B, T, D, U = 2, 4, 3, 3
    local mem = tf.placeholder("float64", { B, T, D })
    local q = tf.placeholder("float64", { B, U })
    local w = tf.constant(randn({ B, T }), { dtype = "float64" })
    local losses = {}
    tf.variable_scope("b", function()
      local m = s2s.BahdanauAttention(U, mem, { 4, 2 }, { normalize = true })
      losses[1] = tf.reduce_sum(m(q, nil) * w)
    end)
    tf.variable_scope("l", function()
      local m = s2s.LuongAttention(U, mem, { 3, 4 }, { scale = true })
      losses[2] = tf.reduce_sum(m(q, nil) * w)
    end)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local memv, qv = randn({ B, T, D }), randn({ B, U })
    for i, loss in ipairs(losses) do
      check_gradient(sess, loss, mem, memv, { [q] = tf.array(qv, "float64") }, "attention " .. i .. " (memory)")
      check_gradient(sess, loss, q, qv, { [mem] = tf.array(memv, "float64") }, "attention " .. i .. " (query)")
    end
  end)

  -- A BasicRNNCell under an AttentionWrapper, one step by hand in Lua.
  it("AttentionWrapper: one step against a float64 reference, and its state", function()
    local B, T, D, E, H, U, A_ = 2, 3, 4, 2, 3, 4, 5
    local memv, xv = randn({ B, T, D }), randn({ B, E })
    local lens = { 3, 2 }
    local mem = tf.constant(memv, { dtype = "float64" })
    local mech = s2s.BahdanauAttention(U, mem, lens)
    local cell = s2s.AttentionWrapper(tf.nn.rnn_cell.BasicRNNCell(H), mech, { attention_layer_size = A_ })
    local s0 = cell:zero_state(B, "float64")
    local att0v = randn({ B, A_ })
    s0 = s0:clone { attention = tf.constant(att0v, { dtype = "float64" }) }
    local out, s1 = cell(tf.constant(xv, { dtype = "float64" }), s0)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local V = {}
    for _, var in ipairs(tf.global_variables()) do V[var.name] = sess:run(var):totable() end
    local r = sess:run({ out, s1.attention, s1.alignments, s1.time, s1.cell_state })
    local Wc, bc = V["attention_wrapper/basic_rnn_cell/kernel:0"], V["attention_wrapper/basic_rnn_cell/bias:0"]
    local Wm, Wq = V["memory_layer/kernel:0"], V["attention_wrapper/bahdanau_attention/query_layer/kernel:0"]
    local v, Wa = V["attention_wrapper/bahdanau_attention/attention_v:0"], V["attention_wrapper/attention_layer/kernel:0"]
    assert(Wc and Wm and Wq and v and Wa, "TF's variable names")
    local want_out, want_h, want_al = {}, {}, {}
    for i = 1, B do
      local z = matvec(concat(concat(xv[i], att0v[i]), { 0, 0, 0 }), Wc)
      for j = 1, H do z[j] = tanh(z[j] + bc[j]) end
      want_h[i] = z
      local al = ref_alignments("bahdanau", { memv[i] }, { lens[i] }, { z }, Wm, Wq, v)[1]
      want_al[i] = al
      local ctx = {}
      for d = 1, D do
        ctx[d] = 0
        for t = 1, lens[i] do ctx[d] = ctx[d] + al[t] * memv[i][t][d] end
      end
      want_out[i] = matvec(concat(z, ctx), Wa)
    end
    close(want_out, r[1], 1e-10, "output (the attention)")
    close(want_out, r[2], 1e-10, "state.attention")
    close(want_al, r[3], 1e-10, "state.alignments")
    assert.are.equal(1, r[4]:item())
    close(want_h, r[5], 1e-10, "state.cell_state")
  end)

  local function attention_model(B, T, D, V, E, H, dtype)
    local mem = tf.placeholder(dtype, { B, T, D }, "memory")
    local emb = tf.get_variable("embedding", { V, E }, { dtype = dtype })
    local gru = tf.nn.rnn_cell.GRUCell(H)
    -- a wrapper over memory m (the beam search's tiled by K)
    local function make(m, K)
      local mech = s2s.LuongAttention(H, m, s2s.tile_batch(tf.constant({ T, T - 1, 1 }), K or 1), { scale = true })
      return s2s.AttentionWrapper(gru, mech, { attention_layer_size = H, alignment_history = true })
    end
    local cell = make(mem)
    local proj = tf.layers.Dense(V, { use_bias = false, name = "output_projection" })
    return mem, emb, cell, proj, make
  end

  it("dynamic_decode with a TrainingHelper equals the cell unrolled by hand; gradients by central differences", function()
    local B, T, D, V, E, H, L = 3, 4, 3, 6, 2, 4, 5
    local mem, _, cell, proj = attention_model(B, T, D, V, E, H, "float64")
    local lens = { 5, 2, 4 }
    local x = tf.placeholder("float64", { B, L, E }, "dec_inputs")
    local init = cell:zero_state(B, "float64")
    local outs, final, seq_lens = s2s.dynamic_decode(s2s.BasicDecoder(cell, s2s.TrainingHelper(x, lens), init, proj),
                                                     { impute_finished = true })
    -- the same cell and layer, one call per step, rows past their length zeroed / carried
    local state, manual = init, {}
    local xs = tf.unstack(x, { axis = 2 })
    tf.variable_scope("decoder", { reuse = true }, function()
      for t = 1, L do
        local o, s = cell(xs[t], state)
        local l = {}
        for i = 1, B do l[i] = { t <= lens[i] } end
        local live = tf.constant(l)
        manual[t] = tf.where(live, proj(o), tf.zeros({ B, V }, "float64"))
        local nc = tf.where(live, s.cell_state, state.cell_state)
        local na = tf.where(live, s.attention, state.attention)
        state = s:clone { cell_state = nc, attention = na,
                          alignments = tf.where(live, s.alignments, state.alignments),
                          attention_state = tf.where(live, s.attention_state, state.attention_state) }
      end
    end)
    local names = {}
    for _, var in ipairs(tf.global_variables()) do names[#names + 1] = var.name end
    assert.are.same({ "embedding:0", "memory_layer/kernel:0", "decoder/attention_wrapper/gru_cell/gates/kernel:0",
      "decoder/attention_wrapper/gru_cell/gates/bias:0", "decoder/attention_wrapper/gru_cell/candidate/kernel:0",
      "decoder/attention_wrapper/gru_cell/candidate/bias:0", "decoder/attention_wrapper/luong_attention/attention_g:0",
      "decoder/attention_wrapper/attention_layer/kernel:0", "decoder/output_projection/kernel:0" }, names)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local memv, xv = randn({ B, T, D }), randn({ B, L, E })
    local feeds = { [mem] = tf.array(memv, "float64"), [x] = tf.array(xv, "float64") }
    local r = sess:run({ outs.rnn_output, tf.stack(manual, 2), seq_lens, final.cell_state, state.cell_state,
                         outs.sample_id, final.alignment_history:stack(), final.time }, feeds)
    close(r[2], r[1], 1e-10, "rnn_output")
    assert.are.same(lens, r[3]:totable())
    close(r[5], r[4], 1e-10, "final cell state")
    assert.are.same({ B, L }, r[6]:shape())
    assert.are.same({ L, B, T }, r[7]:shape())
    assert.are.equal(L, r[8]:item())
    local w = tf.constant(randn({ B, L, V }), { dtype = "float64" })
    local loss = tf.reduce_sum(outs.rnn_output * w) + tf.reduce_sum(tf.square(final.cell_state))
    check_gradient(sess, loss, mem, memv, { [x] = feeds[x] }, "through AttentionWrapper (memory)")
    check_gradient(sess, loss, x, xv, { [mem] = feeds[mem] }, "through AttentionWrapper (inputs)")
  end)

  local function greedy_and_beam(end_token, K, max_iter, penalty)
    local B, T, D, V, E, H = 3, 4, 3, 6, 2, 4
    local mem, emb, cell, proj, make, g_out, g_lens
    tf.variable_scope("model", function()
      mem, emb, cell, proj, make = attention_model(B, T, D, V, E, H, "float32")
      local init = cell:zero_state(B)
      local start = tf.constant({ 2, 2, 2 })
      local _
      g_out, _, g_lens = s2s.dynamic_decode(s2s.BasicDecoder(cell, s2s.GreedyEmbeddingHelper(emb, start, end_token),
                                                             init, proj), { maximum_iterations = max_iter })
    end)
    local b_out, b_state, b_lens, forced
    tf.variable_scope("model", { reuse = true }, function()
      local tiled = make(s2s.tile_batch(mem, K), K)
      local init = tiled:zero_state(B * K)
      b_out, b_state, b_lens = s2s.dynamic_decode(
        s2s.BeamSearchDecoder(tiled, emb, tf.constant({ 2, 2, 2 }), end_token, init, K, proj,
                              { length_penalty_weight = penalty or 0.0 }),
        { maximum_iterations = max_iter })
      -- the same tiled model teacher forced on given tokens: their log probabilities
      forced = { ids = tf.placeholder("int32", { B * K, -1 }), lens = tf.placeholder("int32", { B * K }) }
      local o = s2s.dynamic_decode(s2s.BasicDecoder(tiled, s2s.TrainingHelper(tf.nn.embedding_lookup(emb, forced.ids),
                                                                             forced.lens), init, proj))
      forced.logp = tf.nn.log_softmax(o.rnn_output)
    end)
    return mem, g_out, g_lens, b_out, b_state, b_lens, forced
  end

  it("greedy decoding stops at end_token; beam search with beam_width 1 equals it", function()
    tf.set_random_seed(3)
    local memv = randn({ 3, 4, 3 })
    -- first without an end (id 99 never comes): 6 steps for every row
    local mem, g_out, g_lens = greedy_and_beam(99, 1, 6)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local vars = sess:run(tf.global_variables())
    local r = sess:run({ g_out.sample_id, g_lens }, { [mem] = memv })
    local free = r[1]:totable()
    assert.are.same({ 6, 6, 6 }, r[2]:totable())
    -- then with end_token the token row 1 emits at step 3: each row stops at its first one
    local stop = free[1][3]
    tf.reset_default_graph()
    tf.set_random_seed(3)
    local b_out, b_lens, g_lens2, b_state
    mem, g_out, g_lens2, b_out, b_state, b_lens = greedy_and_beam(stop, 1, 6)
    sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    for i, var in ipairs(tf.global_variables()) do sess:run(var:assign(vars[i])) end
    r = sess:run({ g_out.sample_id, g_lens2, b_out.predicted_ids, b_lens, b_state.lengths }, { [mem] = memv })
    local want_lens, steps = {}, 0
    for i = 1, 3 do
      want_lens[i] = 6
      for t = 1, 6 do if free[i][t] == stop then want_lens[i] = t; break end end
      steps = math.max(steps, want_lens[i])
    end
    assert.are.same(want_lens, r[2]:totable())
    local got = r[1]:totable()
    assert.are.equal(steps, #got[1], "the loop ends when every row has finished")
    for i = 1, 3 do
      for t = 1, want_lens[i] do assert.are.equal(free[i][t], got[i][t]) end
    end
    local beam = r[3]:totable()
    for i = 1, 3 do
      for t = 1, #beam[i] do
        local want = t <= want_lens[i] and free[i][t] or stop
        assert.are.equal(want, beam[i][t][1], string.format("beam 1 row %d step %d", i, t))
      end
    end
    assert.are.same(want_lens, flat(r[5]))
  end)

  for _, w in ipairs({ 0.0, 0.8 }) do
  it(string.format("beam search (length_penalty_weight %g): K hypotheses per row, sorted by score, each score "
                   .. "its tokens' summed log probability", w), function()
    tf.set_random_seed(4)
    local K, stop = 3, 3
    local mem, _, _, b_out, b_state, _, forced = greedy_and_beam(stop, K, 5, w)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local memv = randn({ 3, 4, 3 })
    local r = sess:run({ b_out.predicted_ids, b_out.beam_search_decoder_output.scores, b_state.log_probs,
                         b_state.lengths }, { [mem] = memv })
    local ids, lp, lens = r[1]:totable(), r[3]:totable(), r[4]:totable()
    local Tn = #ids[1]
    local rows, row_lens = {}, {}
    for i = 1, 3 do
      for k = 1, K do
        -- the last step's scores: log probability / ((5 + length) / 6)^w, sorted
        local score = r[2]:totable()[i][Tn][k]
        assert(math.abs(score - lp[i][k] / ((5 + lens[i][k]) / 6) ^ w) < 1e-4, "score " .. score)
        assert(k == 1 or r[2]:totable()[i][Tn][k - 1] >= score, "beams sorted by score")
        local s = { 2 } -- <go>, then the hypothesis
        for t = 1, Tn - 1 do s[#s + 1] = ids[i][t][k] end
        rows[#rows + 1], row_lens[#row_lens + 1] = s, lens[i][k]
        local ended = false -- every hypothesis is end_token from its first one on
        for t = 1, Tn do
          if ended then assert.are.equal(stop, ids[i][t][k]) end
          if ids[i][t][k] == stop then ended = true end
          if t > lens[i][k] then assert.are.equal(stop, ids[i][t][k]) end
        end
      end
    end
    local logp = sess:run(forced.logp, { [mem] = memv, [forced.ids] = rows, [forced.lens] = row_lens }):totable()
    for i = 1, 3 do
      for k = 1, K do
        local row, sum = (i - 1) * K + k, 0
        for t = 1, lens[i][k] do sum = sum + logp[row][t][ids[i][t][k]] end
        assert(math.abs(sum - lp[i][k]) < 1e-4, string.format("row %d beam %d: score %.6f, its tokens' log probability %.6f",
                                                             i, k, lp[i][k], sum))
      end
    end
  end)
  end

  it("sequence_loss against a float64 reference in every reduction", function()
    local B, T, V = 3, 4, 5
    local lv, tv, wv = randn({ B, T, V }), {}, {}
    for i = 1, B do
      tv[i], wv[i] = {}, {}
      for t = 1, T do tv[i][t] = math.random(V); wv[i][t] = (t <= i + 1) and math.random() or 0 end
    end
    local ce = {}
    for i = 1, B do
      ce[i] = {}
      for t = 1, T do
        local m = -math.huge
        for v = 1, V do m = math.max(m, lv[i][t][v]) end
        local z = 0
        for v = 1, V do z = z + math.exp(lv[i][t][v] - m) end
        ce[i][t] = (m + math.log(z) - lv[i][t][tv[i][t]]) * wv[i][t]
      end
    end
    local function sums(axis, count)
      local n = axis == 1 and T or B
      local num, den = {}, {}
      for j = 1, n do num[j], den[j] = 0, 0 end
      for i = 1, B do
        for t = 1, T do
          local j = axis == 1 and t or i
          num[j] = num[j] + ce[i][t]
          den[j] = den[j] + (count and (wv[i][t] ~= 0 and 1 or 0) or wv[i][t])
        end
      end
      for j = 1, n do num[j] = den[j] == 0 and 0 or num[j] / den[j] end
      return num
    end
    local all_num, all_w, all_n = 0, 0, 0
    for i = 1, B do for t = 1, T do
      all_num = all_num + ce[i][t]; all_w = all_w + wv[i][t]; all_n = all_n + (wv[i][t] ~= 0 and 1 or 0)
    end end
    local logits, targets = tf.constant(lv, { dtype = "float64" }), tf.constant(tv)
    local weights = tf.constant(wv, { dtype = "float64" })
    local function run(opts) return tf.Session():run(s2s.sequence_loss(logits, targets, weights, opts)) end
    close({ all_num / all_w }, run(), 1e-12, "average over both")
    close(ce, run { average_across_timesteps = false, average_across_batch = false }, 1e-12, "no reduction")
    close(sums(1), run { average_across_timesteps = false }, 1e-12, "average across batch")
    close(sums(2), run { average_across_batch = false }, 1e-12, "average across timesteps")
    close({ all_num / all_n }, run { average_across_timesteps = false, average_across_batch = false,
                                     sum_over_timesteps = true, sum_over_batch = true }, 1e-12, "sum over both")
    close(sums(2, true), run { average_across_timesteps = false, average_across_batch = false,
                               sum_over_timesteps = true }, 1e-12, "sum over timesteps")
    assert.has_error(function() s2s.sequence_loss(logits, targets, weights, { sum_over_timesteps = true }) end,
      "tf.contrib.seq2seq.sequence_loss: average_across_timesteps and sum_over_timesteps cannot both be true")
  end)

  it("tile_batch repeats each row in place; gather_tree follows parents", function()
    local t = tf.constant({ { 1, 2 }, { 3, 4 } })
    assert.are.same({ { 1, 2 }, { 1, 2 }, { 1, 2 }, { 3, 4 }, { 3, 4 }, { 3, 4 } },
                    tf.Session():run(s2s.tile_batch(t, 3)):totable())
    -- TF's documented example, ids made 1-based (parents 1-based too)
    local step_ids = { { { 2, 3, 4 } }, { { 5, 6, 7 } }, { { 8, 9, 10 } } }          -- [T=3, B=1, K=3]
    local parents = { { { 1, 1, 1 } }, { { 1, 2, 1 } }, { { 3, 2, 1 } } }
    local r = tf.Session():run(s2s.gather_tree(step_ids, parents, { 3 }, 11))
    -- beam 1 at the end came from beam 3 at step 2, which came from beam 1 at step 1, ...
    assert.are.same({ { { 2, 3, 2 } }, { { 7, 6, 5 } }, { { 8, 9, 10 } } }, r:totable())
    r = tf.Session():run(s2s.gather_tree(step_ids, parents, { 2 }, 11))
    assert.are.same({ { { 2, 3, 2 } }, { { 5, 6, 7 } }, { { 11, 11, 11 } } }, r:totable())
    r = tf.Session():run(s2s.gather_tree({ { { 2, 3 } }, { { 11, 5 } }, { { 7, 11 } } },
                                         { { { 1, 1 } }, { { 1, 2 } }, { { 1, 2 } } }, { 3 }, 11))
    assert.are.same({ { { 2, 3 } }, { { 11, 5 } }, { { 11, 11 } } }, r:totable())
  end)
end)
