-- tf.nn and tf.losses: activations, softmax / log_softmax, dropout, the fused
-- cross-entropy kernels (including their stability for logits of ±1000) and
-- the simple losses, against formulas evaluated in plain Lua (float64).
local tf = require("moonflow")
local NUM = dofile("tests/spec/support/numeric.lua")
local f32, rand_list, flatten, rows_of, assert_close = NUM.f32, NUM.rand_list, NUM.flatten, NUM.rows_of, NUM.assert_close

math.randomseed(777)


local function is_finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

local TOL = { float64 = 1e-12, float32 = 1e-5 }

-- Relative tolerance with an absolute floor of rtol (values near 0).
local function run(t, feed)
  local sess <close> = tf.Session()
  return sess:run(t, feed)
end

-- Plain-Lua references.
local function ref_log_softmax(row)
  local m = -math.huge
  for _, x in ipairs(row) do if x > m then m = x end end
  local s = 0
  for _, x in ipairs(row) do s = s + math.exp(x - m) end
  local ls = math.log(s)
  local out = {}
  for i, x in ipairs(row) do out[i] = x - m - ls end
  return out
end
local function ref_softmax(row)
  local l = ref_log_softmax(row)
  local out = {}
  for i, x in ipairs(l) do out[i] = math.exp(x) end
  return out
end
local function map_rows(rows, f)
  local out = {}
  for i, r in ipairs(rows) do out[i] = f(r) end
  return out
end
local function sigmoid(x) return 1 / (1 + math.exp(-x)) end

before_each(function() tf.reset_default_graph() end)

local DTYPES = { "float64", "float32" }

describe("activations", function()
  for _, dt in ipairs(DTYPES) do
    local r = dt == "float32"
    it("relu, sigmoid and tanh element-wise in " .. dt, function()
      local xs = rand_list(24, -6, 6, r)
      xs[1], xs[2] = 0.0, -0.0
      local x = tf.constant(rows_of(xs, 6), { dtype = dt })
      local relu, sig, th = tf.nn.relu(x), tf.nn.sigmoid(x), tf.nn.tanh(x)
      assert.are.equal(dt, relu.dtype)
      local sess <close> = tf.Session()
      local out = sess:run({ relu, sig, th })
      local er, es, et = {}, {}, {}
      for i, v in ipairs(xs) do
        er[i] = v > 0 and v or 0.0
        es[i] = sigmoid(v)
        et[i] = math.tanh and math.tanh(v) or (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1)
      end
      assert.are.same(er, flatten(out[1]:totable())) -- relu is exact
      assert_close(es, out[2]:totable(), TOL[dt], "sigmoid")
      assert_close(et, out[3]:totable(), TOL[dt], "tanh")
      assert.are.same({ 4, 6 }, out[1]:shape())
    end)
  end

  it("sigmoid and tanh saturate without NaN at ±1000", function()
    local x = tf.constant({ -1000.0, 1000.0 }, { dtype = "float32" })
    local out = run({ tf.nn.sigmoid(x), tf.nn.tanh(x) })
    assert.are.same({ 0.0, 1.0 }, out[1]:totable())
    assert.are.same({ -1.0, 1.0 }, out[2]:totable())
  end)
end)

describe("softmax and log_softmax", function()
  for _, dt in ipairs(DTYPES) do
    local r = dt == "float32"
    it("work row-wise along the last axis (2-D) in " .. dt, function()
      local rows = rows_of(rand_list(20, -5, 5, r), 5)
      local x = tf.constant(rows, { dtype = dt })
      local out = run({ tf.nn.softmax(x), tf.nn.log_softmax(x) })
      assert_close(map_rows(rows, ref_softmax), out[1]:totable(), TOL[dt], "softmax")
      assert_close(map_rows(rows, ref_log_softmax), out[2]:totable(), TOL[dt], "log_softmax")
      assert.are.same({ 4, 5 }, out[1]:shape())
    end)

    it("work along the last axis of a 3-D tensor in " .. dt, function()
      local flat = rand_list(2 * 3 * 4, -3, 3, r)
      local rows = rows_of(flat, 4)
      local x = tf.constant({ { rows[1], rows[2], rows[3] }, { rows[4], rows[5], rows[6] } }, { dtype = dt })
      local out = run({ tf.nn.softmax(x), tf.nn.log_softmax(x) })
      assert.are.same({ 2, 3, 4 }, out[1]:shape())
      assert_close(map_rows(rows, ref_softmax), out[1]:totable(), TOL[dt], "softmax")
      assert_close(map_rows(rows, ref_log_softmax), out[2]:totable(), TOL[dt], "log_softmax")
    end)

    it("are stable for logits of ±1000 in " .. dt, function()
      local rows = { { 1000.0, 999.0, -1000.0 }, { -1000.0, -1000.0, -999.0 }, { 1000.0, -1000.0, 0.0 } }
      local x = tf.constant(rows, { dtype = dt })
      local out = run({ tf.nn.softmax(x), tf.nn.log_softmax(x) })
      local s, l = flatten(out[1]:totable()), flatten(out[2]:totable())
      for i = 1, #s do
        assert.is_true(is_finite(s[i]), "softmax element " .. i)
        assert.is_true(is_finite(l[i]), "log_softmax element " .. i)
      end
      assert_close(map_rows(rows, ref_softmax), s, TOL[dt], "softmax")
      assert_close(map_rows(rows, ref_log_softmax), l, TOL[dt], "log_softmax")
    end)
  end

  it("softmax gradient matches the analytic Jacobian", function()
    local row = rand_list(4, -2, 2)
    local wts = rand_list(4, -1, 1)
    local x = tf.constant({ row }, { dtype = "float64" })
    local y = tf.nn.softmax(x)
    local g = tf.gradients(tf.reduce_sum(y * tf.constant({ wts }, { dtype = "float64" })), x)[1]
    local s = ref_softmax(row)
    local dot = 0
    for i = 1, 4 do dot = dot + wts[i] * s[i] end
    local e = {}
    for i = 1, 4 do e[i] = s[i] * (wts[i] - dot) end
    assert_close(e, run(g):totable(), 1e-12, "d softmax")
  end)
end)

describe("tf.nn.dropout", function()
  it("is deterministic for a given seed in a fresh session", function()
    local x = tf.ones({ 1000 })
    local y = tf.nn.dropout(x, 0.5, { seed = 1234 })
    local a = run(y):totable()
    local b = run(y):totable()
    assert.are.same(a, b)
    -- and in a fresh graph built the same way
    tf.reset_default_graph()
    local y2 = tf.nn.dropout(tf.ones({ 1000 }), 0.5, { seed = 1234 })
    assert.are.same(a, run(y2):totable())
    -- some kept, some dropped
    local kept = 0
    for _, v in ipairs(a) do if v ~= 0 then kept = kept + 1 end end
    assert.is_true(kept > 0 and kept < 1000)
  end)

  for _, dt in ipairs(DTYPES) do
    it("scales kept elements by exactly 1/keep_prob and zeroes the others in " .. dt, function()
      local xs = rand_list(2000, -3, 3, dt == "float32")
      for _, p in ipairs({ 0.5, 0.25 }) do
        tf.reset_default_graph()
        local y = tf.nn.dropout(tf.constant(xs, { dtype = dt }), p, { seed = 99 })
        local out = run(y):totable()
        local kept = 0
        for i, v in ipairs(out) do
          if v ~= 0 then
            kept = kept + 1
            assert.are.equal(xs[i] / p, v) -- exact: 1/p is a power of two
          end
        end
        assert.is_true(kept > 0 and kept < #xs)
      end
    end)
  end

  it("scales by 1/keep_prob for keep_prob 0.8", function()
    local xs = rand_list(500, 0.5, 2)
    local out = run(tf.nn.dropout(tf.constant(xs, { dtype = "float64" }), 0.8, { seed = 5 })):totable()
    for i, v in ipairs(out) do
      if v ~= 0 then assert(math.abs(v - xs[i] / 0.8) <= 1e-12 * v, "element " .. i) end
    end
  end)

  it("keeps about keep_prob of 10^5 elements", function()
    for _, p in ipairs({ 0.3, 0.7 }) do
      tf.reset_default_graph()
      local out = run(tf.nn.dropout(tf.ones({ 100000 }), p, { seed = 42 })):totable()
      local kept = 0
      for _, v in ipairs(out) do if v ~= 0 then kept = kept + 1 end end
      -- the standard deviation of the fraction is about 0.0015
      assert(math.abs(kept / 100000 - p) < 0.01, string.format("kept %d of 10^5 at keep_prob %g", kept, p))
    end
  end)

  it("is the identity with keep_prob = 1", function()
    local xs = rand_list(300, -5, 5, true)
    local out = run(tf.nn.dropout(tf.constant(xs), 1.0, { seed = 3 })):totable()
    assert.are.same(xs, out)
  end)

  it("rejects keep_prob outside (0, 1]", function()
    assert.has_error(function() tf.nn.dropout(tf.ones({ 3 }), 0.0) end)
    assert.has_error(function() tf.nn.dropout(tf.ones({ 3 }), 1.5) end)
  end)

  it("has the mask as its gradient", function()
    local xs = rand_list(400, 0.5, 2)
    local gs = rand_list(400, -1, 1)
    local x = tf.constant(xs, { dtype = "float64" })
    local y = tf.nn.dropout(x, 0.5, { seed = 11 })
    local dx = tf.gradients(tf.reduce_sum(y * tf.constant(gs, { dtype = "float64" })), x)[1]
    local sess <close> = tf.Session()
    local out = sess:run({ y, dx })
    local yv, dv = out[1]:totable(), out[2]:totable()
    for i = 1, #xs do
      local mask = yv[i] ~= 0 and 2.0 or 0.0
      assert.are.equal(gs[i] * mask, dv[i], "element " .. i)
    end
  end)
end)

describe("tf.nn.softmax_cross_entropy_with_logits", function()
  local function random_labels(nrow, ncol)
    local rows = {}
    for i = 1, nrow do
      local r, s = {}, 0
      for j = 1, ncol do r[j] = math.random() + 0.01; s = s + r[j] end
      for j = 1, ncol do r[j] = r[j] / s end
      rows[i] = r
    end
    return rows
  end

  for _, dt in ipairs(DTYPES) do
    it("is -sum(labels * log_softmax(logits)) per row in " .. dt, function()
      local logits = rows_of(rand_list(15, -4, 4, dt == "float32"), 5)
      local labels = random_labels(3, 5)
      if dt == "float32" then labels = map_rows(labels, function(r)
        local o = {}; for j, v in ipairs(r) do o[j] = f32(v) end; return o end) end
      local loss = tf.nn.softmax_cross_entropy_with_logits{
        labels = tf.constant(labels, { dtype = dt }), logits = tf.constant(logits, { dtype = dt }) }
      assert.are.equal(dt, loss.dtype)
      local out = run(loss)
      assert.are.same({ 3 }, out:shape())
      local e = {}
      for i = 1, 3 do
        local l = ref_log_softmax(logits[i])
        e[i] = 0
        for j = 1, 5 do e[i] = e[i] - labels[i][j] * l[j] end
      end
      assert_close(e, out:totable(), TOL[dt], "loss")
    end)
  end

  it("gives finite losses and gradients for logits of ±1000", function()
    local logits = { { 1000.0, -1000.0, 0.0 }, { -1000.0, 1000.0, 999.0 }, { -1000.0, -1000.0, -1000.0 } }
    local labels = { { 0.0, 1.0, 0.0 }, { 0.2, 0.3, 0.5 }, { 1.0, 0.0, 0.0 } }
    for _, dt in ipairs(DTYPES) do
      tf.reset_default_graph()
      local x = tf.constant(logits, { dtype = dt })
      local z = tf.constant(labels, { dtype = dt })
      local loss = tf.nn.softmax_cross_entropy_with_logits{ labels = z, logits = x }
      local g = tf.gradients(tf.reduce_sum(loss), x)[1]
      local sess <close> = tf.Session()
      local out = sess:run({ loss, g })
      local e, eg = {}, {}
      for i = 1, 3 do
        local l, s = ref_log_softmax(logits[i]), ref_softmax(logits[i])
        e[i] = 0
        for j = 1, 3 do
          e[i] = e[i] - labels[i][j] * l[j]
          eg[#eg + 1] = s[j] - labels[i][j]
        end
      end
      for _, v in ipairs(flatten(out[1]:totable())) do assert.is_true(is_finite(v), dt .. " loss") end
      for _, v in ipairs(flatten(out[2]:totable())) do assert.is_true(is_finite(v), dt .. " gradient") end
      assert_close(e, out[1]:totable(), TOL[dt], dt .. " loss")
      assert_close(eg, out[2]:totable(), TOL[dt], dt .. " gradient")
    end
  end)
end)

describe("tf.nn.sparse_softmax_cross_entropy_with_logits", function()
  for _, dt in ipairs(DTYPES) do
    it("is -log_softmax(logits) at the 1-based label in " .. dt, function()
      local logits = rows_of(rand_list(24, -4, 4, dt == "float32"), 6)
      local labels = { 1, 6, 3, 4 }
      local x = tf.constant(logits, { dtype = dt })
      local loss = tf.nn.sparse_softmax_cross_entropy_with_logits{ labels = labels, logits = x }
      local g = tf.gradients(tf.reduce_sum(loss), x)[1]
      local sess <close> = tf.Session()
      local out = sess:run({ loss, g })
      assert.are.same({ 4 }, out[1]:shape())
      local e, eg = {}, {}
      for i = 1, 4 do
        local l, s = ref_log_softmax(logits[i]), ref_softmax(logits[i])
        e[i] = -l[labels[i]]
        for j = 1, 6 do eg[#eg + 1] = s[j] - (j == labels[i] and 1 or 0) end
      end
      assert_close(e, out[1]:totable(), TOL[dt], "loss")
      assert_close(eg, out[2]:totable(), TOL[dt], "gradient")
    end)
  end

  it("is finite and correct for logits of ±1000", function()
    local logits = { { 1000.0, -1000.0 }, { -1000.0, 1000.0 }, { 1000.0, 1000.0 } }
    local out = run(tf.nn.sparse_softmax_cross_entropy_with_logits{
      labels = { 2, 2, 1 }, logits = tf.constant(logits, { dtype = "float32" }) }):totable()
    assert_close({ 2000.0, 0.0, math.log(2) }, out, 1e-5, "loss")
  end)

  it("takes int32 labels from a placeholder", function()
    local y = tf.placeholder("int32", { -1 }, "y")
    local logits = rows_of(rand_list(6, -1, 1), 3)
    local loss = tf.nn.sparse_softmax_cross_entropy_with_logits{ labels = y,
      logits = tf.constant(logits, { dtype = "float64" }) }
    local out = run(loss, { [y] = { 3, 2 } }):totable()
    assert_close({ -ref_log_softmax(logits[1])[3], -ref_log_softmax(logits[2])[2] }, out, 1e-12, "loss")
  end)

  it("makes a label out of range (0 or C+1) a run-time error naming the op and the label", function()
    local y = tf.placeholder("int32", { -1 }, "y")
    local loss = tf.nn.sparse_softmax_cross_entropy_with_logits{ labels = y,
      logits = tf.constant({ { 1.0, 2.0, 3.0 }, { 0.0, 0.0, 0.0 } }) }
    local sess <close> = tf.Session()
    for _, bad in ipairs({ 0, 4 }) do
      local ok, err = pcall(sess.run, sess, loss, { [y] = { 1, bad } })
      assert.is_false(ok)
      err = tostring(err)
      assert(err:find("SparseSoftmaxCrossEntropyWithLogits", 1, true), "message names the op: " .. err)
      assert(err:find(tostring(bad), 1, true), "message names the label: " .. err)
      assert(err:lower():find("range", 1, true), "message says out of range: " .. err)
    end
    -- the session still works with good labels
    assert.are.equal(2, #sess:run(loss, { [y] = { 1, 3 } }):totable())
  end)
end)

describe("tf.nn.sigmoid_cross_entropy_with_logits", function()
  for _, dt in ipairs(DTYPES) do
    it("matches the naive formula for moderate logits in " .. dt, function()
      local r = dt == "float32"
      local xs, zs = rand_list(12, -8, 8, r), rand_list(12, 0, 1, r)
      zs[1], zs[2] = 0.0, 1.0
      local loss = tf.nn.sigmoid_cross_entropy_with_logits{
        labels = tf.constant(zs, { dtype = dt }), logits = tf.constant(xs, { dtype = dt }) }
      local e = {}
      for i = 1, 12 do
        local s = sigmoid(xs[i])
        e[i] = -zs[i] * math.log(s) - (1 - zs[i]) * math.log(1 - s)
      end
      assert_close(e, run(loss):totable(), TOL[dt] * 10, "loss")
    end)
  end

  it("is finite (and correct) for logits of ±1000", function()
    local x = tf.constant({ 1000.0, 1000.0, -1000.0, -1000.0, 1000.0 })
    local z = tf.constant({ 0.0, 1.0, 0.0, 1.0, 0.5 })
    local loss = tf.nn.sigmoid_cross_entropy_with_logits{ labels = z, logits = x }
    local g = tf.gradients(tf.reduce_sum(loss), x)[1]
    local sess <close> = tf.Session()
    local out = sess:run({ loss, g })
    assert_close({ 1000.0, 0.0, 0.0, 1000.0, 500.0 }, out[1]:totable(), 1e-6, "loss")
    for _, v in ipairs(out[2]:totable()) do assert.is_true(is_finite(v), "gradient") end
    -- d/dx = sigmoid(x) - z
    assert_close({ 1.0, 0.0, 0.0, -1.0, 0.5 }, out[2]:totable(), 1e-6, "gradient")
  end)
end)

describe("l2_loss and mean_squared_error", function()
  for _, dt in ipairs(DTYPES) do
    it("l2_loss is sum(x^2)/2 in " .. dt, function()
      local xs = rand_list(12, -3, 3, dt == "float32")
      local e = 0
      for _, v in ipairs(xs) do e = e + v * v end
      local out = run(tf.nn.l2_loss(tf.constant(rows_of(xs, 4), { dtype = dt })))
      assert.are.same({}, out:shape())
      assert_close({ e / 2 }, { out:item() }, TOL[dt], "l2_loss")
    end)

    it("mean_squared_error is mean((labels - predictions)^2) in " .. dt, function()
      local r = dt == "float32"
      local a, b = rand_list(10, -2, 2, r), rand_list(10, -2, 2, r)
      local e = 0
      for i = 1, 10 do e = e + (a[i] - b[i]) ^ 2 end
      local out = run(tf.losses.mean_squared_error(tf.constant(rows_of(a, 5), { dtype = dt }),
        tf.constant(rows_of(b, 5), { dtype = dt })))
      assert_close({ e / 10 }, { out:item() }, TOL[dt], "mse")
    end)
  end
end)
