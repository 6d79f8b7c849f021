-- Turning Lua values into tensors: constants, dtype inference and the
-- scalar-adopts-tensor-dtype rule.
local core = require("moonflow.core")
local G = require("moonflow.graph")

local M = {}

local dtypes = { float32 = true, float64 = true, int32 = true, int64 = true, bool = true, uint8 = true, string = true }
M.dtypes = dtypes

local Array_mt = core.array_metatable
function M.is_array(x) return getmetatable(x) == Array_mt end

function M.check_dtype(dt, what)
  if dt ~= nil and not dtypes[dt] then
    G.raise("%s: unknown dtype '%s' (use float32, float64, int32, int64, bool, uint8 or string)", what, tostring(dt))
  end
  return dt
end

-- An options table from the trailing argument: a string means {name = s}.
-- `allowed` (a space-separated list of keys) rejects misspelt options,
-- which would otherwise be silently ignored.
local allowed_sets = {}
function M.opts(o, what, allowed)
  if o == nil then return {} end
  if type(o) == "string" then return { name = o } end
  if type(o) ~= "table" or G.is_tensor(o) or M.is_array(o) then
    G.raise("%s: expected an options table, got %s", what, M.is_array(o) and "an Array" or type(o))
  end
  if o[1] ~= nil then
    G.raise("%s: the options table has positional entries (options are named, e.g. {shape = {2, 3}})", what)
  end
  if allowed then
    local set = allowed_sets[allowed]
    if not set then
      set = {}
      for k in allowed:gmatch("%S+") do set[k] = true end
      allowed_sets[allowed] = set
    end
    for k in pairs(o) do
      if not set[k] then
        G.raise("%s: unknown option '%s' (options: %s)", what, tostring(k), (allowed:gsub("%s*_absolute", "")))
      end
    end
  end
  return o
end

-- An Array from a Lua value (number, boolean, nested table, Array).
function M.to_array(v, dtype, what)
  if M.is_array(v) then
    if dtype and v.dtype ~= dtype then v = v:totable() end -- converted below, as tf.constant(ndarray, dtype)
    if not dtype or M.is_array(v) then return v end
  end
  local ok, a = pcall(core.array, v, dtype)
  if not ok then G.raise("%s: %s", what or "tf.constant", (tostring(a):gsub("^.-:%d+: ", ""))) end
  return a
end

-- tf.constant(value, dtype, shape, name, verify_shape) in TF's order, or
-- tf.constant(value, {dtype, shape, name}); a second argument that is a
-- string but not a dtype name is the name (moonflow's older form).
function M.constant(value, opts, shape, name, verify_shape)
  if (type(opts) == "string" and dtypes[opts]) or (opts == nil and (shape ~= nil or name ~= nil)) then
    if shape ~= nil and type(shape) ~= "table" then
      G.raise("tf.constant: shape must be a list of integers, got %s", type(shape))
    end
    if name ~= nil and type(name) ~= "string" then G.raise("tf.constant: name must be a string, got %s", type(name)) end
    if verify_shape ~= nil and type(verify_shape) ~= "boolean" then
      G.raise("tf.constant: verify_shape must be a boolean, got %s", type(verify_shape))
    end
    opts = { dtype = opts, shape = shape and (shape.as_list and shape:as_list() or shape), name = name }
  elseif shape ~= nil or name ~= nil then
    G.raise("tf.constant: after value come dtype, shape, name (TF's order); got a %s second", type(opts))
  end
  opts = M.opts(opts, "tf.constant", "name dtype shape verify_shape")
  M.check_dtype(opts.dtype, "tf.constant")
  local a = M.to_array(value, opts.dtype, "tf.constant")
  if opts.shape then
    if a:numel() == 1 and #opts.shape > 0 then
      local n = 1
      for _, d in ipairs(opts.shape) do n = n * d end
      local t = {}
      local x = a:flat(1)
      for i = 1, n do t[i] = x end
      a = core.array(t, a.dtype):reshape(opts.shape)
    else
      local ok, r = pcall(a.reshape, a, opts.shape)
      if not ok then G.raise("tf.constant: %s", (tostring(r):gsub("^.-:%d+: ", ""))) end
      a = r
    end
  end
  return G.make_op("Const", {}, { "value", "tensor", a, "dtype", "type", a.dtype },
                   { name = opts.name }).outputs[1]
end

-- A Tensor from anything tensor-like; `dtype` (if given) is what a Lua
-- value becomes (a tensor is returned as it is).
function M.to_tensor(x, dtype)
  if G.is_tensor(x) then
    return x
  end
  return M.constant(x, { dtype = dtype })
end

-- Two operands: a Lua value next to a tensor takes the tensor's dtype.
function M.pair(x, y)
  local tx, ty = G.is_tensor(x), G.is_tensor(y)
  if tx and ty then return M.to_tensor(x), M.to_tensor(y) end
  if tx then return M.to_tensor(x), M.to_tensor(y, x.dtype) end
  if ty then return M.to_tensor(x, y.dtype), M.to_tensor(y) end
  local ax, ay = M.to_array(x), M.to_array(y)
  if ax.dtype ~= ay.dtype and (ax.dtype == "float32" or ay.dtype == "float32") then
    -- two Lua literals: an integer next to a float becomes float
    return M.constant(x, { dtype = "float32" }), M.constant(y, { dtype = "float32" })
  end
  return M.constant(ax), M.constant(ay)
end

-- A list of tensors from a Lua list of tensor-likes (first tensor's dtype wins).
function M.list(values, what)
  if type(values) ~= "table" or G.is_tensor(values) then
    G.raise("%s: expected a list of tensors", what)
  end
  local dtype
  for _, v in ipairs(values) do if G.is_tensor(v) then dtype = v.dtype break end end
  local out = {}
  for i, v in ipairs(values) do out[i] = M.to_tensor(v, dtype) end
  if #out == 0 then G.raise("%s: needs at least one tensor", what) end
  return out
end

return M
