-- Creating values (LUA_API.md "Creating values"): zeros, ones, fill, *_like,
-- range, and the random ops with their seeds. Sample statistics are checked
-- against the distributions' closed forms; reproducibility against fresh
-- sessions and thread counts.
local tf = require("moonflow")
local O = dofile("tests/spec/support/oracle.lua")

math.randomseed(777)

-- Runs fn inside a fresh graph (so seeds and op counts do not leak) and a
-- session on it; returns what fn returns.
local function in_graph(fn)
  local g = tf.Graph()
  return g:as_default(function() return fn(g) end)
end

local function flat_of(a) return (O.flatten(a:totable())) end

local function stats(t)
  local n, s, s2 = #t, 0, 0
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(t) do
    s = s + v; s2 = s2 + v * v
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  local mean = s / n
  return { mean = mean, std = math.sqrt(s2 / n - mean * mean), min = lo, max = hi, n = n }
end

local function same_values(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function fresh_run(build, config)
  return in_graph(function(g)
    local t = build()
    local s = tf.Session { graph = g, config = config }
    local v = flat_of(s:run(t))
    s:close()
    return v
  end)
end

describe("creating values: zeros, ones, fill, *_like", function()
  local sess = tf.Session()
  it("tf.zeros and tf.ones default to float32", function()
    local z, o = tf.zeros({ 2, 3 }), tf.ones({ 3, 1 })
    assert.are.equal("float32", z.dtype)
    assert.are.same({ 2, 3 }, z.shape)
    O.check(sess:run(z), { 0, 0, 0, 0, 0, 0 }, { 2, 3 }, { dtype = "float32" })
    O.check(sess:run(o), { 1, 1, 1 }, { 3, 1 }, { dtype = "float32" })
  end)
  it("tf.zeros and tf.ones take a dtype", function()
    for _, dt in ipairs({ "float64", "int32", "int64", "uint8" }) do
      O.check(sess:run(tf.zeros({ 2 }, dt)), { 0, 0 }, { 2 }, { dtype = dt, int = dt:match("int") and true or nil })
      O.check(sess:run(tf.ones({ 2, 2 }, dt)), { 1, 1, 1, 1 }, { 2, 2 }, { dtype = dt })
    end
    O.check(sess:run(tf.zeros({ 2 }, "bool")), { false, false }, { 2 }, { dtype = "bool" })
    O.check(sess:run(tf.ones({ 1 }, "bool")), { true }, { 1 }, { dtype = "bool" })
  end)
  it("tf.zeros of a scalar shape and of an empty shape", function()
    O.check(sess:run(tf.zeros({})), { 0 }, {}, { dtype = "float32" })
    O.check(sess:run(tf.ones({ 0, 3 })), {}, { 0, 3 }, { dtype = "float32" })
  end)
  it("tf.fill takes its dtype from the value", function()
    local v = O.f32(math.random() * 10)
    O.check(sess:run(tf.fill({ 2, 2 }, v)), { v, v, v, v }, { 2, 2 }, { dtype = "float32" })
    local k = math.random(-1000, 1000)
    O.check(sess:run(tf.fill({ 3 }, k)), { k, k, k }, { 3 }, { dtype = "int32" })
    O.check(sess:run(tf.fill({ 2 }, true)), { true, true }, { 2 }, { dtype = "bool" })
  end)
  it("tf.fill with an integer that does not fit int32 is exact (int64) or an error, never wrapped", function()
    local big = (1 << 40) + 1
    local ok, r = pcall(function() return sess:run(tf.fill({ 2 }, big)) end)
    if ok then O.check(r, { big, big }, { 2 }, { dtype = "int64" }) end
  end)
  it("tf.zeros_like and tf.ones_like keep shape and dtype", function()
    for _, dt in ipairs({ "float32", "float64", "int32", "int64" }) do
      local x = tf.constant({ { 3, 4, 5 }, { 6, 7, 8 } }, { dtype = dt })
      local z, o = tf.zeros_like(x), tf.ones_like(x)
      assert.are.equal(dt, z.dtype)
      assert.are.equal(dt, o.dtype)
      O.check(sess:run(z), { 0, 0, 0, 0, 0, 0 }, { 2, 3 }, { dtype = dt })
      O.check(sess:run(o), { 1, 1, 1, 1, 1, 1 }, { 2, 3 }, { dtype = dt })
    end
  end)
  it("tf.zeros_like follows the run-time shape of a placeholder", function()
    local p = tf.placeholder("float64", { -1 })
    O.check(sess:run(tf.ones_like(p), { [p] = { 5.0, 6.0, 7.0 } }), { 1, 1, 1 }, { 3 }, { dtype = "float64" })
  end)
  it("a negative or fractional dimension is an error", function()
    O.err(function() return tf.zeros({ 2, -1 }) end)
    O.err(function() return tf.ones({ 1.5 }) end)
  end)
end)

describe("creating values: range", function()
  local sess = tf.Session()
  local function ref_range(a, b, d)
    local t = {}
    local x = a
    if d > 0 then while x < b do t[#t + 1] = x; x = x + d end
    else while x > b do t[#t + 1] = x; x = x + d end end
    return t
  end
  it("one argument: 0 .. limit-1 (half-open, as TensorFlow)", function()
    local n = math.random(3, 12)
    local r = tf.range(n)
    assert.are.equal("int32", r.dtype)
    O.check(sess:run(r), ref_range(0, n, 1), { n }, { dtype = "int32" })
  end)
  it("two arguments: start .. limit-1", function()
    O.check(sess:run(tf.range(3, 8)), { 3, 4, 5, 6, 7 }, { 5 }, { dtype = "int32" })
    O.check(sess:run(tf.range(-2, 1)), { -2, -1, 0 }, { 3 }, { dtype = "int32" })
  end)
  it("three arguments, including a delta that does not divide the span", function()
    O.check(sess:run(tf.range(1, 10, 3)), { 1, 4, 7 }, { 3 }, { dtype = "int32" })
    O.check(sess:run(tf.range(1, 11, 3)), { 1, 4, 7, 10 }, { 4 }, { dtype = "int32" })
    for _ = 1, 5 do
      local a, b, d = math.random(-20, 20), math.random(-20, 20), math.random(1, 5)
      if a > b then d = -d end
      local exp = ref_range(a, b, d)
      O.check(sess:run(tf.range(a, b, d)), exp, { #exp }, { dtype = "int32" })
    end
  end)
  it("a negative delta counts down", function()
    O.check(sess:run(tf.range(5, 1, -2)), { 5, 3 }, { 2 }, { dtype = "int32" })
    O.check(sess:run(tf.range(10, 0, -3)), { 10, 7, 4, 1 }, { 4 }, { dtype = "int32" })
  end)
  it("an empty range", function()
    O.check(sess:run(tf.range(3, 3)), {}, { 0 }, { dtype = "int32" })
    O.check(sess:run(tf.range(5, 1)), {}, { 0 }, { dtype = "int32" })
  end)
  it("a float range is float32", function()
    local r = tf.range(0.5, 2.0, 0.25)
    assert.are.equal("float32", r.dtype)
    O.check(sess:run(r), { 0.5, 0.75, 1.0, 1.25, 1.5, 1.75 }, { 6 }, { dtype = "float32" })
    O.check(sess:run(tf.range(1.0, -0.5, -0.5)), { 1.0, 0.5, 0.0 }, { 3 }, { dtype = "float32" })
  end)
  it("a float range of a non-exact delta has ceil((limit - start) / delta) elements", function()
    local r = sess:run(tf.range(0.0, 1.0, 0.3))
    assert.are.same({ 4 }, r:shape())
    O.check(r, { 0.0, O.f32(0.3), O.f32(0.6), O.f32(0.9) }, { 4 }, { dtype = "float32", rtol = 1e-6, atol = 1e-7 })
  end)
  it("an integer range beyond int32 is exact (int64) or an error, never wrapped", function()
    local step = 1 << 38
    local ok, r = pcall(function() return sess:run(tf.range(0, 1 << 40, step)) end)
    if ok then O.check(r, { 0, step, 2 * step, 3 * step }, { 4 }, { dtype = "int64" }) end
  end)
  it("a zero delta is an error", function()
    O.err(function() return sess:run(tf.range(0, 5, 0)) end)
  end)
end)

describe("creating values: random distributions", function()
  local N = { 200, 500 } -- 10^5 samples
  it("tf.random_normal: shape, dtype, mean 0 and stddev 1 by default", function()
    local v = fresh_run(function() return tf.random_normal(N, { seed = 1 }) end)
    local a = in_graph(function() return tf.random_normal(N) end)
    assert.are.same(N, a.shape)
    assert.are.equal("float32", a.dtype)
    assert.are.equal(100000, #v)
    local s = stats(v)
    assert.is_true(math.abs(s.mean) < 0.02, "mean " .. s.mean)
    assert.is_true(math.abs(s.std - 1) < 0.02, "std " .. s.std)
    local within = 0
    for _, x in ipairs(v) do if math.abs(x) < 1 then within = within + 1 end end
    assert.is_true(math.abs(within / #v - 0.682689) < 0.006, "P(|x|<1) = " .. within / #v)
  end)
  it("tf.random_normal honours mean, stddev and float64", function()
    local v = fresh_run(function() return tf.random_normal(N, { mean = 3.0, stddev = 2.0, dtype = "float64", seed = 7 }) end)
    local d = in_graph(function() return tf.random_normal({ 2 }, { dtype = "float64" }).dtype end)
    assert.are.equal("float64", d)
    local s = stats(v)
    assert.is_true(math.abs(s.mean - 3) < 0.04, "mean " .. s.mean)
    assert.is_true(math.abs(s.std - 2) < 0.04, "std " .. s.std)
    -- float64 samples are not just float32 values widened
    local non_f32 = 0
    for i = 1, 100 do if v[i] ~= O.f32(v[i]) then non_f32 = non_f32 + 1 end end
    assert.is_true(non_f32 > 90)
  end)
  it("tf.random_uniform: [0, 1) by default with the uniform mean and variance", function()
    local v = fresh_run(function() return tf.random_uniform(N, { seed = 3 }) end)
    local s = stats(v)
    assert.is_true(s.min >= 0 and s.max < 1, ("range [%g, %g]"):format(s.min, s.max))
    assert.is_true(s.min < 0.001 and s.max > 0.999)
    assert.is_true(math.abs(s.mean - 0.5) < 0.005, "mean " .. s.mean)
    assert.is_true(math.abs(s.std - math.sqrt(1 / 12)) < 0.005, "std " .. s.std)
  end)
  it("tf.random_uniform honours minval and maxval, float32 and float64", function()
    for _, dt in ipairs({ "float32", "float64" }) do
      local lo, hi = -3.0, 5.0
      local v = fresh_run(function() return tf.random_uniform(N, { minval = lo, maxval = hi, dtype = dt, seed = 11 }) end)
      local s = stats(v)
      assert.is_true(s.min >= lo and s.max < hi, ("range [%g, %g]"):format(s.min, s.max))
      assert.is_true(math.abs(s.mean - 1.0) < 0.04, "mean " .. s.mean)
      assert.is_true(math.abs(s.std - 8 / math.sqrt(12)) < 0.04, "std " .. s.std)
    end
  end)
  it("tf.random_uniform with int32 and a maxval draws every integer in [minval, maxval) evenly", function()
    local v = fresh_run(function() return tf.random_uniform(N, { minval = -2, maxval = 8, dtype = "int32", seed = 5 }) end)
    local counts = {}
    for _, x in ipairs(v) do
      assert.are.equal("integer", math.type(x))
      assert.is_true(x >= -2 and x < 8, "value " .. x)
      counts[x] = (counts[x] or 0) + 1
    end
    for k = -2, 7 do
      assert.is_true(math.abs((counts[k] or 0) - 10000) < 600, ("count of %d: %s"):format(k, tostring(counts[k])))
    end
  end)
  it("tf.random_uniform with an integer dtype and no maxval is an error", function()
    O.err(function() return tf.random_uniform({ 3 }, { dtype = "int32" }) end)
  end)
  it("tf.truncated_normal keeps every value within 2 stddev of the mean", function()
    for _, dt in ipairs({ "float32", "float64" }) do
      local mean, sd = -1.0, 0.5
      local v = fresh_run(function() return tf.truncated_normal(N, { mean = mean, stddev = sd, dtype = dt, seed = 9 }) end)
      local s = stats(v)
      assert.is_true(s.min >= mean - 2 * sd and s.max <= mean + 2 * sd, ("range [%g, %g]"):format(s.min, s.max))
      assert.is_true(s.min < mean - 1.9 * sd and s.max > mean + 1.9 * sd)
      assert.is_true(math.abs(s.mean - mean) < 0.01, "mean " .. s.mean)
      -- stddev of a normal truncated at +-2 sigma: 0.87962 sigma
      assert.is_true(math.abs(s.std - 0.87962 * sd) < 0.01, "std " .. s.std)
    end
  end)
  it("tf.truncated_normal default is mean 0, stddev 1, float32", function()
    local a = in_graph(function() return tf.truncated_normal({ 4, 4 }) end)
    assert.are.equal("float32", a.dtype)
    assert.are.same({ 4, 4 }, a.shape)
    local v = fresh_run(function() return tf.truncated_normal(N, { seed = 2 }) end)
    local s = stats(v)
    assert.is_true(s.min >= -2 and s.max <= 2)
    assert.is_true(math.abs(s.std - 0.87962) < 0.01, "std " .. s.std)
  end)
end)

describe("creating values: random seeds", function()
  local function seeded(op, graph_seed, op_seed)
    return function()
      if graph_seed then tf.set_random_seed(graph_seed) end
      return op({ 1000 }, { seed = op_seed })
    end
  end
  for _, name in ipairs({ "random_normal", "random_uniform", "truncated_normal" }) do
    it(name .. ": same graph seed and op seed give identical numbers in a fresh session", function()
      local build = seeded(tf[name], 1234, 42)
      local a, b = fresh_run(build), fresh_run(build)
      assert.is_true(same_values(a, b))
    end)
    it(name .. ": identical numbers whatever the thread count", function()
      local build = seeded(tf[name], 1234, 42)
      local a = fresh_run(build)
      local b = fresh_run(build, { inter_op_threads = 2 })
      local c = fresh_run(build, { inter_op_threads = 2, intra_op_threads = 2 })
      assert.is_true(same_values(a, b))
      assert.is_true(same_values(a, c))
    end)
  end
  it("a different op seed or graph seed gives different numbers", function()
    local a = fresh_run(seeded(tf.random_normal, 1234, 42))
    local b = fresh_run(seeded(tf.random_normal, 1234, 43))
    local c = fresh_run(seeded(tf.random_normal, 1235, 42))
    assert.is_false(same_values(a, b))
    assert.is_false(same_values(a, c))
  end)
  it("a graph seed alone makes a graph reproducible", function()
    local build = function()
      tf.set_random_seed(99)
      return tf.random_uniform({ 500 })
    end
    assert.is_true(same_values(fresh_run(build), fresh_run(build)))
  end)
  it("an op seed alone makes an op reproducible", function()
    local build = function() return tf.random_uniform({ 500 }, { seed = 17 }) end
    assert.is_true(same_values(fresh_run(build), fresh_run(build)))
  end)
  it("successive runs of one op in one session give different numbers", function()
    in_graph(function(g)
      tf.set_random_seed(5)
      local r = tf.random_normal({ 200 }, { seed = 1 })
      local s = tf.Session { graph = g }
      local a, b = flat_of(s:run(r)), flat_of(s:run(r))
      assert.is_false(same_values(a, b))
      -- and the sequence of runs replays in a fresh session
      local s2 = tf.Session { graph = g, config = { inter_op_threads = 2 } }
      assert.is_true(same_values(a, flat_of(s2:run(r))))
      assert.is_true(same_values(b, flat_of(s2:run(r))))
    end)
  end)
  it("without any seed two fresh sessions give different numbers", function()
    in_graph(function(g)
      local r = tf.random_uniform({ 200 })
      local a = flat_of(tf.Session { graph = g }:run(r))
      local b = flat_of(tf.Session { graph = g }:run(r))
      assert.is_false(same_values(a, b))
    end)
  end)
  it("with a graph seed, two random ops in one graph give different numbers", function()
    in_graph(function(g)
      tf.set_random_seed(2024)
      local r1, r2 = tf.random_normal({ 200 }), tf.random_normal({ 200 })
      local out = tf.Session { graph = g }:run({ r1, r2 })
      assert.is_false(same_values(flat_of(out[1]), flat_of(out[2])))
    end)
  end)
  it("graph seed 0 with op seed 0 is still a fixed seed (TensorFlow maps (0, 0) to (0, 2^31-1))", function()
    local build = function()
      tf.set_random_seed(0)
      return tf.random_uniform({ 100 }, { seed = 0 })
    end
    assert.is_true(same_values(fresh_run(build), fresh_run(build)))
  end)
  it("the seed must be an integer", function()
    O.err(function() tf.set_random_seed(1.5) end)
  end)
end)

describe("tf.multinomial", function()
  it("draws 1-based class ids with the softmax's probabilities", function()
    local p = { 0.1, 0.6, 0.3 }
    local logits = tf.constant({ { math.log(p[1]), math.log(p[2]), math.log(p[3]) } }, { dtype = "float64" })
    local n = 30000
    local draws = tf.Session():run(tf.multinomial(logits, n, { seed = 9 }))
    assert.are.equal("int64", draws.dtype)
    assert.are.same({ 1, n }, draws:shape())
    local count = { 0, 0, 0 }
    for i = 1, n do
      local id = draws[1][i]
      assert.is_true(id >= 1 and id <= 3)
      count[id] = count[id] + 1
    end
    for k = 1, 3 do
      local sd = math.sqrt(p[k] * (1 - p[k]) / n)
      assert.is_true(math.abs(count[k] / n - p[k]) < 5 * sd, string.format("class %d: %.4f", k, count[k] / n))
    end
  end)

  it("is reproducible with a seed in a fresh session, and differs between runs", function()
    local function draw()
      local g = tf.Graph()
      return g:as_default(function()
        local m = tf.multinomial(tf.constant({ { 0.0, 0.0, 0.0, 0.0 } }), 50, { seed = 4 })
        local s = tf.Session{ graph = g }
        return s:run(m):totable(), s:run(m):totable()
      end)
    end
    local a1, a2 = draw()
    local b1 = draw()
    assert.are.same(a1, b1)
    assert.are_not.same(a1, a2)
  end)
end)

describe("tf.multinomial with logits that are no distribution", function()
  before_each(function() tf.reset_default_graph() end)

  local function sample(row)
    local logits = tf.placeholder("float32", { 2, 3 })
    local m = tf.multinomial(logits, 4, { seed = 1 })
    local sess = tf.Session()
    local ok, res = pcall(function() return sess:run(m, { [logits] = { { 0.0, 0.0, 0.0 }, row } }) end)
    sess:close()
    return ok, res
  end

  it("refuses a NaN or +inf logit, and a row of -inf (it used to return class 1)", function()
    for _, row in ipairs({ { 0.0, 0 / 0, 1.0 }, { 0.0, math.huge, 1.0 }, { -math.huge, -math.huge, -math.huge } }) do
      local ok, err = sample(row)
      assert.is_false(ok)
      assert.matches("Multinomial", tostring(err))
      assert.matches("NaN or %+inf", tostring(err))
    end
  end)

  it("still samples a row with some -inf logits (a masked class)", function()
    local ok, res = sample({ -math.huge, 0.0, -math.huge })
    assert.is_true(ok, tostring(res))
    for s = 1, 4 do assert.are.equal(2, res[2][s]) end
  end)
end)
