-- Device conformance, the idea of ggml's test-backend-ops: every op type is
-- built on fresh random inputs of a few shapes, once placed on the CPU and
-- once on another device, in one graph fed from the same placeholders; the
-- outputs, and the gradients where the op has one, must agree. The test
-- device runs the CUDA kernels' source compiled for the host, so it gets
-- the CUDA tolerance: a small relative error per float dtype.
--
-- Used by tests/spec/conformance_spec.lua and by conformance_check.lua (a
-- command-line runner, which the spec's self-check starts with a broken
-- test-device kernel). Load with dofile from the repository root.
local tf = require("moonflow")
local core = require("moonflow.core")
local G = require("moonflow.graph")

local M = {}

M.CPU = "/device:CPU:0"

-- The kernel backend that serves each device type (tf.sysconfig.op_kernels's names).
M.backend_of = { CPU = "cpu", GPU = "cuda", TEST = "test" }

-- Largest allowed |device - cpu| / max(1, |cpu|) per backend and float
-- dtype (0: bitwise equal). Integer and bool outputs always agree exactly.
M.rtol = {
  cpu = { float32 = 0, float64 = 0 },
  test = { float32 = 1e-5, float64 = 1e-12 },
  cuda = { float32 = 1e-5, float64 = 1e-12 },
}

-- ---------------------------------------------------------------- devices and kernels

-- The devices other than the CPU: {name = "/device:TEST:0", device_type = "TEST",
-- backend = "test"}, from a session's list_devices().
function M.devices()
  local sess <close> = tf.Session{ graph = tf.Graph() }
  local out = {}
  for _, d in ipairs(sess:list_devices()) do
    if d.device_type ~= "CPU" then
      out[#out + 1] = { name = d.name:match("(/device:[^/]+)$"), device_type = d.device_type,
                        backend = M.backend_of[d.device_type] }
    end
  end
  return out
end

-- {[op type] = {[backend] = true}} from tf.sysconfig.op_kernels().
function M.kernels()
  local out = {}
  for op_type, backends in pairs(tf.sysconfig.op_kernels()) do
    out[op_type] = {}
    for _, b in ipairs(backends) do out[op_type][b] = true end
  end
  return out
end

-- Op types that exist only for the host (printing, summaries, file I/O,
-- Lua functions): no CUDA kernel is expected. None so far; the README's
-- GPU section lists them as they come.
M.host_only = {}

-- ---------------------------------------------------------------- random inputs

-- An input is {shape, spec}. A spec fixes the dtype (`dtype`; otherwise the
-- case's dtype is used) and how values are drawn:
--   lo, hi    range (default -2..2; integer dtypes draw integers in it)
--   gap       |v| >= gap (away from zero: divisors, kinks)
--   step      multiples of step (ties for comparisons, halves for Round)
--   distinct  no two floats within 0.05 (no ties for max/min and their gradients)
--   ids = n   integer ids in lo..n (lo defaults to 1: ids count from 1)
--   dist      positive rows that sum to 1 along the last axis (label distributions)
local ANY = {}
local POS = { lo = 0.3, hi = 2 }           -- log, sqrt, pow's base
local NZ = { gap = 0.2 }                   -- divisors, abs, relu
local DISTINCT = { distinct = true }
local DIST = { lo = 0.1, hi = 1, dist = true }
local TIES = { step = 1 }                  -- small integers as floats: many equal pairs
local BOOL = { dtype = "bool" }
local function IDS(n, lo) return { dtype = "int32", ids = n, lo = lo or 1 } end
local function ALL(v) return { lo = v, hi = v } end -- every element v

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

local function is_float(dtype) return dtype == "float32" or dtype == "float64" end

local function draw(shape, spec, dtype)
  local n, out = numel(shape), {}
  if dtype == "bool" then
    for i = 1, n do out[i] = math.random() < 0.5 end
    return out
  end
  if spec.ids then
    for i = 1, n do out[i] = math.random(spec.lo or 1, spec.ids) end
    return out
  end
  local lo, hi = spec.lo or -2, spec.hi or 2
  local int = not is_float(dtype)
  for i = 1, n do
    local v
    repeat
      v = lo + (hi - lo) * math.random()
      if spec.step then v = math.floor(v / spec.step + 0.5) * spec.step end
      if int then v = math.floor(v + 0.5) end
    until not spec.gap or math.abs(v) >= spec.gap
    out[i] = int and math.tointeger(v) or v + 0.0
  end
  if spec.distinct and not int then -- as the gradient checker spreads them (integers keep their ties)
    table.sort(out)
    for i = 2, n do if out[i] - out[i - 1] < 0.05 then out[i] = out[i - 1] + 0.05 + 0.1 * math.random() end end
    for i = n, 2, -1 do local j = math.random(i); out[i], out[j] = out[j], out[i] end
  end
  if spec.dist then
    local w = shape[#shape]
    for r = 0, n // w - 1 do
      local s = 0
      for k = 1, w do s = s + out[r * w + k] end
      for k = 1, w do out[r * w + k] = out[r * w + k] / s end
    end
  end
  return out
end

-- ---------------------------------------------------------------- the table

-- M.cases[op type] = {inputs, build, variants, dtypes}, as the gradient
-- checker's table: `inputs` lists {shape, spec}; build(x1, ..., xn, c) makes
-- the op from the inputs (placeholders on the CPU) and returns its outputs —
-- a tensor or a list — and optionally {xs = {...}, feeds = {...}}: more
-- tensors to differentiate with respect to (variables) and more feeds.
-- c.dtype is the trial's dtype, c.seed a fresh op seed, c.array(i) the value
-- fed to input i. Each entry of `variants` is another {inputs, build?,
-- dtypes?, refuses?}; dtypes default to float32 and float64. A variant with
-- `refuses` has inputs the op must reject (ids out of range, integer
-- division by zero): the device must fail as the CPU does, with the same
-- message, instead of reading out of bounds.
local cases = {}
M.cases = cases

local function out1(op) return op.outputs[1] end

-- ---- element-wise

-- Same shapes, broadcasting both ways, a scalar on either side, an empty
-- dimension, an odd-sized larger pair (vector loop tails) and a larger
-- broadcast row.
local BINARY_SHAPES = {
  { { 3, 4 }, { 3, 4 } }, { { 2, 3, 4 }, { 4 } }, { { 3, 1 }, { 1, 5 } }, { { 2, 1, 3 }, { 4, 1 } },
  { {}, { 5 } }, { { 4 }, {} }, { { 0, 3 }, { 3 } }, { { 19, 67 }, { 19, 67 } }, { { 96, 257 }, { 257 } },
}

local function binary(build, a_spec, b_spec, dtypes)
  local variants = {}
  for i, s in ipairs(BINARY_SHAPES) do variants[i] = { inputs = { { s[1], a_spec or ANY }, { s[2], b_spec or ANY } } } end
  local case = table.remove(variants, 1)
  case.build, case.variants, case.dtypes = function(a, b) return build(a, b) end, variants, dtypes
  return case
end

local INT_TOO = { "float32", "float64", "int32" }
cases.Add = binary(function(a, b) return a + b end, ANY, ANY, INT_TOO)
cases.Sub = binary(function(a, b) return a - b end, ANY, ANY, INT_TOO)
cases.Mul = binary(function(a, b) return a * b end, ANY, ANY, INT_TOO)
-- Integer Div floor-divides (tf.div); floats divide.
cases.Div = binary(function(a, b) return tf.div(a, b) end, ANY, NZ, INT_TOO)
cases.FloorMod = binary(function(a, b) return tf.mod(a, b) end, ANY, NZ, INT_TOO)
cases.Pow = binary(function(a, b) return tf.pow(a, b) end, POS, { lo = 0, hi = 3 }, INT_TOO)
-- Integers refuse division by zero and negative powers.
for name, b_spec in pairs({ Div = ALL(0), FloorMod = ALL(0), Pow = { lo = -2, hi = -1 } }) do
  table.insert(cases[name].variants, { inputs = { { { 2, 3 } }, { { 3 }, b_spec } }, dtypes = { "int32" }, refuses = true })
end
cases.Maximum = binary(tf.maximum, DISTINCT, DISTINCT, INT_TOO)
cases.Minimum = binary(tf.minimum, DISTINCT, DISTINCT, INT_TOO)
for _, name in ipairs({ "Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual" }) do
  local fn = ({ Equal = tf.equal, NotEqual = tf.not_equal, Less = tf.less, LessEqual = tf.less_equal,
                Greater = tf.greater, GreaterEqual = tf.greater_equal })[name]
  cases[name] = binary(fn, TIES, TIES, INT_TOO)
end
cases.LogicalAnd = binary(tf.logical_and, ANY, ANY, { "bool" })
cases.LogicalOr = binary(tf.logical_or, ANY, ANY, { "bool" })

-- A scalar, an empty dimension, rank 3, and an odd-sized vector.
local UNARY_SHAPES = { { 3, 4 }, {}, { 0, 3 }, { 2, 3, 5 }, { 1031 } }

local function unary(build, spec, dtypes)
  local variants = {}
  for i, s in ipairs(UNARY_SHAPES) do variants[i] = { inputs = { { s, spec or ANY } } } end
  local case = table.remove(variants, 1)
  case.build, case.variants, case.dtypes = function(x) return build(x) end, variants, dtypes
  return case
end

cases.Abs = unary(tf.abs, NZ, INT_TOO)
cases.Neg = unary(tf.neg, ANY, INT_TOO)
cases.Sign = unary(tf.sign, TIES, INT_TOO)
cases.Square = unary(tf.square, ANY, INT_TOO)
cases.Reciprocal = unary(tf.reciprocal, NZ)
cases.Round = unary(tf.round, { lo = -3, hi = 3, step = 0.25 }) -- halves, where rounding rules differ
cases.Floor = unary(tf.floor, { lo = -3, hi = 3, step = 0.25 })
cases.Sqrt = unary(tf.sqrt, POS)
cases.Exp = unary(tf.exp, ANY)
cases.Log = unary(tf.log, POS)
cases.Log1p = unary(tf.log1p, { lo = -0.9, hi = 2 })
cases.Cos = unary(tf.cos, { lo = -4, hi = 4 })
cases.Sin = unary(tf.sin, { lo = -4, hi = 4 })
cases.Tanh = unary(tf.tanh, { lo = -4, hi = 4 })
cases.Sigmoid = unary(tf.sigmoid, { lo = -6, hi = 6 })
cases.LogicalNot = unary(tf.logical_not, ANY, { "bool" })
cases.Relu = unary(tf.nn.relu, NZ)
cases.Identity = unary(tf.identity, ANY, { "float32", "float64", "int32", "bool" })
cases.StopGradient = unary(tf.stop_gradient, ANY, { "float32", "int32" })
cases.ZerosLike = unary(tf.zeros_like, ANY, { "float32", "float64", "int32", "bool" })
cases.OnesLike = unary(tf.ones_like, ANY, { "float32", "float64", "int32", "bool" })
cases.Shape = unary(tf.shape, ANY, { "float32", "bool" })
cases.Size = unary(tf.size, ANY, { "float32", "bool" })

-- Every other dtype from each of these (tf.cast of a dtype to itself makes
-- no op); uint8 only from values in its range (the CPU saturates the rest,
-- which other backends' conversions need not do).
local function cast_to(targets)
  return function(x)
    local outs = {}
    for _, to in ipairs(targets) do
      if to ~= x.dtype then outs[#outs + 1] = tf.cast(x, to) end
    end
    return outs
  end
end
cases.Cast = unary(cast_to({ "float32", "float64", "int32", "int64", "bool" }), { lo = -300, hi = 300 },
                   { "float32", "float64", "int32", "bool" })
table.insert(cases.Cast.variants, { inputs = { { { 3, 4 }, { lo = 0, hi = 255 } } }, build = cast_to({ "uint8" }) })

cases.Select = {
  inputs = { { { 3, 4 }, BOOL }, { { 3, 4 } }, { { 3, 4 } } },
  build = function(cond, x, y) return tf.where(cond, x, y) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 3, 1 }, BOOL }, { { 1, 4 } }, { { 4 } } } },
    { inputs = { { {}, BOOL }, { { 2, 3 } }, { { 2, 3 } } } },
    { inputs = { { { 0, 2 }, BOOL }, { { 2 } }, { { 0, 2 } } } },
    { inputs = { { { 517 }, BOOL }, { { 517 } }, { { 517 } } } },
  },
}

-- x, and x + y + z: AddN is what gradients use to sum several paths.
cases.AddN = {
  inputs = { { { 3, 4 } }, { { 3, 4 } }, { { 3, 4 } } },
  build = function(a, b, c) return { out1(G.make_op("AddN", { a })), out1(G.make_op("AddN", { a, b, c })) } end,
  dtypes = INT_TOO,
  variants = { { inputs = { { { 0, 3 } }, { { 0, 3 } }, { { 0, 3 } } } },
               { inputs = { { { 1031 } }, { { 1031 } }, { { 1031 } } } } },
}

-- Control flow: the predicate, the branches and the loop bodies are built
-- under the device scope, so the functions' ops run there, the predicate
-- and the condition cross to the host, and gradients run WhileGrad there.
cases.If = {
  inputs = { { { 3, 4 } }, { { 4 } } },
  build = function(x, y)
    local s = tf.reduce_sum(y)
    return { tf.cond(tf.greater(s, -100), function() return tf.tanh(x) * y end, function() return x end),
             tf.cond(tf.less(s, -100), function() return x end, function() return tf.exp(x) - y end) }
  end,
  dtypes = FLOATS,
}
cases.While = {
  inputs = { { { 3, 4 } }, { { 4 } } },
  build = function(x, y)
    local r = tf.while_loop(function(i) return tf.less(i, 3) end,
                            function(i, h) return i + 1, tf.sin(h) * y + x end, { 0, x })
    return { r[2], tf.map_fn(function(row) return row * y end, x) }
  end,
  dtypes = FLOATS,
}

-- Element-wise edges: integers across their whole range (wrapping
-- arithmetic, int64, uint8), NaNs (Maximum / Minimum / Sign / Cast keep the
-- CPU's rules; the square root of a negative makes them on the device:
-- correctly rounded on both, so the other elements agree exactly), float to
-- integer casts out of range (saturated), and AddN past 32 inputs.
local FLOATS = { "float32", "float64" }
local WIDE = { int32 = { lo = -2e9, hi = 2e9 }, int64 = { lo = -4e18, hi = 4e18 }, uint8 = { lo = 0, hi = 255 } }
local function wide(dt, extra)
  local spec = { dtype = dt }
  for k, v in pairs(WIDE[dt]) do spec[k] = v end
  for k, v in pairs(extra or {}) do spec[k] = v end
  return spec
end
for _, name in ipairs({ "Add", "Sub", "Mul", "Div", "FloorMod", "Maximum", "Minimum", "Equal", "Less", "GreaterEqual" }) do
  local divides = name == "Div" or name == "FloorMod"
  for _, dt in ipairs({ "int32", "int64", "uint8" }) do
    local b = wide(dt, divides and { gap = 1 } or nil)
    table.insert(cases[name].variants, { inputs = { { { 19, 67 }, wide(dt) }, { { 67 }, b } }, dtypes = { dt } })
  end
  if divides then -- small divisors, -1 among them
    table.insert(cases[name].variants,
                 { inputs = { { { 4, 9 }, wide("int64") }, { { 9 }, { dtype = "int64", lo = -2, hi = 2, gap = 1 } } },
                   dtypes = { "int64" } })
  end
end
for _, dt in ipairs({ "int64", "uint8" }) do
  table.insert(cases.Pow.variants, { inputs = { { { 5, 8 }, { dtype = dt, lo = 0, hi = 7 } },
                                                { { 8 }, { dtype = dt, lo = 0, hi = 40 } } }, -- powers that wrap
                                     dtypes = { dt } })
end
for _, name in ipairs({ "Abs", "Neg", "Sign", "Square", "Round", "Floor" }) do
  for _, dt in ipairs({ "int32", "int64", "uint8" }) do
    table.insert(cases[name].variants, { inputs = { { { 7, 9 }, wide(dt) } }, dtypes = { dt } })
  end
end
for _, name in ipairs({ "Maximum", "Minimum" }) do
  local fn = name == "Maximum" and tf.maximum or tf.minimum
  table.insert(cases[name].variants, { inputs = { { { 3, 5 }, { lo = -1, hi = 1 } }, { { 3, 5 } } },
                                       build = function(a, b) return { fn(tf.sqrt(a), b), fn(b, tf.sqrt(a)) } end,
                                       dtypes = FLOATS })
end
table.insert(cases.Sign.variants, { inputs = { { { 3, 5 }, { lo = -1, hi = 1 } } },
                                    build = function(x) return tf.sign(tf.sqrt(x)) end, dtypes = FLOATS })
local to_all = cast_to({ "float32", "float64", "int32", "int64", "bool" })
table.insert(cases.Cast.variants, { inputs = { { { 3, 5 }, { lo = -1, hi = 1 } } },
                                    build = function(x) return to_all(tf.sqrt(x)) end, dtypes = FLOATS })
table.insert(cases.Cast.variants, { inputs = { { { 4, 6 }, { lo = -2e19, hi = 2e19 } } }, build = to_all, dtypes = FLOATS })
table.insert(cases.Cast.variants, { inputs = { { { 4, 6 }, wide("int64") } }, build = to_all, dtypes = { "int64" } })
for _, dt in ipairs({ "int32", "int64" }) do
  table.insert(cases.AddN.variants, { inputs = { { { 5, 7 }, wide(dt) }, { { 5, 7 }, wide(dt) }, { { 5, 7 }, wide(dt) } },
                                      dtypes = { dt } })
end
local MANY = {}
for i = 1, 40 do MANY[i] = { { 5, 7 } } end
table.insert(cases.AddN.variants, { inputs = MANY, dtypes = { "float32", "int64" }, build = function(...)
  return out1(G.make_op("AddN", table.move({ ... }, 1, #MANY, 1, {})))
end })

-- ---- matrix product

local function matmul(ta, tb) return function(a, b) return tf.matmul(a, b, { transpose_a = ta, transpose_b = tb }) end end
cases.MatMul = {
  inputs = { { { 3, 4 } }, { { 4, 5 } } }, build = matmul(false, false),
  variants = {
    { inputs = { { { 4, 3 } }, { { 4, 5 } } }, build = matmul(true, false) },
    { inputs = { { { 3, 4 } }, { { 5, 4 } } }, build = matmul(false, true) },
    { inputs = { { { 4, 3 } }, { { 5, 4 } } }, build = matmul(true, true) },
    { inputs = { { { 2, 3, 4 } }, { { 4, 5 } } }, build = matmul(false, false) }, -- batched
    { inputs = { { { 37, 29 } }, { { 29, 41 } } }, build = matmul(false, false) }, -- GEMM block edges
    { inputs = { { { 257, 130 } }, { { 67, 257 } } }, build = matmul(true, true) }, -- several blocks, threads
    { inputs = { { { 0, 4 } }, { { 4, 3 } } }, build = matmul(false, false) },
    { inputs = { { { 3, 0 } }, { { 0, 4 } } }, build = matmul(false, false) }, -- empty sum: zeros
  },
}

-- ---- shapes and indexing

cases.Transpose = {
  inputs = { { { 2, 3, 4 } } }, build = function(x) return tf.transpose(x, { 3, 1, 2 }) end,
  dtypes = { "float32", "float64", "int32", "bool" },
  variants = {
    { inputs = { { { 3, 5 } } }, build = function(x) return tf.transpose(x) end },
    { inputs = { { { 2, 3, 4, 5 } } }, build = function(x) return tf.transpose(x, { 2, 4, 1, 3 }) end },
    { inputs = { { { 0, 3 } } }, build = function(x) return tf.transpose(x) end },
    { inputs = { { { 2, 3 } } }, build = function(x) return tf.transpose(x, { 1, 2 }) end }, -- the input itself
  },
}
cases.Reshape = {
  inputs = { { { 2, 6 } } }, build = function(x) return tf.reshape(x, { 3, -1 }) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 3, 4 } } }, build = function(x) return tf.reshape(x, { -1 }) end },
    { inputs = { { { 0, 3 } } }, build = function(x) return tf.reshape(x, { 3, 0 }) end },
    { inputs = { { {} } }, build = function(x) return tf.reshape(x, { 1, 1 }) end },
    -- run-time shapes: a host-memory shape input computed on the device
    { inputs = { { { 2, 6 } } }, build = function(x) return tf.reshape(x, tf.stack({ tf.gather(tf.shape(x), 2), -1 })) end },
    { inputs = { { { 2, 3, 4 } } }, build = function(x) return tf.reshape(x, tf.constant({ 4, 6 }, { dtype = "int64" })) end },
  },
}
cases.ExpandDims = {
  inputs = { { { 3 } } }, build = function(x) return tf.expand_dims(x, 1) end,
  variants = {
    { inputs = { { { 2, 3 } } }, build = function(x) return tf.expand_dims(x, -1) end },
    { inputs = { { { 0, 3 } } }, build = function(x) return tf.expand_dims(x, 2) end },
  },
}
cases.Squeeze = {
  inputs = { { { 3, 1 } } }, build = function(x) return tf.squeeze(x) end,
  variants = {
    { inputs = { { { 1, 2, 1, 3 } } }, build = function(x) return tf.squeeze(x, { 1 }) end },
    { inputs = { { { 0, 1 } } }, build = function(x) return tf.squeeze(x, 2) end },
  },
}
cases.ConcatV2 = {
  inputs = { { { 2, 3 } }, { { 2, 2 } } }, build = function(a, b) return tf.concat({ a, b }, 2) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 1, 3 } }, { { 2, 3 } }, { { 0, 3 } } },
      build = function(a, b, c) return tf.concat({ a, b, c }, 1) end },
    { inputs = { { { 2, 3, 4 } }, { { 2, 3, 1 } } }, build = function(a, b) return tf.concat({ a, b }, -1) end },
    { inputs = { { { 3 } } }, build = function(a) return tf.concat({ a }, 1) end },
  },
}
cases.Pack = {
  inputs = { { { 3 } }, { { 3 } } }, build = function(a, b) return tf.stack({ a, b }, 2) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 3 } }, { { 2, 3 } }, { { 2, 3 } } },
      build = function(a, b, c) return tf.stack({ a, b, c }, 1) end },
    { inputs = { { { 0, 2 } }, { { 0, 2 } } }, build = function(a, b) return tf.stack({ a, b }, 3) end },
    { inputs = { { {} }, { {} } }, build = function(a, b) return tf.stack({ a, b }) end },
  },
}
cases.Unpack = {
  inputs = { { { 3, 2 } } }, build = function(x) return tf.unstack(x, { axis = 2 }) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 3, 4 } } }, build = function(x) return tf.unstack(x, { axis = 1 }) end },
    { inputs = { { { 2, 0, 3 } } }, build = function(x) return tf.unstack(x, { axis = 1 }) end },
  },
}
cases.Split = {
  inputs = { { { 2, 4 } } }, build = function(x) return tf.split(x, 2, 2) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 6, 3 } } }, build = function(x) return tf.split(x, 3, 1) end },
    { inputs = { { { 0, 4 } } }, build = function(x) return tf.split(x, 2, 2) end },
  },
}
cases.Slice = {
  inputs = { { { 3, 4 } } }, build = function(x) return tf.slice(x, { 2, 2 }, { 2, -1 }) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 3, 4 } } }, build = function(x) return tf.slice(x, { 1, 2, 1 }, { -1, 1, 3 }) end },
    { inputs = { { { 3, 4 } } }, build = function(x) return tf.slice(x, { 2, 1 }, { 0, 4 }) end },
    { inputs = { { { 3, 4 } } }, -- begin and size as run-time inputs
      build = function(x) return tf.slice(x, tf.constant({ 2, 2 }), tf.stack({ 1, tf.gather(tf.shape(x), 2) - 1 })) end },
  },
}
cases.Tile = {
  inputs = { { { 2, 3 } } }, build = function(x) return tf.tile(x, { 2, 3 }) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 1, 3 } } }, build = function(x) return tf.tile(x, { 1, 4, 2 }) end },
    { inputs = { { { 2, 3 } } }, build = function(x) return tf.tile(x, { 0, 2 }) end },
    { inputs = { { { 3, 2 } } }, build = function(x) return tf.tile(x, { 1, 1 }) end }, -- TileGrad's view of dy
    { inputs = { { { 2, 3 } } }, build = function(x) return tf.tile(x, tf.shape(x)) end }, -- run-time multiples
  },
}
-- Ids count from 1; the second variant gathers along axis 2 with a matrix of ids.
cases.GatherV2 = {
  inputs = { { { 5, 3 } }, { { 7 }, IDS(5) } }, build = function(p, ids) return tf.gather(p, ids) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 3, 4 } }, { { 2, 3 }, IDS(4) } },
      build = function(p, ids) return tf.gather(p, ids, { axis = 2 }) end },
    { inputs = { { { 3, 4 } }, { { 0 }, IDS(3) } } },
    { inputs = { { { 4, 2 } }, { { 6 }, { dtype = "int64", ids = 4 } } } },
    { inputs = { { { 3, 4 } }, { { 2 }, IDS(0, 0) } }, refuses = true }, -- id 0
    { inputs = { { { 3, 4 } }, { { 2 }, IDS(4, 4) } }, refuses = true }, -- past the end
  },
}
-- ---- selection and rearrangement (csrc/ops/index.c, gpu/index.cu)

-- Small integers as floats, so rows hold ties (lower index first); k = n,
-- k = 0, an empty batch, a run-time k and one past the row's end.
local function top_k(k) return function(x) local v, i = tf.nn.top_k(x, k); return { v, i } end end
cases.TopKV2 = {
  inputs = { { { 3, 5 }, TIES } }, build = top_k(3), dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 2, 6 }, DISTINCT } }, build = top_k(6) },
    { inputs = { { { 0, 4 } } }, build = top_k(2) },
    { inputs = { { { 3, 5 } } }, build = top_k(0) },
    { inputs = { { { 4, 37 }, TIES } }, build = function(x) return top_k(tf.size(x) - 140)(x) end },
    { inputs = { { { 3, 50 }, TIES } }, build = top_k(41) }, -- the CPU sorts whole rows past k = 32
    { inputs = { { { 3, 5 } } }, build = function(x) return top_k(tf.size(x) - 9)(x) end, refuses = true },
  },
}
-- Targets from 0 to classes + 1 (out of range: false), ties in the scores.
cases.InTopKV2 = {
  inputs = { { { 6, 5 }, TIES }, { { 6 }, IDS(6, 0) } }, build = function(p, t) return tf.nn.in_top_k(p, t, 2) end,
  variants = {
    { inputs = { { { 4, 7 } }, { { 4 }, { dtype = "int64", ids = 7 } } },
      build = function(p, t) return tf.nn.in_top_k(p, t, tf.size(t) - 1) end },
    { inputs = { { { 0, 3 } }, { { 0 }, IDS(3) } } },
  },
}
cases.PadV2 = {
  inputs = { { { 2, 3 } } }, build = function(x) return tf.pad(x, { { 1, 0 }, { 2, 1 } }, { constant_values = 2 }) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 3, 4 } } }, build = function(x) return tf.pad(x, tf.constant({ { 1, 1 }, { 0, 2 }, { 3, 0 } })) end },
    { inputs = { { { 0, 3 } } }, build = function(x) return tf.pad(x, { { 2, 1 }, { 0, 0 } }) end },
    { inputs = { { { 5 } } }, build = function(x) return tf.pad(x, { { 0, 0 } }) end },
    { inputs = { { { 3 } } }, build = function(x) return tf.pad(x, tf.constant({ { -1, 0 } })) end, refuses = true },
  },
}
cases.MirrorPad = {
  inputs = { { { 3, 4 } } }, build = function(x) return tf.pad(x, { { 2, 1 }, { 3, 3 } }, "REFLECT") end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 3, 4 } } }, build = function(x) return tf.pad(x, { { 3, 2 }, { 0, 4 } }, "SYMMETRIC") end },
    { inputs = { { { 2, 1, 3 } } }, build = function(x) return tf.pad(x, tf.constant({ { 1, 2 }, { 1, 1 }, { 3, 3 } }), "SYMMETRIC") end },
    { inputs = { { { 5, 2 } } }, build = function(x) return tf.pad(x, { { 4, 4 }, { 1, 0 } }, "REFLECT") end },
    { inputs = { { { 3, 4 } } }, build = function(x) return tf.pad(x, tf.constant({ { 3, 0 }, { 0, 0 } }), "REFLECT") end,
      refuses = true },
  },
}
cases.ReverseV2 = {
  inputs = { { { 3, 4 } } }, build = function(x) return tf.reverse(x, { 2 }) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 3, 4 } } }, build = function(x) return tf.reverse(x, { 1, 3 }) end },
    { inputs = { { { 0, 3 } } }, build = function(x) return tf.reverse(x, { 1 }) end },
    { inputs = { { { 5 } } }, build = function(x) return tf.reverse(x, { -1 }) end },
    { inputs = { { { 2, 3 } } }, build = function(x) return tf.reverse(x, {}) end },
  },
}
-- Lengths from 0 to the sequence dimension; one past it refuses.
cases.ReverseSequence = {
  inputs = { { { 3, 5, 2 } }, { { 3 }, IDS(5, 0) } },
  build = function(x, len) return tf.reverse_sequence(x, len, 2, 1) end, dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 4, 3 } }, { { 3 }, { dtype = "int64", ids = 4, lo = 0 } } },
      build = function(x, len) return tf.reverse_sequence(x, len, { seq_axis = 1, batch_axis = 2 }) end },
    { inputs = { { { 3, 5 } }, { { 3 }, IDS(6, 6) } }, build = function(x, len) return tf.reverse_sequence(x, len, 2) end,
      refuses = true },
  },
}
cases.GatherNd = {
  inputs = { { { 4, 3 } }, { { 5, 2 }, IDS(3) } }, build = function(p, ids) return tf.gather_nd(p, ids) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 4, 3, 2 } }, { { 2, 3, 1 }, IDS(4) } } },
    { inputs = { { { 2, 3, 4 } }, { { 5, 3 }, { dtype = "int64", ids = 2 } } } },
    { inputs = { { { 4, 3 } }, { { 0, 2 }, IDS(3) } } },
    { inputs = { { { 4, 3 } }, { { 2, 2 }, IDS(5, 5) } }, refuses = true },
  },
}
-- Repeated indices add up, in order.
cases.ScatterNd = {
  inputs = { { { 6, 1 }, IDS(4) }, { { 6, 3 } } }, build = function(ids, u) return tf.scatter_nd(ids, u, { 4, 3 }) end,
  dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 5, 2 }, IDS(3) }, { { 5 } } }, build = function(ids, u) return tf.scatter_nd(ids, u, tf.constant({ 3, 3 })) end },
    { inputs = { { { 2, 3, 1 }, { dtype = "int64", ids = 2 } }, { { 2, 3, 4 } } },
      build = function(ids, u) return tf.scatter_nd(ids, u, { 2, 4 }) end },
    { inputs = { { { 0, 1 }, IDS(2) }, { { 0, 2 } } }, build = function(ids, u) return tf.scatter_nd(ids, u, { 2, 2 }) end },
    { inputs = { { { 2, 1 }, IDS(5, 5) }, { { 2, 3 } } }, build = function(ids, u) return tf.scatter_nd(ids, u, { 4, 3 }) end,
      refuses = true },
  },
}
cases.Where = {
  inputs = { { { 3, 4 }, BOOL } }, build = function(x) return tf.where(x) end, dtypes = { "bool" },
  variants = {
    { inputs = { { { 0, 3 }, BOOL } } },
    { inputs = { { { 2, 3, 2 }, { lo = -1, hi = 1, step = 1 } } }, dtypes = { "float32", "int32" } },
    { inputs = { { {}, BOOL } } },
  },
}
cases.Cumsum = {
  inputs = { { { 3, 4 } } }, build = function(x) return tf.cumsum(x, 2) end, dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 3, 4 } } }, build = function(x) return tf.cumsum(x, 1, { exclusive = true }) end },
    { inputs = { { { 5 } } }, build = function(x) return tf.cumsum(x, -1, true, true) end },
    { inputs = { { { 0, 3 } } }, build = function(x) return tf.cumsum(x, 1, { reverse = true }) end },
  },
}
cases.Cumprod = {
  inputs = { { { 3, 4 }, NZ } }, build = function(x) return tf.cumprod(x, 2) end, dtypes = { "float32", "float64", "int32" },
  variants = {
    { inputs = { { { 2, 3, 4 }, NZ } }, build = function(x) return tf.cumprod(x, 2, { exclusive = true }) end },
    { inputs = { { { 5 }, NZ } }, build = function(x) return tf.cumprod(x, 1, true, true) end },
    { inputs = { { { 3, 0 } } }, build = function(x) return tf.cumprod(x, 2, { reverse = true }) end },
  },
}
-- Ids from 0 to depth + 1: out-of-range ids give all-off rows.
cases.OneHot = {
  inputs = { { { 6 }, IDS(5, 0) } }, build = function(ids, c) return tf.one_hot(ids, 4, { dtype = c.dtype }) end,
  variants = {
    { inputs = { { { 2, 3 }, IDS(4) } },
      build = function(ids, c)
        return tf.one_hot(ids, 3, { dtype = c.dtype, axis = 1, on_value = 2.5, off_value = -1 })
      end },
    { inputs = { { { 0 }, IDS(4) } } },
    { inputs = { { { 2, 3 }, IDS(4) } }, -- a run-time depth
      build = function(ids, c) return tf.one_hot(ids, tf.size(ids) - 2, { dtype = c.dtype }) end },
  },
  dtypes = { "float32", "float64", "int32", "bool" }, -- 4-, 8- and 1-byte values
}

-- ---- values made from nothing

cases.Const = {
  inputs = { { { 3, 4 } } }, build = function(_, c) return tf.constant(c.array(1)) end,
  dtypes = { "float32", "float64", "int32", "bool" },
  variants = { { inputs = { { {} } } }, { inputs = { { { 0, 3 } } } } },
}
-- The value is an attribute: drawn here, from input 1 (unused as a tensor).
local function fill(shape)
  return function(_, c) return tf.fill(shape, c.array(1):item(), { dtype = c.dtype }) end
end
cases.Fill = {
  inputs = { { {} } }, build = fill({ 3, 4 }), dtypes = { "float32", "float64", "int32" },
  variants = { { inputs = { { {} } }, build = fill({ 0, 3 }) }, { inputs = { { {} } }, build = fill({ 1031 }) },
               { inputs = { { { 2, 5 } } }, -- a run-time shape, x's
                 build = function(x, c) return tf.fill(tf.shape(x), c.array(1):flat(1), { dtype = c.dtype }) end } },
}
-- start, a length and a step, drawn as inputs (the op takes them as attributes).
cases.Range = {
  inputs = { { {}, { lo = -5, hi = 5 } }, { {}, { lo = 0, hi = 20 } }, { {}, { lo = 1, hi = 3 } } },
  build = function(_, _, _, c)
    local start, len, delta = c.array(1):item(), c.array(2):item(), c.array(3):item()
    return tf.range(start, start + len, delta, { dtype = c.dtype })
  end,
  dtypes = INT_TOO,
  variants = { { inputs = { { {} }, { {}, { lo = 0, hi = 0 } }, { {}, { lo = 1, hi = 1 } } } } }, -- empty
}

-- ---- reductions

local function reduction(fn, spec, dtypes, empty_ok)
  local function r(axis, keep) return function(x) return fn(x, axis, { keep_dims = keep }) end end
  local case = {
    inputs = { { { 3, 4 }, spec } }, build = r(2), dtypes = dtypes,
    variants = {
      { inputs = { { { 2, 3, 4 }, spec } }, build = r({ 1, 3 }, true) },
      { inputs = { { { 3, 4 }, spec } }, build = r(nil) },
      { inputs = { { { 5 }, spec } }, build = r(1) },
      { inputs = { { { 3, 0 }, spec } }, build = r(1) },
      { inputs = { { { 37, 65 }, spec } }, build = r(2) },
      { inputs = { { { 37, 65 }, spec } }, build = r(1) },
      -- Few outputs of long folds: the chunked two-pass path, along the
      -- last axis and over two separated axes.
      { inputs = { { { 3, 2500 }, spec } }, build = r(2) },
      { inputs = { { { 30, 3, 45 }, spec } }, build = r({ 1, 3 }, true) },
    },
  }
  -- Reducing an empty axis: sum 0, mean NaN, product 1; max and min refuse.
  table.insert(case.variants, { inputs = { { { 0, 3 }, spec } }, build = r(1), refuses = not empty_ok })
  return case
end
cases.Sum = reduction(tf.reduce_sum, ANY, INT_TOO, true)
cases.Mean = reduction(tf.reduce_mean, ANY, nil, true)
cases.Prod = reduction(tf.reduce_prod, { lo = 0.7, hi = 1.3 }, nil, true)
cases.Max = reduction(tf.reduce_max, DISTINCT, INT_TOO, false)
cases.Min = reduction(tf.reduce_min, DISTINCT, INT_TOO, false)

local function arg_reduction(fn)
  return {
    inputs = { { { 3, 4 }, DISTINCT } }, build = function(x) return fn(x, 2) end, dtypes = INT_TOO,
    variants = {
      { inputs = { { { 2, 3, 4 }, DISTINCT } }, build = function(x) return fn(x, 1) end },
      { inputs = { { { 0, 3 }, DISTINCT } }, build = function(x) return fn(x, 2) end },
      { inputs = { { { 19, 67 }, DISTINCT } }, build = function(x) return fn(x, -1) end },
      -- Long folds in chunks (integers have ties across chunks: the first wins).
      { inputs = { { { 2, 3000 }, DISTINCT } }, build = function(x) return fn(x, 2) end },
      { inputs = { { { 2100, 3 }, DISTINCT } }, build = function(x) return fn(x, 1) end },
      { inputs = { { { 3, 0 } } }, build = function(x) return fn(x, 2) end, refuses = true }, -- an empty axis
    },
  }
end
cases.ArgMax = arg_reduction(tf.argmax)
cases.ArgMin = arg_reduction(tf.argmin)

-- ---- neural-network ops

local function rows(build, spec)
  return {
    inputs = { { { 3, 4 }, spec } }, build = function(x) return build(x) end,
    variants = { { inputs = { { { 2, 3, 5 }, spec } } }, { inputs = { { { 0, 4 }, spec } } },
                 { inputs = { { { 5, 129 }, spec } } } },
  }
end
cases.Softmax = rows(tf.nn.softmax, { lo = -4, hi = 4 })
cases.LogSoftmax = rows(tf.nn.log_softmax, { lo = -4, hi = 4 })
cases.SoftmaxCrossEntropyWithLogits = {
  inputs = { { { 3, 4 } }, { { 3, 4 }, DIST } },
  build = function(logits, labels) return tf.nn.softmax_cross_entropy_with_logits{ labels = labels, logits = logits } end,
  variants = { { inputs = { { { 0, 4 } }, { { 0, 4 }, DIST } } }, { inputs = { { { 7, 129 } }, { { 7, 129 }, DIST } } } },
}
cases.SparseSoftmaxCrossEntropyWithLogits = {
  inputs = { { { 3, 4 } }, { { 3 }, IDS(4) } },
  build = function(logits, labels)
    return tf.nn.sparse_softmax_cross_entropy_with_logits{ labels = labels, logits = logits }
  end,
  variants = { { inputs = { { { 2, 3, 5 } }, { { 2, 3 }, IDS(5) } } }, { inputs = { { { 0, 4 } }, { { 0 }, IDS(4) } } },
               { inputs = { { { 3, 4 } }, { { 3 }, IDS(0, 0) } }, refuses = true },
               { inputs = { { { 3, 4 } }, { { 3 }, IDS(5, 5) } }, refuses = true } },
}
-- Both copies carry the same seed, so they draw the same mask.
cases.Dropout = {
  inputs = { { { 4, 5 } } }, build = function(x, c) return tf.nn.dropout(x, 0.6, { seed = c.seed }) end,
  variants = {
    { inputs = { { { 4, 5 } }, { {}, { lo = 0.3, hi = 0.9 } } },
      build = function(x, keep, c) return tf.nn.dropout(x, keep, { seed = c.seed }) end },
    { inputs = { { { 0, 3 } } } },
    { inputs = { { { 1031 } } } },
  },
}

-- ---- convolutions and pooling (NHWC): odd sizes, strides, both paddings,
-- dilation, a 1x1 window (the GEMM-only path), an empty batch
local function conv(strides, padding, dilations)
  return function(x, f) return tf.nn.conv2d(x, f, strides, padding, { dilations = dilations }) end
end
cases.Conv2D = {
  inputs = { { { 2, 5, 6, 3 } }, { { 3, 3, 3, 4 } } }, build = conv({ 1, 1, 1, 1 }, "SAME"),
  variants = {
    { inputs = { { { 2, 7, 5, 2 } }, { { 3, 2, 2, 3 } } }, build = conv({ 1, 2, 2, 1 }, "VALID") },
    { inputs = { { { 1, 9, 8, 2 } }, { { 3, 3, 2, 2 } } }, build = conv({ 1, 2, 1, 1 }, "SAME", { 1, 2, 2, 1 }) },
    { inputs = { { { 2, 4, 4, 5 } }, { { 1, 1, 5, 3 } } }, build = conv({ 1, 1, 1, 1 }, "SAME") },
    { inputs = { { { 0, 4, 4, 2 } }, { { 2, 2, 2, 3 } } }, build = conv({ 1, 1, 1, 1 }, "VALID") },
  },
}
cases.Conv2DBackpropInput = {
  inputs = { { { 2, 3, 3, 4 } }, { { 3, 3, 2, 4 } } },
  build = function(x, f) return tf.nn.conv2d_transpose(x, f, { 2, 6, 5, 2 }, { 1, 2, 2, 1 }, "SAME") end,
  variants = {
    { inputs = { { { 1, 3, 4, 3 } }, { { 2, 3, 2, 3 } } },
      build = function(x, f) return tf.nn.conv2d_transpose(x, f, { 1, 4, 6, 2 }, { 1, 1, 1, 1 }, "VALID") end },
  },
}
local function pool(fn, ksize, strides, padding)
  return function(x) return fn(x, ksize, strides, padding) end
end
for name, fn in pairs({ MaxPool = tf.nn.max_pool, AvgPool = tf.nn.avg_pool }) do
  cases[name] = {
    inputs = { { { 2, 5, 5, 3 }, DISTINCT } }, build = pool(fn, { 1, 2, 2, 1 }, { 1, 2, 2, 1 }, "SAME"),
    variants = {
      { inputs = { { { 1, 7, 6, 2 }, DISTINCT } }, build = pool(fn, { 1, 3, 2, 1 }, { 1, 2, 1, 1 }, "VALID") },
      { inputs = { { { 2, 6, 7, 2 }, DISTINCT } }, build = pool(fn, { 1, 3, 3, 1 }, { 1, 1, 2, 1 }, "SAME") },
      { inputs = { { { 0, 4, 4, 2 } } }, build = pool(fn, { 1, 2, 2, 1 }, { 1, 2, 2, 1 }, "VALID") },
    },
  }
end

-- ---- variables and their updates (the updates run where the variable lives)

-- Variables get their initial value from a fed input; reads after an update
-- wait for it.
local function after(op, fn) return tf.control_dependencies({ op }, fn) end

cases.VariableV2 = {
  inputs = { { { 3, 4 } } }, build = function(x) return tf.Variable(x):value() end,
  dtypes = { "float32", "float64", "int32", "bool" },
  variants = { { inputs = { { { 0, 3 } } } }, { inputs = { { {} } } } },
}
cases.ReadVariable = {
  inputs = { { { 3, 4 } } },
  build = function(x)
    local v = tf.Variable(x)
    return v:read_value(), { xs = { v } }
  end,
  variants = { { inputs = { { { 0, 3 } } } } },
}
local function assign(method)
  return {
    inputs = { { { 3, 4 } }, { { 3, 4 } } },
    build = function(x, y)
      local v = tf.Variable(x)
      local upd = v[method](v, y)
      return { upd, after(upd, function() return v:read_value() end) }
    end,
    dtypes = INT_TOO,
    variants = { { inputs = { { { 0, 3 } }, { { 0, 3 } } } }, { inputs = { { { 1031 } }, { { 1031 } } } } },
  }
end
cases.Assign = assign("assign")
cases.AssignAdd = assign("assign_add")
cases.AssignSub = assign("assign_sub")

-- A NoOp on the device between an update and a read: control edges only.
cases.NoOp = {
  inputs = { { { 3 } } },
  build = function(x)
    local v = tf.Variable(x)
    local noop = tf.group(v:assign_add(x))
    return after(noop, function() return v:read_value() end)
  end,
}
-- A fed placeholder never runs its kernel: the fed value is its output,
-- read by the device's consumers and fetched.
cases.Placeholder = {
  inputs = { { { 3, 4 } } },
  build = function(_, c)
    local p = tf.placeholder(c.dtype, c.array(1):shape())
    return { p, p * 2 }, { feeds = { [p] = c.array(1) } }
  end,
  variants = { { inputs = { { { 0, 3 } } } } },
}
cases.PlaceholderWithDefault = {
  inputs = { { { 3, 4 } } }, build = function(x) return tf.placeholder_with_default(x, { 3, 4 }) end,
  variants = { { inputs = { { { 0, 3 } } }, build = function(x) return tf.placeholder_with_default(x, { 0, 3 }) end } },
}

-- ---- debugging ops (Assert, Print, PrintV2 and LuaFunc read host memory
-- and run the CPU's kernel everywhere; CheckNumerics scans on the device)
cases.CheckNumerics = unary(function(x) return tf.check_numerics(x, "conformance") end)
cases.Print = unary(function(x) return tf.Print(x, { x }, "", { first_n = 0 }) end)
cases.PrintV2 = {
  inputs = { { { 3, 4 } } },
  build = function(x)
    return after(tf.print("x:", x, { output_stream = function() end }), function() return tf.identity(x) end)
  end,
  variants = { { inputs = { { { 0, 3 } } } } },
}
cases.Assert = {
  inputs = { { { 3, 4 } } },
  build = function(x) return after(tf.debugging.assert_less(x, 100), function() return tf.identity(x) end) end,
  variants = { { inputs = { { { 0, 3 } } } }, { inputs = { { {} } } } },
}
-- ---- summary ops (host memory, string outputs: placed on the CPU
-- wherever asked; the device only feeds them)
local function summary_case(build, shape, dtypes)
  return {
    inputs = { { shape or { 3, 4 } } },
    build = function(x) return after(build(x), function() return tf.identity(x) end) end,
    dtypes = dtypes or { "float32", "float64", "int32" },
  }
end
cases.ScalarSummary = summary_case(function(x) return tf.summary.scalar("s", tf.reduce_sum(x)) end)
cases.HistogramSummary = summary_case(function(x) return tf.summary.histogram("h", x) end)
cases.ImageSummary = summary_case(function(x) return tf.summary.image("i", tf.reshape(x, { 1, 2, 2, 3 })) end,
                                  nil, { "float32", "float64" })
cases.TensorSummaryV2 = summary_case(function() return tf.summary.text("t", "text") end)
cases.MergeSummary = summary_case(function(x)
  return tf.summary.merge({ tf.summary.histogram("a", x), tf.summary.scalar("b", tf.reduce_max(x)) })
end)
cases.IsVariableInitialized = {
  inputs = { { { 3, 4 } } },
  build = function(x) return tf.is_variable_initialized(tf.Variable(x)) end,
  dtypes = { "float32", "int32" },
}
-- ---- MPI collectives (builds with MPI): host memory, the CPU's kernel
-- everywhere; one process here (a singleton MPI job), so each is its
-- identity. tests/spec/mpi_spec.lua runs them across ranks.
if core.mpi_built() then
  local mpi = require("moonflow.mpi")
  local function init() mpi.init() end
  cases.MPIAllreduce = {
    inputs = { { { 3, 4 } }, { { 5 } } },
    build = function(x, y)
      init()
      local a, b = mpi.allreduce(x, { average = false }), mpi.allreduce(y, { average = false })
      return a, b
    end,
    dtypes = { "float32", "float64", "int32" },
    variants = { { inputs = { { { 0, 3 } }, { {} } } } },
  }
  cases.MPIAllgather = unary(function(x) init(); return mpi.allgather(x) end, ANY, { "float32", "float64", "int32", "bool" })
  cases.MPIAllgather.variants = { { inputs = { { { 0, 3 } } } } }
  cases.MPIBroadcast = unary(function(x) init(); return mpi.broadcast(x, 0) end, ANY, { "float32", "float64", "int32", "bool" })
  for op_type, fn in pairs({ MPIRank = "rank_op", MPISize = "size_op", MPILocalRank = "local_rank_op",
                             MPILocalSize = "local_size_op" }) do
    cases[op_type] = { inputs = {}, build = function() init(); return mpi[fn]() end, dtypes = { "int32" } }
  end
end

cases.LuaFunc = {
  inputs = { { { 3, 4 } }, { { 4 } } },
  build = function(x, y)
    return tf.lua_func(function(a, b) return b, a end, { x, y }, { y.dtype, x.dtype })
  end,
  dtypes = { "float32", "float64", "int32", "bool" },
  variants = { { inputs = { { { 0, 3 } }, { {} } } } },
}

-- ---- optimizer updates: the op's output (the updated variable), then the
-- variable and its slots read after the step

-- The inputs are the variable's initial value, then the op's other inputs
-- in its order (with its slots' initial values in their places).
-- In `rest`, "slot" and "slot+" (positive) are a slot's initial value,
-- "grad" the gradient, and a spec a scalar hyperparameter.
local LR = { lo = 0.01, hi = 0.5 }
-- The build of an update op with n inputs: the first 1 + nslots become the
-- variable and its slots, the rest are passed as they are; it fetches the
-- op's output and every variable's value after the update.
local function update_build(op_type, n, nslots, attrs)
  return function(...)
    local args = { ... }
    local vars, ins = {}, {}
    for i = 1, 1 + nslots do vars[i] = tf.Variable(args[i]); ins[i] = vars[i]:value() end
    table.move(args, 2 + nslots, n, #ins + 1, ins)
    local upd = G.make_op(op_type, ins, attrs)
    return after(upd, function()
      local outs = { upd.outputs[1] }
      for _, v in ipairs(vars) do outs[#outs + 1] = v:read_value() end
      return outs
    end)
  end
end

local function apply(op_type, nslots, rest, attrs)
  local function inputs(shape)
    local ins = { { shape } }
    for _, r in ipairs(rest) do
      if r == "slot" or r == "grad" then ins[#ins + 1] = { shape }
      elseif r == "slot+" then ins[#ins + 1] = { shape, POS }
      else ins[#ins + 1] = { {}, r } end
    end
    return ins
  end
  return {
    inputs = inputs({ 3, 4 }),
    build = update_build(op_type, 1 + #rest, nslots, attrs),
    variants = { { inputs = inputs({ 0, 3 }) }, { inputs = inputs({ 1031 }) } },
  }
end
cases.ApplyGradientDescent = apply("ApplyGradientDescent", 0, { LR, "grad" })
cases.ApplyMomentum = apply("ApplyMomentum", 1, { "slot", LR, "grad", { lo = 0.5, hi = 0.99 } },
                            { "use_nesterov", "bool", false })
table.insert(cases.ApplyMomentum.variants, apply("ApplyMomentum", 1, { "slot", LR, "grad", { lo = 0.5, hi = 0.99 } },
                                                 { "use_nesterov", "bool", true }))
cases.ApplyAdagrad = apply("ApplyAdagrad", 1, { "slot+", LR, "grad" })
cases.ApplyRMSProp = apply("ApplyRMSProp", 2, { "slot+", "slot", LR, { lo = 0.8, hi = 0.99 }, { lo = 0, hi = 0.9 },
                                                { lo = 1e-7, hi = 1e-6 }, "grad" })
cases.ApplyAdam = apply("ApplyAdam", 2, { "slot", "slot+", { lo = 0.1, hi = 0.9 }, { lo = 0.1, hi = 0.99 }, LR,
                                          { lo = 0.8, hi = 0.95 }, { lo = 0.9, hi = 0.999 }, { lo = 1e-8, hi = 1e-6 },
                                          "grad" })

-- Sparse updates: rows of the gradient with ids from 1 (repeats add up).
local function sparse_apply(op_type, nslots, hypers)
  local function inputs(nrows, nids)
    local ins = { { { nrows, 3 } } }
    for _ = 1, nslots do ins[#ins + 1] = { { nrows, 3 }, POS } end
    for _, h in ipairs(hypers) do ins[#ins + 1] = { {}, h } end
    ins[#ins + 1] = { { nids, 3 } }
    ins[#ins + 1] = { { nids }, IDS(nrows) }
    return ins
  end
  local past_the_end = inputs(5, 2)
  past_the_end[#past_the_end][2] = IDS(6, 6)
  return {
    inputs = inputs(5, 4),
    build = update_build(op_type, 3 + nslots + #hypers, nslots),
    variants = { { inputs = inputs(4, 0) }, { inputs = inputs(50, 70) }, { inputs = past_the_end, refuses = true } },
  }
end
cases.SparseApplyGradientDescent = sparse_apply("SparseApplyGradientDescent", 0, { LR })
cases.SparseApplyAdam = sparse_apply("SparseApplyAdam", 2, { { lo = 0.1, hi = 0.9 }, { lo = 0.1, hi = 0.99 }, LR,
                                                             { lo = 0.8, hi = 0.95 }, { lo = 0.9, hi = 0.999 },
                                                             { lo = 1e-8, hi = 1e-6 } })
-- The sparse gradient's rows summed per distinct id (what optimizers feed the sparse updates).
cases.DedupRows = {
  inputs = { { { 6, 3 } }, { { 6 }, IDS(3) } },
  build = function(r, ids) return G.make_op("DedupRows", { r, ids }).outputs end,
  variants = { { inputs = { { { 2, 3, 4 } }, { { 2, 3 }, IDS(4) } } }, { inputs = { { { 0, 3 } }, { { 0 }, IDS(3) } } },
               { inputs = { { { 7, 2 } }, { { 7 }, { dtype = "int64", ids = 3 } } } } },
}

-- ---- random ops: each copy has the same seed, so the same numbers

local function random(fn, opts)
  opts = opts or {}
  local function r(shape)
    return function(c) return fn(shape, { dtype = c.dtype, seed = c.seed, minval = opts.minval, maxval = opts.maxval }) end
  end
  -- a run-time shape: x's, from a placeholder the op never reads otherwise
  local function rt(x, c)
    return fn(tf.shape(x), { dtype = c.dtype, seed = c.seed, minval = opts.minval, maxval = opts.maxval })
  end
  return { inputs = {}, build = r({ 3, 4 }), variants = { { inputs = {}, build = r({ 0, 3 }) },
                                                          { inputs = {}, build = r({ 1031 }) },
                                                          { inputs = { { { 5, 7 } } }, build = rt } } }
end
cases.RandomNormal = random(tf.random_normal)
cases.TruncatedNormal = random(tf.truncated_normal)
cases.RandomUniform = random(tf.random_uniform, { minval = -3, maxval = 7 })
cases.RandomUniform.dtypes = INT_TOO
local function orthogonal(shape, gain)
  return function(c) return tf.orthogonal_initializer({ seed = c.seed, gain = gain })(shape, c.dtype) end
end
cases.RandomOrthogonal = {
  inputs = {}, build = orthogonal({ 4, 4 }),
  variants = { { inputs = {}, build = orthogonal({ 3, 5 }, 2) }, { inputs = {}, build = orthogonal({ 2, 3, 4 }) },
               { inputs = {}, build = orthogonal({ 24, 40 }, 0.5) },
               { inputs = { { { 3, 5 } } }, build = function(x, c) -- a run-time shape, x's
                 local s1, s2 = tf._seeds(c.seed)
                 return G.make_op("RandomOrthogonal", { tf.shape(x) }, { "dtype", "type", c.dtype, "seed", "int", s1,
                   "seed2", "int", s2 }, { name = "orthogonal" }).outputs[1]
               end } },
}
cases.Multinomial = {
  inputs = { { { 3, 5 } } }, build = function(logits, c) return tf.multinomial(logits, 7, { seed = c.seed }) end,
  variants = { { inputs = { { { 0, 5 } } } },
               { inputs = { { { 37, 11 }, { lo = -4, hi = 4 } } },
                 build = function(logits, c) return tf.multinomial(logits, 9, { seed = c.seed, output_dtype = "int32" }) end } },
}

-- Candidate samplers: all three outputs; unique draws with rejections
-- (8 of 10 classes), plain ones, int32 and int64 true classes.
local function sampler(fn, n, unique, range)
  return function(tc, c) return { fn(tc, 2, n, unique, range, c.seed) } end
end
for _, s in ipairs({ { "LogUniformCandidateSampler", tf.nn.log_uniform_candidate_sampler },
                     { "UniformCandidateSampler", tf.nn.uniform_candidate_sampler } }) do
  cases[s[1]] = {
    inputs = { { { 4, 2 }, IDS(10) } }, build = sampler(s[2], 8, true, 10),
    variants = { { inputs = { { { 3, 2 }, { dtype = "int64", ids = 50 } } }, build = sampler(s[2], 1031, false, 50) },
                 { inputs = { { { 0, 2 }, IDS(10) } }, build = sampler(s[2], 3, true, 1000) } },
  }
end

-- ---- fused recurrent sequences: all outputs (y and the final states)

local K = { lo = -0.8, hi = 0.8 }
local KL = { lo = -0.3, hi = 0.3 } -- the large variants' weights (13-20 steps, CPU paths for many rows)
local function seq_op(op_type, attrs)
  return function(...)
    local ins = { ... }
    ins[#ins] = nil -- the trial context
    return G.make_op(op_type, ins, attrs).outputs
  end
end
-- Sequence lengths from 0 to T mask the later steps.
cases.LSTMSequence = {
  inputs = { { { 2, 3, 2 } }, { { 2, 3 } }, { { 2, 3 } }, { { 5, 12 }, K }, { { 12 } } },
  build = seq_op("LSTMSequence", { "forget_bias", "float", 1.0 }),
  variants = { { inputs = { { { 3, 4, 2 } }, { { 3, 3 } }, { { 3, 3 } }, { { 5, 12 }, K }, { { 12 } },
                            { { 3 }, IDS(4, 0) } },
                 build = seq_op("LSTMSequence", { "forget_bias", "float", 0.5 }) },
               { inputs = { { { 6, 15, 5 } }, { { 6, 20 } }, { { 6, 20 } }, { { 25, 80 }, KL }, { { 80 } },
                            { { 6 }, IDS(15, 0) } } } },
}
cases.LSTMSequenceProjected = {
  inputs = { { { 2, 3, 8 } }, { { 2, 2 } }, { { 2, 2 } }, { { 2, 8 }, K } },
  build = seq_op("LSTMSequenceProjected", { "forget_bias", "float", 1.0 }),
  variants = { { inputs = { { { 3, 4, 8 } }, { { 3, 2 } }, { { 3, 2 } }, { { 2, 8 }, K }, { { 3 }, IDS(4, 0) } },
                 build = seq_op("LSTMSequenceProjected") },
               { inputs = { { { 6, 15, 80 } }, { { 6, 20 } }, { { 6, 20 } }, { { 20, 80 }, KL }, { { 6 }, IDS(15, 0) } } } },
}
cases.GRUSequence = {
  inputs = { { { 2, 3, 2 } }, { { 2, 3 } }, { { 5, 6 }, K }, { { 6 } }, { { 5, 3 }, K }, { { 3 } } },
  build = seq_op("GRUSequence"),
  variants = { { inputs = { { { 2, 3, 2 } }, { { 2, 3 } }, { { 5, 6 }, K }, { { 6 } }, { { 5, 3 }, K }, { { 3 } },
                            { { 2 }, IDS(3, 0) } } },
               { inputs = { { { 6, 15, 5 } }, { { 6, 20 } }, { { 25, 40 }, KL }, { { 40 } }, { { 25, 20 }, KL }, { { 20 } },
                            { { 6 }, IDS(15, 0) } } } },
}
cases.GRUSequenceProjected = {
  inputs = { { { 2, 3, 4 } }, { { 2, 3, 2 } }, { { 2, 2 } }, { { 2, 4 }, K }, { { 2, 2 }, K } },
  build = seq_op("GRUSequenceProjected"),
  variants = { { inputs = { { { 3, 3, 4 } }, { { 3, 3, 2 } }, { { 3, 2 } }, { { 2, 4 }, K }, { { 2, 2 }, K },
                            { { 3 }, IDS(3, 0) } } },
               { inputs = { { { 6, 15, 40 } }, { { 6, 15, 20 } }, { { 6, 20 } }, { { 20, 40 }, KL }, { { 20, 20 }, KL },
                            { { 6 }, IDS(15, 0) } } } },
}
cases.RNNSequence = {
  inputs = { { { 2, 4, 2 } }, { { 2, 3 } }, { { 5, 3 }, K }, { { 3 } } },
  build = seq_op("RNNSequence"),
  variants = { { inputs = { { { 2, 4, 2 } }, { { 2, 3 } }, { { 5, 3 }, K }, { { 3 } }, { { 2 }, IDS(4, 0) } } },
               { inputs = { { { 6, 15, 5 } }, { { 6, 20 } }, { { 25, 20 }, KL }, { { 20 } }, { { 6 }, IDS(15, 0) } } } },
}

-- ---------------------------------------------------------------- what is not built here

-- Gradient-only op types: Lua never builds them by themselves (the C
-- gradient builders do, with attributes and inputs of their own), so the
-- table builds their forward op instead. Gradient ops take the forward op's
-- device, so comparing `via`'s gradients on a device runs these kernels
-- there; the spec checks that claim for each entry.
M.skip = {
  SumToShapeOf = { via = "Add" },           -- un-broadcasting a binary op's gradient
  ReshapeLike = { via = "Reshape" },
  ExpandReduced = { via = "Sum" },          -- a reduction's gradient spread back
  ProdExclusive = { via = "Prod" },
  SplitLike = { via = "ConcatV2" },
  SliceGrad = { via = "Slice" },
  GatherGrad = { via = "GatherV2" },        -- also the dense form of sparse gradients
  TileGrad = { via = "Tile" },
  ReluGrad = { via = "Relu" },
  LSTMSequenceGrad = { via = "LSTMSequence" },
  LSTMSequenceProjectedGrad = { via = "LSTMSequenceProjected" },
  GRUSequenceGrad = { via = "GRUSequence" },
  GRUSequenceProjectedGrad = { via = "GRUSequenceProjected" },
  RNNSequenceGrad = { via = "RNNSequence" },
  WhileGrad = { via = "While" },
  Conv2DBackpropFilter = { via = "Conv2D" },
  MaxPoolGrad = { via = "MaxPool" },
  AvgPoolGrad = { via = "AvgPool" },
  TopKGrad = { via = "TopKV2" },
  PadGrad = { via = "MirrorPad" },           -- and PadV2's (mode CONSTANT)
}

-- ---------------------------------------------------------------- one trial

-- "x1{3,4} x2{4}" for messages.
local function label(variant)
  local parts = {}
  for i, inp in ipairs(variant.inputs) do
    parts[i] = "x" .. i .. "{" .. table.concat(inp[1], ",") .. "}"
  end
  return #parts > 0 and table.concat(parts, " ") or "no inputs"
end

local function as_list(outs)
  if G.is_tensor(outs) then return { outs } end
  return outs
end

-- Builds the op twice in a new graph from shared CPU placeholders: `ref` on
-- the CPU and `dev` on `device`. With `produced`, the op reads its inputs
-- from Identity ops on the CPU instead of straight from the feeds (values
-- that cross to the device inside the run). Returns the trial, or nil and
-- an error.
local function build_trial(op_type, case, variant, dtype, device, produced)
  local t = { graph = tf.Graph(), feeds = {}, xs = {} }
  local ok, err = pcall(t.graph.as_default, t.graph, function()
    local phs, arrays = {}, {}
    tf.device(M.CPU, function()
      for i, inp in ipairs(variant.inputs) do
        local shape, spec = inp[1], inp[2] or ANY
        local dt = spec.dtype or dtype
        arrays[i] = tf.array(draw(shape, spec, dt), dt):reshape(shape)
        phs[i] = tf.placeholder(dt, shape, "x" .. i)
        t.feeds[phs[i]] = arrays[i]
        if is_float(dt) then t.xs[#t.xs + 1] = phs[i] end
      end
    end)
    local c = { dtype = dtype, seed = math.random(1, 0x7fffffff), array = function(i) return arrays[i] end }
    local build = variant.build or case.build
    local args = tf.device(M.CPU, function()
      local a = {}
      for i, p in ipairs(phs) do a[i] = produced and tf.identity(p) or p end
      return a
    end)
    args[#args + 1] = c
    local function half(dev)
      local first = core.graph_num_ops(t.graph._g)
      local outs, extra = tf.device(dev, function() return build(table.unpack(args, 1, #phs + 1)) end)
      local h = { outs = as_list(outs), xs = extra and extra.xs or {}, placed = false }
      for p, v in pairs(extra and extra.feeds or {}) do t.feeds[p] = v end
      for id = first + 1, core.graph_num_ops(t.graph._g) do
        local op = t.graph:_op(id)
        if op.type == op_type and op.device == dev then h.placed = true end
      end
      return h
    end
    t.ref, t.dev = half(M.CPU), half(device)
    local vars = t.graph:get_collection("variables")
    if #vars > 0 then t.init = tf.variables_initializer(vars) end
  end)
  if not ok then return nil, err end
  return t
end

-- Whether two elements are the same: bit for bit when exact (so a sign of
-- zero or a NaN payload counts), else within rtol of max(1, |cpu|).
local function same(x, y, dtype, rtol)
  if x ~= x or y ~= y then return x ~= x and y ~= y end
  if rtol > 0 then return math.abs(x - y) <= rtol * math.max(1, math.abs(x)) end
  if dtype == "float32" then return string.pack("<f", x) == string.pack("<f", y) end
  if dtype == "float64" then return string.pack("<d", x) == string.pack("<d", y) end
  return x == y
end

-- Differences between two fetched Arrays, as a message (nil when they agree).
local function differ(what, a, b, rtol)
  local sa, sb = table.concat(a:shape(), ","), table.concat(b:shape(), ",")
  if a.dtype ~= b.dtype or sa ~= sb then
    return string.format("%s: cpu gives %s{%s}, the device %s{%s}", what, a.dtype, sa, b.dtype, sb)
  end
  if not is_float(a.dtype) then rtol = 0 end
  if rtol == 0 and a:tobytes() == b:tobytes() then return nil end
  local n, bad, count, worst = a:numel(), nil, 0, 0
  for i = 1, n do
    local x, y = a:flat(i), b:flat(i)
    if not same(x, y, a.dtype, rtol) then
      bad, count = bad or i, count + 1
      if x == x and y == y then worst = math.max(worst, math.abs(x - y) / math.max(1, math.abs(x))) end
    end
  end
  if not bad then return nil end
  local x, y = a:flat(bad), b:flat(bad)
  local hint = (y ~= y and x == x) and "; NaN on the device: a kernel read memory it did not write?" or ""
  return string.format("%s{%s} %s: %d of %d elements differ, first element %d: cpu %.17g, device %.17g "
                       .. "(%s; worst relative difference %.3g)%s", what, sa, a.dtype, count, n, bad, x, y,
                       rtol == 0 and "exact equality expected" or string.format("tolerance %g", rtol), worst, hint)
end

-- Runs one trial; adds messages to `report.mismatches` and counts to report.
local function run_trial(report, op_type, case, variant, dtype, device, rtol, want_grad, produced)
  local where = string.format("%s on %s, %s, %s%s", op_type, device, dtype, label(variant),
                              produced and " (inputs made on the CPU)" or "")
  local function fail(msg) report.mismatches[#report.mismatches + 1] = where .. ": " .. msg end
  local t, err = build_trial(op_type, case, variant, dtype, device, produced)
  if not t then return fail("the builder failed: " .. tostring(err)) end
  if not t.ref.placed or not t.dev.placed then
    return fail("the builder made no " .. op_type .. " op on that device (the table's case is wrong)")
  end
  report.trials = report.trials + 1
  local sess <close> = tf.Session{ graph = t.graph, config = { allow_soft_placement = true } }
  local function run(fetches) -- (re)initializes the variables first: every run starts from the same state
    return pcall(function()
      if t.init then sess:run(t.init, t.feeds) end
      return sess:run(fetches, t.feeds)
    end)
  end
  if variant.refuses then
    -- The message without "Type 'name' (created at file:line): ", which differ.
    local function reason(err) return (tostring(err):gsub("^.-%(created at [^)]*%): ", "")) end
    local ok_ref, err_ref = run(t.ref.outs)
    if ok_ref then return fail("the CPU accepts inputs the case says it refuses (the table's case is wrong)") end
    local ok_dev, err_dev = run(t.dev.outs)
    if ok_dev then return fail("the device accepts inputs that the CPU refuses with: " .. reason(err_ref)) end
    if reason(err_ref) ~= reason(err_dev) then
      return fail(string.format("the CPU refuses with \"%s\", the device with \"%s\"", reason(err_ref), reason(err_dev)))
    end
    report.refusals = report.refusals + 1
    return
  end
  local nref = #t.ref.outs
  local fetches = table.move(t.ref.outs, 1, nref, 1, {})
  table.move(t.dev.outs, 1, #t.dev.outs, nref + 1, fetches)
  -- Twice: the second run gets memory that the first gave back to each
  -- device's cache (poisoned on the test device).
  local ok, vals
  for run_no = 1, 2 do
    ok, vals = run(fetches)
    if not ok then
      local cpu_ok, cpu_err = run(t.ref.outs)
      if not cpu_ok then return fail("the CPU reference failed (the table's case is wrong): " .. tostring(cpu_err)) end
      return fail("the device run failed: " .. tostring(vals))
    end
    for k = 1, nref do
      local msg = differ("output " .. k, vals[k], vals[nref + k], rtol[vals[k].dtype] or 0)
      if msg then return fail(msg .. (run_no == 2 and " (in a second run)" or "")) end
      if run_no == 1 then report.outputs = report.outputs + 1 end
    end
  end
  if not want_grad then return end

  -- Gradients of sum_k sum(y_k * W_k) with random W_k (on the CPU), as the
  -- gradient checker forms its loss, for both copies.
  local grads = t.graph:as_default(function()
    local ws, wfeeds = {}, {}
    local function loss(h)
      return tf.device(M.CPU, function()
        local L
        for k, y in ipairs(h.outs) do
          if is_float(y.dtype) then
            if not ws[k] then
              local shape = vals[k]:shape()
              ws[k] = tf.placeholder(y.dtype, shape, "w" .. k)
              wfeeds[ws[k]] = tf.array(draw(shape, { lo = -1, hi = 1 }, y.dtype), y.dtype):reshape(shape)
            end
            local term = tf.reduce_sum(y * ws[k])
            L = L and L + term or term
          end
        end
        return L
      end)
    end
    local Lref, Ldev = loss(t.ref), loss(t.dev)
    for p, v in pairs(wfeeds) do t.feeds[p] = v end
    if not Lref then return nil end
    local xref = table.move(t.ref.xs, 1, #t.ref.xs, #t.xs + 1, table.move(t.xs, 1, #t.xs, 1, {}))
    local xdev = table.move(t.dev.xs, 1, #t.dev.xs, #t.xs + 1, table.move(t.xs, 1, #t.xs, 1, {}))
    return { ref = tf.gradients(Lref, xref), dev = tf.gradients(Ldev, xdev), n = #xref }
  end)
  if not grads then return end
  local pairs_ = {}
  for i = 1, grads.n do
    local a, b = grads.ref[i], grads.dev[i]
    if (a == nil) ~= (b == nil) then return fail("input " .. i .. " has a gradient on one side only") end
    if a then pairs_[#pairs_ + 1] = { i, a, b } end
  end
  if #pairs_ == 0 then return end
  fetches = {}
  for j, p in ipairs(pairs_) do fetches[2 * j - 1], fetches[2 * j] = p[2], p[3] end
  ok, vals = run(fetches)
  if not ok then return fail("the gradient run failed: " .. tostring(vals)) end
  for j, p in ipairs(pairs_) do
    local msg = differ("gradient of input " .. p[1], vals[2 * j - 1], vals[2 * j], rtol[vals[2 * j - 1].dtype] or 0)
    if msg then return fail(msg) end
    report.gradients = report.gradients + 1
  end
end

-- ---------------------------------------------------------------- the comparison

-- A seed per run (MOONFLOW_CONFORMANCE_SEED repeats one), mixed with the op
-- type so each op's draws do not depend on which others ran before it.
M.seed = math.tointeger(tonumber(os.getenv("MOONFLOW_CONFORMANCE_SEED") or ""))
         or (os.time() * 1000 + math.floor(os.clock() * 1e6)) % 0x7fffffff

local function variants_of(case)
  local all = { case }
  for _, v in ipairs(case.variants or {}) do all[#all + 1] = v end
  return all
end

-- Compares op_type on `device` ("/device:TEST:0") with the CPU over every
-- variant and dtype of its case. Returns {mismatches = {messages},
-- trials, outputs, gradients, refusals}: the counts compared.
function M.compare(op_type, device, backend)
  local report = { op_type = op_type, device = device, mismatches = {}, trials = 0, outputs = 0, gradients = 0,
                   refusals = 0 }
  local case = cases[op_type]
  if not case then
    report.mismatches[1] = op_type .. ": the conformance table has no case for it"
    return report
  end
  local h = 0
  for i = 1, #op_type do h = (h * 31 + op_type:byte(i)) % 0x7fffffff end
  math.randomseed(M.seed, h)
  local rtol = M.rtol[backend or "cpu"] or M.rtol.cuda
  local want_grad = core.op_types()[op_type] == true
  for v, variant in ipairs(variants_of(case)) do
    for _, dtype in ipairs(variant.dtypes or case.dtypes or { "float32", "float64" }) do
      run_trial(report, op_type, case, variant, dtype, device, rtol, want_grad and is_float(dtype) and not variant.refuses,
                v % 2 == 0) -- every second variant reads inputs computed on the CPU, the others fed ones
    end
  end
  if want_grad and report.gradients == 0 and #report.mismatches == 0 then
    report.mismatches[1] = op_type .. ": has a gradient, but no trial compared one (the table's case is wrong)"
  end
  if #report.mismatches > 0 then
    report.mismatches[#report.mismatches + 1] =
      string.format("(seed %d: MOONFLOW_CONFORMANCE_SEED=%d repeats these draws)", M.seed, M.seed)
  end
  return report
end

-- The op types that building `op_type`'s trials (every variant, with
-- gradients) puts on `device`: what comparing it there exercises.
function M.device_op_types(op_type, device)
  local case, types = cases[op_type], {}
  for _, variant in ipairs(variants_of(case)) do
    local dtype = (variant.dtypes or case.dtypes or { "float32" })[1]
    local t = assert(build_trial(op_type, case, variant, dtype, device))
    t.graph:as_default(function()
      local L
      for _, y in ipairs(t.dev.outs) do
        if is_float(y.dtype) then L = L and L + tf.reduce_sum(y) or tf.reduce_sum(y) end
      end
      if L then tf.gradients(L, t.xs) end
    end)
    for _, op in ipairs(t.graph:get_operations()) do
      if op.device == device then types[op.type] = true end
    end
  end
  return types
end

return M
