-- tf.einsum for the common contractions, composed from reduce_sum,
-- transpose, reshape and (batched) matmul: one or more operands, each
-- letter at most once per operand, no ellipsis. Operands are contracted
-- left to right, two at a time.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local WHAT = "tf.einsum"

  local function letters(s)
    local t = {}
    for ch in s:gmatch(".") do t[#t + 1] = ch end
    return t
  end

  local function index_of(list)
    local pos = {}
    for i, ch in ipairs(list) do pos[ch] = i end
    return pos
  end

  local function unsupported(eq, why) G.raise("%s: the equation '%s' is not supported (%s)", WHAT, eq, why) end

  -- Parses "ij,jk->ik": the operands' letter lists and the output's.
  local function parse(eq, n)
    local compact = eq:gsub("%s", "")
    if compact:find("%.") then unsupported(eq, "ellipsis '...'") end
    local lhs, rhs = compact:match("^([^-]*)%->(.*)$")
    if not lhs then
      if compact:find("[->]") then G.raise("%s: malformed equation '%s'", WHAT, eq) end
      lhs = compact
    end
    if not lhs:match("^[%a,]*$") or (rhs and not rhs:match("^%a*$")) then
      G.raise("%s: malformed equation '%s' (letters, commas and one '->')", WHAT, eq)
    end
    local ins = {}
    for term in (lhs .. ","):gmatch("([^,]*),") do ins[#ins + 1] = letters(term) end
    if #ins ~= n then
      G.raise("%s: the equation '%s' has %d operand(s), %d given", WHAT, eq, #ins, n)
    end
    local count = {}
    for _, term in ipairs(ins) do
      local seen = {}
      for _, ch in ipairs(term) do
        if seen[ch] then unsupported(eq, "a letter repeated within one operand (a diagonal or trace)") end
        seen[ch] = true
        count[ch] = (count[ch] or 0) + 1
      end
    end
    local out
    if rhs then
      out = letters(rhs)
      local seen = {}
      for _, ch in ipairs(out) do
        if seen[ch] then G.raise("%s: the output of '%s' repeats '%s'", WHAT, eq, ch) end
        if not count[ch] then G.raise("%s: the output of '%s' has '%s', no operand does", WHAT, eq, ch) end
        seen[ch] = true
      end
    else -- implicit output: the letters used once, in alphabetical order (NumPy's rule)
      out = {}
      for ch, c in pairs(count) do if c == 1 then out[#out + 1] = ch end end
      table.sort(out)
    end
    return ins, out
  end

  -- The size of each dimension: a number when static, else a scalar int32 tensor.
  local function dims_of(x)
    local d = {}
    for i, n in ipairs(x.shape) do
      d[i] = n >= 0 and n or tf.reshape(tf.gather(tf.shape(x), { i }), {})
    end
    return d
  end

  local function product(list)
    local p = 1
    for _, n in ipairs(list) do
      if type(p) == "number" and type(n) == "number" then p = p * n
      else p = tf.cast(p, "int32") * n end -- a scalar tensor from here on
    end
    return p
  end

  -- A shape list for tf.reshape: numbers, or one int32 tensor when any is dynamic.
  local function shape_arg(list)
    local dynamic = false
    for _, n in ipairs(list) do if type(n) ~= "number" then dynamic = true end end
    if not dynamic then return list end
    local parts = {}
    for i, n in ipairs(list) do parts[i] = type(n) == "number" and C.to_tensor(n, "int32") or n end
    return tf.stack(parts)
  end

  local function transpose_to(x, from, to)
    local pos, perm, identity = index_of(from), {}, true
    for i, ch in ipairs(to) do
      perm[i] = pos[ch]
      if perm[i] ~= i then identity = false end
    end
    if identity then return x end
    return tf.transpose(x, perm)
  end

  -- Sums x over its letters not in `keep`; returns the tensor and its letters.
  local function sum_out(x, ls, keep)
    local axes, rest = {}, {}
    for i, ch in ipairs(ls) do
      if keep[ch] then rest[#rest + 1] = ch else axes[#axes + 1] = i end
    end
    if #axes == 0 then return x, ls end
    return tf.reduce_sum(x, axes), rest
  end

  -- Contracts x (letters xl) with y (letters yl) into the letters in `want`
  -- (a set), ordered batch, x's free, y's free.
  local function contract(eq, x, xl, y, yl, want)
    local in_y, in_x = index_of(yl), index_of(xl)
    local keep_x, keep_y = {}, {}
    for _, ch in ipairs(xl) do keep_x[ch] = want[ch] or in_y[ch] ~= nil end
    for _, ch in ipairs(yl) do keep_y[ch] = want[ch] or in_x[ch] ~= nil end
    x, xl = sum_out(x, xl, keep_x)
    y, yl = sum_out(y, yl, keep_y)
    in_y, in_x = index_of(yl), index_of(xl)
    local batch, xfree, yfree, inner = {}, {}, {}, {}
    for _, ch in ipairs(xl) do
      if in_y[ch] then
        if want[ch] then batch[#batch + 1] = ch else inner[#inner + 1] = ch end
      else
        xfree[#xfree + 1] = ch
      end
    end
    for _, ch in ipairs(yl) do if not in_x[ch] then yfree[#yfree + 1] = ch end end
    local xd, yd = dims_of(x), dims_of(y)
    local size = {}
    for i, ch in ipairs(xl) do size[ch] = xd[i] end
    for i, ch in ipairs(yl) do
      local a, b = size[ch], yd[i]
      if type(a) == "number" and type(b) == "number" and a ~= b then
        G.raise("%s: in '%s', '%s' has size %d in one operand and %d in another", WHAT, eq, ch, a, b)
      end
      if type(a) ~= "number" then size[ch] = b end
    end
    local function sizes(ls)
      local t = {}
      for i, ch in ipairs(ls) do t[i] = size[ch] end
      return t
    end
    local function cat(...)
      local t = {}
      for _, l in ipairs({ ... }) do for _, v in ipairs(l) do t[#t + 1] = v end end
      return t
    end
    -- x as [batch..., xfree, inner], y as [batch..., inner, yfree]: one batched matmul
    x = transpose_to(x, xl, cat(batch, xfree, inner))
    y = transpose_to(y, yl, cat(batch, inner, yfree))
    local bs = sizes(batch)
    local x3 = tf.reshape(x, shape_arg(cat(bs, { product(sizes(xfree)), product(sizes(inner)) })))
    local y3 = tf.reshape(y, shape_arg(cat(bs, { product(sizes(inner)), product(sizes(yfree)) })))
    local z = tf.matmul(x3, y3)
    local zl = cat(batch, xfree, yfree)
    return tf.reshape(z, shape_arg(sizes(zl))), zl
  end

  -- TF 1.x: einsum(equation, *inputs, **kwargs); here einsum(equation, a, b, ..., {name}).
  local function einsum(a)
    local eq, inputs = a.equation, a.inputs
    local n = #inputs
    if n == 0 then G.raise("%s: needs at least one operand after the equation", WHAT) end
    local ts = {}
    for i = 1, n do
      ts[i] = C.to_tensor(inputs[i])
      if not ts[i].shape then G.raise("%s: operand %d needs a known rank", WHAT, i) end
    end
    for i = 2, n do
      if ts[i].dtype ~= ts[1].dtype then
        G.raise("%s: operand %d has dtype %s, operand 1 %s", WHAT, i, ts[i].dtype, ts[1].dtype)
      end
    end
    local ins, outl = parse(eq, n)
    for i = 1, n do
      if #ins[i] ~= #ts[i].shape then
        G.raise("%s: operand %d has rank %d, the equation '%s' gives it %d letters", WHAT, i, #ts[i].shape, eq, #ins[i])
      end
    end
    return tf.name_scope(a.name or "einsum", function()
      local want_out = {}
      for _, ch in ipairs(outl) do want_out[ch] = true end
      local x, xl = ts[1], ins[1]
      for k = 2, n do
        local want = {} -- letters still needed: the output's and those of later operands
        for ch in pairs(want_out) do want[ch] = true end
        for m = k + 1, n do for _, ch in ipairs(ins[m]) do want[ch] = true end end
        x, xl = contract(eq, x, xl, ts[k], ins[k], want)
      end
      x, xl = sum_out(x, xl, want_out)
      return transpose_to(x, xl, outl)
    end)
  end

  -- Parses (equation, operand, ..., [{name = ...}]) itself: a variable number of operands.
  tf.einsum = A.doc(function(equation, ...)
    if type(equation) ~= "string" then
      G.raise("%s: equation must be a string, got %s", WHAT, G.is_tensor(equation) and "a Tensor" or type(equation))
    end
    local args = table.pack(...)
    local n, name = args.n, nil
    while n > 0 and args[n] == nil do n = n - 1 end
    local last = args[n]
    if n > 0 and type(last) == "table" and getmetatable(last) == nil and next(last) ~= nil and last[1] == nil then
      local o = C.opts(last, WHAT, "name")
      name, n = o.name, n - 1
      if name ~= nil and type(name) ~= "string" then G.raise("%s: name must be a string", WHAT) end
    end
    local inputs = {}
    for i = 1, n do
      local v = args[i]
      if v == nil then G.raise("%s: operand %d is nil", WHAT, i) end
      if not (G.is_tensor(v) or C.is_array(v) or type(v) == "number" or type(v) == "table") then
        G.raise("%s: operand %d must be a tensor, got %s", WHAT, i, type(v))
      end
      inputs[i] = v
    end
    return einsum({ equation = equation, inputs = inputs, name = name })
  end, "tf.einsum", "equation, inputs..., {name}",
  "Sums of products over the letters of equation ('ij,jk->ik', 'bij,bjk->bik', 'i,j->ij', 'ij->ji', 'bi,bi->b').")
  tf.linalg = tf.linalg or {}
  tf.linalg.einsum = tf.einsum
end
