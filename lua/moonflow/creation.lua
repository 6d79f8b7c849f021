-- Values made from nothing: zeros, ones, fill, range and the random ops.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")
local core = require("moonflow.core")
local TS = require("moonflow.tensor_shape")

local INT32_MAX = 0x7fffffff
local function int32_ok(v) return math.type(v) ~= "integer" or (v >= -INT32_MAX - 1 and v <= INT32_MAX) end

return function(tf)
  local function out(op) return op.outputs[1] end
  -- The shape as an attribute list, or nil and an int32/int64 tensor (the
  -- run-time form: tf.shape(x), or a list mixing integers and tensors).
  local function shape_of(shape, what)
    if G.is_tensor(shape) or C.is_array(shape) or TS.is_shape(shape) then
      local list, t = TS.shape_arg(shape, what)
      if t then return nil, t end
      shape = list
    end
    if type(shape) == "table" then
      for _, d in ipairs(shape) do
        if G.is_tensor(d) then return TS.shape_arg(shape, what) end
      end
    end
    if type(shape) ~= "table" or G.is_tensor(shape) then
      G.raise("%s: the shape must be a list of integers", what)
    end
    for i, d in ipairs(shape) do
      if math.type(d) ~= "integer" or d < 0 then
        G.raise("%s: dimension %d of the shape must be an integer >= 0", what, i)
      end
    end
    return shape
  end

  local function fill(shape, value, dtype, name, what)
    C.check_dtype(dtype, what)
    local list, t = shape_of(shape, what)
    local attrs = { "value", "float", value, "dtype", "type", dtype }
    if list then attrs[7], attrs[8], attrs[9] = "shape", "shape", list end
    return out(G.make_op("Fill", { t }, attrs, { name = name or what:match("tf%.(%w+)") }))
  end

  tf.zeros = A.def("tf.zeros", "shape:shape, dtype:dtype=\"float32\", name:string=nil", "A tensor of zeros.",
                   function(a) return fill(a.shape, 0, a.dtype, a.name, "tf.zeros") end)
  tf.ones = A.def("tf.ones", "shape:shape, dtype:dtype=\"float32\", name:string=nil", "A tensor of ones.",
                  function(a) return fill(a.shape, 1, a.dtype, a.name, "tf.ones") end)
  -- tf.fill(dims, value [, name or {name, dtype}]): the dtype follows the
  -- Lua value (integer -> int32, float -> float32) unless given.
  tf.fill = A.def("tf.fill", "dims:shape, value:any, name:string=nil, *, dtype:dtype=nil",
                  "A tensor of shape dims filled with value (dtype from the Lua value unless given).", function(a)
    local shape, value, opts = a.dims, a.value, a
    local name = opts.name
    if type(value) ~= "number" and type(value) ~= "boolean" then
      G.raise("tf.fill: the value must be a number")
    end
    local dtype = C.check_dtype(opts.dtype, "tf.fill")
                  or (math.type(value) == "integer" and "int32" or type(value) == "boolean" and "bool" or "float32")
    if dtype == "int32" and not int32_ok(value) then G.raise("tf.fill: %d is out of range for int32", value) end
    if type(value) == "boolean" then value = value and 1 or 0 end
    return fill(shape, value, dtype, name or "Fill", "tf.fill")
  end)
  local function like(fname, op_type, what)
    tf[fname] = A.def("tf." .. fname, "tensor:tensor, dtype:dtype=nil, name:string=nil, optimize:bool=true",
                      "A tensor of " .. what .. " with the shape (and dtype, unless given) of tensor.", function(a)
      local r = out(G.make_op(op_type, { C.to_tensor(a.tensor) }, nil, { name = a.name }))
      if a.dtype and a.dtype ~= r.dtype then r = tf.cast(r, a.dtype) end
      return r
    end)
  end
  like("zeros_like", "ZerosLike", "zeros")
  like("ones_like", "OnesLike", "ones")

  -- tf.range(limit) or tf.range(start, limit [, delta]), half-open like TensorFlow.
  tf.range = A.def("tf.range", "start:number, limit:number=nil, delta:number=1, dtype:dtype=nil, name:string=nil",
                   "start, start + delta, ... up to but not including limit (range(n): 0 .. n-1).", function(a)
    local start, limit, delta, opts = a.start, a.limit, a.delta, a
    if limit == nil then start, limit = 0, start end
    local all_int = math.type(start) == "integer" and math.type(limit) == "integer" and math.type(delta) == "integer"
    local dtype = C.check_dtype(opts.dtype, "tf.range") or (all_int and "int32" or "float32")
    if dtype == "int32" and not (int32_ok(start) and int32_ok(limit) and int32_ok(delta)) then
      G.raise("tf.range: bounds beyond int32 (pass {dtype = \"int64\"})")
    end
    return out(G.make_op("Range", {}, { "start", "float", start, "limit", "float", limit,
                                        "delta", "float", delta, "dtype", "type", dtype },
                         { name = opts.name or "range" }))
  end)

  -- ---------------------------------------------------------------- random
  local DEFAULT_GRAPH_SEED = 87654321

  tf.set_random_seed = A.def("tf.set_random_seed", "seed:int", "Sets the default graph's random seed.", function(a)
    G.get_default_graph()._seed = a.seed
  end)

  -- TensorFlow's get_seed: the graph seed and the op seed (the op count when
  -- only the graph seed is set); (0, 0) means a fresh random stream.
  local function seeds(op_seed)
    if op_seed ~= nil and math.type(op_seed) ~= "integer" and
        not (math.type(op_seed) == "float" and op_seed == math.floor(op_seed) and math.abs(op_seed) < 2^63) then
      G.raise("seed must be an integer, got %s", tostring(op_seed))
    end
    op_seed = op_seed and math.tointeger(op_seed)
    local g = G.get_default_graph()
    local s1, s2
    if g._seed ~= nil then
      s1, s2 = g._seed, op_seed or core.graph_num_ops(g._g)
    elseif op_seed ~= nil then
      s1, s2 = DEFAULT_GRAPH_SEED, op_seed
    else
      return 0, 0
    end
    if s1 == 0 and s2 == 0 then s2 = 0x7fffffff end -- (0, 0) would mean "unseeded"
    return s1, s2
  end

  tf._seeds = seeds -- for other random ops (dropout, initializers)

  local function random(op_type, what, params, line)
    local p1, p2 = "minval", "maxval"
    if params.stddev then p1, p2 = "mean", "stddev" end
    local sig = string.format("shape:shape, %s:number=%s, %s:number=%s, dtype:dtype=\"float32\", seed:int=nil, name:string=nil",
                              p1, params[p1], p2, p2 == "maxval" and "nil" or params[p2])
    return A.def(what, sig, line, function(opts)
      local shape = opts.shape
      local dtype = C.check_dtype(opts.dtype, what) or "float32"
      local s1, s2 = seeds(opts.seed)
      local list, t = shape_of(shape, what)
      local attrs = { "dtype", "type", dtype, "seed", "int", s1, "seed2", "int", s2 }
      if list then attrs[10], attrs[11], attrs[12] = "shape", "shape", list end
      for name, default in pairs(params) do
        local v = opts[name] or default
        if type(v) ~= "number" then G.raise("%s: %s must be a number", what, name) end
        attrs[#attrs + 1], attrs[#attrs + 2], attrs[#attrs + 3] = name, "float", v
      end
      if op_type == "RandomUniform" and dtype:match("int") and opts.maxval == nil then
        G.raise("%s: integer dtypes need an explicit maxval", what)
      end
      return out(G.make_op(op_type, { t }, attrs, { name = opts.name or (what:gsub("^tf%.", "")) }))
    end)
  end
  -- tf.multinomial(logits, num_samples, {seed, output_dtype}): class ids
  -- (from 1) drawn from softmax(logits) for each row of logits [batch, classes].
  tf.multinomial = A.def("tf.multinomial", "logits:tensor, num_samples:any, seed:int=nil, name:string=nil, "
                         .. "output_dtype:dtype=nil",
                         "num_samples 1-based class ids per row drawn from softmax(logits).", function(opts)
    local logits, num_samples = C.to_tensor(opts.logits), opts.num_samples
    if math.type(num_samples) ~= "integer" then G.raise("tf.multinomial: num_samples must be an integer") end
    local dtype = C.check_dtype(opts.output_dtype, "tf.multinomial") or "int64"
    local s1, s2 = seeds(opts.seed)
    return out(G.make_op("Multinomial", { logits }, { "num_samples", "int", num_samples, "seed", "int", s1,
      "seed2", "int", s2, "output_dtype", "type", dtype }, { name = opts.name or "multinomial" }))
  end)
  tf.random = tf.random or {}
  tf.random.categorical = tf.multinomial

  tf.random_normal = random("RandomNormal", "tf.random_normal", { mean = 0.0, stddev = 1.0 },
                            "Normally distributed values.")
  tf.random_uniform = random("RandomUniform", "tf.random_uniform", { minval = 0.0, maxval = 1.0 },
                             "Uniform values in [minval, maxval) (maxval 1 for floats; needed for integers).")
  tf.truncated_normal = random("TruncatedNormal", "tf.truncated_normal", { mean = 0.0, stddev = 1.0 },
                               "Normal values, redrawn when more than 2 stddev from the mean.")
end
