-- Normalisation, losses, regularizers and metrics (issue 11, items 2 and 3):
-- values against float64 references written here in plain Lua, gradients
-- against float64 central differences, and a few numbers and names that
-- TensorFlow 2.21's tf.compat.v1 gave (scripts/oracle/tf_losses_metrics.py).
local tf = require("moonflow")
local N = require("tests.spec.support.numeric")
local nest = N.nest
local flat_of = N.flat_of

math.randomseed(20261202)

local function rand(n, lo, hi) return N.rand_list(n, lo or -2, hi or 2) end

-- The symbolic gradient of build(x) (a scalar) at a random x of `shape`,
-- against float64 central differences; also any variables' initial values.
local function grad_check(shape, build, tol)
  tf.reset_default_graph()
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  local vals = rand(n)
  local x = tf.placeholder("float64", shape)
  local loss = build(x)
  local gx = tf.gradients(loss, x)[1]
  local sess = tf.Session()
  sess:run(tf.global_variables_initializer())
  local function f(v) return sess:run(loss, { [x] = tf.array(nest(v, shape), "float64") }):item() end
  local got = flat_of(sess:run(gx, { [x] = tf.array(nest(vals, shape), "float64") }))
  local h, expected = 1e-5, {}
  for i = 1, n do
    local up, down = table.move(vals, 1, n, 1, {}), table.move(vals, 1, n, 1, {})
    up[i], down[i] = vals[i] + h, vals[i] - h
    expected[i] = (f(up) - f(down)) / (2 * h)
  end
  sess:close()
  N.assert_close(expected, got, tol or 1e-6, "gradient")
end

-- Per-channel float64 statistics of rows x[r][c]: mean and biased variance.
local function col_stats(rows)
  local m, v = {}, {}
  for c = 1, #rows[1] do
    local s = 0
    for r = 1, #rows do s = s + rows[r][c] end
    m[c] = s / #rows
    local q = 0
    for r = 1, #rows do q = q + (rows[r][c] - m[c]) ^ 2 end
    v[c] = q / #rows
  end
  return m, v
end

describe("tf.nn normalisation", function()
  before_each(function() tf.reset_default_graph() end)

  it("moments gives the mean and biased variance along 1-based axes", function()
    local flat = rand(24)
    local x = tf.constant(nest(flat, { 2, 3, 4 }), { dtype = "float64" })
    local m, v = tf.nn.moments(x, { 1, 3 })
    local mk, vk = tf.nn.moments(x, { 1, 3 }, { keep_dims = true })
    assert.same({ 3 }, m.shape)
    assert.same({ 1, 3, 1 }, vk.shape)
    local sess = tf.Session()
    local r = sess:run({ m, v, mk })
    for j = 1, 3 do
      local vals = {}
      for i = 1, 2 do for k = 1, 4 do vals[#vals + 1] = flat[(i - 1) * 12 + (j - 1) * 4 + k] end end
      local s = 0
      for _, e in ipairs(vals) do s = s + e end
      local mean = s / #vals
      local q = 0
      for _, e in ipairs(vals) do q = q + (e - mean) ^ 2 end
      N.assert_close({ mean, q / #vals }, { r[1][j], r[2][j] }, 1e-12, "moments")
      N.assert_close({ mean }, { r[3]:flat(j) }, 1e-12, "keep_dims")
    end
  end)

  it("batch_normalization is (x - mean) scale / sqrt(var + eps) + offset, offset and scale optional", function()
    local rows = N.rows_of(rand(12), 3)
    local x = tf.constant(rows, { dtype = "float64" })
    local mean, var = { 0.5, -0.2, 0.1 }, { 1.5, 0.3, 2.0 }
    local off, sc = { 0.1, 0.2, 0.3 }, { 2.0, -1.0, 0.5 }
    local c = function(t) return tf.constant(t, { dtype = "float64" }) end
    local y = tf.nn.batch_normalization(x, c(mean), c(var), c(off), c(sc), 1e-3)
    local y0 = tf.nn.batch_normalization(x, c(mean), c(var), nil, nil, 1e-3)
    local sess = tf.Session()
    local r = sess:run({ y, y0 })
    local e, e0 = {}, {}
    for i = 1, 4 do for j = 1, 3 do
      local z = (rows[i][j] - mean[j]) / math.sqrt(var[j] + 1e-3)
      e[#e + 1], e0[#e0 + 1] = z * sc[j] + off[j], z
    end end
    N.assert_close(e, flat_of(r[1]), 1e-12, "y")
    N.assert_close(e0, flat_of(r[2]), 1e-12, "y without offset and scale")
  end)

  it("fused_batch_norm returns y, the batch mean and the Bessel-corrected variance (NHWC and NCHW)", function()
    local flat = rand(2 * 2 * 3 * 4)
    local x = tf.constant(nest(flat, { 2, 2, 3, 4 }), { dtype = "float64" })
    local sc, off = { 1.5, 0.5, -1.0, 2.0 }, { 0.1, 0.0, -0.2, 0.3 }
    local y, bm, bv = tf.nn.fused_batch_norm(x, tf.constant(sc, { dtype = "float64" }),
                                             tf.constant(off, { dtype = "float64" }))
    local xt = tf.transpose(x, { 1, 4, 2, 3 })
    local yt = tf.nn.fused_batch_norm(xt, tf.constant(sc, { dtype = "float64" }), tf.constant(off, { dtype = "float64" }),
                                      { data_format = "NCHW" })
    local sess = tf.Session()
    local r = sess:run({ y, bm, bv, tf.transpose(yt, { 1, 3, 4, 2 }) })
    local rows = N.rows_of(flat, 4)
    local m, v = col_stats(rows)
    local ey = {}
    for i, row in ipairs(rows) do
      for c = 1, 4 do ey[(i - 1) * 4 + c] = (row[c] - m[c]) / math.sqrt(v[c] + 1e-3) * sc[c] + off[c] end
    end
    local vb = {}
    for c = 1, 4 do vb[c] = v[c] * 12 / 11 end
    N.assert_close(m, flat_of(r[2]), 1e-12, "batch mean")
    N.assert_close(vb, flat_of(r[3]), 1e-12, "batch variance")
    N.assert_close(ey, flat_of(r[1]), 1e-10, "y")
    N.assert_close(ey, flat_of(r[4]), 1e-10, "y (NCHW)")
  end)

  it("fused_batch_norm in inference uses and returns the given mean and variance", function()
    local x = tf.constant(nest(rand(16), { 1, 2, 2, 4 }), { dtype = "float64" })
    local one = tf.ones({ 4 }, "float64")
    local y, m, v = tf.nn.fused_batch_norm(x, one, tf.zeros({ 4 }, "float64"), one * 0.5, one * 2,
                                           { is_training = false })
    local ref = tf.nn.batch_normalization(x, one * 0.5, one * 2, nil, nil, 1e-3)
    local sess = tf.Session()
    local r = sess:run({ y, ref, m, v })
    N.assert_close(flat_of(r[2]), flat_of(r[1]), 1e-12, "y")
    N.assert_close({ 0.5, 0.5, 0.5, 0.5, 2, 2, 2, 2 }, { r[3]:flat(1), r[3]:flat(2), r[3]:flat(3), r[3]:flat(4),
      r[4]:flat(1), r[4]:flat(2), r[4]:flat(3), r[4]:flat(4) }, 0, "mean, variance")
    assert.has_error(function() tf.nn.fused_batch_norm(x, one, one, { is_training = false }) end,
      "tf.nn.fused_batch_norm: mean and variance are needed when is_training is false")
  end)

  it("gradients of moments, batch_normalization and fused_batch_norm match central differences", function()
    local wv = nest(rand(24), { 2, 3, 4 })
    grad_check({ 2, 3, 4 }, function(x)
      local m, v = tf.nn.moments(x, { 1, 2 })
      return tf.reduce_sum(m * m) + tf.reduce_sum(tf.sin(v))
    end)
    grad_check({ 2, 3, 4 }, function(x)
      local m, v = tf.nn.moments(x, { -1 }, { keep_dims = true })
      return tf.reduce_sum(tf.nn.batch_normalization(x, m, v, 0.3, 1.7, 1e-3) * tf.constant(wv, { dtype = "float64" }))
    end)
    grad_check({ 2, 2, 2, 3 }, function(x)
      local y = tf.nn.fused_batch_norm(x, tf.constant({ 1.0, 2.0, 0.5 }, { dtype = "float64" }),
                                       tf.constant({ 0.0, 0.1, 0.2 }, { dtype = "float64" }))
      return tf.reduce_sum(y * tf.sin(y))
    end)
  end)
end)

describe("tf.layers.batch_normalization", function()
  before_each(function() tf.reset_default_graph() end)

  it("names its variables and update ops as TF and normalises with the batch's statistics in training", function()
    local x = tf.placeholder("float64", { -1, 3 })
    local y = tf.layers.batch_normalization(x, { training = true, momentum = 0.9 })
    tf.layers.batch_normalization(x)
    local names = {}
    for _, v in ipairs(tf.global_variables()) do names[#names + 1] = v.name end
    assert.same({ "batch_normalization/gamma:0", "batch_normalization/beta:0", "batch_normalization/moving_mean:0",
      "batch_normalization/moving_variance:0", "batch_normalization_1/gamma:0", "batch_normalization_1/beta:0",
      "batch_normalization_1/moving_mean:0", "batch_normalization_1/moving_variance:0" }, names)
    assert.equal(4, #tf.trainable_variables())
    local ups = {}
    for _, o in ipairs(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) do ups[#ups + 1] = o.name end
    -- as TF 2.21's tf.compat.v1.layers; training = false adds none
    assert.same({ "batch_normalization/AssignMovingAvg", "batch_normalization/AssignMovingAvg_1" }, ups)

    local train = tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS), function()
      return tf.identity(y)
    end)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local mm, mv = { 0, 0, 0 }, { 1, 1, 1 }
    for _ = 1, 3 do
      local rows = N.rows_of(rand(15), 3)
      local got = sess:run(train, { [x] = tf.array(rows, "float64") })
      local m, v = col_stats(rows)
      local e = {}
      for i, row in ipairs(rows) do
        for c = 1, 3 do e[(i - 1) * 3 + c] = (row[c] - m[c]) / math.sqrt(v[c] + 1e-3) end
      end
      N.assert_close(e, flat_of(got), 1e-10, "y")
      for c = 1, 3 do -- biased variance for the non-fused layer
        mm[c] = mm[c] - (mm[c] - m[c]) * (1 - 0.9)
        mv[c] = mv[c] - (mv[c] - v[c]) * (1 - 0.9)
      end
    end
    local vars = tf.global_variables()
    N.assert_close(mm, flat_of(sess:run(vars[3])), 1e-12, "moving_mean")
    N.assert_close(mv, flat_of(sess:run(vars[4])), 1e-12, "moving_variance")
  end)

  it("4-d NHWC inputs take TF's fused path: the moving variance gets the Bessel-corrected variance", function()
    local x = tf.placeholder("float64", { 2, 2, 2, 3 })
    tf.layers.batch_normalization(x, { training = true })
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local flat = rand(24)
    sess:run(tf.get_collection(tf.GraphKeys.UPDATE_OPS), { [x] = tf.array(nest(flat, { 2, 2, 2, 3 }), "float64") })
    local _, v = col_stats(N.rows_of(flat, 3))
    local e = {}
    for c = 1, 3 do e[c] = 1 - (1 - v[c] * 8 / 7) * (1 - 0.99) end
    N.assert_close(e, flat_of(sess:run(tf.global_variables()[4])), 1e-12, "moving_variance")
  end)

  it("takes a bool tensor for training: the moving averages in inference, unchanged by the updates", function()
    local x = tf.placeholder("float64", { -1, 2 })
    local training = tf.placeholder("bool", {})
    local y = tf.layers.batch_normalization(x, { training = training, axis = 2, center = false,
                                                  gamma_initializer = tf.constant_initializer(2.0) })
    assert.equal(3, #tf.global_variables()) -- no beta
    local ups = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert.equal(2, #ups)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local rows = N.rows_of(rand(8), 2)
    local feed = tf.array(rows, "float64")
    local r = sess:run({ y, ups[1], ups[2] }, { [x] = feed, [training] = false })
    local e = {}
    for i, row in ipairs(rows) do for c = 1, 2 do e[(i - 1) * 2 + c] = row[c] / math.sqrt(1 + 1e-3) * 2 end end
    N.assert_close(e, flat_of(r[1]), 1e-12, "inference y")
    N.assert_close({ 0, 0, 1, 1 }, { sess:run(tf.global_variables()[2]):flat(1), sess:run(tf.global_variables()[2]):flat(2),
      sess:run(tf.global_variables()[3]):flat(1), sess:run(tf.global_variables()[3]):flat(2) }, 0, "unchanged")
    sess:run(ups, { [x] = feed, [training] = true })
    local m = col_stats(rows)
    N.assert_close({ m[1] * 0.01, m[2] * 0.01 }, flat_of(sess:run(tf.global_variables()[2])), 1e-12, "updated")
  end)

  it("gradients in training (through the batch statistics) match central differences", function()
    grad_check({ 4, 3 }, function(x)
      local y = tf.layers.batch_normalization(x, { training = true,
        gamma_initializer = tf.constant_initializer({ 1.5, -0.5, 2.0 }),
        beta_initializer = tf.constant_initializer({ 0.1, 0.2, 0.3 }) })
      return tf.reduce_sum(tf.sin(y) * y)
    end)
    grad_check({ 2, 3, 2 }, function(x)
      return tf.reduce_sum(tf.square(tf.layers.batch_normalization(x, { axis = 2, training = true })) * x)
    end)
  end)
end)

describe("tf.contrib.layers.layer_norm", function()
  before_each(function() tf.reset_default_graph() end)

  it("normalises each example over the axes from begin_norm_axis, with gamma and beta model variables", function()
    local flat = rand(2 * 3 * 4)
    local x = tf.constant(nest(flat, { 2, 3, 4 }), { dtype = "float64" })
    local y = tf.contrib.layers.layer_norm(x)
    local y2 = tf.contrib.layers.layer_norm(x, { begin_norm_axis = -1, center = false })
    local names = {}
    for _, v in ipairs(tf.model_variables()) do names[#names + 1] = v.name .. "{" .. table.concat(v.shape, ",") .. "}" end
    assert.same({ "LayerNorm/beta:0{4}", "LayerNorm/gamma:0{4}", "LayerNorm_1/gamma:0{4}" }, names)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local r = sess:run({ y, y2 })
    local function norm(vals)
      local s = 0
      for _, e in ipairs(vals) do s = s + e end
      local m = s / #vals
      local q = 0
      for _, e in ipairs(vals) do q = q + (e - m) ^ 2 end
      local out = {}
      for i, e in ipairs(vals) do out[i] = (e - m) / math.sqrt(q / #vals + 1e-12) end
      return out
    end
    local e1, e2 = {}, {}
    for b = 1, 2 do
      for _, z in ipairs(norm(table.move(flat, (b - 1) * 12 + 1, b * 12, 1, {}))) do e1[#e1 + 1] = z end
      for row = 1, 3 do
        local s = (b - 1) * 12 + (row - 1) * 4
        for _, z in ipairs(norm(table.move(flat, s + 1, s + 4, 1, {}))) do e2[#e2 + 1] = z end
      end
    end
    N.assert_close(e1, flat_of(r[1]), 1e-10, "layer_norm")
    N.assert_close(e2, flat_of(r[2]), 1e-10, "layer_norm, last axis")
  end)

  it("has gradients matching central differences", function()
    grad_check({ 3, 4 }, function(x)
      return tf.reduce_sum(tf.sin(tf.contrib.layers.layer_norm(x)) * x)
    end)
  end)
end)

describe("tf.losses", function()
  before_each(function() tf.reset_default_graph() end)

  -- TF 2.21 tf.compat.v1 on these inputs (scripts/oracle/tf_losses_metrics.py).
  local Y = { { 0.0, 1.0, 0.0 }, { 1.0, 0.0, 0.0 } }
  local Z = { { 0.5, 1.5, -0.3 }, { 2.0, -1.0, 0.1 } }

  it("gives TensorFlow's numbers and names, and fills GraphKeys.LOSSES", function()
    local y, z = tf.constant(Y), tf.constant(Z)
    local L = tf.losses
    local cases = {
      { L.softmax_cross_entropy(y, z, { label_smoothing = 0.1 }), 0.43289703, "softmax_cross_entropy_loss/value:0" },
      { L.sparse_softmax_cross_entropy({ 2, 1 }, z, { { 1.0 }, { 0.0 } }), 0.42734292,
        "sparse_softmax_cross_entropy_loss/value:0" },
      { L.sigmoid_cross_entropy(y, z, 1.0, 0.2), 0.5557386, "sigmoid_cross_entropy_loss/value:0" },
      { L.mean_squared_error(y, z, { { 1.0, 0.0, 2.0 }, { 0.0, 0.0, 0.0 } }), 0.215, "mean_squared_error/value:0" },
      { L.huber_loss(y, z, { delta = 0.5, reduction = L.Reduction.SUM }), 1.0500001, "huber_loss/Sum:0" },
      { L.hinge_loss(y, z), 0.55, "hinge_loss/value:0" },
      { L.log_loss(y, tf.sigmoid(z), { reduction = "weighted_mean", weights = 0.5 }), 0.4857385, "log_loss/value:0" },
    }
    local none = L.absolute_difference(y, z, { reduction = L.Reduction.NONE, loss_collection = false })
    local sess = tf.Session()
    local names = {}
    for _, c in ipairs(cases) do
      N.assert_close({ c[2] }, { sess:run(c[1]):item() }, 2e-6, c[3])
      assert.equal(c[3], c[1].name)
      names[#names + 1] = c[3]
    end
    local got = {}
    for _, l in ipairs(L.get_losses()) do got[#got + 1] = l.name end
    assert.same(names, got)
    N.assert_close({ 0.5, 0.5, 0.3, 1, 1, 0.1 }, flat_of(sess:run(none)), 1e-6, "Reduction.NONE")
  end)

  it("reduces as TF's compute_weighted_loss (float64 reference, every reduction, zero weights)", function()
    local pred, lab, w = rand(6), rand(6), { 1.0, 0.0, 2.5, 0.0, 0.5, 1.0 }
    local p = tf.constant(N.rows_of(pred, 3), { dtype = "float64" })
    local l = tf.constant(N.rows_of(lab, 3), { dtype = "float64" })
    local wt = tf.constant(N.rows_of(w, 3), { dtype = "float64" })
    local err, sum, wsum, nz = {}, 0, 0, 0
    for i = 1, 6 do
      err[i] = math.abs(pred[i] - lab[i])
      sum, wsum = sum + err[i] * w[i], wsum + w[i]
      if w[i] ~= 0 then nz = nz + 1 end
    end
    local R = tf.losses.Reduction
    local sess = tf.Session()
    local function run(opts) return sess:run(tf.losses.absolute_difference(l, p, wt, opts)):item() end
    N.assert_close({ sum / nz }, { run() }, 1e-12, "SUM_BY_NONZERO_WEIGHTS")
    N.assert_close({ sum }, { run({ reduction = R.SUM }) }, 1e-12, "SUM")
    N.assert_close({ sum / wsum }, { run({ reduction = R.MEAN }) }, 1e-12, "MEAN")
    N.assert_close({ sum / 6 }, { run({ reduction = R.SUM_OVER_BATCH_SIZE }) }, 1e-12, "SUM_OVER_BATCH_SIZE")
    N.assert_close({ 0 }, { sess:run(tf.losses.absolute_difference(l, p, 0.0)):item() }, 0, "all weights zero")
    -- weights {rows, 1} broadcast over the columns
    local wr = tf.constant({ { 2.0 }, { 0.0 } }, { dtype = "float64" })
    local s2 = 0
    for i = 1, 3 do s2 = s2 + 2 * err[i] end
    N.assert_close({ s2 / 3 }, { sess:run(tf.losses.absolute_difference(l, p, wr)):item() }, 1e-12, "row weights")
    assert.has_error(function() tf.losses.absolute_difference(l, p, { 1.0, 2.0 }) end)
    assert.has_error(function() tf.losses.absolute_difference(l, p, { reduction = "mean" }) end)
  end)

  it("per-element losses match float64 references", function()
    local pr, lb = rand(8, 0.05, 0.95), {}
    for i = 1, 8 do lb[i] = (i % 3 == 0) and 1.0 or 0.0 end
    local p = tf.constant(pr, { dtype = "float64" })
    local l = tf.constant(lb, { dtype = "float64" })
    local R = { reduction = tf.losses.Reduction.NONE }
    local sess = tf.Session()
    local r = sess:run({ tf.losses.huber_loss(l, p * 4 - 2, R), tf.losses.log_loss(l, p, R),
      tf.losses.hinge_loss(l, p * 4 - 2, R), tf.losses.sigmoid_cross_entropy(l, p * 4 - 2, 1.0, 0.3, R) })
    local eh, el, eg, es = {}, {}, {}, {}
    for i = 1, 8 do
      local z, y = pr[i] * 4 - 2, lb[i]
      local e = math.abs(z - y)
      eh[i] = e <= 1 and 0.5 * e * e or e - 0.5
      el[i] = -y * math.log(pr[i] + 1e-7) - (1 - y) * math.log(1 - pr[i] + 1e-7)
      eg[i] = math.max(0, 1 - (2 * y - 1) * z)
      local ys = y * 0.7 + 0.15
      es[i] = math.max(z, 0) - z * ys + math.log(1 + math.exp(-math.abs(z)))
    end
    N.assert_close(eh, flat_of(r[1]), 1e-12, "huber")
    N.assert_close(el, flat_of(r[2]), 1e-12, "log_loss")
    N.assert_close(eg, flat_of(r[3]), 1e-12, "hinge")
    N.assert_close(es, flat_of(r[4]), 1e-12, "sigmoid_cross_entropy")
  end)

  it("softmax cross-entropy gradients (weights, smoothing) match central differences", function()
    local yv = { { 0.0, 1.0, 0.0 }, { 0.0, 0.0, 1.0 } }
    local function y() return tf.constant(yv, { dtype = "float64" }) end
    grad_check({ 2, 3 }, function(x)
      return tf.losses.softmax_cross_entropy(y(), x, { 1.0, 0.5 }, 0.2)
    end)
    grad_check({ 2, 3 }, function(x)
      return tf.losses.sparse_softmax_cross_entropy({ 3, 1 }, x, { 2.0, 0.0 })
    end)
    grad_check({ 2, 3 }, function(x)
      return tf.losses.huber_loss(y(), x, { delta = 0.7, weights = 0.0 }) + tf.losses.mean_squared_error(y(), x)
    end)
  end)

  it("regularizers fill REGULARIZATION_LOSSES; get_total_loss and get_regularization_loss sum them", function()
    local x = tf.constant(N.rows_of(rand(6), 3))
    local out = tf.layers.dense(x, 2, { kernel_regularizer = tf.contrib.layers.l2_regularizer(0.1),
                                        bias_regularizer = tf.contrib.layers.l1_regularizer(0.5),
                                        bias_initializer = tf.constant_initializer(-0.25) })
    local v = tf.get_variable("v", { 3 }, { regularizer = tf.contrib.layers.l1_l2_regularizer(0.2, 0.3) })
    tf.get_variable("none", { 3 }, { regularizer = tf.contrib.layers.l2_regularizer(0.0) })
    local names = {}
    for _, l in ipairs(tf.losses.get_regularization_losses()) do names[#names + 1] = l.name end
    assert.equal("dense/kernel/Regularizer/l2_regularizer:0", names[1]) -- as TF names it
    assert.equal("dense/bias/Regularizer/l1_regularizer:0", names[2])
    assert.equal(3, #names)
    local loss = tf.losses.mean_squared_error(tf.zeros({ 2, 2 }), out)
    local total = tf.losses.get_total_loss()
    local reg = tf.losses.get_regularization_loss()
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local r = sess:run({ tf.trainable_variables()[1], v, loss, total, reg })
    local k2, vl1, vl2 = 0, 0, 0
    for i = 1, r[1]:numel() do k2 = k2 + r[1]:flat(i) ^ 2 end
    for i = 1, 3 do vl1, vl2 = vl1 + math.abs(r[2]:flat(i)), vl2 + r[2]:flat(i) ^ 2 end
    local ereg = 0.1 * k2 / 2 + 0.5 * 0.5 + 0.2 * vl1 + 0.3 * vl2 / 2
    N.assert_close({ ereg }, { r[5]:item() }, 1e-5, "regularization loss")
    N.assert_close({ ereg + r[3]:item() }, { r[4]:item() }, 1e-5, "total loss")
    assert.is_nil(tf.get_variable_scope().regularizer)
    -- a variable scope's regularizer is its variables' default (once, when created)
    tf.variable_scope("reg", { regularizer = tf.contrib.layers.l2_regularizer(1.0) }, function()
      tf.get_variable("a", { 2 })
    end)
    tf.variable_scope("reg", { reuse = true }, function() tf.get_variable("a", { 2 }) end)
    assert.equal(4, #tf.losses.get_regularization_losses())
    assert.equal("reg/a/Regularizer/l2_regularizer:0", tf.losses.get_regularization_losses()[4].name)
    tf.reset_default_graph()
    assert.has_error(function() tf.losses.get_total_loss() end,
                     "tf.losses.get_total_loss: there are no losses (GraphKeys.LOSSES is empty)")
    assert.equal(0.0, tf.Session():run(tf.losses.get_regularization_loss()):item())
    assert.has_error(function() tf.contrib.layers.l2_regularizer(-1.0) end)
  end)
end)

describe("tf.metrics", function()
  before_each(function() tf.reset_default_graph() end)

  it("accumulate over several updates as a float64 reference (and TF's numbers)", function()
    local lab = tf.placeholder("int32", { -1 })
    local pred = tf.placeholder("float32", { -1 })
    local w = tf.placeholder("float32", { -1 })
    local hard = tf.greater(pred, 0.5)
    local m = {
      acc = { tf.metrics.accuracy(lab, tf.cast(hard, "int32")) },
      mean = { tf.metrics.mean(pred, w) },
      prec = { tf.metrics.precision(lab, hard) },
      rec = { tf.metrics.recall(lab, hard, w) },
      auc = { tf.metrics.auc(lab, pred) },
      pr = { tf.metrics.auc(lab, pred, w, { curve = "PR", num_thresholds = 50, summation_method = "minoring" }) },
    }
    local lv = {}
    for _, v in ipairs(tf.local_variables()) do lv[#lv + 1] = v.name end
    assert.same({ "accuracy/total:0", "accuracy/count:0", "mean/total:0", "mean/count:0",
      "precision/true_positives/count:0", "precision/false_positives/count:0", "recall/true_positives/count:0",
      "recall/false_negatives/count:0", "auc/true_positives:0", "auc/false_negatives:0", "auc/true_negatives:0",
      "auc/false_positives:0", "auc_1/true_positives:0", "auc_1/false_negatives:0", "auc_1/true_negatives:0",
      "auc_1/false_positives:0" }, lv)
    assert.same(lv, (function()
      local t = {}
      for _, v in ipairs(tf.get_collection(tf.GraphKeys.METRIC_VARIABLES)) do t[#t + 1] = v.name end
      return t
    end)())
    assert.equal(0, #tf.trainable_variables())
    local sess = tf.Session()
    sess:run(tf.local_variables_initializer())
    local ups = {}
    for k, v in pairs(m) do ups[k] = v[2] end
    -- TF 2.21's values after these two batches (scripts/oracle/tf_losses_metrics.py)
    local batches = { { { 1, 0, 1, 1, 0 }, { 0.9, 0.2, 0.4, 0.7, 0.6 }, { 1, 1, 0.5, 2, 1 } },
                      { { 0, 0, 1, 0 }, { 0.1, 0.8, 0.95, 0.3 }, { 1, 0, 1, 1 } } }
    local last
    for _, b in ipairs(batches) do last = sess:run(ups, { [lab] = b[1], [pred] = b[2], [w] = b[3] }) end
    local tfv = { acc = 0.6666667, mean = 0.5470588, prec = 0.6, rec = 0.8888889, auc = 0.8499999, pr = 0.9777776 }
    for k, v in pairs(tfv) do
      N.assert_close({ v }, { sess:run(m[k][1]):item() }, 2e-6, k)
      N.assert_close({ v }, { last[k]:item() }, 2e-6, k .. " update_op")
    end

    -- more random batches against a float64 reference of the same counts
    local T = 200
    local th = { -1e-7 }
    for i = 1, T - 2 do th[#th + 1] = i / (T - 1) end
    th[T] = 1 + 1e-7
    local S = { n = 0, c = 0, tot = 0, wsum = 0, tp = 0, fp = 0, rtp = 0, rfn = 0,
                tpt = {}, fnt = {}, tnt = {}, fpt = {} }
    for t = 1, T do S.tpt[t], S.fnt[t], S.tnt[t], S.fpt[t] = 0, 0, 0, 0 end
    for _, b in ipairs(batches) do
      for i = 1, #b[1] do
        local y, p, wi = b[1][i], N.f32(b[2][i]), b[3][i]
        local h = p > 0.5 and 1 or 0
        S.n, S.c = S.n + 1, S.c + ((h == y) and 1 or 0)
        S.tot, S.wsum = S.tot + p * wi, S.wsum + wi
        if h == 1 and y == 1 then S.tp = S.tp + 1; S.rtp = S.rtp + wi end
        if h == 1 and y == 0 then S.fp = S.fp + 1 end
        if h == 0 and y == 1 then S.rfn = S.rfn + wi end
        for t = 1, T do
          local pos = p > N.f32(th[t])
          if y == 1 and pos then S.tpt[t] = S.tpt[t] + 1 elseif y == 1 then S.fnt[t] = S.fnt[t] + 1
          elseif pos then S.fpt[t] = S.fpt[t] + 1 else S.tnt[t] = S.tnt[t] + 1 end
        end
      end
    end
    for _ = 1, 3 do
      local n = math.random(3, 9)
      local b = { {}, {}, {} }
      for i = 1, n do b[1][i], b[2][i], b[3][i] = math.random(0, 1), math.random(), math.random(0, 3) * 0.5 end
      sess:run(ups, { [lab] = b[1], [pred] = b[2], [w] = b[3] })
      for i = 1, n do
        local y, p, wi = b[1][i], N.f32(b[2][i]), b[3][i]
        local h = p > 0.5 and 1 or 0
        S.n, S.c = S.n + 1, S.c + ((h == y) and 1 or 0)
        S.tot, S.wsum = S.tot + p * wi, S.wsum + wi
        if h == 1 and y == 1 then S.tp = S.tp + 1; S.rtp = S.rtp + wi end
        if h == 1 and y == 0 then S.fp = S.fp + 1 end
        if h == 0 and y == 1 then S.rfn = S.rfn + wi end
        for t = 1, T do
          local pos = p > N.f32(th[t])
          if y == 1 and pos then S.tpt[t] = S.tpt[t] + 1 elseif y == 1 then S.fnt[t] = S.fnt[t] + 1
          elseif pos then S.fpt[t] = S.fpt[t] + 1 else S.tnt[t] = S.tnt[t] + 1 end
        end
      end
    end
    local eps, auc = 1e-6, 0
    local function xy(t)
      return S.fpt[t] / (S.fpt[t] + S.tnt[t] + eps), (S.tpt[t] + eps) / (S.tpt[t] + S.fnt[t] + eps)
    end
    for t = 1, T - 1 do
      local x0, y0 = xy(t)
      local x1, y1 = xy(t + 1)
      auc = auc + (x0 - x1) * (y0 + y1) / 2
    end
    N.assert_close({ S.c / S.n }, { sess:run(m.acc[1]):item() }, 1e-6, "accuracy")
    N.assert_close({ S.tot / S.wsum }, { sess:run(m.mean[1]):item() }, 1e-6, "mean")
    N.assert_close({ S.tp / (S.tp + S.fp) }, { sess:run(m.prec[1]):item() }, 1e-6, "precision")
    N.assert_close({ S.rtp / (S.rtp + S.rfn) }, { sess:run(m.rec[1]):item() }, 1e-6, "recall")
    N.assert_close({ auc }, { sess:run(m.auc[1]):item() }, 1e-5, "auc")
    -- a fresh local_variables_initializer() starts them again
    sess:run(tf.local_variables_initializer())
    assert.equal(0.0, sess:run(m.acc[1]):item())
  end)

  it("precision and recall are 0 with no positives; collections are filled", function()
    local v, up = tf.metrics.precision({ 0, 0 }, { false, false }, nil,
                                       { metrics_collections = { "m" }, updates_collections = "u" })
    local sess = tf.Session()
    sess:run(tf.local_variables_initializer())
    assert.equal(0.0, sess:run(up):item())
    assert.equal(0.0, sess:run(v):item())
    assert.equal(v, tf.get_collection("m")[1])
    assert.equal(up, tf.get_collection("u")[1])
  end)
end)
