-- The gradient checker: for every differentiable op, symbolic gradients
-- against float64 central differences on random inputs (random shapes,
-- broadcasting, unknown batch dimensions), and float32 gradients against
-- float64 ones. A differentiable op missing from the table fails the spec.
local tf = require("moonflow")
local N = require("tests.spec.support.numeric")
local numel = N.numel
local nest = N.nest
local flatten = N.flat_of
local core = require("moonflow.core")
local G = require("moonflow.graph")

local rng_seed = 20261125
math.randomseed(rng_seed)

-- ---------------------------------------------------------------- helpers

-- Values in [lo, hi] whose magnitude stays at least `gap` from zero when asked
-- (away from kinks such as |x| at 0, relu at 0, max ties).
local function draw(n, spec)
  local lo, hi = spec.lo or -2, spec.hi or 2
  local out = {}
  for i = 1, n do
    local v
    repeat
      v = lo + (hi - lo) * math.random()
    until not spec.gap or math.abs(v) >= spec.gap
    out[i] = v
  end
  if spec.distinct then -- spread values so no two are within 0.05 (max/min ties)
    table.sort(out)
    for i = 2, n do if out[i] - out[i - 1] < 0.05 then out[i] = out[i - 1] + 0.05 + 0.1 * math.random() end end
    for i = n, 2, -1 do local j = math.random(i); out[i], out[j] = out[j], out[i] end
  end
  return out
end

-- Runs one checker case: inputs are {shape, spec, static_shape?}; build(...)
-- makes the output from the input placeholders. Returns the worst relative
-- error of symbolic vs numeric (float64) and of float32 vs float64 symbolic.
local function check_case(case)
  -- "B" in a shape is a batch size drawn afresh for each check (shared by the
  -- case's inputs); a third entry `true` makes the placeholder's batch
  -- dimension unknown (-1) at graph construction.
  local batch = math.random(1, 4)
  local inputs = {}
  for i, inp in ipairs(case.inputs) do
    local shape, static = {}, nil
    for k, d in ipairs(inp[1]) do shape[k] = d == "B" and batch or d end
    if inp[3] == true then
      static = {}
      for k, d in ipairs(inp[1]) do static[k] = d == "B" and -1 or d end
    else
      static = inp[3]
    end
    inputs[i] = { shape = shape, values = draw(numel(shape), inp[2] or {}), static = static }
  end

  local function graph_for(dtype)
    local g = tf.Graph()
    return g:as_default(function()
      local phs, feeds_of = {}, nil
      for i, inp in ipairs(inputs) do
        phs[i] = tf.placeholder(dtype, inp.static or inp.shape, "x" .. i)
      end
      local y = case.build(table.unpack(phs))
      return g, phs, y
    end)
  end

  -- float64 graph: the weighted sum L = sum(y * W) with fixed random W.
  local g64, phs64, y64 = graph_for("float64")
  local sess = tf.Session{ graph = g64 }
  local feeds = {}
  for i, inp in ipairs(inputs) do feeds[phs64[i]] = tf.array(nest(inp.values, inp.shape), "float64") end
  local y_val = sess:run(y64, feeds)
  local wshape = y_val:shape()
  local W = draw(numel(wshape), { lo = -1, hi = 1 })
  local L, grads = g64:as_default(function()
    local Wt = tf.constant(#wshape == 0 and W[1] or nest(W, wshape), { dtype = "float64" })
    local loss = tf.reduce_sum(y64 * Wt)
    return loss, tf.gradients(loss, phs64)
  end)

  -- Stateful cases (dropout) need each evaluation to be a session's first run.
  local function session()
    if case.fresh then sess = tf.Session{ graph = g64 } end
    return sess
  end
  local symbolic = session():run((function()
    local t = {}
    for i = 1, #phs64 do t[i] = grads[i] or phs64[i] end -- placeholder stands in for "no gradient"
    return t
  end)(), feeds)

  local worst = 0
  local eps = case.eps or 1e-6
  for i, inp in ipairs(inputs) do
    if not case.no_grad or not case.no_grad[i] then
      assert(grads[i] ~= nil, "no gradient for input " .. i)
      local sym = flatten(symbolic[i])
      local num = {}
      for k = 1, #inp.values do
        local saved = inp.values[k]
        local function loss_at(v)
          inp.values[k] = v
          local f = {}
          for j, other in ipairs(inputs) do f[phs64[j]] = tf.array(nest(other.values, other.shape), "float64") end
          return session():run(L, f):item()
        end
        num[k] = (loss_at(saved + eps) - loss_at(saved - eps)) / (2 * eps)
        inp.values[k] = saved
      end
      local diff, scale = 0, 0
      for k = 1, #num do
        diff = math.max(diff, math.abs(sym[k] - num[k]))
        scale = math.max(scale, math.abs(sym[k]), math.abs(num[k]))
      end
      worst = math.max(worst, diff / math.max(scale, 1e-3))
    end
  end

  -- float32: the same gradients, compared with float64's.
  local g32, phs32, y32 = graph_for("float32")
  local sess32 = tf.Session{ graph = g32 }
  local grads32 = g32:as_default(function()
    local Wt = tf.constant(#wshape == 0 and W[1] or nest(W, wshape), { dtype = "float32" })
    return tf.gradients(tf.reduce_sum(y32 * Wt), phs32)
  end)
  local feeds32 = {}
  for i, inp in ipairs(inputs) do feeds32[phs32[i]] = tf.array(nest(inp.values, inp.shape), "float32") end
  local worst32 = 0
  for i = 1, #inputs do
    if grads32[i] then
      local a = flatten(sess32:run(grads32[i], feeds32))
      local b = flatten(symbolic[i])
      local diff, scale = 0, 0
      for k = 1, #a do
        diff = math.max(diff, math.abs(a[k] - b[k]))
        scale = math.max(scale, math.abs(b[k]))
      end
      worst32 = math.max(worst32, diff / math.max(scale, 1e-3))
    end
  end
  sess:close()
  sess32:close()
  return worst, worst32
end

-- ---------------------------------------------------------------- the table

local pos = { lo = 0.3, hi = 2 }         -- positive inputs (log, sqrt, pow base)
local nz = { gap = 0.2 }                 -- away from zero (abs, div, relu)
local distinct = { distinct = true }     -- no ties (max, min, maximum)

local cases = {
  Add = { inputs = { { { "B", 4 }, {}, true }, { { 4 } } }, build = function(a, b) return a + b end },
  Sub = { inputs = { { { "B", 1, 3 } }, { { 4, 3 } } }, build = function(a, b) return a - b end },
  Mul = { inputs = { { { "B", 1 }, {}, true }, { { 1, 4 } } }, build = function(a, b) return a * b end },
  Div = { inputs = { { { "B", 3 }, {}, true }, { { 3 }, nz } }, build = function(a, b) return a / b end },
  FloorMod = { inputs = { { { 5 }, { lo = 0.1, hi = 0.9 } }, { { 5 }, { lo = 1.1, hi = 1.9 } } },
               build = function(a, b) return tf.mod(a, b) end },
  Pow = { inputs = { { { "B", 3 }, pos }, { { 3 } } }, build = function(a, b) return tf.pow(a, b) end },
  Maximum = { inputs = { { { 3, 2 }, distinct }, { { 3, 2 }, distinct } }, build = tf.maximum },
  Minimum = { inputs = { { { "B", 3 }, distinct, true }, { { 3 }, distinct } }, build = tf.minimum },
  Abs = { inputs = { { { 4 }, nz } }, build = tf.abs },
  Neg = { inputs = { { { 2, 2 } } }, build = tf.neg },
  Reciprocal = { inputs = { { { 5 }, nz } }, build = tf.reciprocal },
  Square = { inputs = { { { 3 } } }, build = tf.square },
  -- debugging ops pass the gradient through
  CheckNumerics = { inputs = { { { "B", 3 }, {}, true } }, build = function(a) return tf.check_numerics(a, "g") * a end },
  Print = { inputs = { { { 3 } } }, build = function(a) return tf.Print(a, { a }, "", { first_n = 0 }) * a end },
  Sqrt = { inputs = { { { 4 }, pos } }, build = tf.sqrt },
  Exp = { inputs = { { { 3 } } }, build = tf.exp },
  Log = { inputs = { { { 3 }, pos } }, build = tf.log },
  Log1p = { inputs = { { { 3 }, pos } }, build = tf.log1p },
  Cos = { inputs = { { { 4 } } }, build = tf.cos },
  Sin = { inputs = { { { 4 } } }, build = tf.sin },
  Tanh = { inputs = { { { "B", 3 } } }, build = tf.tanh },
  Sigmoid = { inputs = { { { "B", 3 }, {}, true } }, build = tf.sigmoid },
  Cast = { inputs = { { { 3 } } }, build = function(a)
    local other = a.dtype == "float64" and "float32" or "float64"
    return tf.cast(tf.cast(a, other), a.dtype) * 1.5
  end,
  -- In the float64 pass the round trip goes through float32, which quantizes
  -- the function (steps of ~1e-7 relative): a wider difference step and a
  -- matching tolerance.
  eps = 1e-3, tol64 = 1e-4 },
  Select = { inputs = { { { 2, 3 } }, { { 3 } } }, build = function(a, b)
    return tf.where(tf.constant({ { true, false, true }, { false, true, false } }), a, b)
  end },
  MatMul = { inputs = { { { "B", 4 }, {}, true }, { { 4, 2 } } }, build = function(a, b) return tf.matmul(a, b) end,
             variants = {
               { inputs = { { { 4, 3 } }, { { 4, 2 } } }, build = function(a, b) return tf.matmul(a, b, { transpose_a = true }) end },
               { inputs = { { { 3, 4 } }, { { 2, 4 } } }, build = function(a, b) return tf.matmul(a, b, { transpose_b = true }) end },
               { inputs = { { { 4, 3 } }, { { 2, 4 } } }, build = function(a, b) return tf.matmul(a, b, { transpose_a = true, transpose_b = true }) end },
               { inputs = { { { "B", 3, 4 }, {}, true }, { { 4, 2 } } }, build = function(a, b) return tf.matmul(a, b) end },
               { inputs = { { { 3, 4 }, {}, { -1, 4 } }, { { 4, 2 } } }, build = function(a, b) return tf.matmul(a, b) end },
             } },
  Identity = { inputs = { { { 3 } } }, build = tf.identity },
  Transpose = { inputs = { { { "B", 3, 4 }, {}, true } }, build = function(a) return tf.transpose(a, { 3, 1, 2 }) end },
  Reshape = { inputs = { { { 2, 6 }, {}, { -1, 6 } } }, build = function(a) return tf.reshape(a, { 3, -1 }) end,
    variants = { { inputs = { { { "B", 6 }, {}, true } }, -- a run-time shape from tf.shape
                   build = function(a) return tf.reshape(a, tf.stack({ tf.gather(tf.shape(a), 1), 3, 2 })) end } } },
  ConcatV2 = { inputs = { { { "B", 3 } }, { { "B", 2 } } }, build = function(a, b) return tf.concat({ a, b }, 2) end },
  Pack = { inputs = { { { 3 } }, { { 3 } } }, build = function(a, b) return tf.stack({ a, b }, 2) end },
  Unpack = { inputs = { { { 3, 2 } } }, build = function(a)
    local parts = tf.unstack(a, { axis = 2 })
    return parts[1] * 2 + parts[2] * parts[2]
  end },
  Split = { inputs = { { { 2, 4 } } }, build = function(a)
    local parts = tf.split(a, 2, 2)
    return parts[1] * parts[2]
  end },
  Slice = { inputs = { { { 3, 4 } } }, build = function(a) return tf.slice(a, { 2, 2 }, { 2, -1 }) end,
    variants = { { inputs = { { { "B", 4 }, {}, true } }, -- run-time begin and size
                   build = function(a)
                     return tf.slice(a, tf.constant({ 1, 2 }), tf.stack({ tf.gather(tf.shape(a), 1), 2 }))
                   end } } },
  GatherV2 = { inputs = { { { 4, 3 } } }, build = function(a) return tf.gather(a, { 2, 4, 2 }) end,
               variants = { { inputs = { { { 3, 4 } } }, build = function(a) return tf.gather(a, { { 1, 3 }, { 3, 3 } }, { axis = 2 }) end } } },
  ExpandDims = { inputs = { { { 3 } } }, build = function(a) return tf.expand_dims(a, 1) end },
  Squeeze = { inputs = { { { 3, 1 } } }, build = function(a) return tf.squeeze(a) end },
  Tile = { inputs = { { { "B", 3 } } }, build = function(a) return tf.tile(a, { 2, 3 }) end,
    variants = { { inputs = { { { "B", 3 }, {}, true } }, -- run-time multiples
                   build = function(a) return tf.tile(a, tf.stack({ 2, tf.gather(tf.shape(a), 1) })) end } } },
  -- Selection and rearrangement (csrc/ops/index.c).
  TopKV2 = { inputs = { { { "B", 5 }, distinct, true } }, build = function(a) return (tf.nn.top_k(a, 3)) end,
    variants = { { inputs = { { { 2, 3, 4 }, distinct } }, build = function(a) return (tf.nn.top_k(a, tf.constant(4))) end } } },
  PadV2 = { inputs = { { { "B", 3 }, {}, true } }, build = function(a) return tf.pad(a, { { 1, 2 }, { 0, 1 } }, { constant_values = 3 }) end,
    variants = { { inputs = { { { 2, 3 } } }, build = function(a) return tf.pad(a, tf.constant({ { 2, 0 }, { 1, 1 } })) end } } },
  MirrorPad = { inputs = { { { 3, 4 } } }, build = function(a) return tf.pad(a, { { 2, 1 }, { 3, 3 } }, "REFLECT") end,
    variants = { { inputs = { { { "B", 3 }, {}, true } }, build = function(a) return tf.pad(a, { { 1, 1 }, { 3, 2 } }, "SYMMETRIC") end },
                 { inputs = { { { 2, 2, 3 } } }, build = function(a) return tf.pad(a, tf.constant({ { 1, 2 }, { 0, 2 }, { 2, 2 } }), "SYMMETRIC") end } } },
  ReverseV2 = { inputs = { { { "B", 3, 4 }, {}, true } }, build = function(a) return tf.reverse(a, { 1, 3 }) end },
  ReverseSequence = { inputs = { { { 3, 5, 2 } } }, build = function(a) return tf.reverse_sequence(a, { 0, 5, 3 }, 2) end },
  GatherNd = { inputs = { { { 4, 3 } } }, build = function(a) return tf.gather_nd(a, { { 2, 3 }, { 4, 1 }, { 2, 3 } }) end,
    variants = { { inputs = { { { 3, 2, 2 } } }, build = function(a) return tf.gather_nd(a, { { { 3 } }, { { 1 } }, { { 3 } } }) end } } },
  ScatterNd = { inputs = { { { 4, 2 } } }, build = function(a) return tf.scatter_nd({ { 2 }, { 3 }, { 2 }, { 1 } }, a, { 3, 2 }) end },
  Cumsum = { inputs = { { { "B", 4 }, {}, true } }, build = function(a) return tf.cumsum(a, 2) end,
    variants = { { inputs = { { { 3, 2, 2 } } }, build = function(a) return tf.cumsum(a, 1, true, true) end } } },
  Cumprod = { inputs = { { { "B", 4 }, nz, true } }, build = function(a) return tf.cumprod(a, 2) end,
    variants = { { inputs = { { { 4, 3 }, nz } }, build = function(a) return tf.cumprod(a, 1, { exclusive = true, reverse = true }) end } } },
  -- Not an op type: tf.boolean_mask is composed (Reshape, Where, GatherV2).
  BooleanMask = { inputs = { { { 4, 3 } } }, build = function(a) return tf.boolean_mask(a, { true, false, true, true }) end,
    variants = { { inputs = { { { "B", 2, 3 }, {}, true } },
                   build = function(a) return tf.boolean_mask(a, { { true, false, true }, { false, true, true } }, { axis = 2 }) end } } },
  -- Not an op type: tf.broadcast_to is composed (Add, Fill, Reshape); its gradient is checked here.
  BroadcastTo = { inputs = { { { 3 } } }, build = function(a) return tf.broadcast_to(a, { 2, 3 }) end,
    variants = { { inputs = { { { "B", 1, 3 }, {}, true } },
                   build = function(a) return tf.broadcast_to(a, tf.stack({ tf.gather(tf.shape(a), 1), 4, 3 })) end },
                 { inputs = { { { 2, 1 } } }, build = function(a) return tf.broadcast_to(a, tf.constant({ 3, 2, 5 })) end } } },
  Sum = { inputs = { { { "B", 4 }, {}, true } }, build = function(a) return tf.reduce_sum(a, 2) end,
          variants = { { inputs = { { { 2, 3, 2 }, {}, { -1, 3, 2 } } }, build = function(a) return tf.reduce_sum(a, { 1, 3 }, { keep_dims = true }) end },
                       { inputs = { { { 2, 3 } } }, build = function(a) return tf.reduce_sum(a) end } } },
  Mean = { inputs = { { { 3, 4 }, {}, { -1, 4 } } }, build = function(a) return tf.reduce_mean(a, 1) end },
  Max = { inputs = { { { "B", 4 }, distinct, true } }, build = function(a) return tf.reduce_max(a, 2) end },
  Min = { inputs = { { { 4, 3 }, distinct } }, build = function(a) return tf.reduce_min(a, -1, { keep_dims = true }) end },
  Prod = { inputs = { { { 3, 3 }, nz } }, build = function(a) return tf.reduce_prod(a, 1) end },
  PlaceholderWithDefault = { inputs = { { { 3 } } }, build = function(a) return tf.placeholder_with_default(a, { 3 }) * 3 end },
  -- A read's input is a variable, not a placeholder: perturb the variable itself.
  ReadVariable = { custom = function()
    local function grads_for(dtype)
      local g = tf.Graph()
      return g:as_default(function()
        local v = tf.Variable(tf.constant({ 0.3, -1.2, 0.7 }, { dtype = dtype }))
        local L = tf.reduce_sum(tf.sin(v:read_value()) * tf.constant({ 1.5, -0.5, 2.0 }, { dtype = dtype }))
        local new = tf.placeholder(dtype, { 3 })
        local set = v:assign(new)
        local sess = tf.Session{ graph = g }
        sess:run(v.initializer)
        return sess, v, L, tf.gradients(L, v)[1], set, new
      end)
    end
    local sess, v, L, grad, set, new = grads_for("float64")
    local sym = flatten(sess:run(grad))
    local x = flatten(sess:run(v))
    local diff, scale = 0, 0
    for k = 1, #x do
      local function at(val)
        local t = { table.unpack(x) }
        t[k] = val
        sess:run(set, { [new] = t })
        return sess:run(L):item()
      end
      local num = (at(x[k] + 1e-6) - at(x[k] - 1e-6)) / 2e-6
      diff, scale = math.max(diff, math.abs(num - sym[k])), math.max(scale, math.abs(sym[k]))
    end
    sess:run(set, { [new] = x })
    local s32, _, _, g32 = grads_for("float32")
    local a = flatten(s32:run(g32))
    local d32 = 0
    for k = 1, #a do d32 = math.max(d32, math.abs(a[k] - sym[k])) end
    return diff / scale, d32 / scale
  end },
  AddN = { inputs = { { { 2, 3 } }, { { 2, 3 } } }, build = function(a, b)
    return a * b + a -- a's two uses are summed with AddN
  end },
  -- Convolutions and pooling (NHWC): both paddings, strides, dilation.
  Conv2D = { inputs = { { { "B", 5, 4, 2 }, {}, true }, { { 3, 2, 2, 3 } } },
    build = function(x, f) return tf.nn.conv2d(x, f, { 1, 2, 1, 1 }, "SAME") end,
    variants = { { inputs = { { { 2, 7, 6, 2 } }, { { 2, 3, 2, 2 } } },
                   build = function(x, f) return tf.nn.conv2d(x, f, { 1, 1, 2, 1 }, "VALID", { dilations = { 1, 2, 1, 1 } }) end } } },
  Conv2DBackpropInput = { inputs = { { { 2, 3, 2, 3 } }, { { 3, 3, 2, 3 } } },
    build = function(x, f) return tf.nn.conv2d_transpose(x, f, { 2, 5, 4, 2 }, { 1, 2, 2, 1 }, "SAME") end },
  Conv2DBackpropFilter = { inputs = { { { 2, 5, 4, 2 } }, { { 2, 3, 2, 3 } } },
    build = function(x, dy)
      return G.make_op("Conv2DBackpropFilter", { x, tf.constant({ 2, 3, 2, 3 }), dy },
        { "strides", "ints", { 1, 2, 2, 1 }, "padding", "string", "SAME" }).outputs[1]
    end },
  MaxPool = { inputs = { { { "B", 5, 5, 2 }, { distinct = true }, true } },
    build = function(x) return tf.nn.max_pool(x, { 1, 2, 2, 1 }, { 1, 2, 2, 1 }, "SAME") end },
  AvgPool = { inputs = { { { "B", 5, 4, 2 }, {}, true } },
    build = function(x) return tf.nn.avg_pool(x, { 1, 3, 2, 1 }, { 1, 2, 1, 1 }, "SAME") end },
  AvgPoolGrad = { inputs = { { { 2, 3, 4, 2 } } },
    build = function(dy)
      return G.make_op("AvgPoolGrad", { tf.constant({ 2, 5, 4, 2 }), dy },
        { "ksize", "ints", { 1, 3, 2, 1 }, "strides", "ints", { 1, 2, 1, 1 }, "padding", "string", "SAME" }).outputs[1]
    end },
  Relu = { inputs = { { { "B", 4 }, nz, true } }, build = function(a) return tf.nn.relu(a) end },
  Softmax = { inputs = { { { "B", 4 }, {}, true } }, build = function(a) return tf.nn.softmax(a) end },
  LogSoftmax = { inputs = { { { 3, 4 }, {}, { -1, 4 } } }, build = function(a) return tf.nn.log_softmax(a) end },
  -- Labels are a distribution per row (the kernel's gradient assumes so, as TF's does).
  SoftmaxCrossEntropyWithLogits = { inputs = { { { 3, 4 } }, { { 3, 4 }, { lo = 0.1, hi = 1 } } },
    build = function(logits, labels)
      labels = labels / tf.reduce_sum(labels, -1, { keep_dims = true })
      return tf.nn.softmax_cross_entropy_with_logits{ labels = labels, logits = logits }
    end },
  SparseSoftmaxCrossEntropyWithLogits = { inputs = { { { 3, 4 } } }, build = function(logits)
    return tf.nn.sparse_softmax_cross_entropy_with_logits{ labels = { 2, 4, 1 }, logits = logits }
  end },
  -- The fused sequence ops, differentiated with respect to every input at
  -- once: y and the final states are concatenated into one output.
  LSTMSequence = { inputs = { { { "B", 3, 2 }, {}, true }, { { "B", 3 }, {}, true }, { { "B", 3 }, {}, true },
                              { { 5, 12 }, { lo = -0.8, hi = 0.8 } }, { { 12 } } },
    build = function(x, h0, c0, k, b)
      local op = G.make_op("LSTMSequence", { x, h0, c0, k, b }, { "forget_bias", "float", 1.0 })
      return tf.concat({ tf.reshape(op.outputs[1], { -1 }), tf.reshape(op.outputs[2], { -1 }),
                         tf.reshape(op.outputs[3], { -1 }) }, 1)
    end,
    variants = { { inputs = { { { 2, 4, 2 } }, { { 2, 3 } }, { { 2, 3 } }, { { 5, 12 }, { lo = -0.8, hi = 0.8 } }, { { 12 } } },
      build = function(x, h0, c0, k, b) -- masked: sequence lengths 4 and 2
        local op = G.make_op("LSTMSequence", { x, h0, c0, k, b, tf.constant({ 4, 2 }) }, { "forget_bias", "float", 0.5 })
        return tf.concat({ tf.reshape(op.outputs[1], { -1 }), tf.reshape(op.outputs[2], { -1 }),
                           tf.reshape(op.outputs[3], { -1 }) }, 1)
      end } } },
  LSTMSequenceProjected = { inputs = { { { "B", 3, 8 }, {}, true }, { { "B", 2 }, {}, true }, { { "B", 2 }, {}, true },
                                       { { 2, 8 }, { lo = -0.8, hi = 0.8 } } },
    build = function(zx, h0, c0, rk)
      local op = G.make_op("LSTMSequenceProjected", { zx, h0, c0, rk }, { "forget_bias", "float", 1.0 })
      return tf.concat({ tf.reshape(op.outputs[1], { -1 }), tf.reshape(op.outputs[2], { -1 }),
                         tf.reshape(op.outputs[3], { -1 }) }, 1)
    end,
    variants = { { inputs = { { { 3, 4, 8 } }, { { 3, 2 } }, { { 3, 2 } }, { { 2, 8 }, { lo = -0.8, hi = 0.8 } } },
      build = function(zx, h0, c0, rk) -- masked: lengths 4, 1 and 0
        local op = G.make_op("LSTMSequenceProjected", { zx, h0, c0, rk, tf.constant({ 4, 1, 0 }) })
        return tf.concat({ tf.reshape(op.outputs[1], { -1 }), tf.reshape(op.outputs[2], { -1 }),
                           tf.reshape(op.outputs[3], { -1 }) }, 1)
      end } } },
  GRUSequenceProjected = { inputs = { { { "B", 3, 4 }, {}, true }, { { "B", 3, 2 }, {}, true }, { { "B", 2 }, {}, true },
                                      { { 2, 4 }, { lo = -0.8, hi = 0.8 } }, { { 2, 2 }, { lo = -0.8, hi = 0.8 } } },
    build = function(zg, zc, h0, grk, crk)
      local op = G.make_op("GRUSequenceProjected", { zg, zc, h0, grk, crk })
      return tf.concat({ tf.reshape(op.outputs[1], { -1 }), tf.reshape(op.outputs[2], { -1 }) }, 1)
    end,
    variants = { { inputs = { { { 2, 3, 4 } }, { { 2, 3, 2 } }, { { 2, 2 } }, { { 2, 4 }, { lo = -0.8, hi = 0.8 } },
                              { { 2, 2 }, { lo = -0.8, hi = 0.8 } } },
      build = function(zg, zc, h0, grk, crk) -- masked: lengths 2 and 3
        local op = G.make_op("GRUSequenceProjected", { zg, zc, h0, grk, crk, tf.constant({ 2, 3 }) })
        return tf.concat({ tf.reshape(op.outputs[1], { -1 }), tf.reshape(op.outputs[2], { -1 }) }, 1)
      end } } },
  GRUSequence = { inputs = { { { "B", 3, 2 }, {}, true }, { { "B", 3 }, {}, true }, { { 5, 6 }, { lo = -0.8, hi = 0.8 } },
                             { { 6 } }, { { 5, 3 }, { lo = -0.8, hi = 0.8 } }, { { 3 } } },
    build = function(x, h0, gk, gb, ck, cb)
      local op = G.make_op("GRUSequence", { x, h0, gk, gb, ck, cb })
      return tf.concat({ tf.reshape(op.outputs[1], { -1 }), tf.reshape(op.outputs[2], { -1 }) }, 1)
    end,
    variants = { { inputs = { { { 2, 3, 2 } }, { { 2, 3 } }, { { 5, 6 }, { lo = -0.8, hi = 0.8 } }, { { 6 } },
                              { { 5, 3 }, { lo = -0.8, hi = 0.8 } }, { { 3 } } },
      build = function(x, h0, gk, gb, ck, cb) -- masked: sequence lengths 1 and 3
        local op = G.make_op("GRUSequence", { x, h0, gk, gb, ck, cb, tf.constant({ 1, 3 }) })
        return tf.concat({ tf.reshape(op.outputs[1], { -1 }), tf.reshape(op.outputs[2], { -1 }) }, 1)
      end } } },
  RNNSequence = { inputs = { { { 2, 4, 2 } }, { { 2, 3 } }, { { 5, 3 }, { lo = -0.8, hi = 0.8 } }, { { 3 } } },
    build = function(x, h0, k, b)
      local op = G.make_op("RNNSequence", { x, h0, k, b, tf.constant({ 3, 4 }) })
      return tf.concat({ tf.reshape(op.outputs[1], { -1 }), tf.reshape(op.outputs[2], { -1 }) }, 1)
    end },
  -- Each run draws a new mask: every evaluation uses a fresh session (same first mask).
  Dropout = { inputs = { { { 4, 5 } } }, build = function(a) return tf.nn.dropout(a, 0.6, { seed = 3 }) end,
              fresh = true },
  -- Control flow: both branches taken (sum(b) is within (-6, 6)), captures of
  -- both inputs, a cond inside a cond and a loop inside a cond.
  If = { inputs = { { { "B", 3 }, {}, true }, { { 3 } } }, build = function(a, b)
    local s = tf.reduce_sum(b)
    local y1 = tf.cond(tf.greater(s, -100), function()
      return tf.cond(tf.less(s, 100), function() return tf.sin(a) * b end, function() return a end)
    end, function() return a * 3 end)
    local y2 = tf.cond(tf.less(s, -100), function() return tf.exp(a) end, function()
      local _, h = table.unpack(tf.while_loop(function(i) return tf.less(i, 2) end,
        function(i, h) return i + 1, tf.tanh(h * b) end, { 0, a }))
      return h
    end)
    return y1 + y2
  end },
  -- Loops: a run-time trip count from a tensor, a nested loop, map_fn and scan.
  While = { inputs = { { { "B", 3 }, {}, true }, { { 3 } } }, build = function(a, b)
    local n = tf.add(tf.cast(tf.greater(tf.reduce_sum(b), 100), "int32"), 3) -- 3, known only when it runs
    local r = tf.while_loop(function(i) return tf.less(i, n) end, function(i, h)
      local inner = tf.while_loop(function(j) return tf.less(j, 2) end,
        function(j, u) return j + 1, tf.sin(u) + b end, { 0, h })
      return i + 1, tf.tanh(inner[2] * b + a)
    end, { 0, a })
    local m = tf.map_fn(function(row) return row * b end, a)
    local s = tf.scan(function(acc, row) return acc * tf.cos(row) + b end, a, tf.zeros_like(b))
    return r[2] + m + s
  end },
}

-- MPI collectives (builds with MPI): this process is a one-rank job (as in
-- conformance_spec), where an allreduce is the identity and a broadcast
-- from rank 0 too, so their gradients (an allreduce of the output
-- gradients; for the broadcast masked by MPIRank == root) must pass dy
-- through. tests/spec/mpi_spec.lua checks them across two ranks.
if core.mpi_built() then
  local mpi = require("moonflow.mpi")
  local function init() if not mpi.is_initialized() then mpi.init() end end
  cases.MPIAllreduce = { inputs = { { { "B", 3 } }, { { 3 } } }, build = function(a, b)
    init()
    return mpi.allreduce(a, { average = true }) * tf.sin(mpi.allreduce(b, { average = false }))
  end }
  cases.MPIBroadcast = { inputs = { { { 3, 2 } } }, build = function(a)
    init()
    return tf.tanh(mpi.broadcast(a, 0))
  end }
end

-- ---------------------------------------------------------------- specs

describe("gradient checker", function()
  it("covers every op type that has a gradient", function()
    local missing = {}
    for op_type, has_grad in pairs(core.op_types()) do
      if has_grad and not cases[op_type] then missing[#missing + 1] = op_type end
    end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  local names = {}
  for name in pairs(cases) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local case = cases[name]
    local all = { case }
    for _, v in ipairs(case.variants or {}) do all[#all + 1] = v end
    it(name .. ": symbolic gradients match float64 central differences, and float32 matches float64", function()
      for vi, c in ipairs(all) do
        local err64, err32
        if c.custom then err64, err32 = c.custom() else err64, err32 = check_case(c) end
        assert(err64 < (c.tol64 or case.tol64 or 1e-6), string.format("%s variant %d: float64 relative error %.3g", name, vi, err64))
        assert(err32 < (c.tol or case.tol or 1e-3),
               string.format("%s variant %d: float32 vs float64 relative error %.3g", name, vi, err32))
      end
    end)
  end
end)

describe("tf.gradients", function()
  it("sums the contributions of several paths", function()
    local x = tf.placeholder("float64", {})
    local y = x * x + 3 * x          -- dy/dx = 2x + 3
    local g = tf.gradients(y, x)[1]
    local sess = tf.Session()
    assert.are.equal(2 * 1.5 + 3, sess:run(g, { [x] = 1.5 }):item())
  end)

  it("reduces broadcast gradients back to each input's run-time shape", function()
    local a = tf.placeholder("float64", { -1, 3 })
    local b = tf.placeholder("float64", { 3 })
    local ga, gb = table.unpack(tf.gradients(tf.reduce_sum(a * b), { a, b }))
    local sess = tf.Session()
    local r = sess:run({ ga, gb }, { [a] = { { 1, 2, 3 }, { 4, 5, 6 } }, [b] = { 10, 20, 30 } })
    assert.are.same({ { 10, 20, 30 }, { 10, 20, 30 } }, r[1]:totable())
    assert.are.same({ 5, 7, 9 }, r[2]:totable())
  end)

  it("returns nil for an x that the ys do not depend on", function()
    local x, z = tf.placeholder("float32", {}), tf.placeholder("float32", {})
    local g = tf.gradients(x * 2, { x, z })
    assert.is_not_nil(g[1])
    assert.is_nil(g[2])
    assert.are.equal(2, g.n)
  end)

  it("adds its operations under a gradients/ name scope", function()
    local x = tf.placeholder("float32", {})
    local g = tf.gradients(tf.sin(x), x)[1]
    assert.is_truthy(g.op.name:match("^gradients[_%d]*/"))
  end)

  it("weights each y by grad_ys", function()
    local x = tf.placeholder("float64", { 2 })
    local g = tf.gradients(x * x, x, tf.constant({ 10.0, 100.0 }, { dtype = "float64" }))[1]
    assert.are.same({ 2 * 3 * 10, 2 * 4 * 100 }, tf.Session():run(g, { [x] = { 3, 4 } }):totable())
  end)

  it("stops at tf.stop_gradient", function()
    local x = tf.placeholder("float64", {})
    local y = x * tf.stop_gradient(x * x)      -- d/dx = x^2 (the stopped factor is a constant)
    local g = tf.gradients(y, x)[1]
    assert.are.equal(9, tf.Session():run(g, { [x] = 3 }):item())
  end)

  it("passes through tf.identity", function()
    local x = tf.placeholder("float64", {})
    local g = tf.gradients(tf.identity(x) * 5, x)[1]
    assert.are.equal(5, tf.Session():run(g, { [x] = 1 }):item())
  end)

  it("differentiates through a variable's read_value", function()
    local v = tf.Variable(3.0, { dtype = "float64" })
    local g = tf.gradients(v:read_value() * v:read_value(), v)[1]
    local sess = tf.Session()
    sess:run(v.initializer)
    assert.are.equal(6, sess:run(g):item())
  end)

  it("gives a mean with an empty output an empty gradient (no division by zero)", function()
    local x = tf.placeholder("float64", { 3, 0 })
    local g = tf.gradients(tf.reduce_mean(x, 1), x)[1]        -- the mean has shape {0}
    local r = tf.Session():run(g, { [x] = tf.array({}, "float64"):reshape({ 3, 0 }) })
    assert.are.same({ 3, 0 }, r:shape())
  end)

  it("raises an error naming the op type on a non-differentiable path", function()
    local v = tf.Variable(1.0)
    local x = tf.placeholder("float32", {})
    local upd = v:assign_add(x)
    local ok, err = pcall(tf.gradients, upd * 2, x)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("AssignAdd", 1, true))
    assert.is_truthy(tostring(err):find("no gradient", 1, true))
  end)

  it("works under control dependencies", function()
    local counter = tf.Variable(0.0)
    local x = tf.placeholder("float64", {})
    local g = tf.control_dependencies({ counter:assign_add(1) }, function()
      return tf.gradients(tf.square(x), x)[1] * 1
    end)
    local sess = tf.Session()
    sess:run(counter.initializer)
    assert.are.equal(8, sess:run(g, { [x] = 4 }):item())
    assert.are.equal(1, sess:run(counter):item())
  end)
end)
