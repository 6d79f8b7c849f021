-- "Arrays of arrays" (LUA_API.md): matmul, shape manipulation, indexing,
-- reductions and graph-structure ops, each checked against plain-Lua
-- references on random inputs. Axes, starts, ids and argmax results are 1-based.
local tf = require("moonflow")
local O = dofile("tests/spec/support/oracle.lua")

math.randomseed(4242)

local sess = tf.Session()
local function run(t, feeds) return sess:run(t, feeds) end
local F32 = { dtype = "float32", rtol = 1e-5, atol = 1e-6 }
local F64 = { dtype = "float64", rtol = 1e-12, atol = 1e-12 }

local function const(flat, shape, dtype) return tf.constant(O.nest(flat, shape), { dtype = dtype }) end

-- ---------------------------------------------------------------- references

local function strides(shape)
  local s, acc = {}, 1
  for d = #shape, 1, -1 do s[d] = acc; acc = acc * shape[d] end
  return s
end

-- Calls fn(idx, k) for every multi-index (1-based) in row-major order.
local function each_index(shape, fn)
  local n = O.numel(shape)
  local idx = {}
  for d = 1, #shape do idx[d] = 1 end
  for k = 1, n do
    fn(idx, k)
    for d = #shape, 1, -1 do
      idx[d] = idx[d] + 1
      if idx[d] <= shape[d] then break end
      idx[d] = 1
    end
  end
end

local function offset(shape, idx)
  local st, off = strides(shape), 0
  for d = 1, #shape do off = off + (idx[d] - 1) * st[d] end
  return off + 1
end

local function ref_transpose(flat, shape, perm)
  local oshape = {}
  for i, p in ipairs(perm) do oshape[i] = shape[p] end
  local res = {}
  each_index(oshape, function(oidx, k)
    local iidx = {}
    for i, p in ipairs(perm) do iidx[p] = oidx[i] end
    res[k] = flat[offset(shape, iidx)]
  end)
  return res, oshape
end

-- a {m, k} x b {k, n}, flat row-major, float64 sums.
local function ref_matmul(a, b, m, k, n)
  local c = {}
  for i = 1, m do
    for j = 1, n do
      local s = 0
      for p = 1, k do s = s + a[(i - 1) * k + p] * b[(p - 1) * n + j] end
      c[(i - 1) * n + j] = s
    end
  end
  return c
end

-- Reduction over a set of axes (1-based, already normalised).
local function ref_reduce(flat, shape, axes, init, step, finish, keep)
  local red = {}
  for _, a in ipairs(axes) do red[a] = true end
  local oshape, kshape = {}, {}
  for d = 1, #shape do
    kshape[d] = red[d] and 1 or shape[d]
    if not red[d] then oshape[#oshape + 1] = shape[d] end
  end
  local acc, cnt = {}, {}
  each_index(shape, function(idx, k)
    local kidx = {}
    for d = 1, #shape do kidx[d] = red[d] and 1 or idx[d] end
    local o = offset(kshape, kidx)
    if acc[o] == nil then acc[o], cnt[o] = init(flat[k]), 1 else acc[o] = step(acc[o], flat[k]); cnt[o] = cnt[o] + 1 end
  end)
  for i = 1, #acc do if finish then acc[i] = finish(acc[i], cnt[i]) end end
  return acc, keep and kshape or oshape
end

local function all_axes(r) local t = {} for d = 1, r do t[d] = d end return t end

local REDUCERS = {
  reduce_sum = { function(x) return x end, function(a, x) return a + x end },
  reduce_mean = { function(x) return x end, function(a, x) return a + x end, function(a, n) return a / n end },
  reduce_max = { function(x) return x end, math.max },
  reduce_min = { function(x) return x end, math.min },
  reduce_prod = { function(x) return x end, function(a, x) return a * x end },
}

-- ---------------------------------------------------------------- specs

describe("array ops: matmul", function()
  for _, dt in ipairs({ "float32", "float64" }) do
    local opts = dt == "float32" and F32 or F64
    it("multiplies " .. dt .. " matrices like a triple loop", function()
      local m, k, n = 5, 7, 3
      local a, b = O.rand_floats(m * k, -1, 1, dt == "float32"), O.rand_floats(k * n, -1, 1, dt == "float32")
      local c = tf.matmul(const(a, { m, k }, dt), const(b, { k, n }, dt))
      assert.are.same({ m, n }, c.shape)
      O.check(run(c), ref_matmul(a, b, m, k, n), { m, n }, opts)
    end)
    it("honours transpose_a and transpose_b on " .. dt, function()
      local m, k, n = 4, 6, 5
      local a, b = O.rand_floats(m * k, -1, 1, true), O.rand_floats(k * n, -1, 1, true)
      local exp = ref_matmul(a, b, m, k, n)
      local at = ref_transpose(a, { m, k }, { 2, 1 })
      local bt = ref_transpose(b, { k, n }, { 2, 1 })
      local A, B = const(a, { m, k }, dt), const(b, { k, n }, dt)
      local AT, BT = const(at, { k, m }, dt), const(bt, { n, k }, dt)
      O.check(run(tf.matmul(AT, B, { transpose_a = true })), exp, { m, n }, opts)
      O.check(run(tf.matmul(A, BT, { transpose_b = true })), exp, { m, n }, opts)
      O.check(run(tf.matmul(AT, BT, { transpose_a = true, transpose_b = true })), exp, { m, n }, opts)
    end)
  end
  it("hand-worked 2x2 product", function()
    O.check(run(tf.matmul({ { 1.0, 2.0 }, { 3.0, 4.0 } }, { { 5.0, 6.0 }, { 7.0, 8.0 } })),
      { 19.0, 22.0, 43.0, 50.0 }, { 2, 2 }, { dtype = "float32" })
  end)
  it("a larger float32 product (k = 300) stays within float32 accumulation error", function()
    local m, k, n = 20, 300, 30
    local a, b = O.rand_floats(m * k, -1, 1, true), O.rand_floats(k * n, -1, 1, true)
    O.check(run(tf.matmul(const(a, { m, k }, "float32"), const(b, { k, n }, "float32"))),
      ref_matmul(a, b, m, k, n), { m, n }, { dtype = "float32", rtol = 1e-5, atol = 1e-4 })
  end)
  it("a rank-2 operand on the left broadcasts over a rank-3 right operand", function()
    local m, k, n, bs = 3, 4, 2, 2
    local a, b = O.rand_ints(m * k, -5, 5), O.rand_ints(bs * k * n, -5, 5)
    local exp = {}
    for i = 1, bs do
      local bi = table.move(b, (i - 1) * k * n + 1, i * k * n, 1, {})
      for _, v in ipairs(ref_matmul(a, bi, m, k, n)) do exp[#exp + 1] = v end
    end
    O.check(run(tf.matmul(const(a, { m, k }, "float64"), const(b, { bs, k, n }, "float64"))), exp, { bs, m, n }, F64)
  end)
  it("gives identical bits for every thread count", function()
    local a, b = O.rand_floats(64 * 128, -1, 1, true), O.rand_floats(128 * 64, -1, 1, true)
    local x = O.rand_floats(100000, -1, 1, true)
    local mm = tf.matmul(const(a, { 64, 128 }, "float32"), const(b, { 128, 64 }, "float32"))
    local rs = tf.reduce_sum(const(x, { 100000 }, "float32"))
    local r1 = tf.Session():run({ mm, rs })
    local r2 = tf.Session { config = { inter_op_threads = 2, intra_op_threads = 2 } }:run({ mm, rs })
    assert.are.same(r1[1]:totable(), r2[1]:totable())
    assert.are.equal(r1[2]:item(), r2[2]:item())
    local s = 0
    for _, v in ipairs(x) do s = s + v end
    assert.is_true(math.abs(r1[2]:item() - s) < 1e-3)
  end)
  it("multiplies int32 matrices exactly", function()
    local a, b = O.rand_ints(12, -50, 50), O.rand_ints(20, -50, 50)
    O.check(run(tf.matmul(const(a, { 3, 4 }, "int32"), const(b, { 4, 5 }, "int32"))),
      ref_matmul(a, b, 3, 4, 5), { 3, 5 }, { dtype = "int32" })
  end)
  it("batches rank-3 operands and broadcasts a rank-2 operand over the batch", function()
    local bs, m, k, n = 3, 4, 5, 2
    local a = O.rand_floats(bs * m * k, -1, 1)
    local b = O.rand_floats(bs * k * n, -1, 1)
    local w = O.rand_floats(k * n, -1, 1)
    local A = const(a, { bs, m, k }, "float64")
    local exp_b, exp_w = {}, {}
    for i = 1, bs do
      local ai = table.move(a, (i - 1) * m * k + 1, i * m * k, 1, {})
      local bi = table.move(b, (i - 1) * k * n + 1, i * k * n, 1, {})
      for _, v in ipairs(ref_matmul(ai, bi, m, k, n)) do exp_b[#exp_b + 1] = v end
      for _, v in ipairs(ref_matmul(ai, w, m, k, n)) do exp_w[#exp_w + 1] = v end
    end
    local cb = tf.matmul(A, const(b, { bs, k, n }, "float64"))
    local cw = tf.matmul(A, const(w, { k, n }, "float64"))
    assert.are.same({ bs, m, n }, cb.shape)
    assert.are.same({ bs, m, n }, cw.shape)
    O.check(run(cb), exp_b, { bs, m, n }, F64)
    O.check(run(cw), exp_w, { bs, m, n }, F64)
  end)
  it("rejects mismatched inner dimensions and mixed dtypes at construction", function()
    O.err(function() return tf.matmul(tf.zeros({ 2, 3 }), tf.zeros({ 2, 3 })) end)
    O.err(function() return tf.matmul(tf.zeros({ 2, 2 }), tf.zeros({ 2, 2 }, "float64")) end)
  end)
end)

describe("array ops: transpose and reshape", function()
  it("tf.transpose reverses the axes by default", function()
    local a = O.rand_ints(24, -9, 9)
    local exp, shp = ref_transpose(a, { 2, 3, 4 }, { 3, 2, 1 })
    local t = tf.transpose(const(a, { 2, 3, 4 }, "int32"))
    assert.are.same({ 4, 3, 2 }, t.shape)
    O.check(run(t), exp, shp, { dtype = "int32" })
  end)
  it("tf.transpose with a 1-based perm", function()
    local a = O.rand_floats(24, -1, 1)
    for _, perm in ipairs({ { 2, 1, 3 }, { 3, 1, 2 }, { 1, 3, 2 }, { 1, 2, 3 } }) do
      local exp, shp = ref_transpose(a, { 2, 3, 4 }, perm)
      O.check(run(tf.transpose(const(a, { 2, 3, 4 }, "float64"), perm)), exp, shp, { dtype = "float64" })
    end
  end)
  it("tf.transpose of a hand-worked matrix", function()
    O.check(run(tf.transpose({ { 1, 2, 3 }, { 4, 5, 6 } })), { 1, 4, 2, 5, 3, 6 }, { 3, 2 }, { dtype = "int32" })
  end)
  it("tf.transpose rejects a perm that is not a permutation", function()
    O.err(function() return tf.transpose(tf.zeros({ 2, 3 }), { 1, 1 }) end)
    O.err(function() return tf.transpose(tf.zeros({ 2, 3 }), { 1, 2, 3 }) end)
  end)
  it("tf.reshape keeps row-major order and infers a -1 dimension", function()
    local a = O.rand_ints(24, -9, 9)
    local x = const(a, { 2, 3, 4 }, "int32")
    O.check(run(tf.reshape(x, { 6, 4 })), a, { 6, 4 }, { dtype = "int32" })
    local r = tf.reshape(x, { -1, 8 })
    assert.are.same({ 3, 8 }, r.shape)
    O.check(run(r), a, { 3, 8 }, { dtype = "int32" })
    O.check(run(tf.reshape(x, { 4, -1, 2 })), a, { 4, 3, 2 }, { dtype = "int32" })
    O.check(run(tf.reshape(x, { -1 })), a, { 24 }, { dtype = "int32" })
  end)
  it("tf.reshape rejects a size mismatch", function()
    O.err(function() return tf.reshape(tf.zeros({ 2, 3 }), { 4, 2 }) end)
    O.err(function() return tf.reshape(tf.zeros({ 2, 3 }), { -1, 4 }) end)
  end)
end)

describe("array ops: concat, stack, unstack, split", function()
  local a, b = O.rand_ints(6, -9, 9), O.rand_ints(8, -9, 9)
  it("tf.concat along axis 1", function()
    local c = tf.concat({ const(a, { 3, 2 }, "int32"), const(b, { 4, 2 }, "int32") }, 1)
    assert.are.same({ 7, 2 }, c.shape)
    local exp = table.move(b, 1, 8, 7, table.move(a, 1, 6, 1, {}))
    O.check(run(c), exp, { 7, 2 }, { dtype = "int32" })
  end)
  it("tf.concat along axis 2 and axis -1", function()
    local x, y = const(a, { 2, 3 }, "int32"), const(b, { 2, 4 }, "int32")
    local exp = {}
    for r = 1, 2 do
      for c = 1, 3 do exp[#exp + 1] = a[(r - 1) * 3 + c] end
      for c = 1, 4 do exp[#exp + 1] = b[(r - 1) * 4 + c] end
    end
    O.check(run(tf.concat({ x, y }, 2)), exp, { 2, 7 }, { dtype = "int32" })
    O.check(run(tf.concat({ x, y }, -1)), exp, { 2, 7 }, { dtype = "int32" })
  end)
  it("tf.concat rejects mismatched other dimensions", function()
    O.err(function() return tf.concat({ tf.zeros({ 2, 3 }), tf.zeros({ 2, 4 }) }, 1) end)
  end)
  it("tf.stack along axis 1 (default) and axis 2", function()
    local p, q = O.rand_floats(3, -1, 1), O.rand_floats(3, -1, 1)
    local x, y = const(p, { 3 }, "float64"), const(q, { 3 }, "float64")
    local s1 = tf.stack({ x, y })
    assert.are.same({ 2, 3 }, s1.shape)
    O.check(run(s1), { p[1], p[2], p[3], q[1], q[2], q[3] }, { 2, 3 }, { dtype = "float64" })
    O.check(run(tf.stack({ x, y }, 2)), { p[1], q[1], p[2], q[2], p[3], q[3] }, { 3, 2 }, { dtype = "float64" })
  end)
  it("tf.unstack along axis 1 and axis 2", function()
    local v = O.rand_ints(6, -9, 9)
    local x = const(v, { 2, 3 }, "int32")
    local rows = tf.unstack(x)
    assert.are.equal(2, #rows)
    O.check(run(rows[1]), { v[1], v[2], v[3] }, { 3 }, { dtype = "int32" })
    O.check(run(rows[2]), { v[4], v[5], v[6] }, { 3 }, { dtype = "int32" })
    local cols = tf.unstack(x, { axis = 2 })
    assert.are.equal(3, #cols)
    for c = 1, 3 do O.check(run(cols[c]), { v[c], v[3 + c] }, { 2 }, { dtype = "int32" }) end
  end)
  it("tf.split into n equal parts", function()
    local v = O.rand_ints(12, -9, 9)
    local parts = tf.split(const(v, { 2, 6 }, "int32"), 3, 2)
    assert.are.equal(3, #parts)
    for p = 1, 3 do
      local exp = {}
      for r = 1, 2 do for c = 1, 2 do exp[#exp + 1] = v[(r - 1) * 6 + (p - 1) * 2 + c] end end
      O.check(run(parts[p]), exp, { 2, 2 }, { dtype = "int32" })
    end
    local rows = tf.split(const(v, { 2, 6 }, "int32"), 2, 1)
    O.check(run(rows[2]), table.move(v, 7, 12, 1, {}), { 1, 6 }, { dtype = "int32" })
  end)
  it("tf.split by a list of sizes", function()
    local v = O.rand_ints(10, -9, 9)
    local parts = tf.split(const(v, { 10 }, "int32"), { 2, 5, 3 }, 1)
    assert.are.equal(3, #parts)
    O.check(run(parts[1]), { v[1], v[2] }, { 2 }, { dtype = "int32" })
    O.check(run(parts[2]), table.move(v, 3, 7, 1, {}), { 5 }, { dtype = "int32" })
    O.check(run(parts[3]), table.move(v, 8, 10, 1, {}), { 3 }, { dtype = "int32" })
  end)
  it("tf.split rejects a dimension not divisible by n", function()
    O.err(function() return tf.split(tf.zeros({ 2, 5 }), 2, 2) end)
  end)
end)

describe("array ops: slice and gather", function()
  it("tf.slice takes 1-based starts and sizes, -1 meaning to the end", function()
    local v = O.rand_ints(20, -9, 9)
    local x = const(v, { 4, 5 }, "int32")
    local s = tf.slice(x, { 2, 3 }, { 2, 2 })
    assert.are.same({ 2, 2 }, s.shape)
    O.check(run(s), { v[8], v[9], v[13], v[14] }, { 2, 2 }, { dtype = "int32" })
    local e = tf.slice(x, { 3, 2 }, { -1, -1 })
    O.check(run(e), { v[12], v[13], v[14], v[15], v[17], v[18], v[19], v[20] }, { 2, 4 }, { dtype = "int32" })
    O.check(run(tf.slice(x, { 1, 1 }, { 4, 5 })), v, { 4, 5 }, { dtype = "int32" })
  end)
  it("tf.slice rejects a window past the end", function()
    O.err(function() return run(tf.slice(tf.zeros({ 4, 5 }), { 4, 1 }, { 2, 1 })) end)
  end)
  it("tf.gather with 1-D ids picks rows (1-based)", function()
    local p = O.rand_floats(15, -1, 1)
    local ids = { 5, 1, 3, 3 }
    local out = tf.gather(const(p, { 5, 3 }, "float64"), ids)
    assert.are.same({ 4, 3 }, out.shape)
    local exp = {}
    for _, id in ipairs(ids) do for c = 1, 3 do exp[#exp + 1] = p[(id - 1) * 3 + c] end end
    O.check(run(out), exp, { 4, 3 }, { dtype = "float64" })
  end)
  it("tf.gather with 2-D ids gives ids.shape .. params.shape[2:]", function()
    local p = O.rand_ints(12, -9, 9)
    local ids = { { 4, 2 }, { 1, 4 } }
    local out = tf.gather(const(p, { 4, 3 }, "int32"), ids)
    assert.are.same({ 2, 2, 3 }, out.shape)
    local exp = {}
    for _, row in ipairs(ids) do for _, id in ipairs(row) do
      for c = 1, 3 do exp[#exp + 1] = p[(id - 1) * 3 + c] end
    end end
    O.check(run(out), exp, { 2, 2, 3 }, { dtype = "int32" })
  end)
  it("tf.gather with the axis option picks columns", function()
    local p = O.rand_ints(12, -9, 9)
    local out = tf.gather(const(p, { 3, 4 }, "int32"), { 4, 1 }, { axis = 2 })
    assert.are.same({ 3, 2 }, out.shape)
    local exp = {}
    for r = 1, 3 do exp[#exp + 1] = p[(r - 1) * 4 + 4]; exp[#exp + 1] = p[(r - 1) * 4 + 1] end
    O.check(run(out), exp, { 3, 2 }, { dtype = "int32" })
  end)
  it("tf.gather with an out-of-range id is a run-time error naming the op", function()
    local ids = tf.placeholder("int32", { -1 })
    local g = tf.gather(tf.constant({ 10, 20, 30 }), ids)
    O.check(run(g, { [ids] = { 3, 1 } }), { 30, 10 }, { 2 }, { dtype = "int32" })
    for _, bad in ipairs({ 4, 0, -1 }) do
      local msg = O.err(function() return run(g, { [ids] = { 1, bad } }) end)
      assert.matches("GatherV2", msg, 1, true)
      assert.matches(g.op.name, msg, 1, true)
    end
  end)
end)

describe("array ops: one_hot, expand_dims, squeeze, tile", function()
  it("tf.one_hot with 1-based ids; out-of-range ids give an all-off row", function()
    local out = tf.one_hot({ 1, 3, 2, 4, 0 }, 3)
    assert.are.same({ 5, 3 }, out.shape)
    assert.are.equal("float32", out.dtype)
    O.check(run(out), { 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0 }, { 5, 3 }, { dtype = "float32" })
  end)
  it("tf.one_hot on random ids matches a Lua loop, with on/off values and dtype", function()
    local ids = O.rand_ints(7, 1, 5)
    local out = tf.one_hot(ids, 5, { on_value = 3, off_value = -1, dtype = "int32" })
    local exp = {}
    for _, id in ipairs(ids) do for d = 1, 5 do exp[#exp + 1] = d == id and 3 or -1 end end
    O.check(run(out), exp, { 7, 5 }, { dtype = "int32" })
  end)
  it("tf.one_hot of 2-D ids appends the depth axis", function()
    local out = tf.one_hot({ { 1, 2 }, { 2, 1 } }, 2)
    O.check(run(out), { 1, 0, 0, 1, 0, 1, 1, 0 }, { 2, 2, 2 }, { dtype = "float32" })
  end)
  it("tf.expand_dims inserts a 1 at a 1-based or negative axis", function()
    local v = O.rand_ints(6, -9, 9)
    local x = const(v, { 2, 3 }, "int32")
    local cases = { [1] = { 1, 2, 3 }, [2] = { 2, 1, 3 }, [3] = { 2, 3, 1 }, [-1] = { 2, 3, 1 }, [-2] = { 2, 1, 3 } }
    for axis, shp in pairs(cases) do
      local e = tf.expand_dims(x, axis)
      assert.are.same(shp, e.shape)
      O.check(run(e), v, shp, { dtype = "int32", what = "axis " .. axis })
    end
  end)
  it("tf.squeeze removes all 1 dimensions, or only the given ones", function()
    local v = O.rand_ints(6, -9, 9)
    local x = const(v, { 1, 2, 1, 3, 1 }, "int32")
    O.check(run(tf.squeeze(x)), v, { 2, 3 }, { dtype = "int32" })
    O.check(run(tf.squeeze(x, 3)), v, { 1, 2, 3, 1 }, { dtype = "int32" })
    O.check(run(tf.squeeze(x, { 1, -1 })), v, { 2, 1, 3 }, { dtype = "int32" })
  end)
  it("tf.squeeze of a dimension that is not 1 is an error", function()
    O.err(function() return tf.squeeze(tf.zeros({ 1, 2 }), 2) end)
  end)
  it("tf.tile repeats along each axis", function()
    local v = O.rand_ints(6, -9, 9)
    local out = tf.tile(const(v, { 2, 3 }, "int32"), { 2, 3 })
    assert.are.same({ 4, 9 }, out.shape)
    local exp = {}
    each_index({ 4, 9 }, function(idx, k) exp[k] = v[((idx[1] - 1) % 2) * 3 + (idx[2] - 1) % 3 + 1] end)
    O.check(run(out), exp, { 4, 9 }, { dtype = "int32" })
    O.check(run(tf.tile({ 1, 2 }, { 3 })), { 1, 2, 1, 2, 1, 2 }, { 6 }, { dtype = "int32" })
  end)
end)

describe("array ops: reductions", function()
  local shape = { 3, 4, 2 }
  local xi = O.rand_ints(24, -4, 4)
  local xf = O.rand_floats(24, 0.5, 1.5)
  local axes_cases = {
    { arg = 1, axes = { 1 } }, { arg = 2, axes = { 2 } }, { arg = 3, axes = { 3 } },
    { arg = -1, axes = { 3 } }, { arg = -3, axes = { 1 } },
    { arg = { 1, 3 }, axes = { 1, 3 } }, { arg = { 2, -1 }, axes = { 2, 3 } },
    { arg = nil, axes = { 1, 2, 3 } },
  }
  for name, r in pairs(REDUCERS) do
    for _, dt in ipairs({ "float64", "float32", "int32" }) do
      if not (name == "reduce_mean" and dt == "int32") then
        it("tf." .. name .. " on " .. dt .. " over axis numbers, lists, negative axes and nil, with keep_dims", function()
          local flat = dt == "int32" and xi or xf
          if dt == "float32" then flat = O.rand_floats(24, 0.5, 1.5, true) end
          local x = const(flat, shape, dt)
          for _, case in ipairs(axes_cases) do
            for _, keep in ipairs({ false, true }) do
              local exp, eshape = ref_reduce(flat, shape, case.axes, r[1], r[2], r[3], keep)
              local out = tf[name](x, case.arg, { keep_dims = keep })
              assert.are.same(eshape, out.shape)
              local opts = dt == "float32" and F32 or dt == "float64" and F64 or { dtype = "int32" }
              opts.what = ("axis %s keep_dims %s"):format(
                type(case.arg) == "table" and table.concat(case.arg, ",") or tostring(case.arg), tostring(keep))
              O.check(run(out), exp, eshape, opts)
              opts.what = nil
            end
          end
        end)
      end
    end
  end
  it("tf.reduce_mean of int32 is integer (truncating) division, as TensorFlow", function()
    O.check(run(tf.reduce_mean({ 1, 2, 4 })), { 2 }, {}, { dtype = "int32" })
  end)
  it("hand-worked reductions", function()
    local x = tf.constant({ { 1.0, 2.0, 3.0 }, { 4.0, 5.0, 6.0 } })
    O.check(run(tf.reduce_sum(x)), { 21.0 }, {}, { dtype = "float32" })
    O.check(run(tf.reduce_sum(x, 1)), { 5.0, 7.0, 9.0 }, { 3 }, { dtype = "float32" })
    O.check(run(tf.reduce_mean(x, 2)), { 2.0, 5.0 }, { 2 }, { dtype = "float32" })
    O.check(run(tf.reduce_max(x, 1, { keep_dims = true })), { 4.0, 5.0, 6.0 }, { 1, 3 }, { dtype = "float32" })
    O.check(run(tf.reduce_prod(x, -1)), { 6.0, 120.0 }, { 2 }, { dtype = "float32" })
  end)
  it("a reduction over an out-of-range axis is an error", function()
    O.err(function() return tf.reduce_sum(tf.zeros({ 2, 3 }), 3) end)
    O.err(function() return tf.reduce_sum(tf.zeros({ 2, 3 }), 0) end)
    O.err(function() return tf.reduce_sum(tf.zeros({ 2, 3 }), -3) end)
  end)
end)

describe("array ops: argmax and argmin", function()
  local function ref_arg(flat, shape, axis, better)
    local res = ref_reduce(flat, shape, { axis }, function() return nil end, function() return nil end)
    -- explicit loop: for each output position, first index of the best value
    local oshape = {}
    for d = 1, #shape do if d ~= axis then oshape[#oshape + 1] = shape[d] end end
    res = {}
    each_index(oshape, function(oidx, k)
      local best, bi
      for i = 1, shape[axis] do
        local idx, j = {}, 1
        for d = 1, #shape do
          if d == axis then idx[d] = i else idx[d] = oidx[j]; j = j + 1 end
        end
        local v = flat[offset(shape, idx)]
        if best == nil or better(v, best) then best, bi = v, i end
      end
      res[k] = bi
    end)
    return res, oshape
  end
  for _, case in ipairs({ { "argmax", function(a, b) return a > b end }, { "argmin", function(a, b) return a < b end } }) do
    local name, better = case[1], case[2]
    it("tf." .. name .. " returns 1-based indices (first on ties) along each axis", function()
      local v = O.rand_ints(24, -3, 3) -- small range: plenty of ties
      local x = const(v, { 3, 4, 2 }, "int32")
      for _, axis in ipairs({ 1, 2, 3, -1 }) do
        local ax = axis < 0 and 3 + axis + 1 or axis
        local exp, shp = ref_arg(v, { 3, 4, 2 }, ax, better)
        local out = tf[name](x, axis)
        O.check(run(out), exp, shp, { what = "axis " .. axis })
        assert.is_true(out.dtype == "int64" or out.dtype == "int32")
      end
    end)
    it("tf." .. name .. " on float64 random values", function()
      local v = O.rand_floats(20, -1, 1)
      local exp, shp = ref_arg(v, { 4, 5 }, 2, better)
      O.check(run(tf[name](const(v, { 4, 5 }, "float64"), 2)), exp, shp)
    end)
  end
  it("hand-worked argmax / argmin", function()
    local x = tf.constant({ { 1, 5, 2 }, { 7, 1, 7 } })
    O.check(run(tf.argmax(x, 2)), { 2, 1 }, { 2 })
    O.check(run(tf.argmin(x, 1)), { 1, 2, 1 }, { 3 })
  end)
end)

describe("array ops: shape, size, identity, stop_gradient", function()
  it("tf.shape gives the run-time dimensions, also for unknown static ones", function()
    local p = tf.placeholder("float32", { -1, 3 })
    O.check(run(tf.shape(p), { [p] = { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 }, { 0, 0, 0 } } }), { 4, 3 }, { 2 },
      { dtype = "int32" })
    O.check(run(tf.shape(tf.zeros({ 2, 5, 1 }))), { 2, 5, 1 }, { 3 }, { dtype = "int32" })
  end)
  it("tf.size gives the number of elements as a scalar", function()
    local p = tf.placeholder("int32", { -1, 2 })
    O.check(run(tf.size(p), { [p] = { { 1, 2 }, { 3, 4 }, { 5, 6 } } }), { 6 }, {}, { dtype = "int32" })
  end)
  it("tf.identity and tf.stop_gradient pass values through", function()
    local v = O.rand_floats(6, -1, 1)
    local x = const(v, { 2, 3 }, "float64")
    O.check(run(tf.identity(x)), v, { 2, 3 }, { dtype = "float64" })
    O.check(run(tf.stop_gradient(x)), v, { 2, 3 }, { dtype = "float64" })
    assert.are.equal("Identity", tf.identity(x).op.type)
  end)
end)

describe("array ops: group, control_dependencies, placeholder_with_default", function()
  local function counter(init)
    local v = tf.Variable(init or 0)
    sess:run(v.initializer)
    return v
  end
  it("tf.group runs all its operations and fetches nothing", function()
    local a, b = counter(0), counter(10)
    local g = tf.group(a:assign_add(1), b:assign_add(5))
    assert.is_nil(sess:run(g))
    sess:run(g)
    O.check(sess:run(a:read_value()), { 2 }, {}, { dtype = "int32" })
    O.check(sess:run(b:read_value()), { 20 }, {}, { dtype = "int32" })
  end)
  it("tf.control_dependencies (callback form): an assign_add runs before the dependent op", function()
    local v = counter(0)
    local inc = v:assign_add(1)
    local r = tf.control_dependencies({ inc }, function() return v:read_value() * 10 end)
    assert.are.same({ inc.op }, r.op.inputs[1].op.control_inputs)
    O.check(sess:run(r), { 10 }, {}, { dtype = "int32" })
    O.check(sess:run(r), { 20 }, {}, { dtype = "int32" })
  end)
  it("tf.control_dependencies (<close> form): an assign_add runs before the dependent op", function()
    local v = counter(5)
    local inc = v:assign_add(2)
    local r
    do
      local _ <close> = tf.control_dependencies({ inc })
      r = tf.identity(v:read_value())
    end
    local after = tf.identity(v:read_value())
    assert.are.equal(0, #after.op.control_inputs)
    for k = 1, 3 do O.check(sess:run(r), { 5 + 2 * k }, {}, { dtype = "int32" }) end
    O.check(sess:run(after), { 11 }, {}, { dtype = "int32" })
  end)
  it("tf.placeholder_with_default gives the default unless fed", function()
    local p = tf.placeholder_with_default({ { 1.0, 2.0 } }, { -1, 2 })
    local y = p * 2
    O.check(run(y), { 2.0, 4.0 }, { 1, 2 }, { dtype = "float32" })
    O.check(run(y, { [p] = { { 3.0, 4.0 }, { 5.0, 6.0 } } }), { 6.0, 8.0, 10.0, 12.0 }, { 2, 2 }, { dtype = "float32" })
    assert.are.same({ -1, 2 }, p.shape)
  end)
  it("tf.placeholder_with_default rejects a feed of the wrong shape", function()
    local p = tf.placeholder_with_default({ { 1.0, 2.0 } }, { -1, 2 })
    O.err(function() return run(p, { [p] = { { 1.0, 2.0, 3.0 } } }) end)
  end)
end)
