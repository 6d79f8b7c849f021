-- Declared signatures: one place that parses the arguments of public tf.*
-- functions the way TensorFlow 1.x's Python signatures take them, and that
-- records each signature and a one-line description for docs/API.md.
--
--   tf.nn.softmax = A.def("tf.nn.softmax", "logits:tensor, axis/dim:int=-1, name:string",
--                         "Softmax along axis.", function(a) ... a.logits, a.axis, a.name ... end)
--
-- A signature lists TF's parameters in TF's order, `name[/alias...][:type][=default]`;
-- a parameter without a default is required, `=nil` makes it optional. A `*`
-- entry starts keyword-only parameters (TF's functions called with keywords
-- only), which come from the trailing options table alone. A call passes
-- positional values and/or a trailing options table of TF's keyword
-- arguments (aliases accepted); a value of the wrong type, an unknown option,
-- a missing required parameter or one given twice is an error naming it.
--
-- Functions that parse their own arguments are documented with
-- A.doc(fn, path, signature_text, line): a one-liner, required by the docs spec
-- for every public function.
local G = require("moonflow.graph")
local core = require("moonflow.core")

local A = {}

A.entries = {}                                   -- path -> entry
A.by_fn = setmetatable({}, { __mode = "k" })     -- function -> entry

local Array_mt = core.array_metatable
local function is_array(x) return getmetatable(x) == Array_mt end
local function plain(x) return type(x) == "table" and getmetatable(x) == nil end

local DTYPES = { float32 = true, float64 = true, int32 = true, int64 = true, bool = true, uint8 = true, string = true }

local function describe(v)
  if G.is_tensor(v) then return "a Tensor" end
  if G.is_operation(v) then return "an Operation" end
  if is_array(v) then return "an Array" end
  if type(v) == "string" then return string.format("the string '%s'", #v > 40 and v:sub(1, 40) .. "..." or v) end
  if math.type(v) == "float" then return "the float " .. tostring(v) end
  if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  return "a " .. type(v)
end

local function int_value(v)
  if math.type(v) == "integer" then return v end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2^53 then return math.tointeger(v) end
  return nil
end

local function int_list(v)
  if not plain(v) then return nil end
  local out = {}
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v then return nil end
  end
  for i = 1, #v do
    out[i] = int_value(v[i])
    if out[i] == nil then return nil end
  end
  return out
end

-- Each type: a check returning the (possibly normalized) value or nil, and
-- what the error says the value must be.
local TYPES = {
  any = { function(v) return v end, "a value" },
  tensor = { function(v)
    if G.is_tensor(v) or is_array(v) or type(v) == "number" or type(v) == "boolean" or plain(v) then return v end
  end, "a tensor (a Tensor, a Variable, a number, a nested table of numbers or an Array)" },
  tensors = { function(v)
    if plain(v) then return v end
  end, "a list of tensors" },
  int = { int_value, "an integer" },
  ints = { int_list, "a list of integers" },
  axes = { function(v) return int_value(v) and { int_value(v) } or int_list(v) end,
           "an integer or a list of integers" },
  number = { function(v) if type(v) == "number" and v == v then return v end end, "a number" },
  -- a number or a (scalar) Tensor, as learning rates
  scalar = { function(v) if (type(v) == "number" and v == v) or G.is_tensor(v) then return v end end,
             "a number or a scalar Tensor" },
  bool = { function(v) if type(v) == "boolean" then return v end end, "a boolean" },
  string = { function(v) if type(v) == "string" then return v end end, "a string" },
  dtype = { function(v) if DTYPES[v] then return v end end,
            "a dtype name (float32, float64, int32, int64, bool, uint8 or string)" },
  ["function"] = { function(v) if type(v) == "function" then return v end end, "a function" },
  table = { function(v) if plain(v) then return v end end, "a table" },
  -- a shape: a list of integers (-1 unknown; scalar tensors may stand for
  -- some), a TensorShape, or a Tensor holding one; the function checks
  -- the entries (tensor_shape.shape_arg)
  shape = { function(v) if type(v) == "table" then return v end end,
            "a shape (a list of integers, a TensorShape or an int32 Tensor)" },
  -- a tensor or a list of tensors (TF's "Tensor or list of Tensors")
  tensor_or_list = { function(v) if G.is_tensor(v) or plain(v) then return v end end,
                     "a Tensor or a list of Tensors" },
}
A.TYPES = TYPES

-- Parses "a:tensor, b/alias:int=1, *, c:bool=false".
local function parse_signature(path, sig)
  local spec = { path = path, sig = sig, params = {}, npos = 0, by_name = {} }
  local kwonly = false
  for item in (sig .. ","):gmatch("%s*(.-)%s*,") do
    if item == "*" then
      kwonly = true
    elseif item ~= "" then
      local head, default = item:match("^(.-)%s*=%s*(.+)$")
      head = head or item
      local names, ty = head:match("^([%w_/]+)%s*:%s*([%w_]+)$")
      if not names then names, ty = head:match("^([%w_/]+)$"), "any" end
      if not names then error("args: bad parameter '" .. item .. "' in the signature of " .. path) end
      if not TYPES[ty] then error("args: unknown type '" .. ty .. "' in the signature of " .. path) end
      local p = { type = ty, kwonly = kwonly, aliases = {} }
      for n in names:gmatch("[^/]+") do
        if not p.name then p.name = n else p.aliases[#p.aliases + 1] = n end
        spec.by_name[n] = p
      end
      if default then
        p.default_text = default
        local f = load("return " .. default, "=default", "t", {})
        if not f then error("args: bad default '" .. default .. "' in the signature of " .. path) end
        p.default = f()
        p.optional = true
      end
      spec.params[#spec.params + 1] = p
      if not kwonly then spec.npos = spec.npos + 1 end
    end
  end
  return spec
end

local function option_names(spec)
  local names = {}
  for _, p in ipairs(spec.params) do
    names[#names + 1] = #p.aliases > 0 and p.name .. " (or " .. table.concat(p.aliases, ", ") .. ")" or p.name
  end
  return table.concat(names, ", ")
end

-- An options table: a plain table whose keys are all strings (an empty one
-- where the parameter at its position takes no table).
-- Whether the last argument v is the options table (p: the parameter at its
-- position, if any). A table of names where p takes a table (a map of name
-- -> tensor, say) is p's value unless every key names a parameter.
local function is_options(spec, v, p)
  if not plain(v) or math.type(rawget(v, "n")) == "integer" then return false end
  local k = next(v)
  if k == nil then return p == nil or not (p.type == "tensor" or p.type == "tensors" or p.type == "ints"
    or p.type == "axes" or p.type == "shape" or p.type == "table" or p.type == "tensor_or_list" or p.type == "any") end
  for key in pairs(v) do
    if type(key) ~= "string" then return false end
    if p and p.type == "table" and not spec.by_name[key] then return false end
  end
  return true
end

local function check(spec, p, v)
  local ok = TYPES[p.type][1](v)
  if ok == nil then
    G.raise("%s: %s must be %s, got %s", spec.path, p.name, TYPES[p.type][2], describe(v))
  end
  return ok
end

-- The parsed arguments of a call, by canonical parameter name.
function A.parse(spec, ...)
  local n = select("#", ...)
  local args = { ... }
  while n > 0 and args[n] == nil do n = n - 1 end
  local opts
  if n > 0 and is_options(spec, args[n], spec.params[n] and not spec.params[n].kwonly and spec.params[n] or nil) then
    opts, n = args[n], n - 1
  end
  local a = {}
  if n > spec.npos then
    if spec.npos == 0 then
      G.raise("%s: takes its arguments as one table of named values {%s = ...}, got %s as argument %d",
              spec.path, spec.params[1] and spec.params[1].name or "...", describe(args[n]), n)
    end
    G.raise("%s: too many arguments (%d; the signature is %s(%s)); options go in a trailing table",
            spec.path, n, spec.path, spec.sig)
  end
  for i = 1, n do
    local p = spec.params[i]
    if args[i] ~= nil then a[p.name] = check(spec, p, args[i]) end
  end
  if opts then
    for k, v in pairs(opts) do
      local p = spec.by_name[k]
      if not p then
        G.raise("%s: unknown option '%s' (options: %s)", spec.path, tostring(k), option_names(spec))
      end
      if a[p.name] ~= nil then
        G.raise("%s: %s is given twice (as an argument and as option '%s')", spec.path, p.name, k)
      end
      a[p.name] = check(spec, p, v)
    end
  end
  for _, p in ipairs(spec.params) do
    if a[p.name] == nil then
      if not p.optional then
        G.raise("%s: needs %s (the signature is %s(%s))", spec.path, p.name, spec.path, spec.sig)
      end
      a[p.name] = p.default
    end
  end
  return a
end

local function register(fn, path, sig, line, extra)
  local e = { fn = fn, path = path, sig = sig, doc = line, tf_name = extra and extra.tf_name,
              note = extra and extra.note }
  A.entries[path] = e
  A.by_fn[fn] = e
  return e
end

-- A.def(path, signature, line, body [, {tf_name = ..., note = ...}]): the
-- public function; body(a) gets the parsed arguments.
function A.def(path, sig, line, body, extra)
  local spec = parse_signature(path, sig)
  local fn = function(...) return body(A.parse(spec, ...)) end
  local e = register(fn, path, sig, line, extra)
  e.spec = spec
  return fn
end

-- A.doc(fn, path, signature_text, line [, extra]): documents a function that
-- parses its own arguments. Returns fn.
function A.doc(fn, path, sig, line, extra)
  register(fn, path, sig, line, extra)
  return fn
end

-- The signature as the docs show it: positional parameters in order, then
-- {options = default, ...}.
function A.render(e)
  local spec = e.spec
  if not spec then return e.path .. "(" .. e.sig .. ")" end
  local pos, kw = {}, {}
  for _, p in ipairs(spec.params) do
    local s = p.name
    if #p.aliases > 0 then s = s .. " (or " .. table.concat(p.aliases, ", ") .. ")" end
    if p.optional and p.default_text ~= "nil" then s = s .. " = " .. p.default_text end
    if p.kwonly then kw[#kw + 1] = s else pos[#pos + 1] = p.optional and "[" .. s .. "]" or s end
  end
  local out = e.path .. "(" .. table.concat(pos, ", ")
  if #kw > 0 then
    out = out .. (#pos > 0 and ", " or "") .. "{" .. table.concat(kw, ", ") .. "}"
  end
  return out .. ")"
end

return A
