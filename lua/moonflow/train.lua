-- tf.train: optimizers (one fused update op per variable), the global step,
-- learning-rate decay, and gradient clipping.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  tf.train = tf.train or {}
  local train = tf.train

  -- ---------------------------------------------------------------- global step

  local function check_graph(g, what)
    if g ~= nil and getmetatable(g) ~= G.Graph then G.raise("%s: graph must be a tf.Graph, got %s", what, type(g)) end
  end

  function train.get_global_step(g)
    check_graph(g, "tf.train.get_global_step")
    local c = (g or G.get_default_graph()):get_collection("global_step")
    return c[1]
  end

  function train.get_or_create_global_step(g)
    check_graph(g, "tf.train.get_or_create_global_step")
    g = g or G.get_default_graph()
    local step = train.get_global_step(g)
    if step then return step end
    step = g:as_default(function()
      return tf.Variable(0, { name = "global_step", dtype = "int64", trainable = false })
    end)
    g:add_to_collection("global_step", step)
    return step
  end
  train.create_global_step = train.get_or_create_global_step

  -- lr * decay_rate ^ (global_step / decay_steps), floored exponent when staircase.
  train.exponential_decay = A.def("tf.train.exponential_decay",
    "learning_rate:number, global_step:tensor, decay_steps:number, decay_rate:number, staircase:bool=false, name:string=nil",
    "learning_rate * decay_rate ^ (global_step / decay_steps), the exponent floored when staircase.", function(opts)
    local lr, global_step, decay_steps, decay_rate = opts.learning_rate, opts.global_step, opts.decay_steps, opts.decay_rate
    for _, a in ipairs({ { "learning_rate", lr }, { "decay_rate", decay_rate } }) do
      if type(a[2]) ~= "number" then
        G.raise("tf.train.exponential_decay: %s must be a number, got %s", a[1], type(a[2]))
      end
    end
    if type(decay_steps) ~= "number" or decay_steps <= 0 then
      G.raise("tf.train.exponential_decay: decay_steps must be a positive number, got %s", tostring(decay_steps))
    end
    if not G.is_tensor(global_step) then
      G.raise("tf.train.exponential_decay: global_step must be a Tensor or Variable, got %s", type(global_step))
    end
    return tf.name_scope(opts.name or "ExponentialDecay", function()
      local p = tf.cast(global_step, "float32") / (decay_steps + 0.0)
      if opts.staircase then p = tf.floor(p) end
      return tf.pow(C.to_tensor(decay_rate + 0.0, "float32"), p) * (lr + 0.0)
    end)
  end)

  -- ---------------------------------------------------------------- optimizers

  local Optimizer = {}
  Optimizer.__index = Optimizer

  local function new_optimizer(kind, name, hyper)
    return setmetatable({ _kind = kind, _name = name, _hyper = hyper, _slots = {} }, Optimizer)
  end
  -- Optimizers defined elsewhere (optimizers.lua): kind -> {slots = fn(opt,
  -- var), apply = fn(opt, grad, var) -> the update op}, grad a Tensor or
  -- IndexedSlices.
  train._kinds = {}
  train._new_optimizer = new_optimizer

  -- A hyperparameter (number or tensor) as a scalar tensor of the variable's dtype.
  local function hyper(value, dtype)
    if G.is_tensor(value) then
      if value.dtype ~= dtype then return tf.cast(value, dtype) end
      return value
    end
    return C.constant(value + 0.0, { dtype = dtype })
  end
  train._hyper = hyper

  -- slot(var, "Adam"): the optimizer's slot variable for var, named like
  -- TensorFlow's ("w/Adam", then "w/Adam_1" for the second slot).
  function Optimizer:_slot(var, key, init_value)
    self._slots[var] = self._slots[var] or {}
    local s = self._slots[var][key]
    if s then return s end
    local g = var.graph
    local name = core.graph_unique_name(g._g, var.op.name .. "/" .. self._name)
    -- Created where the variable lives (not in the caller's device scope),
    -- since the update reads both there.
    s = g:as_default(function()
      return tf.control_dependencies(nil, function()
        return tf.colocate_with(var, function()
          return tf.Variable(function() return tf.fill(var.shape, init_value + 0.0, { dtype = var.dtype }) end,
                             { name = name, _absolute = true, dtype = var.dtype, trainable = false })
        end)
      end)
    end)
    self._slots[var][key] = s
    return s
  end

  -- opt:get_slot(var, name): "m"/"v" (Adam), "momentum", "accumulator", "rms".
  function Optimizer:get_slot(var, name) return (self._slots[var] or {})[name] end

  -- The embedding lookups that are a variable's only readers, or nil when
  -- something else reads it too (then its gradient is dense).
  local function sparse_reads(g, var)
    local lookups = g._embedding_lookups
    if not lookups then return nil end
    local t, found = var._tensor, {}
    for _, op in ipairs(g:get_operations()) do
      local raw = op._info.inputs
      for i = 1, #raw, 2 do
        if raw[i] == t.op.id and raw[i + 1] == 0 then
          local l = lookups[op]
          if l and l.params == t and i == 1 then
            found[#found + 1] = op
          elseif not (op.type:match("^Assign") or op.type:match("Apply")) or i ~= 1 then
            return nil -- a dense reader (updates name the variable as a reference)
          end
        end
      end
    end
    return #found > 0 and found or nil
  end

  -- opt:compute_gradients(loss, var_list, ...) as TF's, or (loss, {var_list, ...}).
  function Optimizer:compute_gradients(loss, var_list, ...)
    if not G.is_tensor(loss) then G.raise("%s: compute_gradients needs a loss tensor", self._name) end
    if type(var_list) == "table" and getmetatable(var_list) == nil and var_list[1] == nil and next(var_list) ~= nil then
      local o = C.opts(var_list, self._name .. ":compute_gradients",
                       "var_list gate_gradients aggregation_method colocate_gradients_with_ops grad_loss")
      if o.grad_loss ~= nil then G.raise("%s:compute_gradients: grad_loss is not supported", self._name) end
      var_list = o.var_list
    elseif select("#", ...) > 0 and select(select("#", ...), ...) ~= nil and select(4, ...) ~= nil then
      G.raise("%s:compute_gradients: grad_loss is not supported", self._name)
    end
    local g = loss.graph
    var_list = var_list or g:get_collection("trainable_variables")
    if type(var_list) ~= "table" or G.is_tensor(var_list) then
      G.raise("%s: compute_gradients: var_list must be a list of Variables, got %s", self._name, type(var_list))
    end
    for i, v in ipairs(var_list) do
      if getmetatable(v) ~= tf.Variable_mt then
        G.raise("%s: compute_gradients: var_list[%d] is not a Variable", self._name, i)
      end
    end
    if #var_list == 0 then G.raise("%s: no variables to optimize", self._name) end
    -- Differentiate with respect to the lookups' outputs for embedding-only variables.
    local xs, sparse = {}, {}
    for i, v in ipairs(var_list) do
      local lookups = sparse_reads(g, v)
      if lookups then
        sparse[i] = { first = #xs + 1, lookups = lookups }
        for _, op in ipairs(lookups) do xs[#xs + 1] = op.outputs[1] end
      else
        xs[#xs + 1] = v
      end
    end
    local grads = tf.gradients(loss, xs)
    local pairs_, k = {}, 1
    for i, v in ipairs(var_list) do
      local sp = sparse[i]
      if sp then
        local rows, ids = {}, {}
        local width = {}
        for d = 2, #v.shape do width[#width + 1] = v.shape[d] end
        for j, op in ipairs(sp.lookups) do
          local gr = grads[sp.first + j - 1]
          if gr then
            local row_shape = { -1 }
            for _, d in ipairs(width) do row_shape[#row_shape + 1] = d end
            rows[#rows + 1] = tf.reshape(gr, row_shape)
            ids[#ids + 1] = tf.reshape(g._embedding_lookups[op].ids, { -1 })
          end
        end
        local grad
        if #rows > 0 then
          local r = #rows == 1 and rows[1] or tf.concat(rows, 1)
          local d = #ids == 1 and ids[1] or tf.concat(ids, 1)
          local op = G.make_op("DedupRows", { r, d }, nil, { name = "DedupRows" })
          grad = tf.IndexedSlices(op.outputs[2], op.outputs[1], v.shape)
        end
        pairs_[i] = { grad, v }
        k = k + #sp.lookups
      else
        pairs_[i] = { grads[k], v }
        k = k + 1
      end
    end
    return pairs_
  end

  local function apply_one(self, grad, var)
    local h, dt, k = self._hyper, var.dtype, self._kind
    local lr = hyper(h.learning_rate, dt)
    local t = var._tensor
    local function ref(v) return v._tensor end
    if train._kinds[k] then return train._kinds[k].apply(self, grad, var) end -- dense or IndexedSlices
    if tf.is_indexed_slices(grad) then
      if k == "sgd" then
        return G.make_op("SparseApplyGradientDescent", { t, lr, grad.values, grad.indices })
      elseif k == "adam" then
        local m, v = self:_slot(var, "m", 0), self:_slot(var, "v", 0)
        return G.make_op("SparseApplyAdam", { t, ref(m), ref(v), tf.cast(self._beta1_power, dt),
          tf.cast(self._beta2_power, dt), lr, hyper(h.beta1, dt), hyper(h.beta2, dt), hyper(h.epsilon, dt),
          grad.values, grad.indices })
      end
      -- the other optimizers take the rows scattered into a dense gradient
      grad = G.make_op("GatherGrad", { grad.values, grad.indices, t }).outputs[1]
    end
    if k == "sgd" then
      return G.make_op("ApplyGradientDescent", { t, lr, grad }, nil, { name = "update_" .. var.op.name:gsub("/", "_") })
    elseif k == "momentum" then
      local acc = self:_slot(var, "momentum", 0)
      return G.make_op("ApplyMomentum", { t, ref(acc), lr, grad, hyper(h.momentum, dt) },
                       { "use_nesterov", "bool", h.use_nesterov or false })
    elseif k == "adagrad" then
      local acc = self:_slot(var, "accumulator", h.initial_accumulator_value)
      return G.make_op("ApplyAdagrad", { t, ref(acc), lr, grad })
    elseif k == "rmsprop" then
      local rms = self:_slot(var, "rms", 1.0)
      local mom = self:_slot(var, "momentum", 0)
      return G.make_op("ApplyRMSProp", { t, ref(rms), ref(mom), lr, hyper(h.decay, dt), hyper(h.momentum, dt),
                                         hyper(h.epsilon, dt), grad })
    else -- adam
      local m, v = self:_slot(var, "m", 0), self:_slot(var, "v", 0)
      return G.make_op("ApplyAdam", { t, ref(m), ref(v), tf.cast(self._beta1_power, dt), tf.cast(self._beta2_power, dt),
                                      lr, hyper(h.beta1, dt), hyper(h.beta2, dt), hyper(h.epsilon, dt), grad })
    end
  end

  -- opt:apply_gradients(grads_and_vars, {global_step, name}) -> the train op.
  function Optimizer:apply_gradients(grads_and_vars, opts, name)
    if G.is_tensor(opts) or (opts == nil and name ~= nil) then -- TF's (grads_and_vars, global_step, name)
      opts = { global_step = opts, name = name }
    elseif name ~= nil then
      G.raise("%s:apply_gradients: after grads_and_vars come global_step, name (TF's order), or one options table",
              self._name)
    end
    opts = C.opts(opts, self._name .. ":apply_gradients", "name global_step")
    local todo = {}
    if type(grads_and_vars) ~= "table" then
      G.raise("%s: apply_gradients: grads_and_vars must be a list of {gradient, variable}, got %s",
              self._name, type(grads_and_vars))
    end
    for i, gv in ipairs(grads_and_vars) do
      if type(gv) ~= "table" or G.is_tensor(gv) then
        G.raise("%s: apply_gradients: element %d must be a {gradient, variable} pair", self._name, i)
      end
      local grad, var = gv[1], gv[2]
      if getmetatable(var) ~= tf.Variable_mt then
        G.raise("%s: apply_gradients: element %d's second entry is not a Variable", self._name, i)
      end
      if grad ~= nil then
        todo[#todo + 1] = { tf.is_indexed_slices(grad) and grad or C.to_tensor(grad, var.dtype), var }
      end
    end
    if #todo == 0 then
      G.raise("%s: no gradients provided for any variable (check that the loss depends on them)", self._name)
    end
    local g = todo[1][2].graph
    return g:as_default(function()
      -- Adam's bias-correction powers: non-slot variables, updated after the step.
      if self._kind == "adam" and not self._beta1_power then
        tf.control_dependencies(nil, function()
          self._beta1_power = tf.Variable(self._hyper.beta1 + 0.0, { name = "beta1_power", trainable = false })
          self._beta2_power = tf.Variable(self._hyper.beta2 + 0.0, { name = "beta2_power", trainable = false })
        end)
      end
      for _, gv in ipairs(todo) do -- slots first, outside the update's name scope
        local k = self._kind
        if k == "momentum" then self:_slot(gv[2], "momentum", 0)
        elseif k == "adagrad" then self:_slot(gv[2], "accumulator", self._hyper.initial_accumulator_value)
        elseif k == "rmsprop" then self:_slot(gv[2], "rms", 1.0); self:_slot(gv[2], "momentum", 0)
        elseif k == "adam" then self:_slot(gv[2], "m", 0); self:_slot(gv[2], "v", 0)
        elseif train._kinds[k] then train._kinds[k].slots(self, gv[2]) end
      end
      local scope = opts.name or self._name
      return tf.name_scope(scope, function()
        local updates = {}
        for i, gv in ipairs(todo) do -- each update runs where its variable lives
          updates[i] = tf.colocate_with(gv[2], function() return apply_one(self, gv[1], gv[2]) end)
        end
        local finish = updates
        if self._kind == "adam" then
          finish = tf.control_dependencies(updates, function()
            local function decay(p, b) return tf.colocate_with(p, function() return p:assign(p * b).op end) end
            return { decay(self._beta1_power, self._hyper.beta1 + 0.0), decay(self._beta2_power, self._hyper.beta2 + 0.0) }
          end)
          for _, u in ipairs(updates) do finish[#finish + 1] = u end
        end
        if opts.global_step then
          return tf.control_dependencies(finish, function()
            return tf.colocate_with(opts.global_step, function() return opts.global_step:assign_add(1).op end)
          end)
        end
        return tf.group(finish, "update")
      end)
    end)
  end

  -- opt:minimize(loss, {global_step, var_list, name}) or TF's positional
  -- (loss, global_step, var_list, gate_gradients, aggregation_method,
  -- colocate_gradients_with_ops, name, grad_loss).
  function Optimizer:minimize(loss, opts, ...)
    local rest = table.pack(...)
    if G.is_tensor(opts) or (opts == nil and rest.n > 0) then
      local var_list, _, _, _, name, grad_loss = ...
      if grad_loss ~= nil then G.raise("%s:minimize: grad_loss is not supported", self._name) end
      opts = { global_step = opts, var_list = var_list, name = name }
    elseif rest.n > 0 then
      G.raise("%s:minimize: after loss come global_step, var_list, ..., name (TF's order), or one options table",
              self._name)
    end
    opts = C.opts(opts, self._name .. ":minimize",
                  "name global_step var_list gate_gradients aggregation_method colocate_gradients_with_ops")
    return self:apply_gradients(self:compute_gradients(loss, opts.var_list),
                                { global_step = opts.global_step, name = opts.name })
  end

  -- Optimizer methods called on something else are errors naming them.
  G.guard_methods(Optimizer, "Optimizer", function(x) return getmetatable(x) == Optimizer end)

  local function check_lr(lr, what)
    if type(lr) ~= "number" and not G.is_tensor(lr) then G.raise("%s: needs a learning rate", what) end
    return lr
  end

  -- The constructors take TF 1.x's positional parameters; use_locking is
  -- accepted and has no effect (updates within a run are ordered).
  train.GradientDescentOptimizer = A.def("tf.train.GradientDescentOptimizer",
    "learning_rate:scalar, use_locking:bool=false, name:string=\"GradientDescent\"",
    "Plain gradient descent (opt:minimize, compute_gradients, apply_gradients).", function(a)
    return new_optimizer("sgd", a.name, { learning_rate = check_lr(a.learning_rate, "GradientDescentOptimizer") })
  end)

  train.MomentumOptimizer = A.def("tf.train.MomentumOptimizer",
    "learning_rate:scalar, momentum:scalar, use_locking:bool=false, name:string=\"Momentum\", use_nesterov:bool=false",
    "Gradient descent with momentum (Nesterov's with use_nesterov).", function(a)
    return new_optimizer("momentum", a.name, { learning_rate = check_lr(a.learning_rate, "MomentumOptimizer"),
      momentum = a.momentum, use_nesterov = a.use_nesterov })
  end)

  train.AdagradOptimizer = A.def("tf.train.AdagradOptimizer",
    "learning_rate:scalar, initial_accumulator_value:number=0.1, use_locking:bool=false, name:string=\"Adagrad\"",
    "Adagrad.", function(a)
    return new_optimizer("adagrad", a.name, { learning_rate = check_lr(a.learning_rate, "AdagradOptimizer"),
      initial_accumulator_value = a.initial_accumulator_value })
  end)

  train.RMSPropOptimizer = A.def("tf.train.RMSPropOptimizer",
    "learning_rate:scalar, decay:scalar=0.9, momentum:scalar=0.0, epsilon:scalar=1e-10, use_locking:bool=false, "
    .. "centered:bool=false, name:string=\"RMSProp\"", "RMSProp (centered = true is not supported).", function(a)
    if a.centered then G.raise("tf.train.RMSPropOptimizer: centered = true is not supported") end
    return new_optimizer("rmsprop", a.name, { learning_rate = check_lr(a.learning_rate, "RMSPropOptimizer"),
      decay = a.decay, momentum = a.momentum, epsilon = a.epsilon })
  end)

  train.AdamOptimizer = A.def("tf.train.AdamOptimizer",
    "learning_rate:scalar=0.001, beta1:scalar=0.9, beta2:scalar=0.999, epsilon:scalar=1e-8, use_locking:bool=false, "
    .. "name:string=\"Adam\"", "Adam.", function(a)
    return new_optimizer("adam", a.name, { learning_rate = check_lr(a.learning_rate, "AdamOptimizer"),
      beta1 = a.beta1, beta2 = a.beta2, epsilon = a.epsilon })
  end)

  -- ---------------------------------------------------------------- clipping

  tf.clip_by_value = A.def("tf.clip_by_value",
    "t:tensor, clip_value_min:tensor, clip_value_max:tensor, name:string=nil", "t clamped to [min, max].", function(a)
    local t, lo, hi = C.to_tensor(a.t), a.clip_value_min, a.clip_value_max
    return tf.name_scope(a.name or "clip_by_value", function() return tf.maximum(tf.minimum(t, hi), lo) end)
  end)

  -- t * clip_norm / max(||t||, clip_norm), the norm over `axes` (all by default).
  tf.clip_by_norm = A.def("tf.clip_by_norm", "t:tensor, clip_norm:tensor, axes:axes=nil, name:string=nil",
    "t scaled so its L2 norm (over axes, or all) is at most clip_norm.", function(a)
    local t, clip_norm, axes, name = C.to_tensor(a.t), a.clip_norm, a.axes, a.name
    return tf.name_scope(name or "clip_by_norm", function()
      local l2sum = tf.reduce_sum(tf.square(t), axes, { keep_dims = true })
      -- TF's two-tap where: a zero norm takes no sqrt, so its gradient is 0, not NaN
      local pred = tf.greater(l2sum, 0)
      local norm = tf.where(pred, tf.sqrt(tf.where(pred, l2sum, tf.ones_like(l2sum))), l2sum)
      local c = C.to_tensor(clip_norm, t.dtype)
      return t * c / tf.maximum(norm, c)
    end)
  end)

  tf.global_norm = A.def("tf.global_norm", "t_list:tensors, name:string=nil",
    "sqrt of the sum of the squares of all the tensors (nils skipped).", function(a)
    local list, name = a.t_list, a.name
    return tf.name_scope(name or "global_norm", function()
      local total
      for i = 1, list.n or #list do
        local t = list[i]
        if t ~= nil then
          if tf.is_indexed_slices(t) then t = t.values end -- each row once: the dense norm
          local s = tf.reduce_sum(tf.square(C.to_tensor(t)))
          total = total and total + s or s
        end
      end
      if not total then G.raise("tf.global_norm: no tensors") end
      return tf.sqrt(total)
    end)
  end)

  -- Returns the list scaled by clip_norm / max(global_norm, clip_norm) (nils
  -- kept), and the global norm.
  tf.clip_by_global_norm = A.def("tf.clip_by_global_norm",
    "t_list:tensors, clip_norm:tensor, use_norm:tensor=nil, name:string=nil",
    "The tensors scaled so their global norm is at most clip_norm; returns the list and the global norm.", function(a)
    local list, clip_norm, use_norm, name = a.t_list, a.clip_norm, a.use_norm, a.name
    if use_norm ~= nil then use_norm = C.to_tensor(use_norm) end
    local n = list.n or #list
    return tf.name_scope(name or "clip_by_global_norm", function()
      local norm = use_norm or tf.global_norm(list)
      local c = C.to_tensor(clip_norm, norm.dtype)
      local scale = c / tf.maximum(norm, c)
      local out = { n = n }
      for i = 1, n do
        local t = list[i]
        if tf.is_indexed_slices(t) then
          local v = t.values
          out[i] = tf.IndexedSlices(v * (v.dtype == scale.dtype and scale or tf.cast(scale, v.dtype)),
                                    t.indices, t.dense_shape)
        elseif t ~= nil then
          t = C.to_tensor(t)
          out[i] = t * (t.dtype == scale.dtype and scale or tf.cast(scale, t.dtype))
        end
      end
      return out, norm
    end)
  end)
end
