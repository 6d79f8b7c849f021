-- Selection and rearrangement: tf.nn.top_k, tf.nn.in_top_k, tf.pad,
-- tf.reverse, tf.reverse_sequence, tf.gather_nd, tf.scatter_nd,
-- tf.boolean_mask, tf.cumsum, tf.cumprod (kernels in csrc/ops/index.c).
-- Axes, indices and positions count from 1.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local TS = require("moonflow.tensor_shape")
local A = require("moonflow.args")

return function(tf)
  local function out(op) return op.outputs[1] end

  local function index_tensor(v, what, param)
    local t = C.to_tensor(v, "int32")
    if t.dtype ~= "int32" and t.dtype ~= "int64" then
      G.raise("%s: %s must be int32 or int64, got %s", what, param, t.dtype)
    end
    return t
  end

  -- k as an attribute (an integer) or a scalar int32/int64 tensor (an input).
  local function k_arg(k, what, inputs)
    if G.is_tensor(k) then
      if k.dtype ~= "int32" and k.dtype ~= "int64" then G.raise("%s: k must be an int32 or int64 tensor, got %s", what, k.dtype) end
      inputs[#inputs + 1] = k
      return {}
    end
    if math.type(k) ~= "integer" then G.raise("%s: k must be an integer or a scalar tensor, got %s", what, tostring(k)) end
    return { "k", "int", k }
  end

  tf.nn.top_k = A.def("tf.nn.top_k", "input:tensor, k:any=1, sorted:bool=true, name:string=nil",
                      "values, indices: the k largest entries of each last-axis row, largest first "
                      .. "(ties: lower index first), and their 1-based indices (int32).", function(a)
    local inputs = { C.to_tensor(a.input) }
    local attrs = k_arg(a.k, "tf.nn.top_k", inputs)
    attrs[#attrs + 1], attrs[#attrs + 2], attrs[#attrs + 3] = "sorted", "bool", a.sorted
    local op = G.make_op("TopKV2", inputs, attrs, { name = a.name or "TopKV2" })
    return op.outputs[1], op.outputs[2]
  end)

  tf.nn.in_top_k = A.def("tf.nn.in_top_k", "predictions:tensor, targets:tensor, k:any, name:string=nil",
                         "Whether each row's 1-based target is among its k largest predictions "
                         .. "(ties count as in).", function(a)
    local inputs = { C.to_tensor(a.predictions), index_tensor(a.targets, "tf.nn.in_top_k", "targets") }
    local attrs = k_arg(a.k, "tf.nn.in_top_k", inputs)
    return out(G.make_op("InTopKV2", inputs, attrs, { name = a.name or "in_top_k" }))
  end)

  -- paddings: a list of {before, after} pairs, one per dimension, or an
  -- int32/int64 [rank, 2] tensor.
  tf.pad = A.def("tf.pad", "tensor:tensor, paddings:any, mode:string=\"CONSTANT\", name:string=nil, "
                 .. "constant_values:number=0",
                 "tensor padded by paddings ({before, after} per dimension): with constant_values "
                 .. "(CONSTANT) or mirror images without (REFLECT) or with (SYMMETRIC) the edge.", function(a)
    local x, mode = C.to_tensor(a.tensor), a.mode:upper()
    if mode ~= "CONSTANT" and mode ~= "REFLECT" and mode ~= "SYMMETRIC" then
      G.raise("tf.pad: mode must be CONSTANT, REFLECT or SYMMETRIC, got '%s'", a.mode)
    end
    local inputs, attrs = { x }, {}
    local p = a.paddings
    if G.is_tensor(p) or C.is_array(p) then
      inputs[2] = index_tensor(p, "tf.pad", "paddings")
    elseif type(p) == "table" then
      local flat = {}
      for i, pair in ipairs(p) do
        if type(pair) ~= "table" or #pair ~= 2 or math.type(pair[1]) ~= "integer" or math.type(pair[2]) ~= "integer" then
          G.raise("tf.pad: paddings entry %d must be a pair of integers {before, after}", i)
        end
        flat[#flat + 1], flat[#flat + 2] = pair[1], pair[2]
      end
      attrs = { "paddings", "ints", flat }
    else
      G.raise("tf.pad: paddings must be a list of {before, after} pairs or an int32 tensor, got %s", type(p))
    end
    if mode == "CONSTANT" then
      attrs[#attrs + 1], attrs[#attrs + 2], attrs[#attrs + 3] = "constant_values", "float", a.constant_values + 0.0
      return out(G.make_op("PadV2", inputs, attrs, { name = a.name or "Pad" }))
    end
    if a.constant_values ~= 0 then G.raise("tf.pad: constant_values needs mode CONSTANT, not %s", mode) end
    attrs[#attrs + 1], attrs[#attrs + 2], attrs[#attrs + 3] = "mode", "string", mode
    return out(G.make_op("MirrorPad", inputs, attrs, { name = a.name or "MirrorPad" }))
  end)

  tf.reverse = A.def("tf.reverse", "tensor:tensor, axis:axes, name:string=nil",
                     "tensor with the listed dimensions (1-based) reversed.", function(a)
    return out(G.make_op("ReverseV2", { C.to_tensor(a.tensor) }, { "axis", "ints", a.axis },
                         { name = a.name or "ReverseV2" }))
  end)

  tf.reverse_sequence = A.def("tf.reverse_sequence",
                              "input:tensor, seq_lengths:tensor, seq_axis/seq_dim:int=nil, batch_axis/batch_dim:int=1, "
                              .. "name:string=nil",
                              "The first seq_lengths[b] entries along seq_axis reversed in each slice b of "
                              .. "batch_axis (axes 1-based).", function(a)
    if a.seq_axis == nil then G.raise("tf.reverse_sequence: needs seq_axis") end
    local lens = index_tensor(a.seq_lengths, "tf.reverse_sequence", "seq_lengths")
    return out(G.make_op("ReverseSequence", { C.to_tensor(a.input), lens },
                         { "seq_axis", "int", a.seq_axis, "batch_axis", "int", a.batch_axis },
                         { name = a.name or "ReverseSequence" }))
  end)

  tf.gather_nd = A.def("tf.gather_nd", "params:tensor, indices:tensor, name:string=nil, batch_dims:int=0",
                       "The slices of params at the index rows of indices (its last dimension, 1-based).", function(a)
    if a.batch_dims ~= 0 then G.raise("tf.gather_nd: batch_dims other than 0 is not supported") end
    return out(G.make_op("GatherNd", { C.to_tensor(a.params), index_tensor(a.indices, "tf.gather_nd", "indices") },
                         nil, { name = a.name or "GatherNd" }))
  end)

  tf.scatter_nd = A.def("tf.scatter_nd", "indices:tensor, updates:tensor, shape:shape, name:string=nil",
                        "Zeros of shape with each slice of updates added at its 1-based index row "
                        .. "(repeated indices add up).", function(a)
    local ids, upd = index_tensor(a.indices, "tf.scatter_nd", "indices"), C.to_tensor(a.updates)
    local list, t = TS.shape_arg(a.shape, "tf.scatter_nd", "shape")
    if t then return out(G.make_op("ScatterNd", { ids, upd, t }, nil, { name = a.name or "ScatterNd" })) end
    return out(G.make_op("ScatterNd", { ids, upd }, { "shape", "ints", list }, { name = a.name or "ScatterNd" }))
  end)

  -- Composed as TF composes it: the masked dimensions merged into one, the
  -- 1-based positions of the true entries (Where), a gather along axis.
  tf.boolean_mask = A.def("tf.boolean_mask", "tensor:tensor, mask:tensor, name:string=\"boolean_mask\", axis:int=nil",
                          "The slices of tensor (from 1-based axis on) where the bool mask is true; "
                          .. "the masked dimensions become one.", function(a)
    local x, mask = C.to_tensor(a.tensor), C.to_tensor(a.mask, "bool")
    if mask.dtype ~= "bool" then G.raise("tf.boolean_mask: mask must be bool, got %s", mask.dtype) end
    local ms, xs = mask.shape, x.shape
    if not ms then G.raise("tf.boolean_mask: the mask's rank must be known") end
    local k = #ms
    if k == 0 then G.raise("tf.boolean_mask: the mask must not be a scalar") end
    local axis = a.axis or 1
    if xs then
      if axis < 0 then axis = #xs + axis + 1 end
      if axis < 1 or axis + k - 1 > #xs then
        G.raise("tf.boolean_mask: a mask of rank %d at axis %d does not fit a tensor of rank %d", k, a.axis or 1, #xs)
      end
      for i = 1, k do
        local d, m = xs[axis + i - 1], ms[i]
        if d >= 0 and m >= 0 and d ~= m then
          G.raise("tf.boolean_mask: the mask's dimension %d (%d) does not match the tensor's dimension %d (%d)",
                  i, m, axis + i - 1, d)
        end
      end
    elseif axis < 1 then
      G.raise("tf.boolean_mask: a negative axis needs a tensor of known rank")
    end
    return G.name_scope(a.name, function()
      local merged = x
      if k > 1 then
        local shape
        if xs then
          local known = true
          for i, d in ipairs(xs) do if d < 0 and (i < axis or i >= axis + k) then known = false end end
          if known then
            shape = {}
            for i = 1, axis - 1 do shape[#shape + 1] = xs[i] end
            shape[#shape + 1] = -1
            for i = axis + k, #xs do shape[#shape + 1] = xs[i] end
          end
        end
        if not shape then -- the shape at run time, the masked dimensions as -1
          local s = tf.shape(x)
          local parts = {}
          if axis > 1 then parts[#parts + 1] = tf.slice(s, { 1 }, { axis - 1 }) end
          parts[#parts + 1] = tf.constant({ -1 })
          parts[#parts + 1] = tf.slice(s, { axis + k }, { -1 })
          shape = tf.concat(parts, 1)
        end
        merged = tf.reshape(x, shape)
      end
      local flat = k > 1 and tf.reshape(mask, { -1 }) or mask
      local ids = tf.reshape(out(G.make_op("Where", { flat }, nil, { name = "Where" })), { -1 })
      return tf.gather(merged, ids, { axis = axis })
    end)
  end)

  local function cumulative(op_type, path)
    return A.def(path, "x:tensor, axis:int=1, exclusive:bool=false, reverse:bool=false, name:string=nil",
                 (op_type == "Cumsum" and "Running sums" or "Running products")
                 .. " along a 1-based axis (exclusive: each entry leaves itself out; reverse: from the end).",
                 function(a)
      return out(G.make_op(op_type, { C.to_tensor(a.x) },
                           { "axis", "int", a.axis, "exclusive", "bool", a.exclusive, "reverse", "bool", a.reverse },
                           { name = a.name or op_type }))
    end)
  end
  tf.cumsum = cumulative("Cumsum", "tf.cumsum")
  tf.cumprod = cumulative("Cumprod", "tf.cumprod")
end
