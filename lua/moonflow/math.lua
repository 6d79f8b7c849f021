-- Element-wise math, reductions, matmul and the Tensor operator overloads.
local G = require("moonflow.graph")
local C = require("moonflow.convert")

return function(tf)
  local function out(op) return op.outputs[1] end

  local function binary(op_type, default_name)
    return function(x, y, name)
      x, y = C.pair(x, y)
      return out(G.make_op(op_type, { x, y }, nil, { name = name or default_name }))
    end
  end

  local function unary(op_type)
    return function(x, name)
      return out(G.make_op(op_type, { C.to_tensor(x) }, nil, { name = name }))
    end
  end

  local binaries = {
    add = "Add", sub = "Sub", mul = "Mul", div = "Div", mod = "FloorMod", pow = "Pow",
    maximum = "Maximum", minimum = "Minimum", equal = "Equal", not_equal = "NotEqual",
    less = "Less", less_equal = "LessEqual", greater = "Greater", greater_equal = "GreaterEqual",
    logical_and = "LogicalAnd", logical_or = "LogicalOr",
  }
  for fname, op_type in pairs(binaries) do tf[fname] = binary(op_type) end
  tf.subtract, tf.multiply, tf.floormod = tf.sub, tf.mul, tf.mod

  -- tf.add_n(inputs, name): the element-wise sum of a list of tensors of
  -- one dtype and shape.
  function tf.add_n(inputs, name)
    if type(inputs) ~= "table" or #inputs == 0 then
      G.raise("tf.add_n: expected a non-empty list of tensors")
    end
    -- Lua numbers and tables take the dtype of the first tensor given.
    local dtype
    for i = 1, #inputs do
      if G.is_tensor(inputs[i]) then dtype = inputs[i].dtype; break end
    end
    local ts = {}
    for i = 1, #inputs do
      if inputs[i] == nil then G.raise("tf.add_n: input %d is nil", i) end
      ts[i] = G.is_tensor(inputs[i]) and inputs[i] or C.to_tensor(inputs[i], dtype)
    end
    return out(G.make_op("AddN", ts, nil, { name = name }))
  end

  -- True division, as Lua's `/` and TensorFlow's truediv: integers become
  -- float64 first (int32 / int32 -> float64), floats divide as they are.
  function tf.truediv(x, y, name)
    x, y = C.pair(x, y)
    if not x.dtype:match("^float") then
      x, y = tf.cast(x, "float64"), tf.cast(y, "float64")
    end
    return out(G.make_op("Div", { x, y }, nil, { name = name or "truediv" }))
  end
  tf.divide = tf.truediv

  -- Floor division, as Lua's `//`: exact for integers, floor(x / y) for floats.
  function tf.floordiv(x, y, name)
    x, y = C.pair(x, y)
    if x.dtype:match("^float") then
      return tf.floor(out(G.make_op("Div", { x, y }, nil, { name = name or "floordiv" })))
    end
    return out(G.make_op("Div", { x, y }, nil, { name = name or "floordiv" }))
  end

  local unaries = {
    abs = "Abs", neg = "Neg", sign = "Sign", inv = "Reciprocal", square = "Square",
    round = "Round", sqrt = "Sqrt", exp = "Exp", log = "Log", cos = "Cos", sin = "Sin",
    tanh = "Tanh", sigmoid = "Sigmoid", logical_not = "LogicalNot", floor = "Floor", log1p = "Log1p",
  }
  for fname, op_type in pairs(unaries) do tf[fname] = unary(op_type) end
  tf.negative, tf.reciprocal = tf.neg, tf.inv

  function tf.cast(x, dtype, name)
    C.check_dtype(dtype, "tf.cast")
    if dtype == nil then G.raise("tf.cast: needs a dtype") end
    x = C.to_tensor(x)
    if x.dtype == dtype then return x end
    return out(G.make_op("Cast", { x }, { "DstT", "type", dtype }, { name = name }))
  end

  function tf.where(cond, x, y, name)
    x, y = C.pair(x, y)
    cond = C.to_tensor(cond, "bool")
    return out(G.make_op("Select", { cond, x, y }, nil, { name = name }))
  end

  function tf.matmul(a, b, opts)
    opts = C.opts(opts, "tf.matmul", "name transpose_a transpose_b")
    a, b = C.pair(a, b)
    return out(G.make_op("MatMul", { a, b }, {
      "transpose_a", "bool", opts.transpose_a or false,
      "transpose_b", "bool", opts.transpose_b or false,
    }, { name = opts.name }))
  end

  -- Reductions: (x, axis, {keep_dims, name}); axis a number, a list or nil (all).
  local function reduction(op_type)
    return function(x, axis, opts)
      if type(axis) == "table" and axis[1] == nil and next(axis) ~= nil and not G.is_tensor(axis) then
        opts, axis = axis, axis.axis -- reduce_sum(x, {axis = 2, keep_dims = true})
      end
      opts = C.opts(opts, "tf.reduce_" .. op_type:lower(), "name axis keep_dims keepdims")
      x = C.to_tensor(x)
      local attrs = { "keep_dims", "bool", opts.keep_dims or opts.keepdims or false }
      if axis ~= nil then
        if type(axis) == "number" then axis = { axis } end
        if type(axis) ~= "table" then G.raise("%s: axis must be a number, a list or nil", op_type) end
        attrs[#attrs + 1], attrs[#attrs + 2], attrs[#attrs + 3] = "axis", "ints", axis
      end
      return out(G.make_op(op_type, { x }, attrs, { name = opts.name }))
    end
  end
  tf.reduce_sum, tf.reduce_mean = reduction("Sum"), reduction("Mean")
  tf.reduce_max, tf.reduce_min, tf.reduce_prod = reduction("Max"), reduction("Min"), reduction("Prod")

  local function arg_reduction(op_type)
    return function(x, axis, name)
      x = C.to_tensor(x)
      if type(axis) ~= "number" then G.raise("tf.%s: needs an axis", op_type:lower()) end
      return out(G.make_op(op_type, { x }, { "axis", "int", axis }, { name = name }))
    end
  end
  tf.argmax, tf.argmin = arg_reduction("ArgMax"), arg_reduction("ArgMin")

  -- ---------------------------------------------------------------- overloads
  local T = G.Tensor
  T.__add = function(a, b) return tf.add(a, b) end
  T.__sub = function(a, b) return tf.sub(a, b) end
  T.__mul = function(a, b) return tf.mul(a, b) end
  T.__div = function(a, b) return tf.truediv(a, b) end
  T.__idiv = function(a, b) return tf.floordiv(a, b) end
  T.__mod = function(a, b) return tf.mod(a, b) end
  T.__pow = function(a, b) return tf.pow(a, b) end
  T.__unm = function(a) return tf.neg(a) end
end
