-- Element-wise math, reductions, matmul and the Tensor operator overloads.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local function out(op) return op.outputs[1] end

  local function binary(fname, op_type, line, tf_name)
    tf[fname] = A.def("tf." .. fname, "x:tensor, y:tensor, name:string=nil", line, function(a)
      local x, y = C.pair(a.x, a.y)
      return out(G.make_op(op_type, { x, y }, nil, { name = a.name }))
    end, { tf_name = tf_name })
  end

  local function unary(fname, op_type, line, tf_name)
    tf[fname] = A.def("tf." .. fname, "x:tensor, name:string=nil", line, function(a)
      return out(G.make_op(op_type, { C.to_tensor(a.x) }, nil, { name = a.name }))
    end, { tf_name = tf_name })
  end

  local binaries = {
    { "add", "Add", "x + y, element-wise with broadcasting." },
    { "sub", "Sub", "x - y, element-wise with broadcasting.", "tf.subtract" },
    { "mul", "Mul", "x * y, element-wise with broadcasting.", "tf.multiply" },
    { "div", "Div", "x / y in x's dtype: integer division truncates, as TF 1.x's tf.div." },
    { "mod", "FloorMod", "Floor modulo, like Lua's %.", "tf.floormod" },
    { "pow", "Pow", "x ^ y, element-wise." },
    { "maximum", "Maximum", "The larger of x and y, element-wise." },
    { "minimum", "Minimum", "The smaller of x and y, element-wise." },
    { "equal", "Equal", "x == y, element-wise (bool)." },
    { "not_equal", "NotEqual", "x ~= y, element-wise (bool)." },
    { "less", "Less", "x < y, element-wise (bool)." },
    { "less_equal", "LessEqual", "x <= y, element-wise (bool)." },
    { "greater", "Greater", "x > y, element-wise (bool)." },
    { "greater_equal", "GreaterEqual", "x >= y, element-wise (bool)." },
    { "logical_and", "LogicalAnd", "x and y, element-wise on bool tensors." },
    { "logical_or", "LogicalOr", "x or y, element-wise on bool tensors." },
  }
  for _, b in ipairs(binaries) do binary(b[1], b[2], b[3], b[4]) end
  tf.subtract, tf.multiply, tf.floormod = tf.sub, tf.mul, tf.mod

  -- tf.add_n(inputs, name): the element-wise sum of a list of tensors of
  -- one dtype and shape.
  tf.add_n = A.def("tf.add_n", "inputs:tensors, name:string=nil", "The element-wise sum of a list of tensors.",
                   function(a)
    local inputs, name = a.inputs, a.name
    if #inputs == 0 then
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
  end)

  -- True division, as Lua's `/` and TensorFlow's truediv: integers become
  -- float64 first (int32 / int32 -> float64), floats divide as they are.
  tf.truediv = A.def("tf.truediv", "x:tensor, y:tensor, name:string=nil",
                     "x / y as Lua's /: integers become float64 first.", function(a)
    local x, y, name = a.x, a.y, a.name
    x, y = C.pair(x, y)
    if not x.dtype:match("^float") then
      x, y = tf.cast(x, "float64"), tf.cast(y, "float64")
    end
    return out(G.make_op("Div", { x, y }, nil, { name = name or "truediv" }))
  end)
  tf.divide = tf.truediv

  -- Floor division, as Lua's `//`: exact for integers, floor(x / y) for floats.
  tf.floordiv = A.def("tf.floordiv", "x:tensor, y:tensor, name:string=nil",
                      "Floor division, as Lua's //.", function(a)
    local x, y, name = a.x, a.y, a.name
    x, y = C.pair(x, y)
    if x.dtype:match("^float") then
      return tf.floor(out(G.make_op("Div", { x, y }, nil, { name = name or "floordiv" })))
    end
    return out(G.make_op("Div", { x, y }, nil, { name = name or "floordiv" }))
  end)

  local unaries = {
    { "abs", "Abs", "|x|, element-wise." }, { "neg", "Neg", "-x.", "tf.negative" },
    { "sign", "Sign", "-1, 0 or 1 by the sign of x." },
    { "inv", "Reciprocal", "1 / x.", "tf.reciprocal" },
    { "square", "Square", "x * x." }, { "round", "Round", "Rounds half to even." },
    { "sqrt", "Sqrt", "Square root." }, { "exp", "Exp", "e^x." }, { "log", "Log", "Natural logarithm." },
    { "cos", "Cos", "Cosine." }, { "sin", "Sin", "Sine." }, { "tanh", "Tanh", "Hyperbolic tangent." },
    { "sigmoid", "Sigmoid", "1 / (1 + e^-x)." }, { "logical_not", "LogicalNot", "not x, on bool tensors." },
    { "floor", "Floor", "Largest integer <= x." }, { "log1p", "Log1p", "log(1 + x), accurate near 0." },
  }
  for _, u in ipairs(unaries) do unary(u[1], u[2], u[3], u[4]) end
  tf.negative, tf.reciprocal = tf.neg, tf.inv

  tf.cast = A.def("tf.cast", "x:tensor, dtype:dtype, name:string=nil", "x converted to dtype.", function(a)
    local x = C.to_tensor(a.x)
    if x.dtype == a.dtype then return x end
    return out(G.make_op("Cast", { x }, { "DstT", "type", a.dtype }, { name = a.name }))
  end)

  tf.where = A.def("tf.where", "condition:tensor, x:tensor=nil, y:tensor=nil, name:string=nil",
                   "Elements of x where condition is true, of y elsewhere; without x and y, the 1-based "
                   .. "coordinates of the true elements (int64 [count, rank]).", function(a)
    if a.x == nil and a.y == nil then
      return out(G.make_op("Where", { C.to_tensor(a.condition, "bool") }, nil, { name = a.name or "Where" }))
    end
    if a.x == nil or a.y == nil then G.raise("tf.where: needs both x and y, or neither") end
    local x, y = C.pair(a.x, a.y)
    local cond = C.to_tensor(a.condition, "bool")
    return out(G.make_op("Select", { cond, x, y }, nil, { name = a.name }))
  end)

  tf.matmul = A.def("tf.matmul", "a:tensor, b:tensor, transpose_a:bool=false, transpose_b:bool=false, name:string=nil",
                    "Matrix product a b, batched over leading dimensions.", function(a)
    local x, y = C.pair(a.a, a.b)
    return out(G.make_op("MatMul", { x, y }, {
      "transpose_a", "bool", a.transpose_a, "transpose_b", "bool", a.transpose_b,
    }, { name = a.name }))
  end)

  -- Reductions: TF 1.x's (input_tensor, axis, keepdims, name, reduction_indices,
  -- keep_dims); axis an integer, a list, or nil (all axes).
  local function reduction(fname, op_type, what)
    tf[fname] = A.def("tf." .. fname, "input_tensor:tensor, axis/reduction_indices:axes=nil, "
                      .. "keepdims/keep_dims:bool=false, name:string=nil",
                      "The " .. what .. " along axis (all axes when nil).", function(a)
      local x = C.to_tensor(a.input_tensor)
      local attrs = { "keep_dims", "bool", a.keepdims }
      if a.axis ~= nil then attrs[#attrs + 1], attrs[#attrs + 2], attrs[#attrs + 3] = "axis", "ints", a.axis end
      return out(G.make_op(op_type, { x }, attrs, { name = a.name }))
    end)
  end
  reduction("reduce_sum", "Sum", "sum")
  reduction("reduce_mean", "Mean", "mean")
  reduction("reduce_max", "Max", "maximum")
  reduction("reduce_min", "Min", "minimum")
  reduction("reduce_prod", "Prod", "product")

  -- TF 1.x: argmax(input, axis=None, name=None, dimension=None, output_type=int64);
  -- axis defaults to 1 (TF's 0), ids count from 1.
  local function arg_reduction(fname, op_type, what)
    tf[fname] = A.def("tf." .. fname, "input:tensor, axis/dimension:int=1, name:string=nil, output_type:dtype=nil",
                      "The 1-based index of the " .. what .. " along axis.", function(a)
      local x = C.to_tensor(a.input)
      local r = out(G.make_op(op_type, { x }, { "axis", "int", a.axis }, { name = a.name }))
      if a.output_type and a.output_type ~= r.dtype then r = tf.cast(r, a.output_type) end
      return r
    end)
  end
  arg_reduction("argmax", "ArgMax", "largest value")
  arg_reduction("argmin", "ArgMin", "smallest value")

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
