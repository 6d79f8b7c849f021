-- Indexing: x[i] (TF's x[i]: the i-th slice along the first axis),
-- tf.strided_slice and x:slice(...), composed from Slice, GatherV2,
-- Squeeze and ExpandDims so gradients come with them.
--
-- Positions count from 1 and negative ones from the end (-1 is the last);
-- a range's end is exclusive, as tf.range's limit and TF's own end: begin 2,
-- end 4 takes positions 2 and 3. End 0 means "before the first" (for
-- negative strides, to run down to position 1).
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local function out(op) return op.outputs[1] end
  local function int32(v) return C.constant(v, { dtype = "int32" }) end

  -- The 1-based position `i` along axis `ax` (1-based) of x as an int32
  -- scalar tensor: a constant when the size is known, else computed from
  -- tf.shape for negative positions.
  local function position(x, ax, i, what)
    local n = x.shape and x.shape[ax] or -1
    if n >= 0 then
      local j = i < 0 and n + i + 1 or i
      if j < 1 or j > n then
        G.raise("%s: index %d is out of range for dimension %d of size %d", what, i, ax, n)
      end
      return int32(j)
    end
    if i > 0 then return int32(i) end
    local size = out(G.make_op("GatherV2", { tf.shape(x), int32(ax) }, { "axis", "int", 1 }, {}))
    return size + (i + 1)
  end

  -- x[i]
  G.getitem = function(x, i)
    if math.type(i) ~= "integer" then
      G.raise("x[i]: the index must be an integer, got %s (methods and fields are names: x.shape, x:eval())",
              math.type(i) == "float" and tostring(i) or type(i))
    end
    if i == 0 then G.raise("x[0]: indices count from 1 (x[1] is the first slice, x[-1] the last)") end
    if x.shape and #x.shape == 0 then G.raise("x[%d]: cannot index a scalar tensor ('%s')", i, x.name) end
    return tf.name_scope("strided_slice", function()
      return out(G.make_op("GatherV2", { x, position(x, 1, i, "x[i]") }, { "axis", "int", 1 }, {}))
    end)
  end

  local function bit(mask, i) return (mask >> (i - 1)) & 1 == 1 end

  -- One spec entry per input dimension after expanding the ellipsis:
  -- {kind = "index"|"range"|"all", b, e, s}; new axes are recorded by their
  -- output position.
  local function strided(x, entries, new_axes, what)
    local rank = #x.shape
    local begin, size, need_slice = {}, {}, false
    local strided_axes, shrink = {}, {}
    for d = 1, rank do
      local e, n = entries[d], x.shape[d]
      begin[d], size[d] = 1, -1
      if e.kind == "range" then
        local s = e.s
        if s == 0 then G.raise("%s: stride 0 along dimension %d", what, d) end
        if n < 0 then
          if s ~= 1 or (e.b ~= nil and e.b < 0) or (e.e ~= nil and e.e < 1) then
            G.raise("%s: dimension %d has an unknown size: only a stride of 1 with positive begin and end "
                    .. "works there", what, d)
          end
          local b = e.b or 1
          begin[d], size[d] = b, e.e and math.max(e.e - b, 0) or -1
          need_slice = need_slice or b ~= 1 or e.e ~= nil
        else
          local function resolve(v) return v < 0 and n + v + 1 or v end
          local b, stop
          if s > 0 then
            b = e.b and math.min(math.max(resolve(e.b), 1), n + 1) or 1
            stop = e.e and math.min(math.max(resolve(e.e), 1), n + 1) or n + 1
          else
            b = e.b and math.min(math.max(resolve(e.b), 0), n) or n
            stop = e.e and math.min(math.max(resolve(e.e), 0), n) or 0
          end
          if s == 1 then
            begin[d], size[d] = b, math.max(stop - b, 0)
            need_slice = need_slice or begin[d] ~= 1 or size[d] ~= n
          else
            local ids = {}
            for p = b, s > 0 and stop - 1 or stop + 1, s do ids[#ids + 1] = p end
            strided_axes[#strided_axes + 1] = { d, ids }
          end
        end
      elseif e.kind == "index" then
        shrink[#shrink + 1] = { d, e.b }
      end
    end
    return tf.name_scope("strided_slice", function()
      local y = x
      if need_slice then
        y = out(G.make_op("Slice", { y }, { "begin", "ints", begin, "size", "ints", size }, {}))
      end
      for _, sa in ipairs(strided_axes) do
        local d, ids = sa[1], sa[2]
        if #ids == 0 then
          local b, z = {}, {}
          for k = 1, rank do b[k], z[k] = 1, -1 end
          z[d] = 0
          y = out(G.make_op("Slice", { y }, { "begin", "ints", b, "size", "ints", z }, {}))
        else
          y = out(G.make_op("GatherV2", { y, int32(ids) }, { "axis", "int", d }, {}))
        end
      end
      for k = #shrink, 1, -1 do -- the last first, so earlier axes keep their numbers
        local d, i = shrink[k][1], shrink[k][2]
        if i == 0 then G.raise("%s: index 0 along dimension %d (indices count from 1)", what, d) end
        y = out(G.make_op("GatherV2", { y, position(y, d, i, what) }, { "axis", "int", d }, {}))
      end
      for _, p in ipairs(new_axes) do
        y = out(G.make_op("ExpandDims", { y }, { "axis", "int", p }, {}))
      end
      return tf.identity(y)
    end)
  end

  local function known_rank(x, what)
    if not x.shape then G.raise("%s: needs a tensor of known rank", what) end
    return #x.shape
  end

  -- tf.strided_slice: TF's masks are bit fields, bit k-1 for entry k of begin.
  tf.strided_slice = A.def("tf.strided_slice",
    "input_:tensor, begin:ints, end:ints, strides:ints=nil, begin_mask:int=0, end_mask:int=0, "
    .. "ellipsis_mask:int=0, new_axis_mask:int=0, shrink_axis_mask:int=0, var:any=nil, name:string=nil",
    "input_[begin:end:strides] per dimension, with TF's masks (1-based begin, exclusive end).", function(a)
    local what = "tf.strided_slice"
    local x = C.to_tensor(a.input_)
    local rank = known_rank(x, what)
    local m = #a.begin
    if #a["end"] ~= m or (a.strides and #a.strides ~= m) then
      G.raise("%s: begin, end and strides must have the same length", what)
    end
    local n_real = 0
    for k = 1, m do if not bit(a.new_axis_mask, k) and not bit(a.ellipsis_mask, k) then n_real = n_real + 1 end end
    local has_ellipsis = a.ellipsis_mask ~= 0
    if n_real > rank then G.raise("%s: %d entries for a tensor of rank %d", what, n_real, rank) end
    local entries, new_axes, d, outpos = {}, {}, 1, 1
    for k = 1, m do
      if bit(a.ellipsis_mask, k) then
        for _ = 1, rank - n_real do entries[d] = { kind = "all" }; d, outpos = d + 1, outpos + 1 end
      elseif bit(a.new_axis_mask, k) then
        new_axes[#new_axes + 1] = outpos
        outpos = outpos + 1
      elseif bit(a.shrink_axis_mask, k) then
        entries[d] = { kind = "index", b = a.begin[k] }
        d = d + 1
      else
        local s = a.strides and a.strides[k] or 1
        local b = not bit(a.begin_mask, k) and a.begin[k] or nil
        local e = not bit(a.end_mask, k) and a["end"][k] or nil
        if b == 0 then G.raise("%s: begin 0 along entry %d (positions count from 1; -1 is the last)", what, k) end
        entries[d] = { kind = "range", b = b, e = e, s = s }
        d, outpos = d + 1, outpos + 1
      end
    end
    if not has_ellipsis then
      for k = d, rank do entries[k] = { kind = "all" } end
    end
    local y = strided(x, entries, new_axes, what)
    if a.name then y = tf.identity(y, a.name) end
    return y
  end)

  tf.newaxis = "newaxis"

  -- x:slice(spec1, spec2, ...): one spec per dimension, as Python's
  -- x[spec1, spec2, ...]: an integer i is one position (the dimension goes),
  -- {b, e} or {b, e, s} a range (nil ends: from the start / to the end;
  -- end exclusive), {} or true all of it, "..." the remaining dimensions,
  -- tf.newaxis a new dimension of size 1.
  function G.Tensor.slice(x, ...)
    local what = "x:slice"
    local specs = table.pack(...)
    local rank = known_rank(x, what)
    local n_real, has_ellipsis = 0, false
    for k = 1, specs.n do
      local s = specs[k]
      if s == "..." then
        if has_ellipsis then G.raise("%s: only one \"...\"", what) end
        has_ellipsis = true
      elseif s ~= tf.newaxis then n_real = n_real + 1 end
    end
    if n_real > rank then G.raise("%s: %d specs for a tensor of rank %d", what, n_real, rank) end
    local entries, new_axes, d, outpos = {}, {}, 1, 1
    for k = 1, specs.n do
      local s = specs[k]
      if s == "..." then
        for _ = 1, rank - n_real do entries[d] = { kind = "all" }; d, outpos = d + 1, outpos + 1 end
      elseif s == tf.newaxis then
        new_axes[#new_axes + 1] = outpos
        outpos = outpos + 1
      elseif math.type(s) == "integer" then
        if s == 0 then G.raise("%s: spec %d is 0 (positions count from 1; -1 is the last)", what, k) end
        entries[d] = { kind = "index", b = s }
        d = d + 1
      elseif s == true or (type(s) == "table" and getmetatable(s) == nil) then
        local b, e, st = nil, nil, 1
        if type(s) == "table" then
          b, e, st = s[1], s[2], s[3] or 1
          for j, v in pairs(s) do
            if (j ~= 1 and j ~= 2 and j ~= 3) or math.type(v) ~= "integer" then
              G.raise("%s: spec %d must be {begin, end[, stride]} of integers", what, k)
            end
          end
          if b == 0 then G.raise("%s: spec %d begins at 0 (positions count from 1; -1 is the last)", what, k) end
        end
        entries[d] = { kind = "range", b = b, e = e, s = st }
        d, outpos = d + 1, outpos + 1
      else
        G.raise("%s: spec %d must be an integer, a {begin, end[, stride]} range, {}, \"...\" or tf.newaxis, got %s",
                what, k, type(s))
      end
    end
    for k = d, rank do entries[k] = { kind = "all" } end
    return strided(x, entries, new_axes, what)
  end
end
