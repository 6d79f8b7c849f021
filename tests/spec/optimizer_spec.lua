-- Optimizers: each update rule (TensorFlow 1.x's, training_ops.cc) checked for
-- one and several steps against the same rule computed in plain Lua (float64),
-- in float64 and float32; minimize / compute_gradients / apply_gradients, the
-- global step, slot variables and their names, tensor learning rates, and
-- tf.train.exponential_decay.
local tf = require("moonflow")
local NUM = dofile("tests/spec/support/numeric.lua")
local f32, rand_list, flatten, assert_close = NUM.f32, NUM.rand_list, NUM.flatten, NUM.assert_close

math.randomseed(20240603)


local SHAPE = { 2, 3 }
local N = 6

local function nest(flat) -- {2, 3}
  return { { flat[1], flat[2], flat[3] }, { flat[4], flat[5], flat[6] } }
end

-- Element-wise closeness: relative tolerance with a small absolute floor.
local TOL = { float64 = 1e-12, float32 = 1e-5 }

-- The problem: loss = reduce_sum(w*w*c + w*d), so grad = 2 c w + d.
local function problem(dtype)
  local r = dtype == "float32"
  return {
    w0 = rand_list(N, -1, 1, r),
    c = rand_list(N, 0.2, 1.5, r),
    d = rand_list(N, -1, 1, r),
  }
end

local function grad_of(p, w)
  local g = {}
  for i = 1, N do g[i] = 2 * p.c[i] * w[i] + p.d[i] end
  return g
end

-- Plain-Lua update rules. `h` holds the hyperparameters (already rounded to
-- the variable's dtype where the kernel sees them rounded); `st` the state.
local RULES = {}

function RULES.sgd(h, st, g)
  for i = 1, N do st.w[i] = st.w[i] - h.lr * g[i] end
end

function RULES.momentum(h, st, g)
  st.acc = st.acc or { 0, 0, 0, 0, 0, 0 }
  for i = 1, N do
    st.acc[i] = st.acc[i] * h.momentum + g[i]
    if h.use_nesterov then
      st.w[i] = st.w[i] - (g[i] * h.lr + st.acc[i] * h.momentum * h.lr)
    else
      st.w[i] = st.w[i] - h.lr * st.acc[i]
    end
  end
end

function RULES.adagrad(h, st, g)
  st.acc = st.acc or { h.init_acc, h.init_acc, h.init_acc, h.init_acc, h.init_acc, h.init_acc }
  for i = 1, N do
    st.acc[i] = st.acc[i] + g[i] * g[i]
    st.w[i] = st.w[i] - h.lr * g[i] / math.sqrt(st.acc[i])
  end
end

function RULES.rmsprop(h, st, g)
  st.ms = st.ms or { 1, 1, 1, 1, 1, 1 }
  st.mom = st.mom or { 0, 0, 0, 0, 0, 0 }
  for i = 1, N do
    st.ms[i] = h.decay * st.ms[i] + (1 - h.decay) * g[i] * g[i]
    st.mom[i] = h.momentum * st.mom[i] + h.lr * g[i] / math.sqrt(st.ms[i] + h.epsilon)
    st.w[i] = st.w[i] - st.mom[i]
  end
end

-- TensorFlow keeps beta1_power / beta2_power as float32 variables (created
-- from Python floats) whatever the variable's dtype, multiplied in float32.
function RULES.adam(h, st, g)
  st.m = st.m or { 0, 0, 0, 0, 0, 0 }
  st.v = st.v or { 0, 0, 0, 0, 0, 0 }
  st.b1p = st.b1p or f32(h.beta1_raw)
  st.b2p = st.b2p or f32(h.beta2_raw)
  local lr_t = h.lr * math.sqrt(1 - st.b2p) / (1 - st.b1p)
  for i = 1, N do
    st.m[i] = h.beta1 * st.m[i] + (1 - h.beta1) * g[i]
    st.v[i] = h.beta2 * st.v[i] + (1 - h.beta2) * g[i] * g[i]
    st.w[i] = st.w[i] - lr_t * st.m[i] / (math.sqrt(st.v[i]) + h.epsilon)
  end
  st.b1p = f32(st.b1p * f32(h.beta1_raw))
  st.b2p = f32(st.b2p * f32(h.beta2_raw))
end

-- Each case: how to build the optimizer and its hyperparameters.
local CASES = {
  { name = "GradientDescent", rule = "sgd", hyper = { lr = 0.1 },
    make = function(h) return tf.train.GradientDescentOptimizer(h.lr) end },
  { name = "Momentum", rule = "momentum", hyper = { lr = 0.05, momentum = 0.9 },
    make = function(h) return tf.train.MomentumOptimizer(h.lr, h.momentum) end },
  { name = "Momentum (Nesterov)", rule = "momentum", hyper = { lr = 0.05, momentum = 0.9, use_nesterov = true },
    make = function(h) return tf.train.MomentumOptimizer(h.lr, h.momentum, { use_nesterov = true }) end },
  { name = "Adagrad", rule = "adagrad", hyper = { lr = 0.3, init_acc = 0.1 },
    make = function(h) return tf.train.AdagradOptimizer(h.lr) end },
  { name = "Adagrad (initial_accumulator_value)", rule = "adagrad", hyper = { lr = 0.3, init_acc = 0.5 },
    make = function(h) return tf.train.AdagradOptimizer(h.lr, { initial_accumulator_value = h.init_acc }) end },
  { name = "RMSProp (defaults)", rule = "rmsprop", hyper = { lr = 0.01, decay = 0.9, momentum = 0.0, epsilon = 1e-10 },
    make = function(h) return tf.train.RMSPropOptimizer(h.lr) end },
  { name = "RMSProp (decay, momentum, epsilon)", rule = "rmsprop",
    hyper = { lr = 0.02, decay = 0.8, momentum = 0.5, epsilon = 1e-3 },
    make = function(h)
      return tf.train.RMSPropOptimizer(h.lr, { decay = h.decay, momentum = h.momentum, epsilon = h.epsilon })
    end },
  { name = "Adam (defaults)", rule = "adam", hyper = { lr = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 },
    make = function(h) return tf.train.AdamOptimizer(h.lr) end },
  { name = "Adam (beta1, beta2, epsilon)", rule = "adam", hyper = { lr = 0.1, beta1 = 0.8, beta2 = 0.95, epsilon = 1e-4 },
    make = function(h) return tf.train.AdamOptimizer(h.lr, { beta1 = h.beta1, beta2 = h.beta2, epsilon = h.epsilon }) end },
}

-- The hyperparameters as the kernel sees them: rounded to the variable's dtype.
local function rounded(hyper, dtype)
  local h = {}
  for k, v in pairs(hyper) do
    h[k] = (type(v) == "number" and dtype == "float32") and f32(v) or v
  end
  h.beta1_raw, h.beta2_raw = hyper.beta1, hyper.beta2
  return h
end

local function build(dtype, p)
  local w = tf.Variable(nest(p.w0), { name = "w", dtype = dtype })
  local c = tf.constant(nest(p.c), { dtype = dtype })
  local d = tf.constant(nest(p.d), { dtype = dtype })
  local loss = tf.reduce_sum(w * w * c + w * d)
  return w, loss
end

-- Runs `steps` steps of the case, comparing w after every step.
local function check_case(case, dtype, steps)
  tf.reset_default_graph()
  local p = problem(dtype)
  local w, loss = build(dtype, p)
  local train_op = case.make(case.hyper):minimize(loss)
  local sess <close> = tf.Session()
  sess:run(tf.global_variables_initializer())
  local h = rounded(case.hyper, dtype)
  local st = { w = { table.unpack(p.w0) } }
  for s = 1, steps do
    sess:run(train_op)
    RULES[case.rule](h, st, grad_of(p, st.w))
    local got = sess:run(w):totable()
    assert_close(st.w, got, TOL[dtype], string.format("%s %s step %d", case.name, dtype, s))
  end
  -- the optimizer actually moved the variable
  local moved = false
  for i = 1, N do if st.w[i] ~= p.w0[i] then moved = true end end
  assert.is_true(moved)
end

before_each(function() tf.reset_default_graph() end)

describe("optimizer update rules", function()
  for _, case in ipairs(CASES) do
    for _, dtype in ipairs({ "float64", "float32" }) do
      it(case.name .. " in " .. dtype .. ": one step", function() check_case(case, dtype, 1) end)
      it(case.name .. " in " .. dtype .. ": five steps", function() check_case(case, dtype, 5) end)
    end
  end

  it("updates several variables, each with its own gradient", function()
    local a0, b0 = rand_list(3, -1, 1), rand_list(2, -1, 1)
    local a = tf.Variable(a0, { name = "a", dtype = "float64" })
    local b = tf.Variable(b0, { name = "b", dtype = "float64" })
    -- loss = sum(a^2) + 3 sum(b): grad a = 2a, grad b = 3
    local loss = tf.reduce_sum(a * a) + tf.reduce_sum(b) * 3
    local train_op = tf.train.MomentumOptimizer(0.1, 0.5):minimize(loss)
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local A, B, accA, accB = { table.unpack(a0) }, { table.unpack(b0) }, { 0, 0, 0 }, { 0, 0 }
    for _ = 1, 4 do
      sess:run(train_op)
      for i = 1, 3 do accA[i] = accA[i] * 0.5 + 2 * A[i]; A[i] = A[i] - 0.1 * accA[i] end
      for i = 1, 2 do accB[i] = accB[i] * 0.5 + 3; B[i] = B[i] - 0.1 * accB[i] end
    end
    assert_close(A, sess:run(a):totable(), 1e-12, "a")
    assert_close(B, sess:run(b):totable(), 1e-12, "b")
  end)
end)

describe("minimize and the global step", function()
  it("increments global_step by 1 per run of the train op", function()
    local w = tf.Variable({ 1.0, 2.0 }, { name = "w" })
    local step = tf.train.get_or_create_global_step()
    assert.are.equal("global_step:0", step.name)
    assert.are.equal("int64", step.dtype)
    local train_op = tf.train.GradientDescentOptimizer(0.1):minimize(tf.reduce_sum(w * w), { global_step = step })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    assert.are.equal(0, sess:run(step):item())
    for k = 1, 7 do
      sess:run(train_op)
      assert.are.equal(k, sess:run(step):item())
    end
  end)

  it("get_or_create_global_step returns the same variable twice", function()
    local a = tf.train.get_or_create_global_step()
    local b = tf.train.get_or_create_global_step()
    assert.are.equal(a, b)
    assert.are.equal(a, tf.train.get_global_step())
  end)

  it("increments global_step once per run for Adam, after the update", function()
    local w = tf.Variable({ 1.0, -2.0 }, { name = "w", dtype = "float64" })
    local step = tf.train.get_or_create_global_step()
    local train_op = tf.train.AdamOptimizer(0.1):minimize(tf.reduce_sum(w * w), { global_step = step })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    for k = 1, 3 do sess:run(train_op); assert.are.equal(k, sess:run(step):item()) end
  end)

  it("minimize only touches var_list", function()
    local a = tf.Variable({ 1.0, 2.0 }, { name = "a", dtype = "float64" })
    local b = tf.Variable({ 3.0, 4.0 }, { name = "b", dtype = "float64" })
    local train_op = tf.train.GradientDescentOptimizer(0.25):minimize(tf.reduce_sum(a * b), { var_list = { a } })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    sess:run(train_op)
    -- d/da sum(a b) = b
    assert.are.same({ 1.0 - 0.25 * 3.0, 2.0 - 0.25 * 4.0 }, sess:run(a):totable())
    assert.are.same({ 3.0, 4.0 }, sess:run(b):totable())
  end)
end)

describe("compute_gradients and apply_gradients", function()
  it("returns {grad, var} pairs, with a nil grad for an unrelated variable", function()
    local p = problem("float64")
    local w, loss = build("float64", p)
    local u = tf.Variable({ 5.0, 6.0 }, { name = "u", dtype = "float64" })
    local opt = tf.train.GradientDescentOptimizer(0.1)
    local gvs = opt:compute_gradients(loss, { w, u })
    assert.are.equal(2, #gvs)
    assert.is_true(tf.is_tensor(gvs[1][1]))
    assert.are.equal(w, gvs[1][2])
    assert.is_nil(gvs[2][1])
    assert.are.equal(u, gvs[2][2])
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    assert_close(grad_of(p, p.w0), sess:run(gvs[1][1]):totable(), 1e-12, "grad")
  end)

  it("uses the trainable variables by default", function()
    local w = tf.Variable({ 1.0 }, { name = "w" })
    local nt = tf.Variable({ 2.0 }, { name = "nt", trainable = false })
    local gvs = tf.train.GradientDescentOptimizer(0.1):compute_gradients(tf.reduce_sum(w * nt))
    assert.are.equal(1, #gvs)
    assert.are.equal(w, gvs[1][2])
  end)

  it("apply_gradients applies the given (modified) gradients, skipping nil ones", function()
    local p = problem("float64")
    local w, loss = build("float64", p)
    local u = tf.Variable({ 5.0, 6.0 }, { name = "u", dtype = "float64" })
    local opt = tf.train.GradientDescentOptimizer(0.1)
    local gvs = opt:compute_gradients(loss, { w, u })
    local scaled = { { gvs[1][1] * 3.0, gvs[1][2] }, { gvs[2][1], gvs[2][2] } }
    local step = tf.train.get_or_create_global_step()
    local train_op = opt:apply_gradients(scaled, { global_step = step })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local W = { table.unpack(p.w0) }
    for k = 1, 3 do
      sess:run(train_op)
      local g = grad_of(p, W)
      for i = 1, N do W[i] = W[i] - 0.1 * 3.0 * g[i] end
      assert_close(W, sess:run(w):totable(), 1e-12, "w after step " .. k)
      assert.are.equal(k, sess:run(step):item())
    end
    assert.are.same({ 5.0, 6.0 }, sess:run(u):totable())
  end)

  it("raises a clear error when no variable has a gradient", function()
    local w = tf.Variable({ 1.0, 2.0 }, { name = "w" })
    local loss = tf.reduce_sum(tf.constant({ 3.0, 4.0 }))
    local ok, err = pcall(function() return tf.train.AdamOptimizer(0.1):minimize(loss, { var_list = { w } }) end)
    assert.is_false(ok)
    assert.are.equal("string", type(err))
    assert(err:lower():find("no gradients", 1, true), "message should say no gradients: " .. err)
    ok, err = pcall(function()
      return tf.train.GradientDescentOptimizer(0.1):apply_gradients({ { nil, w } })
    end)
    assert.is_false(ok)
    assert(tostring(err):lower():find("no gradients", 1, true), "message should say no gradients: " .. tostring(err))
  end)
end)

describe("slot variables", function()
  local function names(list)
    local t = {}
    for _, v in ipairs(list) do t[v.name] = true end
    return t
  end

  local SLOTS = {
    { "Momentum", function() return tf.train.MomentumOptimizer(0.1, 0.9) end, { ["w/Momentum:0"] = 0.0 } },
    { "Adagrad", function() return tf.train.AdagradOptimizer(0.1) end, { ["w/Adagrad:0"] = 0.1 } },
    { "RMSProp", function() return tf.train.RMSPropOptimizer(0.1, { momentum = 0.5 }) end,
      { ["w/RMSProp:0"] = 1.0, ["w/RMSProp_1:0"] = 0.0 } },
    { "Adam", function() return tf.train.AdamOptimizer(0.1) end,
      { ["w/Adam:0"] = 0.0, ["w/Adam_1:0"] = 0.0, ["beta1_power:0"] = f32(0.9), ["beta2_power:0"] = f32(0.999) } },
  }

  for _, s in ipairs(SLOTS) do
    it(s[1] .. " names its slots as TensorFlow does; they are non-trainable globals, initialized", function()
      local w = tf.Variable({ { 1.0, 2.0 }, { 3.0, 4.0 } }, { name = "w" })
      local train_op = s[2]():minimize(tf.reduce_sum(w * w))
      local globals, trainables = names(tf.global_variables()), names(tf.trainable_variables())
      assert.are.same({ ["w:0"] = true }, trainables)
      local byname = {}
      for _, v in ipairs(tf.global_variables()) do byname[v.name] = v end
      local sess <close> = tf.Session()
      sess:run(tf.global_variables_initializer())
      for name, init in pairs(s[3]) do
        assert.is_true(globals[name] ~= nil, "missing global " .. name)
        local v = byname[name]
        assert.is_false(v.trainable, name .. " should not be trainable")
        local got = flatten(sess:run(v):totable())
        if name:match("^w/") then
          assert.are.equal("float32", v.dtype)
          assert.are.same({ 2, 2 }, v.shape)
          for i = 1, 4 do assert.are.equal(f32(init), got[i], name) end
        else
          assert.are.equal(init, got[1], name)
        end
      end
      sess:run(train_op)
    end)
  end

  it("Adam's beta powers follow beta^(t+1) after t steps", function()
    local w = tf.Variable({ 1.0 }, { name = "w" })
    local train_op = tf.train.AdamOptimizer(0.1, { beta1 = 0.8, beta2 = 0.9 }):minimize(tf.reduce_sum(w * w))
    local byname = {}
    for _, v in ipairs(tf.global_variables()) do byname[v.name] = v end
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local p1, p2 = f32(0.8), f32(0.9)
    for _ = 1, 3 do
      sess:run(train_op)
      p1, p2 = f32(p1 * f32(0.8)), f32(p2 * f32(0.9))
    end
    assert.are.equal(p1, sess:run(byname["beta1_power:0"]):item())
    assert.are.equal(p2, sess:run(byname["beta2_power:0"]):item())
  end)

  it("numbers the slots of a second variable with the same base separately", function()
    local w = tf.Variable({ 1.0 }, { name = "w" })
    local v = tf.Variable({ 1.0 }, { name = "v" })
    tf.train.AdamOptimizer(0.1):minimize(tf.reduce_sum(w * w) + tf.reduce_sum(v * v))
    local n = names(tf.global_variables())
    for _, name in ipairs({ "w/Adam:0", "w/Adam_1:0", "v/Adam:0", "v/Adam_1:0" }) do
      assert.is_true(n[name] ~= nil, "missing " .. name)
    end
  end)
end)

describe("a learning rate given as a tensor", function()
  it("feeds a placeholder learning rate into GradientDescent", function()
    local p = problem("float32")
    local w, loss = build("float32", p)
    local lr = tf.placeholder("float32", {}, "lr")
    local train_op = tf.train.GradientDescentOptimizer(lr):minimize(loss)
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local W = { table.unpack(p.w0) }
    for _, rate in ipairs({ 0.1, 0.05, 0.2 }) do
      sess:run(train_op, { [lr] = rate })
      local g = grad_of(p, W)
      for i = 1, N do W[i] = W[i] - f32(rate) * g[i] end
      assert_close(W, sess:run(w):totable(), 1e-5, "w at lr " .. rate)
    end
  end)

  it("feeds a placeholder learning rate into Adam for a float64 variable", function()
    local p = problem("float64")
    local w, loss = build("float64", p)
    local lr = tf.placeholder("float64", {}, "lr")
    local train_op = tf.train.AdamOptimizer(lr):minimize(loss)
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local st = { w = { table.unpack(p.w0) } }
    for _, rate in ipairs({ 0.1, 0.01, 0.05 }) do
      sess:run(train_op, { [lr] = rate })
      RULES.adam({ lr = rate, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, beta1_raw = 0.9, beta2_raw = 0.999 },
        st, grad_of(p, st.w))
      assert_close(st.w, sess:run(w):totable(), 1e-12, "w at lr " .. rate)
    end
  end)

  it("uses an exponentially decayed learning rate tied to the global step", function()
    local w = tf.Variable({ 1.0, -1.0 }, { name = "w", dtype = "float64" })
    local step = tf.train.get_or_create_global_step()
    local lr = tf.train.exponential_decay(0.5, step, 2, 0.5, { staircase = true })
    local train_op = tf.train.GradientDescentOptimizer(lr):minimize(tf.reduce_sum(w), { global_step = step })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local W = { 1.0, -1.0 }
    for s = 0, 4 do
      sess:run(train_op)
      local rate = 0.5 * 0.5 ^ (s // 2)
      W[1], W[2] = W[1] - rate, W[2] - rate
      assert_close(W, sess:run(w):totable(), 1e-7, "w after step " .. (s + 1))
    end
  end)
end)

describe("tf.train.exponential_decay", function()
  local function check(staircase)
    local lr0, decay_steps, rate = 0.1, 7, 0.96
    local gs = tf.placeholder("int64", {}, "gs")
    local lr = tf.train.exponential_decay(lr0, gs, decay_steps, rate, { staircase = staircase })
    local sess <close> = tf.Session()
    for _, s in ipairs({ 0, 1, 3, 6, 7, 8, 13, 14, 100, 1000 }) do
      local e = staircase and lr0 * rate ^ (s // decay_steps) or lr0 * rate ^ (s / decay_steps)
      local got = sess:run(lr, { [gs] = s }):item()
      assert(math.abs(got - e) <= 1e-5 * math.abs(e),
        string.format("step %d (staircase %s): expected %.9g, got %.9g", s, tostring(staircase), e, got))
    end
  end
  it("is lr * rate^(step / decay_steps)", function() check(false) end)
  it("floors the exponent with staircase", function() check(true) end)

  it("follows a variable global step", function()
    local step = tf.train.get_or_create_global_step()
    local lr = tf.train.exponential_decay(1.0, step, 10, 0.5)
    local inc = step:assign_add(5)
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    for k = 0, 4 do
      local e = 0.5 ^ (5 * k / 10)
      local got = sess:run(lr):item()
      assert(math.abs(got - e) <= 1e-5 * e, string.format("expected %.9g, got %.9g", e, got))
      sess:run(inc)
    end
  end)
end)
