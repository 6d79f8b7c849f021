-- Selection and rearrangement (lua/moonflow/index_ops.lua): top_k, in_top_k,
-- pad, reverse, reverse_sequence, gather_nd, scatter_nd, boolean_mask,
-- where(cond), cumsum and cumprod, each against a plain-Lua float64
-- reference on fresh random inputs. Indices, axes and positions count from 1.
-- Gradients are checked against central differences in gradient_check_spec.
local tf = require("moonflow")
local O = dofile("tests/spec/support/oracle.lua")

math.randomseed(os.time())

local sess = tf.Session()
local function run(t, feeds) return sess:run(t, feeds) end
local function const(flat, shape, dtype) return tf.constant(O.nest(flat, shape), { dtype = dtype }) end
local F64 = { dtype = "float64" }

-- ---------------------------------------------------------------- references

local function strides(shape)
  local s, acc = {}, 1
  for d = #shape, 1, -1 do s[d] = acc; acc = acc * shape[d] end
  return s
end

-- The 1-based multi-index of flat position k (1-based).
local function unflat(shape, k)
  local idx, rest = {}, k - 1
  for d = #shape, 1, -1 do idx[d] = rest % shape[d] + 1; rest = rest // shape[d] end
  return idx
end

local function flat_at(shape, idx)
  local st, off = strides(shape), 0
  for d = 1, #shape do off = off + (idx[d] - 1) * st[d] end
  return off + 1
end

local function rand_shape(rank, lo, hi)
  local s = {}
  for d = 1, rank do s[d] = math.random(lo, hi) end
  return s
end

-- Small integers as floats: many ties.
local function rand_ties(n)
  local t = {}
  for i = 1, n do t[i] = math.random(-3, 3) + 0.0 end
  return t
end

-- ---------------------------------------------------------------- top_k, in_top_k

local function ref_top_k(flat, shape, k)
  local n = shape[#shape]
  local vals, ids = {}, {}
  for r = 0, #flat // n - 1 do
    local order = {}
    for j = 1, n do order[j] = j end
    table.sort(order, function(a, b)
      local x, y = flat[r * n + a], flat[r * n + b]
      local xn, yn = x ~= x, y ~= y
      if xn ~= yn then return xn end -- NaN first
      if not xn and x ~= y then return x > y end
      return a < b
    end)
    for j = 1, k do vals[#vals + 1], ids[#ids + 1] = flat[r * n + order[j]], order[j] end
  end
  local oshape = { table.unpack(shape) }
  oshape[#oshape] = k
  return vals, ids, oshape
end

describe("tf.nn.top_k", function()
  it("gives each row's k largest values, larger first, and their 1-based indices (ties: lower index first)", function()
    for _ = 1, 5 do
      local shape = rand_shape(math.random(1, 3), 1, 7)
      local n = shape[#shape]
      local k = math.random(0, n)
      local flat = rand_ties(O.numel(shape))
      local v, i = tf.nn.top_k(const(flat, shape, "float64"), k)
      local ev, ei, es = ref_top_k(flat, shape, k)
      O.check(run(v), ev, es, F64)
      O.check(run(i), ei, es, { dtype = "int32" })
    end
  end)

  it("keeps that order for a large k (whole rows sorted), NaN first", function()
    local n = math.random(40, 90)
    local flat = rand_ties(3 * n)
    for _ = 1, 4 do flat[math.random(#flat)] = 0 / 0 end
    local k = math.random(33, n)
    local v, i = tf.nn.top_k(const(flat, { 3, n }, "float64"), k)
    -- the reference puts NaN first, then larger values, then the lower index
    local _, ei = ref_top_k(flat, { 3, n }, k)
    O.check(run(i), ei, { 3, k })
    local got, gi = O.flatten(run(v):totable()), O.flatten(run(i):totable())
    for j = 1, #got do
      local r = (j - 1) // k
      local e = flat[r * n + gi[j]]
      assert.is_true(got[j] == e or (got[j] ~= got[j] and e ~= e))
    end
  end)

  it("orders integers, takes k as a tensor, sorted = false, and defaults k to 1", function()
    local flat = O.rand_ints(20, -5, 5)
    local x = const(flat, { 4, 5 }, "int32")
    local v, i = tf.nn.top_k(x, tf.constant(3), { sorted = false })
    local ev, ei, es = ref_top_k(flat, { 4, 5 }, 3)
    O.check(run(v), ev, es, { dtype = "int32" })
    O.check(run(i), ei, es)
    local v1 = tf.nn.top_k(x)
    assert.are.same({ 4, 1 }, v1.shape)
  end)

  it("puts NaN above every number, as TensorFlow", function()
    local v, i = tf.nn.top_k(tf.constant({ { 1.0, 0 / 0, 2.0, 0 / 0 } }), 3)
    local got = run(v):totable()[1]
    assert.is_true(got[1] ~= got[1] and got[2] ~= got[2])
    assert.are.equal(2.0, got[3])
    O.check(run(i), { 2, 4, 3 }, { 1, 3 })
  end)

  it("refuses a k past the row's end, a negative k and a scalar input", function()
    assert.matches("last dimension has only 3", O.err(function() tf.nn.top_k(tf.constant({ 1.0, 2.0, 3.0 }), 4) end))
    assert.matches("k must be >= 0", O.err(function() tf.nn.top_k(tf.constant({ 1.0 }), -1) end))
    assert.matches("rank >= 1", O.err(function() tf.nn.top_k(tf.constant(1.0), 1) end))
    local k = tf.placeholder("int32", {})
    local v = tf.nn.top_k(tf.constant({ 1.0, 2.0 }), k)
    assert.matches("last dimension has only 2", O.err(function() run(v, { [k] = 3 }) end))
  end)
end)

describe("tf.nn.in_top_k", function()
  it("is true where fewer than k classes score above the 1-based target (ties count as in)", function()
    for _ = 1, 5 do
      local b, n = math.random(1, 6), math.random(1, 6)
      local k = math.random(0, n)
      local p = rand_ties(b * n)
      local t = O.rand_ints(b, 0, n + 1) -- 0 and n + 1 are out of range: false
      local expect = {}
      for r = 1, b do
        local id = t[r]
        if id < 1 or id > n then
          expect[r] = false
        else
          local above = 0
          for j = 1, n do if p[(r - 1) * n + j] > p[(r - 1) * n + id] then above = above + 1 end end
          expect[r] = above < k
        end
      end
      O.check(run(tf.nn.in_top_k(const(p, { b, n }, "float32"), t, k)), expect, { b }, { dtype = "bool" })
    end
  end)

  it("is false for a non-finite target score, and takes k as a tensor", function()
    local p = tf.constant({ { 0 / 0, 1.0 }, { 1 / 0, 0.0 } })
    O.check(run(tf.nn.in_top_k(p, { 1, 1 }, tf.constant(2))), { false, false }, { 2 })
  end)
end)

-- ---------------------------------------------------------------- pad

local function ref_pad(flat, shape, pads, mode, cv)
  local oshape = {}
  for d = 1, #shape do oshape[d] = shape[d] + pads[d][1] + pads[d][2] end
  local res = {}
  for k = 1, O.numel(oshape) do
    local idx, src, inside = unflat(oshape, k), {}, true
    for d = 1, #shape do
      local s, n = idx[d] - pads[d][1], shape[d] -- 1-based position in the input
      if s < 1 or s > n then
        if mode == "CONSTANT" then inside = false
        elseif mode == "REFLECT" then s = s < 1 and 2 - s or 2 * n - s
        else s = s < 1 and 1 - s or 2 * n + 1 - s end
      end
      src[d] = s
    end
    res[k] = inside and flat[flat_at(shape, src)] or cv
  end
  return res, oshape
end

describe("tf.pad", function()
  for _, mode in ipairs({ "CONSTANT", "REFLECT", "SYMMETRIC" }) do
    it(mode .. " pads every dimension as TensorFlow", function()
      for _ = 1, 6 do
        local shape = rand_shape(math.random(1, 3), 1, 4)
        local pads = {}
        for d = 1, #shape do
          local most = mode == "REFLECT" and shape[d] - 1 or mode == "SYMMETRIC" and shape[d] or 3
          pads[d] = { math.random(0, most), math.random(0, most) }
        end
        local flat = O.rand_floats(O.numel(shape), -2, 2)
        local cv = mode == "CONSTANT" and math.random(-3, 3) + 0.5 or 0
        local y = tf.pad(const(flat, shape, "float64"), pads, mode, { constant_values = cv })
        local e, es = ref_pad(flat, shape, pads, mode, cv)
        O.check(run(y), e, es, F64)
        assert.are.same(es, y.shape)
      end
    end)
  end

  it("takes paddings as a [rank, 2] tensor and the mode in any case, and pads integers", function()
    local flat = O.rand_ints(6, -9, 9)
    local x = const(flat, { 2, 3 }, "int32")
    local pads = { { 1, 0 }, { 2, 2 } }
    local e, es = ref_pad(flat, { 2, 3 }, pads, "SYMMETRIC", 0)
    O.check(run(tf.pad(x, tf.constant(pads), "symmetric")), e, es, { dtype = "int32" })
    e, es = ref_pad(flat, { 2, 3 }, pads, "CONSTANT", 7)
    O.check(run(tf.pad(x, pads, { constant_values = 7 })), e, es, { dtype = "int32" })
  end)

  it("refuses paddings past what a mirror can give, negative ones and unknown modes", function()
    local x = tf.constant({ { 1.0, 2.0 }, { 3.0, 4.0 } })
    assert.matches("REFLECT paddings of dimension 1 %(size 2%) must be at most 1",
                   O.err(function() tf.pad(x, { { 2, 0 }, { 0, 0 } }, "REFLECT") end))
    assert.matches("must be >= 0", O.err(function() tf.pad(x, { { -1, 0 }, { 0, 0 } }) end))
    assert.matches("paddings has 1 rows for an input of rank 2", O.err(function() tf.pad(x, { { 1, 1 } }) end))
    assert.matches("mode must be CONSTANT, REFLECT or SYMMETRIC", O.err(function() tf.pad(x, { { 1, 1 }, { 0, 0 } }, "WRAP") end))
    local p = tf.placeholder("int32", { 2, 2 })
    local y = tf.pad(x, p, "SYMMETRIC")
    assert.matches("at most 2", O.err(function() run(y, { [p] = { { 0, 3 }, { 0, 0 } } }) end))
  end)
end)

-- ---------------------------------------------------------------- reverse, reverse_sequence

describe("tf.reverse", function()
  it("reverses the listed 1-based (or negative) dimensions", function()
    for _ = 1, 5 do
      local shape = rand_shape(math.random(1, 4), 1, 4)
      local axes = {}
      for d = 1, #shape do if math.random() < 0.5 then axes[#axes + 1] = math.random() < 0.5 and d or d - #shape - 1 end end
      local flat = O.rand_floats(O.numel(shape))
      local rev = {}
      for _, a in ipairs(axes) do rev[a < 0 and a + #shape + 1 or a] = true end
      local e = {}
      for k = 1, #flat do
        local idx = unflat(shape, k)
        for d = 1, #shape do if rev[d] then idx[d] = shape[d] + 1 - idx[d] end end
        e[k] = flat[flat_at(shape, idx)]
      end
      O.check(run(tf.reverse(const(flat, shape, "float64"), axes)), e, shape, F64)
    end
  end)

  it("refuses an axis out of range or named twice", function()
    local x = tf.constant({ { 1.0 } })
    assert.matches("out of range", O.err(function() tf.reverse(x, { 3 }) end))
    assert.matches("twice", O.err(function() tf.reverse(x, { 1, -2 }) end))
  end)
end)

describe("tf.reverse_sequence", function()
  it("reverses the first seq_lengths[b] entries along seq_axis of each batch slice", function()
    for _ = 1, 5 do
      local shape = rand_shape(3, 1, 5)
      local sa = math.random(1, 3)
      local ba = ({ 1, 2, 3 })[(sa + math.random(0, 1)) % 3 + 1]
      local lens = O.rand_ints(shape[ba], 0, shape[sa])
      local flat = O.rand_floats(O.numel(shape))
      local e = {}
      for k = 1, #flat do
        local idx = unflat(shape, k)
        local n = lens[idx[ba]]
        if idx[sa] <= n then idx[sa] = n + 1 - idx[sa] end
        e[k] = flat[flat_at(shape, idx)]
      end
      local y = tf.reverse_sequence(const(flat, shape, "float64"), lens, { seq_axis = sa, batch_axis = ba })
      O.check(run(y), e, shape, F64)
    end
  end)

  it("accepts TF's seq_dim / batch_dim names and refuses lengths past the sequence", function()
    local x = tf.constant({ { 1, 2, 3 }, { 4, 5, 6 } })
    O.check(run(tf.reverse_sequence(x, { 2, 3 }, { seq_dim = 2, batch_dim = 1 })), { 2, 1, 3, 6, 5, 4 }, { 2, 3 })
    assert.matches("seq_lengths%[2%] is 4, outside 0..3", O.err(function() run(tf.reverse_sequence(x, { 1, 4 }, 2)) end))
    assert.matches("needs seq_axis", O.err(function() tf.reverse_sequence(x, { 1, 1 }) end))
    assert.matches("both dimension 1", O.err(function() tf.reverse_sequence(x, { 1, 1 }, 1, 1) end))
  end)
end)

-- ---------------------------------------------------------------- gather_nd, scatter_nd

-- The index rows of ids (shape ishape, last dimension m) into `shape`.
local function rand_index_rows(ishape, shape)
  local m = ishape[#ishape]
  local ids = {}
  for r = 0, O.numel(ishape) // math.max(m, 1) - 1 do
    for d = 1, m do ids[r * m + d] = math.random(1, shape[d]) end
  end
  return ids
end

describe("tf.gather_nd and tf.scatter_nd", function()
  it("gather_nd gathers the slices that 1-based index rows name", function()
    for _ = 1, 6 do
      local shape = rand_shape(math.random(1, 3), 1, 4)
      local m = math.random(1, #shape)
      local ishape = rand_shape(math.random(0, 2), 1, 3)
      ishape[#ishape + 1] = m
      local ids = rand_index_rows(ishape, shape)
      local flat = O.rand_floats(O.numel(shape))
      local slice = {}
      for d = m + 1, #shape do slice[#slice + 1] = shape[d] end
      local w, e = O.numel(slice), {}
      for r = 0, #ids // m - 1 do
        local idx = {}
        for d = 1, #shape do idx[d] = d <= m and ids[r * m + d] or 1 end
        local at = flat_at(shape, idx)
        for j = 0, w - 1 do e[#e + 1] = flat[at + j] end
      end
      local oshape = { table.unpack(ishape, 1, #ishape - 1) }
      for _, d in ipairs(slice) do oshape[#oshape + 1] = d end
      O.check(run(tf.gather_nd(const(flat, shape, "float64"), const(ids, ishape, "int64"))), e, oshape, F64)
    end
  end)

  it("scatter_nd adds each update slice at its index row into zeros, repeats summed", function()
    for _ = 1, 6 do
      local shape = rand_shape(math.random(1, 3), 1, 3)
      local m = math.random(1, #shape)
      local rows = math.random(1, 8)
      local ids = rand_index_rows({ rows, m }, shape)
      local slice = {}
      for d = m + 1, #shape do slice[#slice + 1] = shape[d] end
      local w = O.numel(slice)
      local upd = O.rand_floats(rows * w)
      local e = {}
      for k = 1, O.numel(shape) do e[k] = 0 end
      for r = 0, rows - 1 do
        local idx = {}
        for d = 1, #shape do idx[d] = d <= m and ids[r * m + d] or 1 end
        local at = flat_at(shape, idx)
        for j = 0, w - 1 do e[at + j] = e[at + j] + upd[r * w + j + 1] end
      end
      local ushape = { rows, table.unpack(slice) }
      local y = tf.scatter_nd(const(ids, { rows, m }, "int32"), const(upd, ushape, "float64"), shape)
      O.check(run(y), e, shape, { dtype = "float64", rtol = 1e-12, atol = 1e-14 })
    end
  end)

  it("scatter_nd takes its shape as a tensor and sums integers", function()
    local y = tf.scatter_nd({ { 2 }, { 2 }, { 1 } }, { 5, 6, 7 }, tf.constant({ 3 }))
    O.check(run(y), { 7, 11, 0 }, { 3 }, { dtype = "int32" })
  end)

  it("refuse indices out of range and updates of the wrong shape", function()
    local p = tf.constant({ { 1.0, 2.0 }, { 3.0, 4.0 } })
    assert.matches("index 3 %(row 1 of indices, entry 2%) is out of range 1..2",
                   O.err(function() run(tf.gather_nd(p, { { 1, 3 } })) end))
    assert.matches("index 0", O.err(function() run(tf.scatter_nd({ { 0 } }, { 1.0 }, { 2 })) end))
    assert.matches("updates have shape", O.err(function() tf.scatter_nd({ { 1 } }, { 1.0, 2.0 }, { 2 }) end))
    assert.matches("exceeds the rank", O.err(function() tf.gather_nd(p, { { 1, 1, 1 } }) end))
  end)
end)

-- ---------------------------------------------------------------- where, boolean_mask

describe("tf.where(condition) and tf.boolean_mask", function()
  it("where gives the 1-based coordinates of the true elements, in row-major order", function()
    local shape = rand_shape(3, 1, 4)
    local mask = O.rand_bools(O.numel(shape))
    local e, n = {}, 0
    for k = 1, #mask do
      if mask[k] then
        n = n + 1
        for _, c in ipairs(unflat(shape, k)) do e[#e + 1] = c end
      end
    end
    O.check(run(tf.where(const(mask, shape, "bool"))), e, { n, 3 }, { dtype = "int64" })
  end)

  it("boolean_mask keeps the slices where the mask is true, the masked dimensions merged", function()
    for _ = 1, 6 do
      local shape = rand_shape(math.random(1, 4), 1, 4)
      local axis = math.random(1, #shape)
      local k = math.random(1, #shape - axis + 1)
      local mshape = { table.unpack(shape, axis, axis + k - 1) }
      local mask = O.rand_bools(O.numel(mshape))
      local flat = O.rand_floats(O.numel(shape))
      local outer, inner = O.numel({ table.unpack(shape, 1, axis - 1) }), O.numel({ table.unpack(shape, axis + k) })
      local e, kept = {}, 0
      for _, b in ipairs(mask) do if b then kept = kept + 1 end end
      for o = 0, outer - 1 do
        for j, b in ipairs(mask) do
          if b then
            for i = 1, inner do e[#e + 1] = flat[(o * #mask + j - 1) * inner + i] end
          end
        end
      end
      local oshape = { table.unpack(shape, 1, axis - 1) }
      oshape[#oshape + 1] = kept
      for d = axis + k, #shape do oshape[#oshape + 1] = shape[d] end
      local y = tf.boolean_mask(const(flat, shape, "float64"), const(mask, mshape, "bool"), { axis = axis })
      O.check(run(y), e, oshape, F64)
    end
  end)

  it("boolean_mask works on a batch of unknown size, and its gradient scatters back", function()
    local x = tf.placeholder("float64", { -1, 3 })
    local m = tf.placeholder("bool", { -1 })
    local y = tf.boolean_mask(x, m)
    local g = tf.gradients(tf.reduce_sum(y * y), { x })[1]
    local xv = { { 1.0, 2.0, 3.0 }, { 4.0, 5.0, 6.0 }, { 7.0, 8.0, 9.0 } }
    local r = run({ y, g }, { [x] = tf.array(xv, "float64"), [m] = tf.array({ true, false, true }, "bool") })
    O.check(r[1], { 1, 2, 3, 7, 8, 9 }, { 2, 3 })
    O.check(r[2], { 2, 4, 6, 0, 0, 0, 14, 16, 18 }, { 3, 3 })
    local x3 = tf.placeholder("float32", { -1, 2, 2 })
    local y3 = tf.boolean_mask(x3, tf.constant({ { true, false }, { true, true } }), { axis = 2 })
    local v = run(y3, { [x3] = tf.array({ { { 1, 2 }, { 3, 4 } } }, "float32") })
    O.check(v, { 1, 3, 4 }, { 1, 3 })
  end)

  it("boolean_mask refuses a mask that does not fit", function()
    local x = tf.constant({ { 1.0, 2.0 } })
    assert.matches("does not match", O.err(function() tf.boolean_mask(x, { true, false, true }, { axis = 2 }) end))
    assert.matches("does not fit", O.err(function() tf.boolean_mask(x, { { true } }, { axis = 2 }) end))
    assert.matches("needs both x and y", O.err(function() tf.where(tf.constant({ true }), 1.0) end))
  end)
end)

-- ---------------------------------------------------------------- cumsum, cumprod

local function ref_cum(flat, shape, axis, prod, exclusive, reverse)
  local res = {}
  local st = strides(shape)
  local n = shape[axis]
  for k = 1, #flat do
    local idx = unflat(shape, k)
    if idx[axis] == 1 then
      local acc = prod and 1 or 0
      for t = 1, n do
        local pos = reverse and n + 1 - t or t
        local at = k + (pos - 1) * st[axis]
        local before = acc
        acc = prod and acc * flat[at] or acc + flat[at]
        res[at] = exclusive and before or acc
      end
    end
  end
  return res
end

describe("tf.cumsum and tf.cumprod", function()
  for _, name in ipairs({ "cumsum", "cumprod" }) do
    it(name .. " runs along a 1-based axis, exclusive and reversed as TensorFlow", function()
      for _ = 1, 8 do
        local shape = rand_shape(math.random(1, 3), 1, 5)
        local axis = math.random(1, #shape)
        local ex, rev = math.random() < 0.5, math.random() < 0.5
        local flat = O.rand_floats(O.numel(shape), 0.5, 1.5)
        local y = tf[name](const(flat, shape, "float64"), math.random() < 0.5 and axis or axis - #shape - 1,
                           { exclusive = ex, reverse = rev })
        O.check(run(y), ref_cum(flat, shape, axis, name == "cumprod", ex, rev), shape,
                { dtype = "float64", rtol = 1e-12, atol = 1e-14 })
      end
    end)
  end

  it("defaults to the first axis and accumulates integers", function()
    local flat = O.rand_ints(12, -4, 4)
    O.check(run(tf.cumsum(const(flat, { 3, 4 }, "int32"))), ref_cum(flat, { 3, 4 }, 1, false), { 3, 4 }, { dtype = "int32" })
    O.check(run(tf.cumprod(const(flat, { 3, 4 }, "int64"), 2, true)), ref_cum(flat, { 3, 4 }, 2, true, true), { 3, 4 },
            { dtype = "int64" })
  end)

  it("cumprod's gradient is 0, not NaN, where x is 0 (TF's div_no_nan)", function()
    local x = tf.constant({ 2.0, 0.0, 3.0 }, { dtype = "float64" })
    local g = tf.gradients(tf.reduce_sum(tf.cumprod(x)), { x })[1]
    -- d/dx1 (x1 + x1 x2 + x1 x2 x3) = 1 + x2 + x2 x3 = 1; x2's entry divides by 0: 0 as TF
    O.check(run(g), { 1, 0, 0 }, { 3 }, F64)
  end)

  it("refuses bool input and an axis out of range", function()
    assert.matches("x must be float32", O.err(function() tf.cumsum(tf.constant({ true })) end))
    assert.matches("out of range", O.err(function() tf.cumprod(tf.constant({ 1.0 }), 2) end))
  end)
end)
