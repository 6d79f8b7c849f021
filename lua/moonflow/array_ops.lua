-- Shapes and indexing: transpose, reshape, concat, stack, split, slice,
-- gather, one_hot, ... Axes, starts and ids count from 1.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local TS = require("moonflow.tensor_shape")

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

  function tf.identity(x, name) return out(G.make_op("Identity", { C.to_tensor(x) }, nil, { name = name })) end
  function tf.stop_gradient(x, name)
    return out(G.make_op("StopGradient", { C.to_tensor(x) }, nil, { name = name }))
  end

  function tf.transpose(x, perm, name)
    local attrs = perm and { "perm", "ints", ints(perm, "tf.transpose") } or nil
    return out(G.make_op("Transpose", { C.to_tensor(x) }, attrs, { name = name }))
  end

  function tf.reshape(x, shape, name)
    local list, t = TS.shape_arg(shape, "tf.reshape", "shape", true)
    if t then return out(G.make_op("Reshape", { C.to_tensor(x), t }, nil, { name = name })) end
    return out(G.make_op("Reshape", { C.to_tensor(x) }, { "shape", "ints", list }, { name = name }))
  end

  -- tf.broadcast_to(x, shape): x broadcast (NumPy rules) to exactly `shape`
  -- (a list or an int32/int64 tensor). Composed: x + zeros(shape), then
  -- reshaped to `shape`, which refuses an x that broadcasting would grow
  -- past it; the gradient sums back to x's shape.
  function tf.broadcast_to(x, shape, name)
    if name ~= nil and type(name) ~= "string" then
      G.raise("tf.broadcast_to: name must be a string, got %s", type(name))
    end
    x = C.to_tensor(x)
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
  end

  function tf.concat(values, axis, name)
    return out(G.make_op("ConcatV2", C.list(values, "tf.concat"), { "axis", "int", int(axis, "tf.concat") },
                         { name = name or "concat" }))
  end

  function tf.stack(values, axis, name)
    return out(G.make_op("Pack", C.list(values, "tf.stack"), { "axis", "int", int(axis or 1, "tf.stack") },
                         { name = name or "stack" }))
  end

  function tf.unstack(x, axis, name)
    return G.make_op("Unpack", { C.to_tensor(x) }, { "axis", "int", int(axis or 1, "tf.unstack") },
                     { name = name or "unstack" }).outputs
  end

  -- tf.split(x, n, axis): n equal parts, or a list of sizes.
  function tf.split(x, n, axis, name)
    x = C.to_tensor(x)
    axis = int(axis or 1, "tf.split")
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
    return G.make_op("Split", { x }, { "num_split", "int", int(n, "tf.split"), "axis", "int", axis },
                     { name = name or "split" }).outputs
  end

  -- begin (1-based) and size: lists, or int32/int64 tensors (then both
  -- go in as run-time inputs).
  function tf.slice(x, begin, size, name)
    x = C.to_tensor(x)
    local bl, bt = TS.shape_arg(begin, "tf.slice", "begin", true)
    local sl, st = TS.shape_arg(size, "tf.slice", "size", true)
    if bt or st then
      bt = bt or C.to_tensor(bl, st.dtype)
      st = st or C.to_tensor(sl, bt.dtype)
      return out(G.make_op("Slice", { x, bt, st }, nil, { name = name }))
    end
    return out(G.make_op("Slice", { x }, { "begin", "ints", bl, "size", "ints", sl }, { name = name }))
  end

  function tf.gather(params, ids, opts)
    opts = C.opts(opts, "tf.gather", "name axis")
    params = C.to_tensor(params)
    ids = C.to_tensor(ids, "int32")
    return out(G.make_op("GatherV2", { params, ids }, { "axis", "int", int(opts.axis or 1, "tf.gather") },
                         { name = opts.name }))
  end

  function tf.one_hot(ids, depth, opts)
    opts = C.opts(opts, "tf.one_hot", "name dtype on_value off_value axis")
    C.check_dtype(opts.dtype, "tf.one_hot")
    local inputs, attrs = { C.to_tensor(ids, "int32") }, {}
    if G.is_tensor(depth) then -- a run-time depth: a scalar int32/int64 input
      if depth.dtype ~= "int32" and depth.dtype ~= "int64" then
        G.raise("tf.one_hot: depth must be an int32 or int64 tensor, got %s", depth.dtype)
      end
      inputs[2] = depth
    else
      attrs = { "depth", "int", int(depth, "tf.one_hot") }
    end
    for _, v in ipairs({
      "on_value", "float", opts.on_value or 1,
      "off_value", "float", opts.off_value or 0, "dtype", "type", opts.dtype or "float32",
      "axis", "int", int(opts.axis or -1, "tf.one_hot"),
    }) do attrs[#attrs + 1] = v end
    return out(G.make_op("OneHot", inputs, attrs, { name = opts.name }))
  end

  function tf.expand_dims(x, axis, name)
    return out(G.make_op("ExpandDims", { C.to_tensor(x) }, { "axis", "int", int(axis, "tf.expand_dims") },
                         { name = name }))
  end

  function tf.squeeze(x, axis, name)
    local attrs
    if axis ~= nil then
      if type(axis) == "number" then axis = { axis } end
      attrs = { "axis", "ints", ints(axis, "tf.squeeze") }
    end
    return out(G.make_op("Squeeze", { C.to_tensor(x) }, attrs, { name = name }))
  end

  function tf.tile(x, multiples, name)
    local list, t = TS.shape_arg(multiples, "tf.tile", "multiples", true)
    if t then return out(G.make_op("Tile", { C.to_tensor(x), t }, nil, { name = name })) end
    return out(G.make_op("Tile", { C.to_tensor(x) }, { "multiples", "ints", list }, { name = name }))
  end

  TS.install(tf)

  function tf.shape(x, name) return out(G.make_op("Shape", { C.to_tensor(x) }, nil, { name = name })) end
  function tf.size(x, name) return out(G.make_op("Size", { C.to_tensor(x) }, nil, { name = name })) end

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
  tf.no_op = function(name) return G.make_op("NoOp", {}, nil, { name = name or "NoOp" }) end

  function tf.placeholder(dtype, shape, name)
    C.check_dtype(dtype, "tf.placeholder")
    if dtype == nil then G.raise("tf.placeholder: needs a dtype") end
    if TS.is_shape(shape) then shape = shape.dims end -- x:get_shape(); nil: unknown rank
    local attrs = { "dtype", "type", dtype }
    if shape ~= nil then
      attrs[4], attrs[5], attrs[6] = "shape", "shape", ints(shape, "tf.placeholder")
    end
    return out(G.make_op("Placeholder", {}, attrs, { name = name or "Placeholder" }))
  end

  function tf.placeholder_with_default(value, shape, name)
    value = C.to_tensor(value)
    if TS.is_shape(shape) then shape = shape.dims end
    local attrs = shape and { "shape", "shape", ints(shape, "tf.placeholder_with_default") } or nil
    return out(G.make_op("PlaceholderWithDefault", { value }, attrs, { name = name }))
  end
end
