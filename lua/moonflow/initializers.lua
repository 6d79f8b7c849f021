-- Variance-scaling initializers: tf.variance_scaling_initializer and the
-- names TF gives its presets (tf.initializers.he_normal, ...,
-- tf.keras.initializers.*, tf.contrib.layers.xavier_initializer and
-- variance_scaling_initializer). An initializer is a function (shape, dtype).
local G = require("moonflow.graph")
local A = require("moonflow.args")

return function(tf)
  -- The stddev of a standard normal truncated to [-2, 2]: TF divides by it
  -- so the truncated draw has the variance asked for.
  local TRUNCATED_STDDEV = 0.87962566103423978

  -- TF's fan computation (init_ops._compute_fans): the last two dims,
  -- times the receptive field; a vector's fans are its length, a scalar's 1.
  local function fans(shape)
    if #shape == 0 then return 1, 1 end
    if #shape == 1 then return shape[1], shape[1] end
    local rf = 1
    for i = 1, #shape - 2 do rf = rf * shape[i] end
    return shape[#shape - 1] * rf, shape[#shape] * rf
  end

  local function static_shape(shape, what)
    if type(shape) ~= "table" or G.is_tensor(shape) then G.raise("%s: the shape must be a list of sizes", what) end
    for i, d in ipairs(shape) do
      if math.type(d) ~= "integer" or d < 0 then
        G.raise("%s: the shape needs known sizes, got %s at %d", what, tostring(d), i)
      end
    end
    return shape
  end

  -- TF 1.x's VarianceScaling: n the fan of mode; "normal" is TF's old name
  -- for "truncated_normal".
  local function variance_scaling(what, scale, mode, distribution, seed, dtype0)
    if scale <= 0 then G.raise("%s: scale must be positive, got %g", what, scale) end
    if mode ~= "fan_in" and mode ~= "fan_out" and mode ~= "fan_avg" then
      G.raise("%s: mode must be fan_in, fan_out or fan_avg, got '%s'", what, mode)
    end
    if distribution == "normal" then distribution = "truncated_normal" end
    if distribution ~= "truncated_normal" and distribution ~= "untruncated_normal" and distribution ~= "uniform" then
      G.raise("%s: distribution must be truncated_normal, untruncated_normal or uniform, got '%s'", what, distribution)
    end
    return function(shape, dtype)
      shape = static_shape(shape, what)
      dtype = dtype or dtype0 or "float32"
      local fan_in, fan_out = fans(shape)
      local n = mode == "fan_in" and fan_in or mode == "fan_out" and fan_out or (fan_in + fan_out) / 2
      local s = scale / math.max(1.0, n)
      if distribution == "truncated_normal" then
        return tf.truncated_normal(shape, { stddev = math.sqrt(s) / TRUNCATED_STDDEV, dtype = dtype, seed = seed })
      elseif distribution == "untruncated_normal" then
        return tf.random_normal(shape, { stddev = math.sqrt(s), dtype = dtype, seed = seed })
      end
      local limit = math.sqrt(3.0 * s)
      return tf.random_uniform(shape, { minval = -limit, maxval = limit, dtype = dtype, seed = seed })
    end
  end

  tf.variance_scaling_initializer = A.def("tf.variance_scaling_initializer",
    "scale:number=1.0, mode:string=\"fan_in\", distribution:string=\"truncated_normal\", seed:int=nil, dtype:dtype=nil",
    "Draws with variance scale / n, n the fan of mode (fan_in, fan_out, fan_avg); truncated_normal, "
    .. "untruncated_normal or uniform.", function(a)
    return variance_scaling("tf.variance_scaling_initializer", a.scale, a.mode, a.distribution, a.seed, a.dtype)
  end)

  tf.initializers = tf.initializers or {}
  local inits = tf.initializers
  inits.variance_scaling = tf.variance_scaling_initializer

  -- TF's presets (init_ops.he_normal, ...): (seed) -> initializer.
  local presets = {
    { "he_normal", 2.0, "fan_in", "truncated_normal", "He normal: truncated, variance 2 / fan_in." },
    { "he_uniform", 2.0, "fan_in", "uniform", "He uniform: limit sqrt(6 / fan_in)." },
    { "lecun_normal", 1.0, "fan_in", "truncated_normal", "LeCun normal: truncated, variance 1 / fan_in." },
    { "lecun_uniform", 1.0, "fan_in", "uniform", "LeCun uniform: limit sqrt(3 / fan_in)." },
  }
  for _, p in ipairs(presets) do
    local path = "tf.initializers." .. p[1]
    inits[p[1]] = A.def(path, "seed:int=nil", p[5], function(a)
      return variance_scaling(path, p[2], p[3], p[4], a.seed)
    end)
  end
  inits.glorot_uniform, inits.glorot_normal = tf.glorot_uniform_initializer, tf.glorot_normal_initializer
  inits.zeros, inits.ones, inits.constant = tf.zeros_initializer, tf.ones_initializer, tf.constant_initializer
  inits.random_normal, inits.random_uniform = tf.random_normal_initializer, tf.random_uniform_initializer
  inits.truncated_normal, inits.orthogonal = tf.truncated_normal_initializer, tf.orthogonal_initializer

  tf.keras = tf.keras or {}
  tf.keras.initializers = tf.keras.initializers or {}
  for _, name in ipairs({ "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "glorot_uniform",
                          "glorot_normal" }) do
    tf.keras.initializers[name] = inits[name]
  end

  -- tf.contrib.layers.variance_scaling_initializer(factor=2.0, mode='FAN_IN',
  -- uniform=False, seed, dtype): contrib's own variant, whose normal is
  -- truncated with stddev sqrt(1.3 factor / n) and whose uniform limit is
  -- sqrt(3 factor / n).
  tf.contrib = tf.contrib or {}
  tf.contrib.layers = tf.contrib.layers or {}
  local contrib = tf.contrib.layers
  local function contrib_scaling(what, factor, mode, uniform, seed, dtype0)
    if mode ~= "FAN_IN" and mode ~= "FAN_OUT" and mode ~= "FAN_AVG" then
      G.raise("%s: mode must be FAN_IN, FAN_OUT or FAN_AVG, got '%s'", what, mode)
    end
    if dtype0 ~= nil and not dtype0:match("^float") then
      G.raise("%s: dtype must be a float type, got %s", what, dtype0)
    end
    return function(shape, dtype)
      shape = static_shape(shape, what)
      dtype = dtype or dtype0 or "float32"
      -- contrib's fans: a vector's fan_in is its length too; a scalar's 1
      local fan_in, fan_out = fans(shape)
      local n = mode == "FAN_IN" and fan_in or mode == "FAN_OUT" and fan_out or (fan_in + fan_out) / 2
      if uniform then
        local limit = math.sqrt(3.0 * factor / n)
        return tf.random_uniform(shape, { minval = -limit, maxval = limit, dtype = dtype, seed = seed })
      end
      return tf.truncated_normal(shape, { stddev = math.sqrt(1.3 * factor / n), dtype = dtype, seed = seed })
    end
  end
  contrib.variance_scaling_initializer = A.def("tf.contrib.layers.variance_scaling_initializer",
    "factor:number=2.0, mode:string=\"FAN_IN\", uniform:bool=false, seed:int=nil, dtype:dtype=\"float32\"",
    "contrib's variance scaling: uniform limit sqrt(3 factor / n), else truncated normal stddev sqrt(1.3 factor / n).",
    function(a)
    return contrib_scaling("tf.contrib.layers.variance_scaling_initializer", a.factor, a.mode, a.uniform, a.seed,
                           a.dtype)
  end)
  contrib.xavier_initializer = A.def("tf.contrib.layers.xavier_initializer",
    "uniform:bool=true, seed:int=nil, dtype:dtype=\"float32\"",
    "Xavier / Glorot: uniform limit sqrt(6 / (fan_in + fan_out)), else truncated normal stddev "
    .. "sqrt(2.6 / (fan_in + fan_out)).", function(a)
    return contrib_scaling("tf.contrib.layers.xavier_initializer", 1.0, "FAN_AVG", a.uniform, a.seed, a.dtype)
  end)
  contrib.xavier_initializer_conv2d = contrib.xavier_initializer
end
