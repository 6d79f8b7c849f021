-- tf.variable_scope, tf.get_variable, initializers and tf.layers.dense.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  tf.AUTO_REUSE = "auto_reuse"

  -- ---------------------------------------------------------------- initializers
  -- An initializer is a function (shape, dtype) -> Tensor.

  local function seed_of(o) return o and o.seed end

  -- TF 1.x's initializer signatures; each returns function(shape, dtype).
  local initializer = A.def

  tf.zeros_initializer = initializer("tf.zeros_initializer", "dtype:dtype=nil", "An initializer of zeros.", function(o)
    return function(shape, dtype) return tf.zeros(shape, dtype or o.dtype) end
  end)
  tf.ones_initializer = initializer("tf.ones_initializer", "dtype:dtype=nil", "An initializer of ones.", function(o)
    return function(shape, dtype) return tf.ones(shape, dtype or o.dtype) end
  end)

  tf.constant_initializer = initializer("tf.constant_initializer", "value:tensor=0, dtype:dtype=nil, verify_shape:bool=false",
                                 "An initializer filling with value (a number, or a table of the variable's shape).",
                                 function(o)
    local value = o.value
    return function(shape, dtype)
      dtype = dtype or o.dtype
      if type(value) == "number" then
        return tf.fill(shape, dtype and dtype:match("^float") and value + 0.0 or value, { dtype = dtype })
      end
      return tf.constant(value, { dtype = dtype, shape = shape })
    end
  end)

  tf.random_normal_initializer = initializer("tf.random_normal_initializer",
    "mean:number=0.0, stddev:number=1.0, seed:int=nil, dtype:dtype=nil", "A normal initializer.", function(o)
    return function(shape, dtype)
      return tf.random_normal(shape, { mean = o.mean, stddev = o.stddev, dtype = dtype or o.dtype, seed = seed_of(o) })
    end
  end)

  tf.random_uniform_initializer = initializer("tf.random_uniform_initializer",
    "minval:number=0.0, maxval:number=1.0, seed:int=nil, dtype:dtype=nil", "A uniform initializer on [minval, maxval).",
    function(o)
    return function(shape, dtype)
      return tf.random_uniform(shape, { minval = o.minval, maxval = o.maxval, dtype = dtype or o.dtype, seed = seed_of(o) })
    end
  end)

  tf.truncated_normal_initializer = initializer("tf.truncated_normal_initializer",
    "mean:number=0.0, stddev:number=1.0, seed:int=nil, dtype:dtype=nil",
    "A normal initializer redrawing values beyond 2 stddev.", function(o)
    return function(shape, dtype)
      return tf.truncated_normal(shape, { mean = o.mean, stddev = o.stddev, dtype = dtype or o.dtype, seed = seed_of(o) })
    end
  end)

  -- TensorFlow's fan computation: the last two dims, times the receptive field.
  local function fans(shape)
    if #shape == 0 then return 1, 1 end
    if #shape == 1 then return shape[1], shape[1] end
    local rf = 1
    for i = 1, #shape - 2 do rf = rf * shape[i] end
    return shape[#shape - 1] * rf, shape[#shape] * rf
  end

  tf.glorot_uniform_initializer = initializer("tf.glorot_uniform_initializer", "seed:int=nil, dtype:dtype=nil",
    "Glorot (Xavier) uniform: limit sqrt(6 / (fan_in + fan_out)).", function(o)
    return function(shape, dtype)
      dtype = dtype or o.dtype
      local fan_in, fan_out = fans(shape)
      local limit = math.sqrt(6.0 / math.max(1, fan_in + fan_out))
      return tf.random_uniform(shape, { minval = -limit, maxval = limit, dtype = dtype, seed = seed_of(o) })
    end
  end)
  tf.glorot_normal_initializer = initializer("tf.glorot_normal_initializer", "seed:int=nil, dtype:dtype=nil",
    "Glorot (Xavier) normal: truncated, stddev sqrt(2 / (fan_in + fan_out)).", function(o)
    return function(shape, dtype)
      dtype = dtype or o.dtype
      local fan_in, fan_out = fans(shape)
      local sd = math.sqrt(2.0 / math.max(1, fan_in + fan_out)) / 0.87962566103423978
      return tf.truncated_normal(shape, { stddev = sd, dtype = dtype, seed = seed_of(o) })
    end
  end)

  -- A random orthogonal matrix (QR of a Gaussian one, rows reshaped to `shape`), times gain.
  tf.orthogonal_initializer = initializer("tf.orthogonal_initializer", "gain:number=1.0, seed:int=nil, dtype:dtype=nil",
    "A random orthogonal matrix (rows reshaped to the shape) times gain.", function(o)
    return function(shape, dtype)
      dtype = dtype or o.dtype
      if #shape < 2 then G.raise("tf.orthogonal_initializer: needs a shape of rank 2 or more") end
      local s1, s2 = tf._seeds(seed_of(o))
      return G.make_op("RandomOrthogonal", {}, { "shape", "shape", shape, "dtype", "type", dtype or "float32",
        "seed", "int", s1, "seed2", "int", s2, "gain", "float", o.gain }, { name = "orthogonal" }).outputs[1]
    end
  end)

  -- ---------------------------------------------------------------- scopes

  local function current(g)
    return g._var_scope or { name = "", reuse = false, initializer = nil }
  end

  function tf.get_variable_scope() return current(G.get_default_graph()) end

  -- tf.variable_scope(name, {reuse, initializer, regularizer}, fn) or the <close> form.
  function tf.variable_scope(name, opts, fn)
    if type(opts) == "function" then opts, fn = nil, opts end
    opts = C.opts(opts, "tf.variable_scope", "reuse initializer regularizer")
    if type(name) ~= "string" or name == "" then G.raise("tf.variable_scope: needs a name") end
    local g = G.get_default_graph()
    local parent = current(g)
    local scope = {
      name = parent.name == "" and name or parent.name .. "/" .. name,
      -- TensorFlow's rule: a reusing (or auto-reusing) parent wins, else the option.
      reuse = (parent.reuse ~= false and parent.reuse) or opts.reuse or false,
      initializer = opts.initializer or parent.initializer,
      regularizer = opts.regularizer or parent.regularizer,
    }
    local ns, saved
    local function push()
      ns = tf.name_scope(name) -- a variable scope opens a name scope of that name too
      saved, g._var_scope = g._var_scope, scope
    end
    local function pop()
      g._var_scope = saved
      getmetatable(ns).__close(ns)
    end
    return G.scoped(push, pop, fn)
  end

  -- tf.get_variable(name, shape, dtype, initializer, regularizer, trainable)
  -- as TF 1.x's, options by name in a trailing table.
  tf.get_variable = A.def("tf.get_variable",
    "name:string, shape:any=nil, dtype:dtype=nil, initializer:any=nil, regularizer:function=nil, trainable:bool=nil",
    "The variable of that name in the current variable scope, created or reused.", function(opts)
    local name, shape = opts.name, opts.shape
    if opts.regularizer ~= nil and type(opts.regularizer) ~= "function" then
      G.raise("tf.get_variable: regularizer must be a function (a variable -> a loss tensor or nil)")
    end
    if shape ~= nil then
      if type(shape) ~= "table" or G.is_tensor(shape) then
        G.raise("tf.get_variable: shape must be a list of dimensions, got %s", type(shape))
      end
      for i, d in ipairs(shape) do
        if math.type(d) ~= "integer" or d < 0 then
          G.raise("tf.get_variable: shape[%d] must be an integer >= 0, got %s", i, tostring(d))
        end
      end
    end
    local g = G.get_default_graph()
    local scope = current(g)
    local full = scope.name == "" and name or scope.name .. "/" .. name
    g._var_store = g._var_store or {}
    local existing = g._var_store[full]
    if existing then
      if scope.reuse == false then
        G.raise("tf.get_variable: variable %s already exists, disallowed. Did you mean to set reuse=true "
                .. "in tf.variable_scope? Originally defined at %s", full, existing.location)
      end
      if shape then
        local ok = #shape == #existing.shape
        for i = 1, #shape do ok = ok and shape[i] == existing.shape[i] end
        if not ok then
          G.raise("tf.get_variable: trying to share variable %s, but its shape {%s} differs from {%s}",
                  full, table.concat(existing.shape, ", "), table.concat(shape, ", "))
        end
      end
      if opts.dtype and opts.dtype ~= existing.dtype then
        G.raise("tf.get_variable: trying to share variable %s of dtype %s as %s", full, existing.dtype, opts.dtype)
      end
      return existing
    end
    if scope.reuse == true then
      G.raise("tf.get_variable: variable %s does not exist, or was not created with tf.get_variable(). "
              .. "Did you mean to set reuse=tf.AUTO_REUSE in tf.variable_scope?", full)
    end
    local dtype = C.check_dtype(opts.dtype, "tf.get_variable") or "float32"
    local init = opts.initializer or scope.initializer
    local value
    if init == nil or type(init) == "function" then
      if shape == nil then G.raise("tf.get_variable: %s needs a shape (or a constant initializer)", full) end
      init = init or (dtype:match("^float") and tf.glorot_uniform_initializer() or tf.zeros_initializer())
      value = function() return init(shape, dtype) end
    else -- a constant (tensor, Array, number or table) gives the value and shape
      value = function() return C.to_tensor(init, dtype) end
    end
    local v = tf.Variable(value, { name = full, _absolute = true, dtype = dtype, trainable = opts.trainable })
    g._var_store[full] = v
    -- TF: a new variable's regularizer loss, built in "<variable>/Regularizer/", goes to REGULARIZATION_LOSSES.
    local regularizer = opts.regularizer or scope.regularizer
    if regularizer then
      local loss = G.colocate_with(v._tensor, function()
        return tf.name_scope(full .. "/Regularizer/", function() return regularizer(v) end)
      end)
      if loss ~= nil then g:add_to_collection("regularization_losses", loss) end
    end
    return v
  end)

  -- ---------------------------------------------------------------- layers

  tf.layers = tf.layers or {}

  -- tf.layers.dense(inputs, units, activation, use_bias, kernel_initializer,
  -- bias_initializer, ..., trainable, name, reuse) as TF 1.x's.
  tf.layers.dense = A.def("tf.layers.dense",
    "inputs:tensor, units:any, activation:function=nil, use_bias:bool=true, kernel_initializer:any=nil, "
    .. "bias_initializer:any=nil, kernel_regularizer:function=nil, bias_regularizer:function=nil, "
    .. "activity_regularizer:any=nil, kernel_constraint:any=nil, bias_constraint:any=nil, trainable:bool=true, "
    .. "name:string=nil, reuse:any=nil",
    "A fully connected layer: activation(inputs kernel + bias) over the last axis.", function(opts)
    local x, units = C.to_tensor(opts.inputs), opts.units
    for _, k in ipairs({ "activity_regularizer", "kernel_constraint",
                         "bias_constraint" }) do
      if opts[k] ~= nil then G.raise("tf.layers.dense: %s is not supported", k) end
    end
    if math.type(units) ~= "integer" or units < 1 then G.raise("tf.layers.dense: units must be a positive integer") end
    if not x.shape or x.shape[#x.shape] == nil or x.shape[#x.shape] < 0 then
      G.raise("tf.layers.dense: the last dimension of the input must be known")
    end
    local g = G.get_default_graph()
    local name = opts.name
    if not name then -- dense, dense_1, ... per graph, as Keras layers are named
      g._layer_count = (g._layer_count or 0) + 1
      name = g._layer_count == 1 and "dense" or "dense_" .. (g._layer_count - 1)
    end
    local n_in = x.shape[#x.shape]
    return tf.variable_scope(name, { reuse = opts.reuse }, function()
      local kernel = tf.get_variable("kernel", { n_in, units },
        { initializer = opts.kernel_initializer, dtype = x.dtype, trainable = opts.trainable,
          regularizer = opts.kernel_regularizer })
      local y
      if #x.shape == 2 then
        y = tf.matmul(x, kernel)
      else -- apply to the last axis of a higher-rank input
        local shape = {}
        for i = 1, #x.shape - 1 do shape[i] = x.shape[i] end
        shape[#x.shape] = units
        y = tf.reshape(tf.matmul(tf.reshape(x, { -1, n_in }), kernel), shape)
      end
      if opts.use_bias ~= false then
        local bias = tf.get_variable("bias", { units },
          { initializer = opts.bias_initializer or tf.zeros_initializer(), dtype = x.dtype, trainable = opts.trainable,
            regularizer = opts.bias_regularizer })
        y = y + bias
      end
      if opts.activation then y = opts.activation(y) end
      return y
    end)
  end)
end
