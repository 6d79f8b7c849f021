-- TF 1.x's calling conventions (issue 10, items 1, 2 and 8): positional
-- parameters in TF's order, trailing options tables with TF's aliases,
-- errors naming the parameter; lists from moonflow accepted as lists;
-- x[i], tf.strided_slice and x:slice with gradients; docs/API.md generated
-- from the declarations and up to date.
local tf = require("moonflow")
local N = require("tests.spec.support.numeric")

math.randomseed(os.time())

local function run(t, feeds)
  local sess <close> = tf.Session()
  return sess:run(t, feeds)
end

local function err_of(f, ...)
  local ok, e = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function rand_matrix(r, c)
  local t = {}
  for i = 1, r do t[i] = N.rand_list(c, -2, 2) end
  return t
end

-- softmax of a list
local function softmax(v)
  local m, s, o = -math.huge, 0, {}
  for _, x in ipairs(v) do m = math.max(m, x) end
  for i, x in ipairs(v) do o[i] = math.exp(x - m); s = s + o[i] end
  for i = 1, #o do o[i] = o[i] / s end
  return o
end

describe("TF 1.x argument order", function()
  before_each(function() tf.reset_default_graph() end)

  it("tf.nn.softmax(logits, axis) softmaxes that axis, positional or {axis} or {dim}", function()
    local v = rand_matrix(3, 4)
    local x = tf.constant(v, { dtype = "float64" })
    local cols = {}
    for j = 1, 4 do
      local col = {}
      for i = 1, 3 do col[i] = v[i][j] end
      cols[j] = softmax(col)
    end
    local expected = {}
    for i = 1, 3 do
      expected[i] = {}
      for j = 1, 4 do expected[i][j] = cols[j][i] end
    end
    local rows = {}
    for i = 1, 3 do rows[i] = softmax(v[i]) end
    N.assert_close(expected, run(tf.nn.softmax(x, 1)):totable(), 1e-12, "axis 1")
    N.assert_close(expected, run(tf.nn.softmax(x, { axis = 1 })):totable(), 1e-12, "{axis = 1}")
    N.assert_close(expected, run(tf.nn.softmax(x, { dim = -2 })):totable(), 1e-12, "{dim = -2}")
    N.assert_close(rows, run(tf.nn.softmax(x)):totable(), 1e-12, "default")
    local logs = run(tf.nn.log_softmax(x, 1)):totable()
    for i = 1, 3 do for j = 1, 4 do assert.is_near(math.log(expected[i][j]), logs[i][j], 1e-12) end end
  end)

  it("names ops from a string in TF's name position, never from a number", function()
    local x = tf.constant({ { 1.0, 2.0 } })
    assert.are.equal("p:0", tf.nn.softmax(x, -1, "p").name)
    assert.are.equal("r:0", tf.nn.relu(x, "r").name)
    assert.are.equal("q:0", tf.nn.softmax(x, { name = "q" }).name)
    local e = err_of(tf.nn.softmax, x, "p")
    assert.is_truthy(e:find("tf.nn.softmax: axis must be an integer", 1, true), e)
    assert.are.equal("c:0", tf.concat({ x, x }, 1, "c").name)
  end)

  it("reductions take (x, axis, keepdims) and TF's aliases", function()
    local v = rand_matrix(2, 3)
    local x = tf.constant(v, { dtype = "float64" })
    local sums = { v[1][1] + v[1][2] + v[1][3], v[2][1] + v[2][2] + v[2][3] }
    N.assert_close({ { sums[1] }, { sums[2] } }, run(tf.reduce_sum(x, 2, true)):totable(), 1e-12)
    N.assert_close({ { sums[1] }, { sums[2] } },
                   run(tf.reduce_sum(x, { reduction_indices = 2, keep_dims = true })):totable(), 1e-12)
    N.assert_close(sums, run(tf.reduce_sum(x, { axis = { 2 } })):totable(), 1e-12)
    assert.are.same({ 2, 1 }, tf.reduce_mean(x, -1, { keepdims = true }).shape)
    local e = err_of(tf.reduce_sum, x, { keep_dim = true })
    assert.is_truthy(e:find("unknown option 'keep_dim'", 1, true), e)
    e = err_of(tf.reduce_sum, x, 2, { axis = 1 })
    assert.is_truthy(e:find("axis is given twice", 1, true), e)
    e = err_of(tf.reduce_max, x, "1")
    assert.is_truthy(e:find("tf.reduce_max: axis must be", 1, true), e)
  end)

  it("argmax/argmin take (input, axis) or {axis}/{dimension}, ids from 1", function()
    local x = tf.constant({ { 1.0, 9.0, 3.0 }, { 7.0, 2.0, 4.0 } })
    assert.are.same({ 2, 1 }, run(tf.argmax(x, 2)):totable())
    assert.are.same({ 2, 1 }, run(tf.argmax(x, { axis = 2 })):totable())
    assert.are.same({ 1, 2, 1 }, run(tf.argmin(x, { dimension = 1 })):totable())
    assert.are.equal("int32", tf.argmax(x, 2, nil, "int32").dtype)
    local e = err_of(tf.argmax, x, 1.5)
    assert.is_truthy(e:find("tf.argmax: axis must be an integer", 1, true), e)
  end)

  it("losses take TF's keywords alone or TF's positional order", function()
    local y, p = rand_matrix(2, 3), rand_matrix(2, 3)
    local mse = 0
    for i = 1, 2 do for j = 1, 3 do mse = mse + (y[i][j] - p[i][j]) ^ 2 end end
    mse = mse / 6
    local Y, P = tf.constant(y, { dtype = "float64" }), tf.constant(p, { dtype = "float64" })
    assert.is_near(mse, run(tf.losses.mean_squared_error{ labels = Y, predictions = P }):item(), 1e-12)
    assert.is_near(mse, run(tf.losses.mean_squared_error(Y, P)):item(), 1e-12)
    local e = err_of(tf.losses.mean_squared_error, { labels = Y, prediction = P })
    assert.is_truthy(e:find("unknown option 'prediction'", 1, true), e)
    e = err_of(tf.nn.sparse_softmax_cross_entropy_with_logits, { 1, 2 }, P)
    assert.is_truthy(e:find("named values", 1, true), e)
    e = err_of(tf.nn.softmax_cross_entropy_with_logits, { labels = Y })
    assert.is_truthy(e:find("needs logits", 1, true), e)
  end)

  it("every declared function names the parameter of a wrongly typed value", function()
    local x = tf.constant({ { 1.0, 2.0 } })
    local cases = {
      { function() return tf.concat({ x, x }, "1") end, "tf.concat: axis" },
      { function() return tf.matmul(x, x, "yes") end, "tf.matmul: transpose_a" },
      { function() return tf.cast(x, "float16") end, "tf.cast: dtype" },
      { function() return tf.transpose(x, { 1.5 }) end, "tf.transpose: perm" },
      { function() return tf.zeros({ 2 }, 3) end, "tf.zeros: dtype" },
      { function() return tf.range(1, "5") end, "tf.range: limit" },
      { function() return tf.random_normal({ 2 }, "0") end, "tf.random_normal: mean" },
      { function() return tf.gather(x, { 1 }, nil, nil, "2") end, "tf.gather: axis" },
      { function() return tf.expand_dims(x) end, "tf.expand_dims: needs axis" },
      { function() return tf.add(x, "y") end, "tf.add: y" },
      { function() return tf.nn.relu(x, 1) end, "tf.nn.relu: name" },
      { function() return tf.identity(x, "a", "b") end, "tf.identity: too many arguments" },
    }
    for _, c in ipairs(cases) do
      local e = err_of(c[1])
      assert.is_truthy(e:find(c[2], 1, true), "expected '" .. c[2] .. "' in: " .. e)
    end
  end)

  it("takes TF's order for unstack/split/gather/one_hot/placeholder", function()
    local v = rand_matrix(2, 3)
    local x = tf.constant(v)
    assert.are.equal(3, #tf.unstack(x, 3, 2))
    assert.are.equal(2, #tf.unstack(x, { axis = 1 }))
    assert.is_truthy(err_of(tf.unstack, x, 3):find("num is 3", 1, true))
    assert.are.equal(3, #tf.split(x, 3, 2))
    N.assert_close({ v[1][3], v[2][3] }, run(tf.gather(x, 3, { axis = 2 })):totable(), 1e-6)
    assert.are.same({ { 0, 5 } }, run(tf.one_hot({ 2 }, 2, 5, 0, { dtype = "int32" })):totable())
    assert.are.equal("ph:0", tf.placeholder("float32", { -1 }, "ph").name)
  end)
end)

describe("TF 1.x argument order in layers, initializers and optimizers", function()
  before_each(function() tf.reset_default_graph() end)

  it("tf.layers.dense(inputs, units, activation) and tf.get_variable(name, shape, dtype, initializer)", function()
    local v = rand_matrix(2, 3)
    local x = tf.constant(v)
    local y = tf.layers.dense(x, 4, tf.nn.relu, false, tf.constant_initializer(0.5))
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local got = sess:run(y):totable()
    for i = 1, 2 do
      local s = 0.5 * (v[i][1] + v[i][2] + v[i][3])
      for j = 1, 4 do assert.is_near(math.max(s, 0), got[i][j], 1e-5) end
    end
    assert.are.equal(1, #tf.trainable_variables())
    local w = tf.get_variable("w", { 2 }, "float64", tf.ones_initializer())
    assert.are.equal("float64", w.dtype)
    local e = err_of(tf.layers.dense, x, 4, { activaton = tf.nn.relu })
    assert.is_truthy(e:find("unknown option 'activaton'", 1, true), e)
    e = err_of(tf.get_variable, "u", { 2 }, "float16")
    assert.is_truthy(e:find("tf.get_variable: dtype", 1, true), e)
  end)

  it("initializers and optimizers take TF's positional parameters", function()
    local mean, sd = N.rand_list(1, 1, 2)[1], 0.001
    local init = tf.random_normal_initializer(mean, sd, 5)
    local vals = run(init({ 50 }, "float32")):totable()
    for _, x in ipairs(vals) do assert.is_near(mean, x, 0.01) end
    local lim = run(tf.random_uniform_initializer(-1, -0.5)({ 20 }, "float32")):totable()
    for _, x in ipairs(lim) do assert.is_true(x >= -1 and x < -0.5) end
    assert.is_truthy(err_of(tf.random_normal_initializer, { stdev = 1 }):find("unknown option 'stdev'", 1, true))
    local w = tf.Variable({ 1.0, 2.0 })
    local loss = tf.reduce_sum(tf.square(w))
    local step = tf.train.MomentumOptimizer(0.1, 0.9, false, "M", true):minimize(loss)
    local adam = tf.train.AdamOptimizer(0.01, 0.8):minimize(loss)
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    sess:run({ step, adam })
    assert.is_truthy(sess:run(w):totable()[1] < 1.0)
    assert.is_truthy(err_of(tf.train.AdamOptimizer, 0.01, { beta_1 = 0.8 }):find("unknown option 'beta_1'", 1, true))
    assert.is_truthy(err_of(tf.train.GradientDescentOptimizer, "0.1"):find("learning_rate must be", 1, true))
  end)
end)

describe("lists moonflow returns go where lists go", function()
  before_each(function() tf.reset_default_graph() end)

  it("sess:run(tf.gradients(loss, {w, b})) fetches the list", function()
    local wv, bv = N.rand_list(3, -1, 1), N.rand_list(1, -1, 1)
    local w, b = tf.Variable(wv, { dtype = "float64" }), tf.Variable(bv, { dtype = "float64" })
    local loss = tf.reduce_sum(tf.square(w) + b * 3)
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local g = sess:run(tf.gradients(loss, { w, b }))
    N.assert_close({ 2 * wv[1], 2 * wv[2], 2 * wv[3] }, g[1]:totable(), 1e-12)
    N.assert_close({ 9 }, g[2]:totable(), 1e-12)
    assert.are.equal(2, g.n)
    -- compute_gradients' pairs, tf.unstack and tf.split results
    local pairs_ = tf.train.GradientDescentOptimizer(0.1):compute_gradients(loss, { w, b })
    local got = sess:run(pairs_)
    N.assert_close(wv, got[1][2]:totable(), 1e-12)
    assert.are.equal(2, #sess:run(tf.unstack(tf.reshape(w, { 3, 1 }), { axis = 2 })) + 1)
    assert.are.equal(3, #sess:run(tf.split(w, 3)))
    -- as inputs of list-taking functions
    N.assert_close({ 2 * wv[1] + 2 * wv[2] + 2 * wv[3] + 9 },
                   { sess:run(tf.add_n({ tf.reduce_sum(tf.gradients(loss, { w, b })[1]), tf.gradients(loss, b)[1][1] })):item() },
                   1e-12)
    assert.are.same({ 3 }, tf.concat(tf.split(w, 3), 1).shape)
  end)
end)

-- Numeric gradient of f (a Lua function of a float64 tensor) at v.
local function check_grad(shape, v, f)
  local x = tf.placeholder("float64", shape)
  local y = tf.reduce_sum(f(x) * tf.constant(N.rand_list(1, 0.5, 1.5)[1], { dtype = "float64" }))
  local g = tf.gradients(y, x)[1]
  local sess <close> = tf.Session()
  local flat = N.flatten(v)
  local function nest(list)
    if #shape == 1 then return list end
    return N.rows_of(list, shape[2])
  end
  local sym = N.flatten(sess:run(g, { [x] = v }):totable())
  local h = 1e-6
  for i = 1, #flat do
    local p, m = table.move(flat, 1, #flat, 1, {}), table.move(flat, 1, #flat, 1, {})
    p[i], m[i] = flat[i] + h, flat[i] - h
    local num = (sess:run(y, { [x] = nest(p) }):item() - sess:run(y, { [x] = nest(m) }):item()) / (2 * h)
    assert.is_near(num, sym[i], 1e-6 * math.max(1, math.abs(num)), "element " .. i)
  end
end

describe("x[i], tf.strided_slice and x:slice", function()
  before_each(function() tf.reset_default_graph() end)

  it("x[i] is the i-th slice along the first axis, negative from the end", function()
    local v = rand_matrix(4, 3)
    local x = tf.constant(v, { dtype = "float64" })
    N.assert_close(v[1], run(x[1]):totable(), 1e-12)
    N.assert_close(v[4], run(x[-1]):totable(), 1e-12)
    N.assert_close(v[2][3], { run(x[2][3]):item() }, 1e-12)
    assert.are.same({ 3 }, x[2].shape)
    -- an unknown first dimension, negative index computed when run
    local p = tf.placeholder("float64", { -1, 3 })
    N.assert_close(v[3], run(p[-2], { [p] = v }):totable(), 1e-12)
    -- variables, methods and fields still work
    local w = tf.Variable(v)
    assert.are.same({ 3 }, w[1].shape)
    assert.are.equal("function", type(x.eval))
    assert.are.same({ 4, 3 }, x.shape)
    assert.is_nil(x.no_such_field)
  end)

  it("x[i] out of range, x[0] or a non-integer index is an error", function()
    local x = tf.constant({ { 1.0, 2.0 } })
    assert.is_truthy(err_of(function() return x[0] end):find("count from 1", 1, true))
    assert.is_truthy(err_of(function() return x[2] end):find("out of range", 1, true))
    assert.is_truthy(err_of(function() return x[-2] end):find("out of range", 1, true))
    assert.is_truthy(err_of(function() return x[1.5] end):find("must be an integer", 1, true))
    assert.is_truthy(err_of(function() return tf.constant(1.0)[1] end):find("scalar", 1, true))
  end)

  it("strided_slice follows TF with 1-based begin and exclusive end", function()
    local v = rand_matrix(4, 5)
    local x = tf.constant(v, { dtype = "float64" })
    local function sub(rows, cols)
      local out = {}
      for a, i in ipairs(rows) do
        out[a] = {}
        for b, j in ipairs(cols) do out[a][b] = v[i][j] end
      end
      return out
    end
    -- TF: x[1:3, 0:5:2]
    N.assert_close(sub({ 2, 3 }, { 1, 3, 5 }), run(tf.strided_slice(x, { 2, 1 }, { 4, 6 }, { 1, 2 })):totable(), 1e-12)
    -- TF: x[-1, ::-1]
    N.assert_close(sub({ 4 }, { 5, 4, 3, 2, 1 })[1],
                   run(tf.strided_slice(x, { -1, 1 }, { 0, 1 }, { 1, -1 }, { shrink_axis_mask = 1, begin_mask = 2,
                                                                            end_mask = 2 })):totable(), 1e-12)
    -- TF: x[:, tf.newaxis, 1:-1]
    local y = tf.strided_slice(x, { 1, 1, 2 }, { 1, 1, -1 }, { 1, 1, 1 }, { begin_mask = 1, end_mask = 1, new_axis_mask = 2 })
    assert.are.same({ 4, 1, 3 }, y.shape)
    N.assert_close(sub({ 1, 2, 3, 4 }, { 2, 3, 4 }), run(y):totable(), 1e-12)
    -- TF: x[..., 2]
    N.assert_close({ v[1][2], v[2][2], v[3][2], v[4][2] },
                   run(tf.strided_slice(x, { 1, 2 }, { 1, 3 }, { 1, 1 }, { ellipsis_mask = 1, shrink_axis_mask = 2 })):totable(),
                   1e-12)
    assert.is_truthy(err_of(tf.strided_slice, x, { 0 }, { 2 }):find("positions count from 1", 1, true))
  end)

  it("x:slice takes Python's per-dimension specs", function()
    local v = rand_matrix(3, 4)
    local x = tf.constant(v, { dtype = "float64" })
    -- x[1:3, :, ] -> rows 2..3
    N.assert_close({ v[2], v[3] }, run(x:slice({ 2, 4 })):totable(), 1e-12)
    -- x[:, 3]
    N.assert_close({ v[1][4], v[2][4], v[3][4] }, run(x:slice({}, -1)):totable(), 1e-12)
    -- x[::-1, 1]
    N.assert_close({ v[3][2], v[2][2], v[1][2] }, run(x:slice({ nil, nil, -1 }, 2)):totable(), 1e-12)
    assert.are.same({ 1, 3, 4 }, x:slice(tf.newaxis, "...").shape)
    assert.is_truthy(err_of(x.slice, x, { 0, 2 }):find("count from 1", 1, true))
    assert.is_truthy(err_of(x.slice, x, "a"):find("x:slice: spec 1", 1, true))
  end)

  it("gradients through x[i], strided_slice and x:slice match central differences", function()
    local v = rand_matrix(3, 4)
    check_grad({ 3, 4 }, v, function(x) return tf.square(x[2]) + x[-1] end)
    check_grad({ 3, 4 }, v, function(x) return tf.square(tf.strided_slice(x, { 1, 4 }, { 4, 1 }, { 2, -2 })) end)
    check_grad({ 3, 4 }, v, function(x) return tf.exp(x:slice({ 2, 4 }, 3)) * x:slice(1, { 1, 3 }) [1] end)
  end)
end)

describe("docs/API.md", function()
  it("has an entry for every public tf.* function and is up to date", function()
    local gen = assert(loadfile("scripts/gen_api_doc.lua"))("moonflow_gen_api_doc_module")
    local text, missing = gen.render()
    assert.are.same({}, missing, "public functions with no declaration (A.def or A.doc): " .. table.concat(missing, ", "))
    local f = assert(io.open("docs/API.md"))
    local current = f:read("a")
    f:close()
    assert(current == text, "docs/API.md is stale: run `lua5.4 scripts/gen_api_doc.lua`")
    assert.is_truthy(text:find("`tf.nn.softmax(logits, [axis (or dim) = -1], [name])`", 1, true))
  end)

  it("is linked from the README, which lists the differences from TF 1.x", function()
    local f = assert(io.open("README.md"))
    local readme = f:read("a")
    f:close()
    assert.is_truthy(readme:find("(docs/API.md)", 1, true))
    assert.is_truthy(readme:find("## Differences from TensorFlow 1.x", 1, true))
  end)
end)

describe("TF's positional order for constants, variables and optimizers", function()
  before_each(function() tf.reset_default_graph() end)

  it("takes tf.constant(value, dtype, shape, name) and tf.Variable(value, trainable, ...)", function()
    local c = tf.constant(3, tf.float32)
    assert.are.equal("float32", c.dtype) -- TF: an integer value with dtype float32
    local z = tf.constant(0, tf.float64, { 2, 2 }, "zz")
    assert.are.same({ "float64", "zz", { 2, 2 } }, { z.dtype, z.op.name, z.shape })
    assert.are.equal("legacy", tf.constant(1, "legacy").op.name)
    local v = tf.Variable(1.0, false)
    assert.is_false(v.trainable)
    assert.are.equal(0, #tf.trainable_variables())
    assert.are.equal("ww:0", tf.Variable(2.0, true, nil, true, nil, "ww").name)
    local ok, err = pcall(tf.constant, 1, { 2 }, { 3 })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("dtype, shape, name", 1, true))
  end)

  it("takes opt:minimize(loss, global_step, var_list) and apply_gradients(gv, global_step)", function()
    local w = tf.Variable(2.0)
    local gs = tf.Variable(0, false)
    local loss = tf.square(w - 5)
    local opt = tf.train.GradientDescentOptimizer(0.1)
    local step = opt:minimize(loss, gs, { w })
    local step2 = opt:apply_gradients(opt:compute_gradients(loss, { var_list = { w } }), gs, "again")
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    sess:run(step)
    sess:run(step2)
    assert.are.equal(2, sess:run(gs):item())
    assert.is_true(math.abs(sess:run(w):item() - (2 + 0.6 + 0.48)) < 1e-5)
  end)
end)
