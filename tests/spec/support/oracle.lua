-- Reference helpers for the specs: random inputs, float32 rounding, NumPy
-- broadcasting and element-wise comparison, all in plain Lua (float64), so
-- the expected values never come from moonflow itself.
local O = {}

-- Round a Lua float to the nearest float32.
function O.f32(x) return (string.unpack("<f", string.pack("<f", x))) end

-- Wrap a Lua integer to a signed int32 / an unsigned 8-bit value.
function O.wrap32(x) x = x & 0xffffffff; if x >= 0x80000000 then x = x - 0x100000000 end; return x end
function O.wrap8u(x) return x & 0xff end

function O.numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- Random flat lists.
function O.rand_floats(n, lo, hi, f32)
  lo, hi = lo or -1.0, hi or 1.0
  local t = {}
  for i = 1, n do
    local x = lo + (hi - lo) * math.random()
    t[i] = f32 and O.f32(x) or x
  end
  return t
end
function O.rand_ints(n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = math.random(lo, hi) end
  return t
end
function O.rand_bools(n)
  local t = {}
  for i = 1, n do t[i] = math.random() < 0.5 end
  return t
end

-- Nested table from a flat list and a shape (row-major); a scalar for {}.
function O.nest(flat, shape)
  if #shape == 0 then return flat[1] end
  local pos = 0
  local function build(d)
    local t = {}
    for i = 1, shape[d] do
      if d == #shape then pos = pos + 1; t[i] = flat[pos] else t[i] = build(d + 1) end
    end
    return t
  end
  return build(1)
end

-- Flat list and shape of a nested table (or a number / boolean).
function O.flatten(v)
  local flat, shape = {}, {}
  if type(v) ~= "table" then return { v }, {} end
  local t = v
  while type(t) == "table" do shape[#shape + 1] = #t; t = t[1] end
  local function walk(x)
    if type(x) == "table" then for i = 1, #x do walk(x[i]) end else flat[#flat + 1] = x end
  end
  walk(v)
  return flat, shape
end

-- NumPy broadcasting of two shapes; nil when incompatible.
function O.broadcast_shape(a, b)
  local n = math.max(#a, #b)
  local out = {}
  for i = 1, n do
    local da = a[#a - n + i] or 1
    local db = b[#b - n + i] or 1
    if da == db or db == 1 then out[i] = da
    elseif da == 1 then out[i] = db
    else return nil end
  end
  return out
end

-- Flat index into a (broadcast) operand of shape `s` for the output
-- multi-index `idx` (1-based, length #out).
local function src_index(idx, s, nout)
  local off, stride = 0, 1
  for d = #s, 1, -1 do
    local i = idx[nout - #s + d]
    if s[d] == 1 then i = 1 end
    off = off + (i - 1) * stride
    stride = stride * s[d]
  end
  return off + 1
end

-- Element-wise f over operands {flat, shape} pairs with broadcasting.
-- Returns the flat result and its shape.
function O.bmap(f, ...)
  local ops = { ... }
  local shape = {}
  for _, o in ipairs(ops) do shape = assert(O.broadcast_shape(shape, o[2]), "incompatible") end
  local n = O.numel(shape)
  local res, idx = {}, {}
  for d = 1, #shape do idx[d] = 1 end
  for k = 1, n do
    local args = {}
    for j, o in ipairs(ops) do args[j] = o[1][src_index(idx, o[2], #shape)] end
    res[k] = f(table.unpack(args, 1, #ops))
    for d = #shape, 1, -1 do
      idx[d] = idx[d] + 1
      if idx[d] <= shape[d] then break end
      idx[d] = 1
    end
  end
  return res, shape
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end
O.same_shape = same_shape

local function fmt_shape(s) return "{" .. table.concat(s, ", ") .. "}" end
O.fmt_shape = fmt_shape

function O.close(a, e, rtol, atol)
  if e ~= e then return a ~= a end
  if e == math.huge or e == -math.huge then return a == e end
  return math.abs(a - e) <= (rtol or 0) * math.abs(e) + (atol or 0)
end

-- Asserts an Array against an expected flat list and shape.
-- opts: dtype, rtol, atol (exact when neither is given).
function O.check(arr, exp_flat, exp_shape, opts)
  opts = opts or {}
  assert(type(arr) == "userdata" or type(arr) == "table", "expected an Array, got " .. type(arr))
  if opts.dtype then
    assert(arr.dtype == opts.dtype, ("dtype: expected %s, got %s"):format(opts.dtype, tostring(arr.dtype)))
  end
  local shape = arr:shape()
  assert(same_shape(shape, exp_shape),
    ("shape: expected %s, got %s"):format(fmt_shape(exp_shape), fmt_shape(shape)))
  local flat = O.flatten(arr:totable())
  assert(#flat == #exp_flat, ("numel: expected %d, got %d"):format(#exp_flat, #flat))
  local exact = opts.rtol == nil and opts.atol == nil
  for i = 1, #exp_flat do
    local a, e = flat[i], exp_flat[i]
    local ok
    if exact or type(e) == "boolean" then
      ok = a == e or (type(e) == "number" and e ~= e and a ~= a)
      if ok and type(e) == "number" and opts.int then ok = math.type(a) == "integer" end
    else
      ok = type(a) == "number" and O.close(a, e, opts.rtol, opts.atol)
    end
    if not ok then
      error(("element %d: expected %s, got %s%s"):format(i, tostring(e), tostring(a),
        opts.what and (" (" .. opts.what .. ")") or ""), 2)
    end
  end
  return true
end

-- Tolerances per dtype.
O.tol = {
  float32 = { rtol = 1e-6, atol = 1e-7 },
  float64 = { rtol = 1e-12, atol = 1e-15 },
}

-- Runs fn and returns the error message (asserts that it failed).
function O.err(fn)
  local ok, msg = pcall(fn)
  assert(not ok, "expected an error, but the call succeeded")
  return tostring(msg)
end

-- Half-to-even rounding.
function O.round_half_even(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 then return f + 1.0 end
  if d < 0.5 then return f + 0.0 end
  if f % 2 == 0 then return f + 0.0 end
  return f + 1.0
end

return O
