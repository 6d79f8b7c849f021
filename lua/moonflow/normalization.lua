-- Normalisation: tf.nn.moments, tf.nn.batch_normalization,
-- tf.nn.fused_batch_norm, tf.layers.batch_normalization and
-- tf.contrib.layers.layer_norm, composed from existing ops (their
-- gradients come with them) in TF 1.x's formulas.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local function float_tensor(x, what, param)
    x = C.to_tensor(x)
    if not x.dtype:match("^float") then G.raise("%s: %s must be a float tensor, got %s", what, param, x.dtype) end
    return x
  end

  local function known_rank(x, what, param)
    if not x.shape then G.raise("%s: %s needs a known rank", what, param) end
    return #x.shape
  end

  -- 1-based (negative from the end) axes as positive ones, checked against rank.
  local function positive_axes(axes, rank, what, param)
    local out, seen = {}, {}
    for i, ax in ipairs(axes) do
      local a = ax < 0 and rank + ax + 1 or ax
      if a < 1 or a > rank then G.raise("%s: %s %d is out of range for rank %d", what, param, ax, rank) end
      if seen[a] then G.raise("%s: %s lists axis %d twice", what, param, ax) end
      seen[a], out[i] = true, a
    end
    return out
  end

  -- A bool or a scalar bool tensor: the Lua boolean, or the tensor.
  local function training_flag(t, what)
    if type(t) == "boolean" then return t end
    if G.is_tensor(t) then
      if t.dtype ~= "bool" then G.raise("%s: training must be a bool or a bool tensor, got a %s tensor", what, t.dtype) end
      if t.shape and #t.shape > 0 then G.raise("%s: training must be a scalar", what) end
      return t
    end
    G.raise("%s: training must be a boolean or a scalar bool tensor, got %s", what, type(t))
  end

  -- ---------------------------------------------------------------- tf.nn

  -- TF: the variance is taken about stop_gradient(mean) (the same gradient,
  -- since the deviations sum to zero).
  local function moments(x, axes, keep_dims)
    local mean = tf.reduce_mean(x, axes, true, "mean")
    local variance = tf.reduce_mean(tf.square(x - tf.stop_gradient(mean)), axes, true, "variance")
    if not keep_dims then
      mean, variance = tf.squeeze(mean, axes), tf.squeeze(variance, axes)
    end
    return mean, variance
  end

  tf.nn.moments = A.def("tf.nn.moments",
    "x:tensor, axes:axes, shift:any=nil, name:string=nil, keep_dims/keepdims:bool=false",
    "Two results: the mean and the (biased) variance of x along axes.", function(a)
    local x = float_tensor(a.x, "tf.nn.moments", "x")
    local axes = positive_axes(a.axes, known_rank(x, "tf.nn.moments", "x"), "tf.nn.moments", "axes")
    return tf.name_scope(a.name or "moments", function() return moments(x, axes, a.keep_dims) end)
  end)

  -- (x - mean) * scale / sqrt(variance + epsilon) + offset as TF writes it:
  -- x * inv + (offset - mean * inv), inv = scale / sqrt(variance + epsilon).
  local function batchnorm(x, mean, variance, offset, scale, epsilon)
    local inv = tf.inv(tf.sqrt(variance + epsilon))
    if scale ~= nil then inv = inv * scale end
    return x * inv + (offset ~= nil and offset - mean * inv or -(mean * inv))
  end

  tf.nn.batch_normalization = A.def("tf.nn.batch_normalization",
    "x:tensor, mean:tensor, variance:tensor, offset:tensor=nil, scale:tensor=nil, variance_epsilon:number, "
    .. "name:string=nil",
    "(x - mean) * scale / sqrt(variance + variance_epsilon) + offset (offset, scale optional).", function(a)
    local what = "tf.nn.batch_normalization"
    local x = float_tensor(a.x, what, "x")
    local function same(v, param) if v ~= nil then return float_tensor(C.to_tensor(v, x.dtype), what, param) end end
    local mean, variance = same(a.mean, "mean"), same(a.variance, "variance")
    local offset, scale = same(a.offset, "offset"), same(a.scale, "scale")
    return tf.name_scope(a.name or "batchnorm", function()
      return batchnorm(x, mean, variance, offset, scale, a.variance_epsilon)
    end)
  end)

  local FORMATS = { NHWC = 4, NCHW = 4, NDHWC = 5, NCDHW = 5 }

  -- The channel axis (1-based) of a data format, and the other axes.
  local function channel_axes(fmt)
    local rank = FORMATS[fmt]
    local ch = fmt:sub(-1) == "C" and rank or 2
    local others = {}
    for d = 1, rank do if d ~= ch then others[#others + 1] = d end end
    return ch, others
  end

  -- Broadcastable against a tensor of `rank`, holding `v` ([C]) along axis ch.
  local function along(v, rank, ch)
    if ch == rank then return v end
    local shape = {}
    for d = 1, rank do shape[d] = d == ch and -1 or 1 end
    return tf.reshape(v, shape)
  end

  -- TF's FusedBatchNorm: in training the batch's mean and variance normalise
  -- x, and the variance it returns is Bessel-corrected (n / (n - 1)).
  tf.nn.fused_batch_norm = A.def("tf.nn.fused_batch_norm",
    "x:tensor, scale:tensor, offset:tensor, mean:tensor=nil, variance:tensor=nil, epsilon:number=0.001, "
    .. "data_format:string='NHWC', is_training:bool=true, name:string=nil",
    "Three results: y, the batch mean and the (Bessel-corrected) batch variance; with is_training = false, "
    .. "mean and variance are used and returned.", function(a)
    local what = "tf.nn.fused_batch_norm"
    local x = float_tensor(a.x, what, "x")
    local rank = FORMATS[a.data_format]
    if not rank then G.raise("%s: data_format must be NHWC, NCHW, NDHWC or NCDHW, got '%s'", what, a.data_format) end
    if known_rank(x, what, "x") ~= rank then
      G.raise("%s: x must be of rank %d for data_format %s, got rank %d", what, rank, a.data_format, #x.shape)
    end
    local ch, others = channel_axes(a.data_format)
    local function param(v, pname)
      if v == nil then return nil end
      v = float_tensor(C.to_tensor(v, x.dtype), what, pname)
      if v.shape and #v.shape ~= 1 then G.raise("%s: %s must be a vector (one value per channel)", what, pname) end
      if v.shape and x.shape[ch] >= 0 and v.shape[1] >= 0 and v.shape[1] ~= x.shape[ch] then
        G.raise("%s: %s has %d values for %d channels", what, pname, v.shape[1], x.shape[ch])
      end
      return v
    end
    local scale, offset = param(a.scale, "scale"), param(a.offset, "offset")
    local mean, variance = param(a.mean, "mean"), param(a.variance, "variance")
    if not a.is_training and (mean == nil or variance == nil) then
      G.raise("%s: mean and variance are needed when is_training is false", what)
    end
    local epsilon = math.max(a.epsilon, 1.001e-5) -- TF's floor for the fused kernel
    return tf.name_scope(a.name or "FusedBatchNorm", function()
      if a.is_training then
        local m, v = moments(x, others, false)
        local y = batchnorm(x, along(m, rank, ch), along(v, rank, ch), along(offset, rank, ch),
                            along(scale, rank, ch), epsilon)
        local n = tf.cast(tf.size(x), x.dtype) / tf.cast(tf.size(m), x.dtype)
        return y, m, v * (n / tf.maximum(n - 1, 1))
      end
      local y = batchnorm(x, along(mean, rank, ch), along(variance, rank, ch), along(offset, rank, ch),
                          along(scale, rank, ch), epsilon)
      return y, mean, variance
    end)
  end)

  -- ---------------------------------------------------------------- layers

  -- name, name_1, ... per graph and base name, as Keras names layers.
  local function layer_name(base)
    local g = G.get_default_graph()
    g._norm_layer_counts = g._norm_layer_counts or {}
    local n = (g._norm_layer_counts[base] or 0) + 1
    g._norm_layer_counts[base] = n
    return n == 1 and base or base .. "_" .. (n - 1)
  end

  -- TF's _assign_moving_average: variable -= (variable - value) * (1 - momentum),
  -- the AssignSub named as its scope ("AssignMovingAvg", "AssignMovingAvg_1").
  local function assign_moving_average(var, value, momentum)
    return tf.name_scope("AssignMovingAvg", function()
      local g = G.get_default_graph()
      local decay = C.constant(1.0 - momentum, { dtype = var.dtype, name = "decay" })
      local delta = (var - value) * decay
      return G.make_op("AssignSub", { var._tensor, delta }, nil, { abs_name = g._name_stack }).outputs[1]
    end)
  end

  tf.layers = tf.layers or {}
  tf.layers.batch_normalization = A.def("tf.layers.batch_normalization",
    "inputs:tensor, axis:axes=-1, momentum:number=0.99, epsilon:number=0.001, center:bool=true, scale:bool=true, "
    .. "beta_initializer:any=nil, gamma_initializer:any=nil, moving_mean_initializer:any=nil, "
    .. "moving_variance_initializer:any=nil, beta_regularizer:function=nil, gamma_regularizer:function=nil, "
    .. "beta_constraint:any=nil, gamma_constraint:any=nil, training:any=false, trainable:bool=true, "
    .. "name:string=nil, reuse:any=nil, renorm:bool=false, renorm_clipping:any=nil, renorm_momentum:number=0.99, "
    .. "fused:bool=nil, virtual_batch_size:any=nil, adjustment:any=nil",
    "Batch normalisation over all axes but axis; in training the batch's statistics, and moving averages "
    .. "updated by the ops it adds to GraphKeys.UPDATE_OPS.", function(a)
    local what = "tf.layers.batch_normalization"
    local x = float_tensor(a.inputs, what, "inputs")
    for _, k in ipairs({ "beta_constraint", "gamma_constraint", "renorm_clipping", "virtual_batch_size", "adjustment" }) do
      if a[k] ~= nil then G.raise("%s: %s is not supported", what, k) end
    end
    if a.renorm then G.raise("%s: renorm is not supported", what) end
    local training = training_flag(a.training, what)
    local rank = known_rank(x, what, "inputs")
    local axes = positive_axes(type(a.axis) == "number" and { a.axis } or a.axis, rank, what, "axis")
    for i = 2, #axes do if axes[i] <= axes[i - 1] then G.raise("%s: axis must list axes in increasing order", what) end end
    local is_axis, reduce, pshape, bshape = {}, {}, {}, {}
    for _, ax in ipairs(axes) do
      is_axis[ax] = true
      if x.shape[ax] < 0 then G.raise("%s: the size of axis %d of inputs must be known", what, ax) end
      pshape[#pshape + 1] = x.shape[ax]
    end
    for d = 1, rank do
      if not is_axis[d] then reduce[#reduce + 1] = d end
      bshape[d] = is_axis[d] and x.shape[d] or 1
    end
    -- TF's choice: the fused kernel for 4-d inputs normalised along axis 2 or
    -- 4; its moving variance is then fed the Bessel-corrected variance.
    local fusable = rank == 4 and #axes == 1 and (axes[1] == 2 or axes[1] == 4)
    if a.fused and not fusable then
      G.raise("%s: fused = true needs 4-d inputs normalised along axis 2 or 4", what)
    end
    local fused = a.fused ~= false and fusable
    local last = #axes == 1 and axes[1] == rank
    local function bcast(v) if v == nil or last then return v end return tf.reshape(v, bshape) end
    local name = a.name or layer_name("batch_normalization")
    return tf.variable_scope(name, { reuse = a.reuse }, function()
      local function var(vname, init, trainable, regularizer)
        return tf.get_variable(vname, pshape, { dtype = x.dtype, initializer = init, trainable = trainable,
                                                regularizer = regularizer })
      end
      local gamma = a.scale and var("gamma", a.gamma_initializer or tf.ones_initializer(), a.trainable,
                                    a.gamma_regularizer) or nil
      local beta = a.center and var("beta", a.beta_initializer or tf.zeros_initializer(), a.trainable,
                                    a.beta_regularizer) or nil
      local moving_mean = var("moving_mean", a.moving_mean_initializer or tf.zeros_initializer(), false)
      local moving_variance = var("moving_variance", a.moving_variance_initializer or tf.ones_initializer(), false)
      local epsilon = fused and math.max(a.epsilon, 1.001e-5) or a.epsilon
      local function normalize(m, v)
        return tf.name_scope("batchnorm", function()
          return batchnorm(x, bcast(m), bcast(v), bcast(beta), bcast(gamma), epsilon)
        end)
      end
      if training == false then return normalize(moving_mean, moving_variance) end
      local mean, variance = tf.name_scope("moments", function() return moments(x, reduce, false) end)
      local update_variance = variance
      if fused then
        local n = tf.cast(tf.size(x), x.dtype) / tf.cast(tf.size(mean), x.dtype)
        update_variance = variance * (n / tf.maximum(n - 1, 1))
      end
      if training == true then
        tf.add_to_collection("update_ops", assign_moving_average(moving_mean, mean, a.momentum).op)
        tf.add_to_collection("update_ops", assign_moving_average(moving_variance, update_variance, a.momentum).op)
        return normalize(mean, variance)
      end
      -- a bool tensor: the batch's statistics and updates when it is true,
      -- the moving averages (unchanged) when false
      local use_mean = tf.where(training, mean, moving_mean)
      local use_variance = tf.where(training, variance, moving_variance)
      local function conditional(v, value)
        return tf.cond(training, function() return assign_moving_average(v, value, a.momentum) end,
                       function() return v:read_value() end).op
      end
      tf.add_to_collection("update_ops", conditional(moving_mean, mean))
      tf.add_to_collection("update_ops", conditional(moving_variance, update_variance))
      return normalize(use_mean, use_variance)
    end)
  end)

  -- ---------------------------------------------------------------- contrib

  tf.contrib = tf.contrib or {}
  tf.contrib.layers = tf.contrib.layers or {}

  -- TF 1.x's contrib layer_norm with 1-based axes: begin_norm_axis = 2 is
  -- TF's 1 (all axes but the batch's); begin_params_axis = -1 the last.
  tf.contrib.layers.layer_norm = A.def("tf.contrib.layers.layer_norm",
    "inputs:tensor, center:bool=true, scale:bool=true, activation_fn:function=nil, reuse:any=nil, "
    .. "variables_collections:any=nil, outputs_collections:any=nil, trainable:bool=true, begin_norm_axis:int=2, "
    .. "begin_params_axis:int=-1, scope:string=nil",
    "Normalises inputs over the axes from begin_norm_axis on (epsilon 1e-12), then scales by gamma and shifts "
    .. "by beta, both of the shape of the axes from begin_params_axis on.", function(a)
    local what = "tf.contrib.layers.layer_norm"
    local x = float_tensor(a.inputs, what, "inputs")
    if a.variables_collections ~= nil or a.outputs_collections ~= nil then
      G.raise("%s: variables_collections and outputs_collections are not supported", what)
    end
    local rank = known_rank(x, what, "inputs")
    local norm_begin = positive_axes({ a.begin_norm_axis }, rank, what, "begin_norm_axis")[1]
    local params_begin = positive_axes({ a.begin_params_axis }, rank, what, "begin_params_axis")[1]
    local pshape, norm_axes = {}, {}
    for d = params_begin, rank do
      if x.shape[d] < 0 then G.raise("%s: the size of axis %d of inputs must be known", what, d) end
      pshape[#pshape + 1] = x.shape[d]
    end
    for d = norm_begin, rank do norm_axes[#norm_axes + 1] = d end
    return tf.variable_scope(a.scope or layer_name("LayerNorm"), { reuse = a.reuse }, function()
      local function model_variable(vname, init)
        local g = G.get_default_graph()
        local v = tf.get_variable(vname, pshape, { dtype = x.dtype, initializer = init, trainable = a.trainable })
        local known = false
        for _, m in ipairs(g:get_collection_ref("model_variables")) do known = known or m == v end
        if not known then g:add_to_collection("model_variables", v) end
        return v
      end
      local beta = a.center and model_variable("beta", tf.zeros_initializer()) or nil
      local gamma = a.scale and model_variable("gamma", tf.ones_initializer()) or nil
      local mean, variance = tf.name_scope("moments", function() return moments(x, norm_axes, true) end)
      local y = tf.name_scope("batchnorm", function()
        return batchnorm(x, mean, variance, beta, gamma, x.dtype == "float16" and 1e-3 or 1e-12)
      end)
      if a.activation_fn then y = a.activation_fn(y) end
      return y
    end)
  end)
end
