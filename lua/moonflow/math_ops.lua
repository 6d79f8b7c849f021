-- Element-wise ops and reductions composed from the core op types (their
-- gradients come from the parts): reduce_any / reduce_all /
-- reduce_logsumexp / count_nonzero, squared_difference, rsqrt.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local RED = "input_tensor:tensor, axis/reduction_indices:axes=nil, keepdims/keep_dims:bool=false, name:string=nil"

  local function bool_tensor(x, what)
    x = C.to_tensor(x, "bool")
    if x.dtype ~= "bool" then G.raise("%s: input_tensor must be a bool tensor, got %s", what, x.dtype) end
    return x
  end

  -- Logical reductions by counting: any = some true, all = no false (an
  -- empty reduction counts 0: false / true, as TF).
  local function logical(fname, op_type, what)
    tf[fname] = A.def("tf." .. fname, RED, "The logical " .. what .. " of the elements along axis (all axes when nil).",
                      function(a)
      local x = bool_tensor(a.input_tensor, "tf." .. fname)
      return tf.name_scope(a.name or op_type, function()
        if op_type == "Any" then
          return tf.greater(tf.reduce_sum(tf.cast(x, "int32"), a.axis, { keepdims = a.keepdims }), 0)
        end
        return tf.equal(tf.reduce_sum(tf.cast(tf.logical_not(x), "int32"), a.axis, { keepdims = a.keepdims }), 0)
      end)
    end)
  end
  logical("reduce_any", "Any", "or")
  logical("reduce_all", "All", "and")

  -- TF's stable form: the (finite) max is taken out before exp and added
  -- back after log; the max carries no gradient (it cancels).
  tf.reduce_logsumexp = A.def("tf.reduce_logsumexp", RED,
    "log(sum(exp(x))) along axis (all axes when nil), computed stably.", function(a)
    local x = C.to_tensor(a.input_tensor)
    if not x.dtype:match("^float") then
      G.raise("tf.reduce_logsumexp: input_tensor must be a float tensor, got %s", x.dtype)
    end
    return tf.name_scope(a.name or "ReduceLogSumExp", function()
      local raw = tf.reduce_max(x, a.axis, { keepdims = true })
      -- an infinite max (all -inf, or a +inf) is replaced by 0 so the difference stays defined
      local finite = tf.equal(raw - raw, 0)
      local m = tf.stop_gradient(tf.where(finite, raw, tf.zeros_like(raw)))
      local r = tf.log(tf.reduce_sum(tf.exp(x - m), a.axis, { keepdims = a.keepdims }))
      -- m has size 1 along the reduced axes: summing over them drops them
      return r + (a.keepdims and m or tf.reduce_sum(m, a.axis))
    end)
  end)

  -- TF 1.x: count_nonzero(input_tensor, axis, keepdims, dtype=int64, name, reduction_indices, keep_dims).
  tf.count_nonzero = A.def("tf.count_nonzero", "input_tensor:tensor, axis/reduction_indices:axes=nil, "
    .. "keepdims/keep_dims:bool=false, dtype:dtype=\"int64\", name:string=nil",
    "The number of non-zero (true) elements along axis (all axes when nil), as dtype.", function(a)
    local x = C.to_tensor(a.input_tensor)
    if a.dtype == "bool" or a.dtype == "string" then
      G.raise("tf.count_nonzero: dtype must be a number type, got %s", a.dtype)
    end
    return tf.name_scope(a.name or "count_nonzero", function()
      local zero = x.dtype == "bool" and C.to_tensor(false) or C.to_tensor(0, x.dtype)
      return tf.reduce_sum(tf.cast(tf.not_equal(x, zero), a.dtype), a.axis, { keepdims = a.keepdims })
    end)
  end)

  tf.squared_difference = A.def("tf.squared_difference", "x:tensor, y:tensor, name:string=nil",
    "(x - y)^2, element-wise with broadcasting.", function(a)
    local x, y = C.pair(a.x, a.y)
    return tf.name_scope(a.name or "SquaredDifference", function() return tf.square(x - y) end)
  end)

  tf.rsqrt = A.def("tf.rsqrt", "x:tensor, name:string=nil", "1 / sqrt(x), element-wise.", function(a)
    local x = C.to_tensor(a.x)
    if not x.dtype:match("^float") then G.raise("tf.rsqrt: x must be a float tensor, got %s", x.dtype) end
    return tf.name_scope(a.name or "Rsqrt", function() return tf.inv(tf.sqrt(x)) end)
  end)
end
