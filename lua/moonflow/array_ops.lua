-- Shapes and indexing: transpose, reshape, concat, stack, split, slice,
-- gather, one_hot, ... Axes, starts and ids count from 1.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local TS = require("moonflow.tensor_shape")
local A = require("moonflow.args")

return function(tf)
  local function out(op) return op.outputs[1] end
  local function ints(v, what)
    if type(v) ~= "table" then G.raise("%s: expected a list of integers, got %s", what, type(v)) end
    for i, x in ipairs(v) do
      if math.type(x) ~= "integer" then G.raise("%s: element %d is not an integer", what, i) end
    end
    return v
  end
  local function int(v, what)
    if math.type(v) ~= "integer" then G.raise("%s: expected an integer, got %s", what, tostring(v)) end
    return v
  end

  tf.identity = A.def("tf.identity", "input:tensor, name:string=nil", "The same value (a new op).", function(a)
    return out(G.make_op("Identity", { C.to_tensor(a.input) }, nil, { name = a.name }))
  end)
  tf.stop_gradient = A.def("tf.stop_gradient", "input:tensor, name:string=nil",
                           "The same value, with no gradient flowing back through it.", function(a)
    return out(G.make_op("StopGradient", { C.to_tensor(a.input) }, nil, { name = a.name }))
  end)

  tf.transpose = A.def("tf.transpose", "a:tensor, perm:ints=nil, name:string=nil, conjugate:bool=false",
                       "Permutes the dimensions (1-based perm; reversed when nil).", function(a)
    local attrs = a.perm and { "perm", "ints", a.perm } or nil
    return out(G.make_op("Transpose", { C.to_tensor(a.a) }, attrs, { name = a.name }))
  end)

  tf.reshape = A.def("tf.reshape", "tensor:tensor, shape:shape, name:string=nil",
                     "The same values in a new shape (one dimension may be -1; a shape tensor works).", function(a)
    local list, t = TS.shape_arg(a.shape, "tf.reshape", "shape", true)
    if t then return out(G.make_op("Reshape", { C.to_tensor(a.tensor), t }, nil, { name = a.name })) end
    return out(G.make_op("Reshape", { C.to_tensor(a.tensor) }, { "shape", "ints", list }, { name = a.name }))
  end)

  -- tf.broadcast_to(x, shape): x broadcast (NumPy rules) to exactly `shape`
  -- (a list or an int32/int64 tensor). Composed: x + zeros(shape), then
  -- reshaped to `shape`, which refuses an x that broadcasting would grow
  -- past it; the gradient sums back to x's shape.
  tf.broadcast_to = A.def("tf.broadcast_to", "input:tensor, shape:shape, name:string=nil",
                          "input broadcast (NumPy rules) to exactly shape.", function(a)
    local x, shape, name = C.to_tensor(a.input), a.shape, a.name
    return G.name_scope(name or "BroadcastTo", function()
      local list, t = TS.shape_arg(shape, "tf.broadcast_to")
      local target = t or list
      local xs = x.shape
      if list and xs then -- TF's rule: each dim of x is 1 or the target's, aligned from the right
        local bad = #xs > #list
        for i = 1, math.min(#xs, #list) do
          local d, want = xs[#xs - i + 1], list[#list - i + 1]
          if d >= 0 and d ~= 1 and d ~= want then bad = true end
        end
        if bad then
          G.raise("tf.broadcast_to: cannot broadcast a {%s} value to {%s}", table.concat(xs, ", "),
                  table.concat(list, ", "))
        end
      end
      local filled
      if x.dtype == "bool" then
        filled = tf.logical_or(x, tf.fill(target, false))
      else
        filled = tf.add(x, tf.zeros(target, x.dtype))
      end
      return tf.reshape(filled, target)
    end)
  end)

  tf.concat = A.def("tf.concat", "values:tensors, axis:int, name:string=nil",
                    "The tensors joined along an existing axis.", function(a)
    return out(G.make_op("ConcatV2", C.list(a.values, "tf.concat"), { "axis", "int", a.axis },
                         { name = a.name or "concat" }))
  end)

  tf.stack = A.def("tf.stack", "values:tensors, axis:int=1, name:string=nil",
                   "The tensors (of one shape) stacked along a new axis.", function(a)
    return out(G.make_op("Pack", C.list(a.values, "tf.stack"), { "axis", "int", a.axis },
                         { name = a.name or "stack" }))
  end)

  tf.unstack = A.def("tf.unstack", "value:tensor, num:int=nil, axis:int=1, name:string=nil",
                     "A list of the slices along axis (num, if given, must match its size).", function(a)
    local x = C.to_tensor(a.value)
    local parts = G.make_op("Unpack", { x }, { "axis", "int", a.axis }, { name = a.name or "unstack" }).outputs
    if a.num ~= nil and a.num ~= #parts then
      G.raise("tf.unstack: num is %d but dimension %d has size %d", a.num, a.axis, #parts)
    end
    return parts
  end)

  -- tf.split(x, n, axis): n equal parts, or a list of sizes.
  tf.split = A.def("tf.split", "value:tensor, num_or_size_splits:any, axis:int=1, num:int=nil, name:string=nil",
                   "n equal parts along axis, or parts of the listed sizes.", function(a)
    local x, n, axis, name = C.to_tensor(a.value), a.num_or_size_splits, a.axis, a.name
    if type(n) == "table" then
      local rank = x.shape and #x.shape
      if not rank then G.raise("tf.split: sizes need a tensor of known rank") end
      local ax = axis < 0 and rank + axis + 1 or axis
      local parts, start = {}, 1
      for i, size in ipairs(ints(n, "tf.split")) do
        local begin, sizes = {}, {}
        for d = 1, rank do begin[d], sizes[d] = 1, -1 end
        begin[ax], sizes[ax] = start, size
        parts[i] = tf.slice(x, begin, sizes, name)
        start = start + size
      end
      return parts
    end
    local parts = G.make_op("Split", { x }, { "num_split", "int", int(n, "tf.split"), "axis", "int", axis },
                            { name = name or "split" }).outputs
    if a.num ~= nil and a.num ~= #parts then G.raise("tf.split: num is %d but there are %d parts", a.num, #parts) end
    return parts
  end)

  -- begin (1-based) and size: lists, or int32/int64 tensors (then both
  -- go in as run-time inputs).
  tf.slice = A.def("tf.slice", "input_:tensor, begin:shape, size:shape, name:string=nil",
                   "The block starting at 1-based begin of the given size (-1: the rest).", function(a)
    local x, name = C.to_tensor(a.input_), a.name
    local bl, bt = TS.shape_arg(a.begin, "tf.slice", "begin", true)
    local sl, st = TS.shape_arg(a.size, "tf.slice", "size", true)
    if bt or st then
      bt = bt or C.to_tensor(bl, st.dtype)
      st = st or C.to_tensor(sl, bt.dtype)
      return out(G.make_op("Slice", { x, bt, st }, nil, { name = name }))
    end
    return out(G.make_op("Slice", { x }, { "begin", "ints", bl, "size", "ints", sl }, { name = name }))
  end)

  tf.gather = A.def("tf.gather", "params:tensor, indices:tensor, validate_indices:any=nil, name:string=nil, axis:int=1",
                    "The slices of params at the 1-based indices along axis.", function(a)
    local params = C.to_tensor(a.params)
    local ids = C.to_tensor(a.indices, "int32")
    return out(G.make_op("GatherV2", { params, ids }, { "axis", "int", a.axis }, { name = a.name }))
  end)

  tf.one_hot = A.def("tf.one_hot", "indices:tensor, depth:any, on_value:number=1, off_value:number=0, "
                     .. "axis:int=-1, dtype:dtype=\"float32\", name:string=nil",
                     "on_value at each 1-based index (0 or out of range: none), off_value elsewhere.", function(a)
    local inputs, attrs = { C.to_tensor(a.indices, "int32") }, {}
    local depth = a.depth
    if G.is_tensor(depth) then -- a run-time depth: a scalar int32/int64 input
      if depth.dtype ~= "int32" and depth.dtype ~= "int64" then
        G.raise("tf.one_hot: depth must be an int32 or int64 tensor, got %s", depth.dtype)
      end
      inputs[2] = depth
    else
      attrs = { "depth", "int", int(depth, "tf.one_hot") }
    end
    for _, v in ipairs({ "on_value", "float", a.on_value, "off_value", "float", a.off_value,
                         "dtype", "type", a.dtype, "axis", "int", a.axis }) do attrs[#attrs + 1] = v end
    return out(G.make_op("OneHot", inputs, attrs, { name = a.name }))
  end)

  tf.expand_dims = A.def("tf.expand_dims", "input:tensor, axis/dim:int, name:string=nil",
                         "Inserts a dimension of size 1 at axis (1-based; -1 appends).", function(a)
    return out(G.make_op("ExpandDims", { C.to_tensor(a.input) }, { "axis", "int", a.axis }, { name = a.name }))
  end)

  tf.squeeze = A.def("tf.squeeze", "input:tensor, axis/squeeze_dims:axes=nil, name:string=nil",
                     "Removes dimensions of size 1 (those listed, or all).", function(a)
    local attrs = a.axis and { "axis", "ints", a.axis } or nil
    return out(G.make_op("Squeeze", { C.to_tensor(a.input) }, attrs, { name = a.name }))
  end)

  tf.tile = A.def("tf.tile", "input:tensor, multiples:shape, name:string=nil",
                  "The tensor repeated multiples[d] times along each dimension d.", function(a)
    local list, t = TS.shape_arg(a.multiples, "tf.tile", "multiples", true)
    if t then return out(G.make_op("Tile", { C.to_tensor(a.input), t }, nil, { name = a.name })) end
    return out(G.make_op("Tile", { C.to_tensor(a.input) }, { "multiples", "ints", list }, { name = a.name }))
  end)

  TS.install(tf)

  local function out_type(r, t)
    if t ~= nil and t ~= "int32" then
      if t ~= "int64" then G.raise("%s: out_type must be int32 or int64, got %s", r.op.type, t) end
      return tf.cast(r, t)
    end
    return r
  end
  tf.shape = A.def("tf.shape", "input:tensor, name:string=nil, out_type:dtype=nil",
                   "The shape of input as a 1-D int32 tensor (known when run).", function(a)
    return out_type(out(G.make_op("Shape", { C.to_tensor(a.input) }, nil, { name = a.name })), a.out_type)
  end)
  tf.size = A.def("tf.size", "input:tensor, name:string=nil, out_type:dtype=nil",
                  "The number of elements of input (an int32 scalar).", function(a)
    return out_type(out(G.make_op("Size", { C.to_tensor(a.input) }, nil, { name = a.name })), a.out_type)
  end)

  -- tf.group(op1, op2, ...) or tf.group({ops}, {name}): a NoOp that runs them all.
  function tf.group(...)
    local args = table.pack(...)
    local ops, name = args, nil
    if args.n >= 1 and type(args[1]) == "table" and not G.is_tensor(args[1]) and not G.is_operation(args[1]) then
      ops, name = args[1], C.opts(args[2], "tf.group").name
      ops.n = #ops
    end
    local ctrl = {}
    for i = 1, ops.n do
      local o = ops[i]
      if G.is_tensor(o) then o = o.op end
      if not G.is_operation(o) then G.raise("tf.group: argument %d is not an Operation or Tensor", i) end
      ctrl[#ctrl + 1] = o
    end
    return G.make_op("NoOp", {}, nil, { name = name or "group_deps", control_inputs = ctrl })
  end
  A.doc(tf.group, "tf.group", "inputs..., [{name}] | ({inputs}, [name])",
        "An Operation that runs all the given ops (or tensors' ops).")
  tf.no_op = A.def("tf.no_op", "name:string=nil", "An Operation that does nothing.", function(a)
    return G.make_op("NoOp", {}, nil, { name = a.name or "NoOp" })
  end)

  tf.placeholder = A.def("tf.placeholder", "dtype:dtype, shape:shape=nil, name:string=nil",
                         "A tensor fed at run time (-1: a dimension of any size).", function(a)
    local dtype, shape, name = a.dtype, a.shape, a.name
    if TS.is_shape(shape) then shape = shape.dims end -- x:get_shape(); nil: unknown rank
    local attrs = { "dtype", "type", dtype }
    if shape ~= nil then
      attrs[4], attrs[5], attrs[6] = "shape", "shape", ints(shape, "tf.placeholder")
    end
    return out(G.make_op("Placeholder", {}, attrs, { name = name or "Placeholder" }))
  end)

  tf.placeholder_with_default = A.def("tf.placeholder_with_default", "input:tensor, shape:shape=nil, name:string=nil",
                                      "input, unless a value is fed for it.", function(a)
    local value, shape, name = C.to_tensor(a.input), a.shape, a.name
    if TS.is_shape(shape) then shape = shape.dims end
    local attrs = shape and { "shape", "shape", ints(shape, "tf.placeholder_with_default") } or nil
    return out(G.make_op("PlaceholderWithDefault", { value }, attrs, { name = name }))
  end)
end
