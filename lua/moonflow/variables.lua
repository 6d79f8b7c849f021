-- Variables: a VariableV2 op whose value lives in each session, an
-- initializer (Assign), and assign / assign_add / assign_sub.
local G = require("moonflow.graph")
local C = require("moonflow.convert")

return function(tf)
  -- A Variable stands for the VariableV2 op's output (a read at that op's
  -- turn in the run), so it can be used wherever a tensor can.
  local Variable = { __tensor = true }
  for k, v in pairs(G.Tensor) do if k:sub(1, 2) == "__" and k ~= "__index" then Variable[k] = v end end
  Variable.__index = function(v, k)
    if type(k) == "number" then return G.getitem(v, k) end -- v[i], as a tensor's
    return Variable[k] or G.Tensor[k]
  end
  Variable.__tostring = function(v)
    return string.format("Variable '%s' shape=%s dtype=%s", v.name, tostring(v._tensor):match("shape=(%b{})") or "?", v.dtype)
  end
  tf.Variable_mt = Variable

  local function update(v, op_type, value, name)
    value = C.to_tensor(value, v.dtype)
    return G.make_op(op_type, { v._tensor, value }, nil, { name = name or op_type }).outputs[1]
  end
  function Variable:assign(value, name) return update(self, "Assign", value, name) end
  function Variable:assign_add(value, name) return update(self, "AssignAdd", value, name) end
  function Variable:assign_sub(value, name) return update(self, "AssignSub", value, name) end
  function Variable:read_value(name) -- where the variable lives, as TF's reads are
    return G.colocate_with(self._tensor, function()
      return G.make_op("ReadVariable", { self._tensor }, nil, { name = name or "read" }).outputs[1]
    end)
  end
  function Variable:value() return self._tensor end
  function Variable:initialized_value()
    return tf.control_dependencies({ self.initializer }, function() return self:read_value() end)
  end

  -- tf.Variable(initial_value, {name, trainable, dtype, validate_shape,
  -- collections}), or TF's positional order (initial_value, trainable,
  -- collections, validate_shape, caching_device, name, variable_def, dtype)
  -- when the second argument is a boolean; a string second is the name.
  tf.Variable = function(initial_value, opts, ...)
    if type(opts) == "boolean" then
      local collections, validate_shape, caching_device, name, variable_def, dtype = ...
      if caching_device ~= nil or variable_def ~= nil then
        G.raise("tf.Variable: caching_device and variable_def are not supported")
      end
      opts = { trainable = opts, collections = collections, validate_shape = validate_shape, name = name,
               dtype = dtype }
    elseif select("#", ...) > 0 then
      G.raise("tf.Variable: after initial_value come trainable (a boolean), collections, validate_shape, "
              .. "caching_device, name, variable_def, dtype (TF's order), or one options table")
    end
    opts = C.opts(opts, "tf.Variable", "name dtype trainable validate_shape collections _absolute")
    C.check_dtype(opts.dtype, "tf.Variable")
    if opts.trainable ~= nil and type(opts.trainable) ~= "boolean" then
      G.raise("tf.Variable: trainable must be a boolean, got %s", type(opts.trainable))
    end
    -- TF: the given collections (default: the global variables), and the
    -- trainable ones too when trainable.
    local collections = opts.collections or { "variables" }
    if type(collections) == "string" then collections = { collections } end
    if type(collections) ~= "table" or G.is_tensor(collections) then
      G.raise("tf.Variable: collections must be a list of collection names, got %s", type(collections))
    end
    for i, c in ipairs(collections) do
      if type(c) ~= "string" then G.raise("tf.Variable: collections[%d] must be a string, got %s", i, type(c)) end
    end
    if initial_value == nil then G.raise("tf.Variable: needs an initial value") end
    local g = G.is_tensor(initial_value) and initial_value.graph or G.get_default_graph()
    -- opts._absolute: the name is a full scoped name (tf.get_variable's), used as is.
    local scope_name = opts._absolute and opts.name .. "/" or opts.name or "Variable"
    return G.init_scope(g, function() return g:as_default(function()
      return tf.name_scope(scope_name, function()
        local scope = g._name_stack
        local init
        if type(initial_value) == "function" then -- a callable initial value, built inside the scope
          init = tf.name_scope("Initializer", initial_value)
          if not G.is_tensor(init) then init = C.constant(init, { dtype = opts.dtype }) end
        elseif G.is_tensor(initial_value) then
          init = initial_value
        else
          init = C.constant(initial_value, { dtype = opts.dtype, name = "initial_value" })
        end
        if opts.dtype and init.dtype ~= opts.dtype then init = tf.cast(init, opts.dtype) end
        -- the variable op is named like its scope ("Variable", "my_variable")
        local attrs = { "dtype", "type", init.dtype }
        if init.shape then attrs[4], attrs[5], attrs[6] = "shape", "shape", init.shape end
        local op = G.make_op("VariableV2", {}, attrs, { abs_name = scope })
        local t = op.outputs[1]
        local v = setmetatable({
          _tensor = t, op = op, value_index = 0, dtype = t.dtype, shape = t.shape, name = t.name,
          graph = g, initial_value = init, trainable = opts.trainable ~= false,
        }, Variable)
        v.location = op.location
        v.initializer = G.make_op("Assign", { t, init }, { "validate_shape", "bool", opts.validate_shape ~= false },
                                  { name = "Assign" })
        local seen = {}
        for _, c in ipairs(collections) do
          if not seen[c] then seen[c] = true; g:add_to_collection(c, v) end
        end
        if v.trainable and not seen.trainable_variables then g:add_to_collection("trainable_variables", v) end
        return v
      end)
    end) end)
  end

  function tf.global_variables(scope) return G.get_default_graph():get_collection("variables", scope) end
  tf.all_variables = tf.global_variables
  function tf.trainable_variables(scope) return G.get_default_graph():get_collection("trainable_variables", scope) end

  function tf.variables_initializer(vars, name)
    if type(vars) ~= "table" or G.is_tensor(vars) then
      G.raise("tf.variables_initializer: var_list must be a list of Variables, got %s", type(vars))
    end
    local inits = {}
    for i, v in ipairs(vars) do
      if getmetatable(v) ~= Variable then G.raise("tf.variables_initializer: var_list[%d] is not a Variable", i) end
      inits[i] = v.initializer
    end
    return G.make_op("NoOp", {}, nil, { name = name or "init", control_inputs = inits })
  end
  function tf.global_variables_initializer() return tf.variables_initializer(tf.global_variables()) end
  tf.initialize_all_variables = tf.global_variables_initializer
end
