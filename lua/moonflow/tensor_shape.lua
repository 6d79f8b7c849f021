-- Static shapes as TF 1.x users handle them (tf.TensorShape,
-- Tensor:get_shape(), Tensor:set_shape()), and shape_arg, which turns what a
-- user passes where TF takes a shape into the attribute form (a constant Lua
-- list) or the run-time form (an int32/int64 tensor, e.g. from tf.shape).
local G = require("moonflow.graph")
local C = require("moonflow.convert")

local M = {}

local MAX_DIMS = 8 -- MF_MAX_DIMS

local TensorShape = {}
M.TensorShape = TensorShape

local function is_shape(v) return getmetatable(v) == TensorShape end
M.is_shape = is_shape

-- dims: a list of integers (-1 unknown) or nil for an unknown rank.
local function new(dims)
  return setmetatable({ _dims = dims }, TensorShape)
end

-- A checked copy of a user's dims list (or nil for an unknown rank).
local function dims_of(v, what)
  if v == nil then return nil end
  if is_shape(v) then return v._dims and table.move(v._dims, 1, #v._dims, 1, {}) end
  if G.is_tensor(v) or type(v) ~= "table" then
    G.raise("%s: expected a list of dimensions (integers, -1 for unknown), got %s", what,
            G.is_tensor(v) and "a Tensor" or type(v))
  end
  local n, count = 0, 0
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 then
      G.raise("%s: expected a list of dimensions, got a table with key '%s'", what, tostring(k))
    end
    n, count = math.max(n, k), count + 1
  end
  if n > MAX_DIMS then G.raise("%s: %d dimensions (at most %d)", what, n, MAX_DIMS) end
  if count < n then G.raise("%s: dimension %d is nil (use -1 for an unknown dimension)", what, #v + 1) end
  local dims = {}
  for i = 1, n do
    local d = v[i]
    if d ~= nil and math.type(d) ~= "integer" then
      G.raise("%s: dimension %d must be an integer (-1 for unknown), got %s", what, i,
              math.type(d) or type(d))
    end
    if d == nil or d < -1 then
      G.raise("%s: dimension %d is %s (use -1 for an unknown dimension)", what, i, tostring(d))
    end
    dims[i] = d
  end
  return dims
end

function M.new(dims, what) return new(dims_of(dims, what or "tf.TensorShape")) end

-- Methods live on the metatable (guarded against a call with a dot at
-- the end of this file); __index serves them, the fields and the dims.
local methods = TensorShape

-- The dims as a Lua list, -1 for unknown (TF's None); an error for an
-- unknown rank, as TF's as_list.
function methods.as_list(s)
  if not s._dims then G.raise("TensorShape:as_list: the rank is unknown") end
  return table.move(s._dims, 1, #s._dims, 1, {})
end

function methods.is_fully_defined(s)
  if not s._dims then return false end
  for _, d in ipairs(s._dims) do if d < 0 then return false end end
  return true
end

-- The product of the dims, or nil unless fully defined.
function methods.num_elements(s)
  if not methods.is_fully_defined(s) then return nil end
  local n = 1
  for _, d in ipairs(s._dims) do n = n * d end
  return n
end

local function fmt(dims)
  if not dims then return "<unknown>" end
  local p = {}
  for i, d in ipairs(dims) do p[i] = d < 0 and "?" or tostring(d) end
  return "(" .. table.concat(p, ", ") .. (#dims == 1 and ",)" or ")")
end

-- Merged dims, or nil plus a message when incompatible.
local function merge(a, b)
  if not a then return b and table.move(b, 1, #b, 1, {}) end
  if not b then return table.move(a, 1, #a, 1, {}) end
  if #a ~= #b then return nil, string.format("ranks %d and %d differ", #a, #b) end
  local out = {}
  for i = 1, #a do
    if a[i] >= 0 and b[i] >= 0 and a[i] ~= b[i] then
      return nil, string.format("dimension %d is %d in one and %d in the other", i, a[i], b[i])
    end
    out[i] = a[i] >= 0 and a[i] or b[i]
  end
  return out
end
M.merge = merge

function methods.merge_with(s, other)
  local o = dims_of(other, "TensorShape:merge_with")
  local m, why = merge(s._dims, o)
  if not m and why then
    G.raise("TensorShape:merge_with: shapes %s and %s are not compatible (%s)", fmt(s._dims), fmt(o), why)
  end
  return new(m)
end

function methods.is_compatible_with(s, other)
  local m, why = merge(s._dims, dims_of(other, "TensorShape:is_compatible_with"))
  return m ~= nil or why == nil
end

function methods.with_rank(s, rank)
  if math.type(rank) ~= "integer" or rank < 0 or rank > MAX_DIMS then
    G.raise("TensorShape:with_rank: rank must be an integer from 0 to %d, got %s", MAX_DIMS, tostring(rank))
  end
  local want = {}
  for i = 1, rank do want[i] = -1 end
  local m, why = merge(s._dims, want)
  if not m and why then G.raise("TensorShape:with_rank: shape %s does not have rank %d", fmt(s._dims), rank) end
  return new(m)
end

function TensorShape.__index(s, k)
  if k == "ndims" or k == "rank" then return s._dims and #s._dims or nil end
  if k == "dims" then return s._dims and table.move(s._dims, 1, #s._dims, 1, {}) end
  if math.type(k) == "integer" then
    if not s._dims then G.raise("TensorShape: cannot index a shape of unknown rank") end
    local n = #s._dims
    local i = k < 0 and n + k + 1 or k
    if i < 1 or i > n then G.raise("TensorShape: index %d is out of range for rank %d", k, n) end
    return s._dims[i]
  end
  if type(k) == "string" and k:sub(1, 1) ~= "_" then return rawget(TensorShape, k) end
  return nil
end

function TensorShape.__len(s)
  if not s._dims then G.raise("TensorShape: the rank is unknown, so it has no length") end
  return #s._dims
end

function TensorShape.__eq(a, b)
  if not (is_shape(a) and is_shape(b)) or not a._dims or not b._dims or #a._dims ~= #b._dims then
    return false
  end
  for i = 1, #a._dims do if a._dims[i] ~= b._dims[i] then return false end end
  return true
end

function TensorShape.__tostring(s) return "TensorShape" .. fmt(s._dims) end

-- ---------------------------------------------------------------- shape arguments

-- What the user passed where TF takes a shape (or multiples, begin, size):
--   a Lua list of integers            -> list (the attribute form, static);
--   a TensorShape (fully defined)     -> its list;
--   an int32/int64 Tensor or Array    -> nil, tensor (the run-time form);
--   a list mixing integers and scalar tensors (TF packs it) -> nil, tensor.
-- `allow_unknown` lets -1 through in the list form (reshape's inferred dim).
function M.shape_arg(v, what, param, allow_unknown)
  param = param or "shape"
  if is_shape(v) then
    if not v._dims then G.raise("%s: the %s has an unknown rank", what, param) end
    v = v._dims
  end
  if G.is_tensor(v) or C.is_array(v) then
    local t = C.to_tensor(v)
    if t.dtype ~= "int32" and t.dtype ~= "int64" then
      G.raise("%s: the %s must be an int32 or int64 tensor, got %s", what, param, t.dtype)
    end
    return nil, t
  end
  if type(v) ~= "table" then
    G.raise("%s: the %s must be a list of integers or an int32/int64 tensor, got %s", what, param, type(v))
  end
  local mixed, dtype = false, "int32"
  for i, d in ipairs(v) do
    if G.is_tensor(d) then
      mixed = true
      if d.dtype == "int64" then dtype = "int64" end
    elseif math.type(d) ~= "integer" then
      G.raise("%s: entry %d of the %s must be an integer, got %s", what, i, param, math.type(d) or type(d))
    end
  end
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v then
      G.raise("%s: the %s must be a list (a sequence), got a table with key '%s'", what, param, tostring(k))
    end
  end
  if not mixed then
    if not allow_unknown then
      for i, d in ipairs(v) do
        if d < 0 then G.raise("%s: entry %d of the %s must be >= 0, got %d", what, i, param, d) end
      end
    end
    return v
  end
  local parts = {}
  for i, d in ipairs(v) do
    parts[i] = C.to_tensor(d, dtype)
    if parts[i].shape and #parts[i].shape ~= 0 then
      G.raise("%s: entry %d of the %s must be a scalar tensor, got shape {%s}", what, i, param,
              table.concat(parts[i].shape, ", "))
    end
  end
  return nil, G.make_op("Pack", parts, { "axis", "int", 1 }, { name = "stack" }).outputs[1]
end

-- ---------------------------------------------------------------- on Tensors

function M.install(tf)
  tf.TensorShape = function(dims) return M.new(dims, "tf.TensorShape") end

  -- Tensor:get_shape(): the static shape as a TensorShape (t.shape as a list).
  function G.Tensor.get_shape(t) return new(t.shape and table.move(t.shape, 1, #t.shape, 1, {})) end

  -- Tensor:set_shape(shape): merges what the caller knows into the static
  -- shape (t.shape, get_shape()); an error when they conflict, as in TF.
  -- Like TF it adds no run-time check. Ops built on t afterwards see the
  -- merged shape from Lua (t.shape); the core's own inference keeps what it
  -- inferred.
  function G.Tensor.set_shape(t, shape)
    local want = dims_of(shape, "Tensor:set_shape")
    local m, why = merge(t.shape, want)
    if not m and why then
      G.raise("Tensor:set_shape: shape %s is not compatible with the shape %s of '%s' (%s)", fmt(want),
              fmt(t.shape), t.name, why)
    end
    t.shape = m
  end
end

G.guard_methods(TensorShape, "TensorShape", is_shape)

return M
