-- Collections, initializer helpers, and debugging ops: tf.GraphKeys and the
-- collection functions, tf.report_uninitialized_variables,
-- tf.is_variable_initialized, tf.Print / tf.print, tf.debugging.assert_*,
-- tf.check_numerics / tf.add_check_numerics_ops, and tf.lua_func (TF's
-- py_func), which runs a Lua function as an op.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local C = require("moonflow.convert")

return function(tf)
  -- ---------------------------------------------------------------- collections

  tf.GraphKeys = {
    GLOBAL_VARIABLES = "variables", VARIABLES = "variables", TRAINABLE_VARIABLES = "trainable_variables",
    LOCAL_VARIABLES = "local_variables", MODEL_VARIABLES = "model_variables",
    UPDATE_OPS = "update_ops", SUMMARIES = "summaries", REGULARIZATION_LOSSES = "regularization_losses",
    LOSSES = "losses", GLOBAL_STEP = "global_step", TRAIN_OP = "train_op", INIT_OP = "init_op",
    LOCAL_INIT_OP = "local_init_op", READY_OP = "ready_op", SAVERS = "savers",
    ACTIVATIONS = "activations", WEIGHTS = "weights", BIASES = "biases",
  }

  local function key_arg(name, what)
    if type(name) ~= "string" then G.raise("%s: name must be a collection name (a string), got %s", what, type(name)) end
    return name
  end

  function tf.add_to_collection(name, value)
    G.get_default_graph():add_to_collection(key_arg(name, "tf.add_to_collection"), value)
  end
  function tf.add_to_collections(names, value)
    if type(names) == "string" then names = { names } end
    if type(names) ~= "table" then
      G.raise("tf.add_to_collections: names must be a collection name or a list of them, got %s", type(names))
    end
    local g = G.get_default_graph()
    for i, n in ipairs(names) do g:add_to_collection(key_arg(n, "tf.add_to_collections: names[" .. i .. "]"), value) end
  end
  function tf.get_collection(key, scope)
    return G.get_default_graph():get_collection(key_arg(key, "tf.get_collection"), scope)
  end
  function tf.get_collection_ref(key)
    return G.get_default_graph():get_collection_ref(key_arg(key, "tf.get_collection_ref"))
  end

  function tf.local_variables(scope) return tf.get_collection(tf.GraphKeys.LOCAL_VARIABLES, scope) end
  function tf.local_variables_initializer() return tf.variables_initializer(tf.local_variables(), "init") end
  tf.initialize_local_variables = tf.local_variables_initializer
  function tf.model_variables(scope) return tf.get_collection(tf.GraphKeys.MODEL_VARIABLES, scope) end

  local function check_variable(v, what)
    if getmetatable(v) ~= tf.Variable_mt then G.raise("%s: expected a Variable, got %s", what, type(v)) end
    return v
  end

  -- tf.is_variable_initialized(v): a bool scalar, true once v has a value in the session.
  function tf.is_variable_initialized(v, name)
    check_variable(v, "tf.is_variable_initialized")
    return G.colocate_with(v, function()
      return G.make_op("IsVariableInitialized", { v._tensor }, nil, { name = name or "IsVariableInitialized" }).outputs[1]
    end)
  end

  -- A fetchable that sess:run turns into a Lua value: the tensor's Array
  -- goes through _fetch_value (a small hook in session.lua).
  local Converted = { __tensor = true }
  Converted.__index = function(t, k) return rawget(t, "_tensor")[k] end
  Converted.__tostring = function(t) return "Converted(" .. tostring(t._tensor) .. ")" end

  -- tf.report_uninitialized_variables(var_list, {name}): fetching it gives the
  -- names of the variables that have no value yet, as a Lua list of strings
  -- (TF: a string tensor; moonflow has no string dtype). Default: the
  -- global and local variables.
  function tf.report_uninitialized_variables(var_list, opts)
    opts = C.opts(opts, "tf.report_uninitialized_variables", "name")
    if var_list == nil then
      var_list = tf.global_variables()
      for _, v in ipairs(tf.local_variables()) do var_list[#var_list + 1] = v end
    end
    if type(var_list) ~= "table" or G.is_tensor(var_list) then
      G.raise("tf.report_uninitialized_variables: var_list must be a list of Variables, got %s", type(var_list))
    end
    local names, flags = {}, {}
    for i, v in ipairs(var_list) do
      check_variable(v, "tf.report_uninitialized_variables: var_list[" .. i .. "]")
      names[i] = v.op.name
    end
    local t = tf.name_scope(opts.name or "report_uninitialized_variables", function()
      if #var_list == 0 then return C.constant(core.array({}, "bool"), { name = "Const" }) end
      for i, v in ipairs(var_list) do
        flags[i] = G.make_op("LogicalNot", { tf.is_variable_initialized(v) }, nil, { name = "LogicalNot" }).outputs[1]
      end
      return G.make_op("Pack", flags, { "axis", "int", 1 }, { name = "stack" }).outputs[1]
    end)
    return setmetatable({ _tensor = t, _fetch_value = function(a)
      local out = {}
      for i = 1, #names do if a[i] then out[#out + 1] = names[i] end end
      return out
    end }, Converted)
  end

  -- ---------------------------------------------------------------- host functions

  -- Lua functions that ops call, by id: weak here, kept alive by their graph.
  local funcs = setmetatable({}, { __mode = "v" })

  local function register(fn)
    local id = core.host_new_id()
    funcs[id] = fn
    local g = G.get_default_graph()
    g._lua_funcs = g._lua_funcs or {}
    g._lua_funcs[id] = fn
    return id
  end

  -- Called by the core (lua/core/hostcall.c) inside sess:run: Print's text,
  -- or a LuaFunc's inputs; false when the id is not this state's.
  local function dispatch(id, text, inputs, touts)
    local f = funcs[id]
    if not f then return false end
    if text then
      f.fn(text)
      return true
    end
    local res = table.pack(f.fn(table.unpack(inputs)))
    if res.n == 1 and #touts ~= 1 and type(res[1]) == "table" and not C.is_array(res[1]) then
      res = table.pack(table.unpack(res[1]))
    end
    if #touts == 0 and res.n == 1 and res[1] == nil then res.n = 0 end
    if res.n ~= #touts then
      error(string.format("the function returned %d value%s, Tout has %d", res.n, res.n == 1 and "" or "s",
                          #touts), 0)
    end
    local outs = {}
    for i, dt in ipairs(touts) do
      local v = res[i]
      if C.is_array(v) and v.dtype ~= dt then
        error(string.format("output %d is a %s Array, Tout says %s", i, v.dtype, dt), 0)
      end
      local ok, a = pcall(C.to_array, v, dt, "output " .. i)
      if not ok then error((tostring(a):gsub("^.-:%d+: ", "")), 0) end
      outs[i] = a
    end
    return true, outs
  end
  core.host_install(dispatch)

  local function dtype_list(tout, what)
    if type(tout) == "string" then
      C.check_dtype(tout, what)
      return { tout }, true
    end
    if type(tout) ~= "table" or G.is_tensor(tout) then
      G.raise("%s: Tout must be a dtype or a list of dtypes, got %s", what, type(tout))
    end
    for i, dt in ipairs(tout) do
      if type(dt) ~= "string" or not C.dtypes[dt] then
        G.raise("%s: Tout[%d] must be a dtype name, got %s", what, i, tostring(dt))
      end
    end
    return tout, false
  end

  -- tf.lua_func(fn, inputs, Tout, {stateful, name}): fn receives the inputs'
  -- values as Arrays and returns values of the Tout dtypes (Arrays, numbers
  -- or tables). One dtype: a Tensor; a list: a list; {}: the Operation.
  function tf.lua_func(fn, inputs, Tout, opts)
    local what = "tf.lua_func"
    if type(fn) ~= "function" then G.raise("%s: func must be a function, got %s", what, type(fn)) end
    if inputs == nil then inputs = {} end
    if G.is_tensor(inputs) then inputs = { inputs } end
    if type(inputs) ~= "table" then G.raise("%s: inp must be a list of tensors, got %s", what, type(inputs)) end
    if Tout == nil then G.raise("%s: needs Tout (a dtype or a list of dtypes)", what) end
    local touts, single = dtype_list(Tout, what)
    if type(opts) == "boolean" then opts = { stateful = opts } end
    opts = C.opts(opts, what, "stateful name")
    if opts.stateful ~= nil and type(opts.stateful) ~= "boolean" then
      G.raise("%s: stateful must be a boolean, got %s", what, type(opts.stateful))
    end
    if #inputs > 32 or #touts > 32 then G.raise("%s: at most 32 inputs and 32 outputs", what) end
    local ins = {}
    for i, x in ipairs(inputs) do ins[i] = C.to_tensor(x) end
    local id = register({ fn = fn })
    local op = G.make_op("LuaFunc", ins, { "func", "int", id, "Tout", "string", table.concat(touts, ","),
                                           "stateful", "bool", opts.stateful ~= false },
                         { name = opts.name or "LuaFunc" })
    if #touts == 0 then return op end
    if single then return op.outputs[1] end
    return op.outputs
  end
  tf.py_func = tf.lua_func

  -- ---------------------------------------------------------------- printing

  -- A template ("%v" per tensor, "%%" a percent sign) from strings and values.
  local function esc(s) return (s:gsub("%%", "%%%%")) end

  local function value_tensor(x, what)
    if G.is_tensor(x) then return x end
    if type(x) == "number" or type(x) == "boolean" or type(x) == "table" or C.is_array(x) then
      local ok, t = pcall(C.to_tensor, x)
      if ok then return t end
    end
    G.raise("%s: cannot print a %s", what, type(x))
  end

  -- tf.Print(input, data, message, {first_n, summarize, name}): input, passed
  -- on; each run prints the message and the data tensors to stderr.
  function tf.Print(input, data, message, first_n, summarize, name)
    local what = "tf.Print"
    local opts = {}
    for _, a in ipairs({ "message", "first_n", "summarize", "name" }) do
      local v = ({ message = message, first_n = first_n, summarize = summarize, name = name })[a]
      if type(v) == "table" and not G.is_tensor(v) then
        opts = C.opts(v, what, "message first_n summarize name")
        if a == "message" then message = nil end
        if a == "first_n" then first_n = nil end
        if a == "summarize" then summarize = nil end
        break
      end
    end
    message = message or opts.message
    first_n = first_n or opts.first_n
    summarize = summarize or opts.summarize
    name = (type(name) == "string" and name) or opts.name
    if input == nil then G.raise("%s: needs an input tensor", what) end
    input = C.to_tensor(input)
    if data == nil then data = {} end
    if G.is_tensor(data) then data = { data } end
    if type(data) ~= "table" then G.raise("%s: data must be a list of tensors, got %s", what, type(data)) end
    if message ~= nil and type(message) ~= "string" then G.raise("%s: message must be a string, got %s", what, type(message)) end
    for k, v in pairs({ first_n = first_n, summarize = summarize }) do
      if v ~= nil and math.type(v) ~= "integer" then G.raise("%s: %s must be an integer, got %s", what, k, type(v)) end
    end
    if #data > 31 then G.raise("%s: at most 31 data tensors", what) end
    local ins, parts = { input }, { esc(message or "") }
    for i, d in ipairs(data) do
      ins[i + 1] = value_tensor(d, what .. ": data[" .. i .. "]")
      parts[#parts + 1] = "[%v]"
    end
    return G.make_op("Print", ins, { "template", "string", table.concat(parts) .. "\n",
                                     "first_n", "int", first_n or -1, "summarize", "int", summarize or 3,
                                     "stream", "string", "stderr" }, { name = name or "Print" }).outputs[1]
  end

  local print_opts = { output_stream = true, summarize = true, sep = true, ["end"] = true, name = true }
  local function is_print_opts(t)
    if type(t) ~= "table" or G.is_tensor(t) or C.is_array(t) or t[1] ~= nil then return false end
    for k in pairs(t) do if print_opts[k] then return true end end
    return false
  end

  -- tf.print(...) (TF 2's): an op that prints its arguments (strings as they
  -- are, tensors summarized) separated by sep and followed by end; a trailing
  -- {output_stream = "stderr" | "stdout" | function(text), summarize, sep, end, name}.
  function tf.print(...)
    local what = "tf.print"
    local args = table.pack(...)
    local opts = {}
    if args.n > 0 and is_print_opts(args[args.n]) then
      opts = C.opts(args[args.n], what, "output_stream summarize sep end name")
      args.n = args.n - 1
    end
    local sep, fin = opts.sep or " ", opts["end"] or "\n"
    if type(sep) ~= "string" then G.raise("%s: sep must be a string, got %s", what, type(sep)) end
    if type(fin) ~= "string" then G.raise("%s: end must be a string, got %s", what, type(fin)) end
    local summarize = opts.summarize or 3
    if math.type(summarize) ~= "integer" then G.raise("%s: summarize must be an integer, got %s", what, type(summarize)) end
    local stream, func = opts.output_stream or "stderr", 0
    if type(stream) == "function" then
      func, stream, fin = register({ fn = stream }), "callback", opts["end"] or ""
    elseif stream ~= "stderr" and stream ~= "stdout" then
      G.raise("%s: output_stream must be \"stderr\", \"stdout\" or a function, got %s", what, tostring(stream))
    end
    local ins, parts = {}, {}
    for i = 1, args.n do
      local x = args[i]
      if type(x) == "string" then
        parts[i] = esc(x)
      else
        ins[#ins + 1] = value_tensor(x, what .. ": argument " .. i)
        parts[i] = "%v"
      end
    end
    if #ins > 32 then G.raise("%s: at most 32 tensors", what) end
    return G.make_op("PrintV2", ins, { "template", "string", table.concat(parts, esc(sep)) .. esc(fin),
                                       "summarize", "int", summarize < 0 and -1 or summarize,
                                       "stream", "string", stream, "func", "int", func },
                     { name = opts.name or "PrintV2" })
  end

  -- ---------------------------------------------------------------- assertions

  tf.debugging = tf.debugging or {}
  local D = tf.debugging

  -- tf.Assert(condition, data, summarize, name): fails the run, showing the
  -- data (strings as they are, tensors summarized), unless every element of
  -- condition is true.
  local function make_assert(cond, data, summarize, name, what)
    cond = C.to_tensor(cond)
    if cond.dtype ~= "bool" then G.raise("%s: condition must be a bool tensor, got %s", what, cond.dtype) end
    if data ~= nil and (type(data) ~= "table" or G.is_tensor(data)) then
      G.raise("%s: data must be a list of strings and tensors, got %s", what, G.is_tensor(data) and "a Tensor" or type(data))
    end
    if summarize ~= nil and math.type(summarize) ~= "integer" then
      G.raise("%s: summarize must be an integer, got %s", what, type(summarize))
    end
    local ins, parts = { cond }, {}
    for i, d in ipairs(data or {}) do
      if type(d) == "string" then
        parts[i] = "[" .. esc(d) .. "]"
      else
        ins[#ins + 1] = value_tensor(d, what .. ": data[" .. i .. "]")
        parts[i] = "[%v]"
      end
    end
    if #ins > 32 then G.raise("%s: at most 31 data tensors", what) end
    local template = "assertion failed: " .. table.concat(parts, " ")
    return G.make_op("Assert", ins, { "template", "string", template, "summarize", "int", summarize or 3 },
                     { name = name or "Assert" })
  end

  function tf.Assert(condition, data, summarize, name)
    if type(summarize) == "table" then
      local o = C.opts(summarize, "tf.Assert", "summarize name")
      summarize, name = o.summarize, o.name
    end
    if name ~= nil and type(name) ~= "string" then G.raise("tf.Assert: name must be a string, got %s", type(name)) end
    return make_assert(condition, data, summarize, name, "tf.Assert")
  end
  D.Assert = tf.Assert

  -- Positional (data, summarize, message, name) as TF, or a trailing table.
  local function assert_opts(what, data, summarize, message, name)
    if type(data) == "table" and not G.is_tensor(data) and data[1] == nil and next(data) ~= nil then
      return C.opts(data, what, "data summarize message name")
    end
    for _, v in ipairs({ summarize, message, name }) do
      if type(v) == "table" then
        local o = C.opts(v, what, "data summarize message name")
        return { data = data, summarize = o.summarize or (v ~= summarize and summarize or nil),
                 message = o.message or (type(message) == "string" and message or nil), name = o.name }
      end
    end
    return { data = data, summarize = summarize, message = message, name = name }
  end

  local function check_message(o, what)
    if o.message ~= nil and type(o.message) ~= "string" then
      G.raise("%s: message must be a string, got %s", what, type(o.message))
    end
    if o.name ~= nil and type(o.name) ~= "string" then G.raise("%s: name must be a string, got %s", what, type(o.name)) end
  end

  -- The default data of TF's assertions: the message, the condition, the values.
  local function comparison(fname, op_type, sym, scope)
    local what = "tf.debugging." .. fname
    return function(x, y, data, summarize, message, name)
      local o = assert_opts(what, data, summarize, message, name)
      check_message(o, what)
      if x == nil or y == nil then G.raise("%s: needs x and y", what) end
      local xt, yt = C.pair(x, y)
      return tf.name_scope(o.name or scope, function()
        local cond = G.make_op(op_type, { xt, yt }, nil, { name = op_type }).outputs[1]
        local d = o.data
        if d == nil then
          d = { "Condition x " .. sym .. " y did not hold element-wise:", "x (" .. xt.name .. ") = ", xt,
                "y (" .. yt.name .. ") = ", yt }
          if o.message then table.insert(d, 1, o.message) end
        end
        return make_assert(cond, d, o.summarize, "Assert", what)
      end)
    end
  end

  local function sign_check(fname, op_type, sym, scope)
    local what = "tf.debugging." .. fname
    return function(x, data, summarize, message, name)
      local o = assert_opts(what, data, summarize, message, name)
      check_message(o, what)
      if x == nil then G.raise("%s: needs x", what) end
      local xt = C.to_tensor(x)
      return tf.name_scope(o.name or scope, function()
        local zero = C.constant(0, { dtype = xt.dtype, name = "Const" })
        local cond = G.make_op(op_type, { xt, zero }, nil, { name = op_type }).outputs[1]
        local d = o.data
        if d == nil then
          d = { "Condition x " .. sym .. " 0 did not hold element-wise:", "x (" .. xt.name .. ") = ", xt }
          if o.message then table.insert(d, 1, o.message) end
        end
        return make_assert(cond, d, o.summarize, "Assert", what)
      end)
    end
  end

  D.assert_equal = comparison("assert_equal", "Equal", "==", "assert_equal")
  D.assert_none_equal = comparison("assert_none_equal", "NotEqual", "!=", "assert_none_equal")
  D.assert_less = comparison("assert_less", "Less", "<", "assert_less")
  D.assert_less_equal = comparison("assert_less_equal", "LessEqual", "<=", "assert_less_equal")
  D.assert_greater = comparison("assert_greater", "Greater", ">", "assert_greater")
  D.assert_greater_equal = comparison("assert_greater_equal", "GreaterEqual", ">=", "assert_greater_equal")
  D.assert_positive = sign_check("assert_positive", "Greater", ">", "assert_positive")
  D.assert_non_negative = sign_check("assert_non_negative", "GreaterEqual", ">=", "assert_non_negative")
  D.assert_negative = sign_check("assert_negative", "Less", "<", "assert_negative")
  D.assert_non_positive = sign_check("assert_non_positive", "LessEqual", "<=", "assert_non_positive")

  local function static_error(what, o, fmt, ...)
    G.raise("%s: %s%s", what, o.message and o.message .. ": " or "", string.format(fmt, ...))
  end

  local function shape_str(shape)
    if not shape then return "<unknown>" end
    local d = {}
    for i, n in ipairs(shape) do d[i] = n < 0 and "?" or tostring(n) end
    return "{" .. table.concat(d, ", ") .. "}"
  end

  -- tf.debugging.assert_rank(x, rank, {message, name}): checked when the op
  -- is built if x's rank is known there (TF raises then too), else at run time.
  function D.assert_rank(x, rank, message, name)
    local what = "tf.debugging.assert_rank"
    local o = type(message) == "table" and C.opts(message, what, "message name") or { message = message, name = name }
    check_message(o, what)
    if x == nil then G.raise("%s: needs x", what) end
    if math.type(rank) ~= "integer" or rank < 0 then
      G.raise("%s: rank must be a non-negative integer, got %s", what, tostring(rank))
    end
    local xt = C.to_tensor(x)
    if xt.shape then
      if #xt.shape ~= rank then
        static_error(what, o, "tensor %s must have rank %d; received rank %d, shape %s", xt.name, rank, #xt.shape,
                     shape_str(xt.shape))
      end
      return G.make_op("NoOp", {}, nil, { name = o.name or "assert_rank" })
    end
    return tf.name_scope(o.name or "assert_rank", function()
      local r = G.make_op("Size", { G.make_op("Shape", { xt }, nil, { name = "Shape" }).outputs[1] }, nil,
                          { name = "Rank" }).outputs[1]
      local cond = G.make_op("Equal", { r, C.constant(rank, { dtype = r.dtype }) }, nil, { name = "Equal" }).outputs[1]
      local d = { "Tensor " .. xt.name .. " must have rank " .. rank .. ".", "Received rank: ", r }
      if o.message then table.insert(d, 1, o.message) end
      return make_assert(cond, d, nil, "Assert", what)
    end)
  end

  -- tf.debugging.assert_type(t, dtype, {message, name}): a dtype is static,
  -- so this is checked when it is called; returns a no-op.
  function D.assert_type(t, dtype, message, name)
    local what = "tf.debugging.assert_type"
    local o = type(message) == "table" and C.opts(message, what, "message name") or { message = message, name = name }
    check_message(o, what)
    if not G.is_tensor(t) then G.raise("%s: tensor must be a Tensor, got %s", what, type(t)) end
    C.check_dtype(dtype, what)
    if dtype == nil then G.raise("%s: needs a dtype", what) end
    if t.dtype ~= dtype then static_error(what, o, "%s must be of type %s, not %s", t.name, dtype, t.dtype) end
    return G.make_op("NoOp", {}, nil, { name = o.name or "assert_type" })
  end

  -- tf.debugging.assert_shapes({{x, {"N", 3}}, {y, {"N"}}}, {data, summarize, message, name}):
  -- every tensor has the rank of its shape; integer entries are sizes,
  -- strings name sizes that must agree everywhere they appear. Checked
  -- when built as far as the static shapes go, the rest at run time.
  function D.assert_shapes(shapes, opts)
    local what = "tf.debugging.assert_shapes"
    local o = C.opts(opts, what, "data summarize message name")
    check_message(o, what)
    if type(shapes) ~= "table" or G.is_tensor(shapes) then
      G.raise("%s: shapes must be a list of {tensor, shape} pairs, got %s", what, type(shapes))
    end
    local sizes, checks = {}, {} -- symbol -> {static size or nil, tensor, dim}
    local function dyn_dim(xt, i) -- dimension i (1-based) at run time, as a 1-vector
      local s = G.make_op("Shape", { xt }, nil, { name = "Shape" }).outputs[1]
      return G.make_op("Slice", { s }, { "begin", "ints", { i }, "size", "ints", { 1 } }, { name = "dim" }).outputs[1]
    end
    return tf.name_scope(o.name or "assert_shapes", function()
      for k, pair in ipairs(shapes) do
        if type(pair) ~= "table" or G.is_tensor(pair) or pair[1] == nil or type(pair[2]) ~= "table" then
          G.raise("%s: shapes[%d] must be a {tensor, shape} pair", what, k)
        end
        local xt, spec = C.to_tensor(pair[1]), pair[2]
        if xt.shape and #xt.shape ~= #spec then
          static_error(what, o, "%s has rank %d, expected rank %d (shape %s)", xt.name, #xt.shape, #spec,
                       shape_str(xt.shape))
        end
        for i, want in ipairs(spec) do
          local have = xt.shape and xt.shape[i] or -1
          if math.type(want) == "integer" then
            if have >= 0 and have ~= want then
              static_error(what, o, "dimension %d of %s is %d, expected %d", i, xt.name, have, want)
            elseif have < 0 then
              checks[#checks + 1] = { dyn_dim(xt, i), C.constant({ want }), xt.name .. " dimension " .. i }
            end
          elseif type(want) == "string" then
            local prev = sizes[want]
            if not prev then
              sizes[want] = { size = have >= 0 and have or nil, t = xt, dim = i }
            elseif prev.size and have >= 0 then
              if prev.size ~= have then
                static_error(what, o, "dimension %d of %s is %d, but '%s' is %d (dimension %d of %s)", i, xt.name,
                             have, want, prev.size, prev.dim, prev.t.name)
              end
            else
              local a = prev.size and C.constant({ prev.size }) or dyn_dim(prev.t, prev.dim)
              checks[#checks + 1] = { dyn_dim(xt, i), a, xt.name .. " dimension " .. i .. " ('" .. want .. "')" }
            end
          else
            G.raise("%s: shapes[%d]'s shape entry %d must be an integer or a name, got %s", what, k, i, type(want))
          end
        end
      end
      if #checks == 0 then return G.make_op("NoOp", {}, nil, { name = "NoOp" }) end
      local asserts = {}
      for i, c in ipairs(checks) do
        local cond = G.make_op("Equal", { c[1], c[2] }, nil, { name = "Equal" }).outputs[1]
        local d = o.data or { "Specified by tensor " .. c[3] .. ": got ", c[1], "expected ", c[2] }
        if o.message and not o.data then table.insert(d, 1, o.message) end
        asserts[i] = make_assert(cond, d, o.summarize, "Assert", what)
      end
      if #asserts == 1 then return asserts[1] end
      return G.make_op("NoOp", {}, nil, { name = "assert_shapes", control_inputs = asserts })
    end)
  end

  for _, n in ipairs({ "assert_equal", "assert_none_equal", "assert_less", "assert_less_equal", "assert_greater",
                       "assert_greater_equal", "assert_positive", "assert_non_negative", "assert_negative",
                       "assert_non_positive", "assert_rank", "assert_type" }) do
    tf[n] = D[n]
  end

  -- ---------------------------------------------------------------- numerics

  -- tf.check_numerics(t, message, {name}): t, passed on; a NaN or an Inf in
  -- it fails the run with the message, naming the op and the line that made it.
  function tf.check_numerics(t, message, name)
    local what = "tf.check_numerics"
    if type(message) == "table" then
      local o = C.opts(message, what, "message name")
      message, name = o.message, o.name
    elseif type(name) == "table" then
      name = C.opts(name, what, "name").name
    end
    if t == nil then G.raise("%s: needs a tensor", what) end
    if message ~= nil and type(message) ~= "string" then G.raise("%s: message must be a string, got %s", what, type(message)) end
    if name ~= nil and type(name) ~= "string" then G.raise("%s: name must be a string, got %s", what, type(name)) end
    local x = C.to_tensor(t)
    if x.dtype ~= "float32" and x.dtype ~= "float64" then
      G.raise("%s: checks float tensors, got %s", what, x.dtype)
    end
    return G.make_op("CheckNumerics", { x }, { "message", "string", message or "" },
                     { name = name or "CheckNumerics" }).outputs[1]
  end
  D.check_numerics = tf.check_numerics
  tf.verify_tensor_all_finite = tf.check_numerics

  local control_flow = { Switch = true, Merge = true, Enter = true, Exit = true, NextIteration = true,
                         LoopCond = true, If = true, While = true, StatelessIf = true, StatelessWhile = true }

  -- tf.add_check_numerics_ops(): a group of CheckNumerics over every float
  -- output of the default graph's ops so far (not variables, as TF, nor
  -- the outputs of variable updates).
  function tf.add_check_numerics_ops()
    local g = G.get_default_graph()
    local checks = {}
    for _, op in ipairs(g:get_operations()) do
      if control_flow[op.type] then
        G.raise("tf.add_check_numerics_ops: not compatible with control flow operations such as tf.cond or "
                .. "tf.while_loop (found %s '%s'); use tf.check_numerics on the tensors to check", op.type, op.name)
      end
      -- Not variables, and not the outputs of ops that update one (an
      -- initializer's Assign): checking them would run the update again.
      if op.type ~= "VariableV2" and op.type ~= "CheckNumerics" and core.op_type_nref(op.type) == 0 then
        for i, t in ipairs(op.outputs) do
          if t.dtype == "float32" or t.dtype == "float64" then
            checks[#checks + 1] = G.colocate_with(op, function()
              return G.make_op("CheckNumerics", { t }, { "message", "string", op.name .. ":" .. (i - 1) },
                               { name = "CheckNumerics" }).outputs[1].op
            end)
          end
        end
      end
    end
    return G.make_op("NoOp", {}, nil, { name = "check_numerics", control_inputs = checks })
  end
end
