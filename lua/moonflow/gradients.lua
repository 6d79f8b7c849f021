-- tf.gradients over the C core's mf_gradients.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  -- A sparse gradient: `values` rows [U, ...] of a variable of `dense_shape`
  -- at the 1-based row ids `indices` [U] (each id once).
  local IndexedSlices = {}
  IndexedSlices.__index = IndexedSlices
  IndexedSlices.__tostring = function(s)
    return string.format("IndexedSlices(values=%s, indices=%s)", tostring(s.values), tostring(s.indices))
  end
  function tf.IndexedSlices(values, indices, dense_shape)
    if not G.is_tensor(values) or not G.is_tensor(indices) then
      G.raise("tf.IndexedSlices: values and indices must be Tensors, got %s and %s", type(values), type(indices))
    end
    return setmetatable({ values = values, indices = indices, dense_shape = dense_shape,
                          dtype = values.dtype }, IndexedSlices)
  end
  function tf.is_indexed_slices(x) return getmetatable(x) == IndexedSlices end

  local function tensor_list(x, what)
    if x == nil then G.raise("%s: needs tensors", what) end
    if G.is_tensor(x) then return { x }, true end
    if type(x) ~= "table" then G.raise("%s: expected a tensor or a list of tensors", what) end
    return x, false
  end

  -- tf.gradients(ys, xs, grad_ys): a list with, for each x, the gradient of
  -- sum(ys) with respect to it, or nil where ys do not depend on it (the
  -- list's `n` field holds #xs, since nils leave holes).
  tf.gradients = A.def("tf.gradients", "ys:tensor_or_list, xs:tensor_or_list, grad_ys:any=nil, name:string=nil, "
    .. "colocate_gradients_with_ops:bool=false, gate_gradients:bool=false, aggregation_method:any=nil, "
    .. "stop_gradients:any=nil",
    "For each of xs, the gradient of sum(ys) with respect to it (nil where unconnected; the list's n is #xs).",
    function(a)
    local ys, xs, grad_ys = a.ys, a.xs, a.grad_ys
    if a.stop_gradients ~= nil or a.aggregation_method ~= nil then
      G.raise("tf.gradients: %s is not supported", a.stop_gradients ~= nil and "stop_gradients" or "aggregation_method")
    end
    local ylist = tensor_list(ys, "tf.gradients")
    local xlist = tensor_list(xs, "tf.gradients")
    local g
    local function flat(list, what, allow_nil, n)
      local out = {}
      for i = 1, n or #list do
        local t = list[i]
        if t == nil and allow_nil then
          out[2 * i - 1], out[2 * i] = false, 0
        else
          if not G.is_tensor(t) then G.raise("tf.gradients: %s %d is not a tensor", what, i) end
          t = t._tensor or t
          g = g or t.graph
          if t.graph ~= g then G.raise("tf.gradients: %s %d ('%s') is from another graph", what, i, t.name) end
          out[2 * i - 1], out[2 * i] = t.op._ud, t.value_index
        end
      end
      return out
    end
    local yf, xf = flat(ylist, "y"), flat(xlist, "x")
    local gf
    if grad_ys ~= nil then
      local glist = tensor_list(grad_ys, "tf.gradients")
      local conv = {}
      for i = 1, #ylist do
        if glist[i] ~= nil then conv[i] = C.to_tensor(glist[i], ylist[i].dtype) end
      end
      gf = flat(conv, "grad_y", true, #ylist)
    end
    if not g then G.raise("tf.gradients: ys and xs are empty (no tensor to differentiate)") end
    local ok, res = pcall(core.gradients, g._g, yf, xf, gf)
    if not ok then G.raise("tf.gradients: %s", res) end
    local out = { n = #xlist }
    for i = 1, #xlist do
      local ud = res[2 * i - 1]
      if ud then
        local info = core.op_info(ud)
        out[i] = g:_op(info.id, ud).outputs[res[2 * i] + 1]
      end
    end
    return out
  end)
end
