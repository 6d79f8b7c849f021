-- tf.nn activations and per-feature ops composed from the core op types
-- (their gradients come from the parts): bias_add, leaky_relu, elu, selu,
-- softplus, softsign, l2_normalize.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local nn = tf.nn

  local function float_tensor(x, what, param)
    x = C.to_tensor(x)
    if not x.dtype:match("^float") then G.raise("%s: %s must be a float tensor, got %s", what, param, x.dtype) end
    return x
  end

  -- TF 1.x: bias_add(value, bias, data_format=None, name=None): bias (1-D)
  -- added along the last axis (NHWC), or along axis 2 for "NCHW" / "NCW".
  nn.bias_add = A.def("tf.nn.bias_add", "value:tensor, bias:tensor, data_format:string=nil, name:string=nil",
    "value + bias, bias a vector along the last axis (the channel axis 2 when data_format is NC...).", function(a)
    local value = C.to_tensor(a.value)
    local bias = C.to_tensor(a.bias, value.dtype)
    if bias.dtype ~= value.dtype then
      G.raise("tf.nn.bias_add: bias has dtype %s, value %s", bias.dtype, value.dtype)
    end
    if bias.shape and #bias.shape ~= 1 then
      G.raise("tf.nn.bias_add: bias must be 1-D, got rank %d", #bias.shape)
    end
    local rank = value.shape and #value.shape
    if rank and rank < 2 then G.raise("tf.nn.bias_add: value must have rank 2 or more, got rank %d", rank) end
    local df = a.data_format
    local channels_first = df ~= nil and df:sub(1, 2) == "NC"
    if df ~= nil and not channels_first and not (df:sub(1, 1) == "N" and df:sub(-1) == "C") then
      G.raise("tf.nn.bias_add: data_format must be NHWC-like or NCHW-like, got '%s'", df)
    end
    local axis = channels_first and 2 or rank
    if channels_first and not rank then G.raise("tf.nn.bias_add: data_format '%s' needs value of known rank", df) end
    local n, b = axis and value.shape[axis], bias.shape and bias.shape[1]
    if n and b and n >= 0 and b >= 0 and n ~= b then
      G.raise("tf.nn.bias_add: bias has %d elements, value's axis %d has %d", b, axis, n)
    end
    return tf.name_scope(a.name or "BiasAdd", function()
      if channels_first and rank > 2 then
        local shape = { -1 }
        for _ = 3, rank do shape[#shape + 1] = 1 end
        bias = tf.reshape(bias, shape)
      end
      return value + bias
    end)
  end)

  -- Select passes the gradient to the chosen branch: x > 0 ? g : alpha g,
  -- TF's LeakyReluGrad.
  nn.leaky_relu = A.def("tf.nn.leaky_relu", "features:tensor, alpha:number=0.2, name:string=nil",
    "features where positive, alpha * features elsewhere.", function(a)
    local x = float_tensor(a.features, "tf.nn.leaky_relu", "features")
    return tf.name_scope(a.name or "LeakyRelu", function()
      return tf.where(tf.greater(x, 0), x, x * a.alpha)
    end)
  end)

  -- exp of min(x, 0): the branch not taken never overflows, so its zero
  -- gradient stays zero (0 * inf would be NaN).
  local function expm1_neg(x) return tf.exp(tf.minimum(x, 0)) - 1 end

  nn.elu = A.def("tf.nn.elu", "features:tensor, name:string=nil",
    "features where positive, exp(features) - 1 elsewhere.", function(a)
    local x = float_tensor(a.features, "tf.nn.elu", "features")
    return tf.name_scope(a.name or "Elu", function() return tf.where(tf.greater(x, 0), x, expm1_neg(x)) end)
  end)

  -- TF's constants (Klambauer et al. 2017).
  local SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
  nn.selu = A.def("tf.nn.selu", "features:tensor, name:string=nil",
    "scale * (features where positive, alpha * (exp(features) - 1) elsewhere), TF's alpha and scale.", function(a)
    local x = float_tensor(a.features, "tf.nn.selu", "features")
    return tf.name_scope(a.name or "Selu", function()
      return tf.where(tf.greater(x, 0), x * SELU_SCALE, expm1_neg(x) * (SELU_ALPHA * SELU_SCALE))
    end)
  end)

  -- relu(x) + log1p(exp(-|x|)), with -|x| as min(x, -x): Minimum gives ties
  -- to x and relu none, so the gradient at 0 is sigmoid(0) = 0.5 as TF's.
  nn.softplus = A.def("tf.nn.softplus", "features:tensor, name:string=nil",
    "log(1 + exp(features)), stable for large |features|.", function(a)
    local x = float_tensor(a.features, "tf.nn.softplus", "features")
    return tf.name_scope(a.name or "Softplus", function()
      return nn.relu(x) + tf.log1p(tf.exp(tf.minimum(x, -x)))
    end)
  end)

  nn.softsign = A.def("tf.nn.softsign", "features:tensor, name:string=nil", "features / (1 + |features|).", function(a)
    local x = float_tensor(a.features, "tf.nn.softsign", "features")
    return tf.name_scope(a.name or "Softsign", function() return x / (tf.abs(x) + 1) end)
  end)

  -- TF 1.x: l2_normalize(x, axis=None, epsilon=1e-12, name=None, dim=None);
  -- x / sqrt(max(sum(x^2), epsilon)), the sum over axis (all axes when nil).
  nn.l2_normalize = A.def("tf.nn.l2_normalize", "x:tensor, axis/dim:axes=nil, epsilon:number=1e-12, name:string=nil",
    "x / sqrt(max(sum(x^2 along axis), epsilon)).", function(a)
    local x = float_tensor(a.x, "tf.nn.l2_normalize", "x")
    return tf.name_scope(a.name or "l2_normalize", function()
      local sq = tf.reduce_sum(tf.square(x), a.axis, { keepdims = true })
      return x * tf.rsqrt(tf.maximum(sq, a.epsilon))
    end)
  end)
end
