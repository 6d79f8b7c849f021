-- tf.train.AdadeltaOptimizer and tf.train.FtrlOptimizer: TF's update rules
-- (training_ops.cc's ApplyAdadelta, ApplyFtrl / ApplyFtrlV2) composed from
-- element-wise ops and assigns, so every device runs them. The new values
-- are all computed from the values read before any assign runs.
local G = require("moonflow.graph")
local A = require("moonflow.args")

return function(tf)
  local train = tf.train
  local hyper = train._hyper

  local function check_lr(lr, what)
    if type(lr) ~= "number" and not G.is_tensor(lr) then G.raise("%s: needs a learning rate", what) end
    return lr
  end

  -- Assigns each {variable, new value} once every new value is computed.
  local function assign_all(pairs_, name)
    local values = {}
    for i, p in ipairs(pairs_) do values[i] = p[2] end
    return tf.control_dependencies(values, function()
      local ops = {}
      for i, p in ipairs(pairs_) do ops[i] = p[1]:assign(p[2]).op end
      return tf.group(ops, name)
    end)
  end

  -- The update of var and its slots (by key) by rule(var, slot..., grad) ->
  -- new var, new slot...: element-wise on the whole variables for a dense
  -- gradient; for IndexedSlices (each row once) on the rows it names only,
  -- the others left as they are (TF's SparseApply*).
  local function apply_rule(opt, grad, var, keys, rule)
    local targets = { var }
    for i, k in ipairs(keys) do targets[i + 1] = opt:get_slot(var, k) end
    local name = "update_" .. var.op.name:gsub("/", "_")
    local pairs_ = {}
    if not tf.is_indexed_slices(grad) then
      local args = { table.unpack(targets) }
      args[#args + 1] = grad
      local new = { rule(table.unpack(args)) }
      for i, t in ipairs(targets) do pairs_[i] = { t, new[i] } end
      return assign_all(pairs_, name)
    end
    local ids, rows = grad.indices, {}
    for i, t in ipairs(targets) do rows[i] = tf.gather(t, ids) end
    rows[#rows + 1] = grad.values
    local new = { rule(table.unpack(rows)) }
    local function scatter(values) -- rows into zeros shaped like var
      return G.make_op("GatherGrad", { values, ids, var._tensor }).outputs[1]
    end
    local touched = tf.not_equal(scatter(tf.ones_like(grad.values)), 0)
    for i, t in ipairs(targets) do pairs_[i] = { t, tf.where(touched, scatter(new[i]), t) } end
    return assign_all(pairs_, name)
  end

  -- accum = rho accum + (1 - rho) g^2
  -- update = sqrt(accum_update + eps) / sqrt(accum + eps) * g
  -- var -= lr update; accum_update = rho accum_update + (1 - rho) update^2
  train._kinds.adadelta = {
    slots = function(opt, var)
      opt:_slot(var, "accum", 0)
      opt:_slot(var, "accum_update", 0)
    end,
    apply = function(opt, grad, var)
      local h, dt = opt._hyper, var.dtype
      local lr, rho, eps = hyper(h.learning_rate, dt), hyper(h.rho, dt), hyper(h.epsilon, dt)
      local one_minus_rho = 1 - rho
      return apply_rule(opt, grad, var, { "accum", "accum_update" }, function(v, accum, accum_update, g)
        local new_accum = accum * rho + tf.square(g) * one_minus_rho
        local update = tf.sqrt(accum_update + eps) * tf.rsqrt(new_accum + eps) * g
        return v - update * lr, new_accum, accum_update * rho + tf.square(update) * one_minus_rho
      end)
    end,
  }

  train.AdadeltaOptimizer = A.def("tf.train.AdadeltaOptimizer",
    "learning_rate:scalar=0.001, rho:scalar=0.95, epsilon:scalar=1e-8, use_locking:bool=false, "
    .. "name:string=\"Adadelta\"", "Adadelta (slots accum and accum_update).", function(a)
    return train._new_optimizer("adadelta", a.name, { learning_rate = check_lr(a.learning_rate, "AdadeltaOptimizer"),
      rho = a.rho, epsilon = a.epsilon })
  end)

  -- g' = g + 2 l2_shrinkage var (g' = g without shrinkage)
  -- accum' = accum + g^2
  -- linear += g' - (accum'^-p - accum^-p) / lr * var   (p = learning_rate_power)
  -- var = |linear| > l1 ? (sign(linear) l1 - linear) / (accum'^-p / lr + 2 l2) : 0
  train._kinds.ftrl = {
    slots = function(opt, var)
      opt:_slot(var, "accum", opt._hyper.initial_accumulator_value)
      opt:_slot(var, "linear", 0)
    end,
    apply = function(opt, grad, var)
      local h, dt = opt._hyper, var.dtype
      local lr, l1 = hyper(h.learning_rate, dt), hyper(h.l1, dt)
      local function power(x) -- x^-p; the common p = -0.5 as sqrt, as TF's kernel
        if h.learning_rate_power == -0.5 then return tf.sqrt(x) end
        return tf.pow(x, hyper(-h.learning_rate_power, dt))
      end
      return apply_rule(opt, grad, var, { "accum", "linear" }, function(v, accum, linear, g)
        local new_accum = accum + tf.square(g)
        local shrunk = g
        if h.l2_shrinkage > 0 then shrunk = g + v * hyper(2 * h.l2_shrinkage, dt) end
        local new_linear = linear + shrunk - (power(new_accum) - power(accum)) / lr * v
        local quadratic = power(new_accum) / lr + hyper(2 * h.l2, dt)
        local new_var = tf.where(tf.greater(tf.abs(new_linear), l1),
                                 (tf.sign(new_linear) * l1 - new_linear) / quadratic, tf.zeros_like(new_linear))
        return new_var, new_accum, new_linear
      end)
    end,
  }

  train.FtrlOptimizer = A.def("tf.train.FtrlOptimizer",
    "learning_rate:scalar, learning_rate_power:number=-0.5, initial_accumulator_value:number=0.1, "
    .. "l1_regularization_strength:number=0.0, l2_regularization_strength:number=0.0, use_locking:bool=false, "
    .. "name:string=\"Ftrl\", accum_name:string=nil, linear_name:string=nil, "
    .. "l2_shrinkage_regularization_strength:number=0.0",
    "FTRL-Proximal (slots accum and linear).", function(a)
    local what = "tf.train.FtrlOptimizer"
    if a.learning_rate_power > 0 then
      G.raise("%s: learning_rate_power must be <= 0, got %g", what, a.learning_rate_power)
    end
    if a.initial_accumulator_value <= 0 then
      G.raise("%s: initial_accumulator_value must be positive, got %g", what, a.initial_accumulator_value)
    end
    for _, k in ipairs({ "l1_regularization_strength", "l2_regularization_strength",
                         "l2_shrinkage_regularization_strength" }) do
      if a[k] < 0 then G.raise("%s: %s must be >= 0, got %g", what, k, a[k]) end
    end
    return train._new_optimizer("ftrl", a.name, { learning_rate = check_lr(a.learning_rate, "FtrlOptimizer"),
      learning_rate_power = a.learning_rate_power, initial_accumulator_value = a.initial_accumulator_value,
      l1 = a.l1_regularization_strength, l2 = a.l2_regularization_strength,
      l2_shrinkage = a.l2_shrinkage_regularization_strength })
  end)
end
