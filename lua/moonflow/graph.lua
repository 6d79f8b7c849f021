-- Graphs, operations and symbolic tensors; the default-graph stack, name
-- scopes, device scopes and control dependencies; and make_op, the one
-- place every operation is created.
local core = require("moonflow.core")

local M = {}

local Graph, Operation, Tensor = {}, {}, {}
Graph.__index = Graph
-- t.name, t:eval() ...; t[i] is TF's x[i] (M.getitem, from indexing.lua).
Tensor.__index = function(t, k)
  local m = Tensor[k]
  if m ~= nil or type(k) ~= "number" then return m end
  return M.getitem(t, k)
end
M.Graph, M.Operation, M.Tensor = Graph, Operation, Tensor

-- ---------------------------------------------------------------- where the user is

-- Lua files of this module: frames in them are not the user's.
local own_dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""

local function is_own(src)
  return src == "=[C]" or (src:sub(1, 1) == "@" and src:sub(2, #own_dir + 1) == own_dir)
end

-- "file.lua:12" of the first caller outside moonflow.
function M.location()
  for level = 3, 40 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if not is_own(info.source) then return info.short_src .. ":" .. (info.currentline or 0) end
  end
  return "?"
end

-- The stack level of the first caller outside moonflow (for error()).
local function user_level()
  for level = 3, 40 do
    local info = debug.getinfo(level, "S")
    if not info then break end
    if not is_own(info.source) then return level - 1 end
  end
  return 1
end

-- Raises a Lua error pointing at the user's line.
function M.raise(fmt, ...)
  error(string.format(fmt, ...), user_level())
end

-- ---------------------------------------------------------------- graphs

local stack = {}        -- default graph stack (innermost last)
local base_graph        -- the graph made when the module loads

-- A Graph over the core graph `ud` (a C host's, through moonflow_lua.h), or a new one.
function M.wrap_graph(ud)
  local g = setmetatable({
    _g = ud,
    _ops = {},               -- by 1-based id
    _name_stack = "",
    _control_stack = {},     -- lists of Operations
    _device_stack = {},
    _collections = {},
    _seed = nil,
  }, Graph)
  return g
end

function M.new_graph() return M.wrap_graph(core.graph_new()) end

function M.get_default_graph() return stack[#stack] or base_graph end

function M.reset_default_graph()
  if #stack > 0 then M.raise("tf.reset_default_graph: not allowed inside a graph:as_default() block") end
  base_graph = M.new_graph()
  return base_graph
end

-- Runs fn() with the top of `list` set to `value`, or returns a to-be-closed
-- handle that pops it.
local function scoped(push, pop, fn, what)
  if fn ~= nil and type(fn) ~= "function" then
    M.raise("%s: the body must be a function (or nil for the <close> form), got %s", what or "scope", type(fn))
  end
  push()
  if fn then
    local res = table.pack(pcall(fn))
    pop()
    if not res[1] then error(res[2], 0) end
    return table.unpack(res, 2, res.n)
  end
  return setmetatable({}, { __close = function() pop() end })
end
M.scoped = scoped

function Graph:as_default(fn)
  return scoped(function() stack[#stack + 1] = self end,
                function() table.remove(stack) end, fn, "graph:as_default")
end

function Graph:get_operations()
  local n = core.graph_num_ops(self._g)
  local ops = {}
  for i = 1, n do ops[i] = self:_op(i) end
  return ops
end

function Graph:get_operation_by_name(name)
  if type(name) ~= "string" then M.raise("graph:get_operation_by_name: name must be a string, got %s", type(name)) end
  local id = core.graph_op_id_by_name(self._g, name)
  if not id then M.raise("the graph has no operation named '%s'", tostring(name)) end
  return self:_op(id)
end

function Graph:get_tensor_by_name(name)
  local opname, idx = tostring(name):match("^(.*):(%d+)$")
  if not opname then M.raise("'%s' is not a tensor name (expected 'op_name:index')", tostring(name)) end
  local op = self:get_operation_by_name(opname)
  local t = op.outputs[tonumber(idx) + 1]
  if not t then M.raise("operation '%s' has no output %s", opname, idx) end
  return t
end

-- TensorFlow's unique_name: under the current name scope, with _1, _2 ...
function Graph:unique_name(name)
  if type(name) ~= "string" then M.raise("graph:unique_name: name must be a string, got %s", type(name)) end
  if self._name_stack ~= "" then name = self._name_stack .. "/" .. name end
  return core.graph_unique_name(self._g, name)
end

function Graph:add_to_collection(name, value)
  if name == nil then M.raise("graph:add_to_collection: needs a collection name") end
  local c = self._collections[name] or {}
  self._collections[name] = c
  c[#c + 1] = value
end

-- TF's scope filter: a Python regex matched at the start of each item's
-- name (items without a name are left out). Translated to a Lua pattern:
-- '.', '*', '+', '?', '[...]', '^', '$' and '\\' escapes carry over;
-- groups and alternation are refused.
local function scope_pattern(scope)
  local out, i = { "^" }, 1
  while i <= #scope do
    local c = scope:sub(i, i)
    if c == "\\" and i < #scope then
      local n = scope:sub(i + 1, i + 1)
      local class = ({ d = "%d", w = "[%w_]", s = "%s", D = "%D", W = "[^%w_]", S = "%S" })[n]
      if n:match("%w") and not class then M.raise("get_collection: scope '%s': \\%s is not supported", scope, n) end
      out[#out + 1] = class or "%" .. n
      i = i + 2
    elseif c == "(" or c == ")" or c == "|" or c == "{" then
      M.raise("get_collection: scope '%s': groups, alternation and counted repeats are not supported "
              .. "(plain prefixes, '.', '*', '+', '?' and [...] are)", scope)
    elseif c == "[" then
      local j = scope:find("]", i + 2, true)
      if not j then M.raise("get_collection: scope '%s': unclosed [", scope) end
      out[#out + 1] = scope:sub(i, j):gsub("%%", "%%%%")
      i = j + 1
    elseif c == "^" and i == 1 then
      i = i + 1
    elseif c == "." or c == "*" or c == "+" or c == "?" or (c == "$" and i == #scope) then
      out[#out + 1] = c == "*" and "*" or c == "+" and "+" or c == "?" and "?" or c
      i = i + 1
    else
      out[#out + 1] = c:match("%w") and c or "%" .. c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- The collection's items (a copy); with `scope`, only those whose name
-- matches it at the start.
function Graph:get_collection(name, scope)
  local c = self._collections[name] or {}
  if scope ~= nil and type(scope) ~= "string" then
    M.raise("get_collection: scope must be a string, got %s", type(scope))
  end
  if scope == nil or scope == "" then return table.move(c, 1, #c, 1, {}) end
  local pat, out = scope_pattern(scope), {}
  for _, v in ipairs(c) do
    local n = type(v) == "table" and rawget(v, "name") or (type(v) == "table" and v.name)
    if type(n) == "string" and n:find(pat) then out[#out + 1] = v end
  end
  return out
end

-- The collection's list itself (created if absent): changes to it change the collection.
function Graph:get_collection_ref(name)
  if name == nil then M.raise("get_collection_ref: needs a collection name") end
  local c = self._collections[name]
  if not c then
    c = {}
    self._collections[name] = c
  end
  return c
end

Graph.__tostring = function(g) return string.format("Graph(%d ops)", core.graph_num_ops(g._g)) end

-- ---------------------------------------------------------------- operations and tensors

local function new_tensor(op, index, meta)
  return setmetatable({
    op = op, value_index = index, dtype = meta.dtype, shape = meta.shape or nil,
    name = op.name .. ":" .. index, graph = op.graph,
  }, Tensor)
end

-- Wraps the core op with 1-based id `id` (cached: one Operation per op).
function Graph:_op(id, ud)
  local op = self._ops[id]
  if op then return op end
  ud = ud or core.graph_op(self._g, id)
  local info = core.op_info(ud)
  op = setmetatable({
    _ud = ud, _info = info, graph = self, name = info.name, type = info.type,
    device = info.device, location = info.location, id = id,
  }, Operation)
  local outs = {}
  for i, meta in ipairs(info.outputs) do outs[i] = new_tensor(op, i - 1, meta) end
  op.outputs = outs
  self._ops[id] = op
  return op
end

function Operation.__index(op, k)
  if k == "inputs" then
    local ins, raw = {}, op._info.inputs
    for i = 1, #raw, 2 do ins[#ins + 1] = op.graph:_op(raw[i]).outputs[raw[i + 1] + 1] end
    return ins
  elseif k == "control_inputs" then
    local ctrl = {}
    for i, id in ipairs(op._info.control_inputs) do ctrl[i] = op.graph:_op(id) end
    return ctrl
  end
  return Operation[k]
end

Operation.__tostring = function(op)
  return string.format("Operation '%s' (type=%s)", op.name, op.type)
end

Tensor.__tostring = function(t)
  local dims = {}
  if t.shape then
    for i, d in ipairs(t.shape) do dims[i] = d < 0 and "?" or tostring(d) end
  end
  return string.format("Tensor(\"%s\", shape=%s, dtype=%s)", t.name,
    t.shape and "{" .. table.concat(dims, ", ") .. "}" or "<unknown>", t.dtype)
end

function M.is_tensor(x)
  local mt = getmetatable(x)
  return mt == Tensor or (type(mt) == "table" and mt.__tensor == true)
end
function M.is_operation(x) return getmetatable(x) == Operation end

-- ---------------------------------------------------------------- scopes

function M.name_scope(name, fn)
  local g = M.get_default_graph()
  local old = g._name_stack
  local new
  if name == nil or name == "" then
    new = ""
  elseif type(name) ~= "string" then
    M.raise("tf.name_scope: the name must be a string, got %s", type(name))
  elseif not name:match("^[A-Za-z0-9_.%-/>]*$") then
    M.raise("tf.name_scope: '%s' is not a valid scope name (letters, digits, '_', '.', '-', '/')", name)
  elseif name:sub(-1) == "/" then
    new = name:sub(1, -2)         -- an absolute scope, reused as is
  else
    new = g:unique_name(name)
  end
  return scoped(function() g._name_stack = new end, function() g._name_stack = old end, fn, "tf.name_scope")
end

-- tf.device(name, fn): ops created inside ask for that device. Nested
-- scopes merge as in TensorFlow (the inner fields win: "/job:localhost"
-- then "/gpu:1" asks for "/job:localhost/device:GPU:1"); nil clears.
function M.device(dev, fn)
  if dev ~= nil and type(dev) ~= "string" then
    M.raise("tf.device: expected a device name such as \"/gpu:0\" or nil, got a %s "
            .. "(device functions are not supported)", type(dev))
  end
  local g = M.get_default_graph()
  local outer = g._device_stack[#g._device_stack] or ""
  local merged = ""
  if dev and dev ~= "" then
    merged = outer == "" and dev or outer .. (dev:sub(1, 1) == "/" and dev or "/" .. dev)
  elseif dev == "" then
    merged = outer
  end
  return scoped(function() g._device_stack[#g._device_stack + 1] = merged end,
                function() table.remove(g._device_stack) end, fn, "tf.device")
end

-- tf.colocate_with(x, fn): ops created inside go where x's op was asked to
-- go, whatever the surrounding device scopes (TF's colocate_with): an
-- optimizer's slots and updates, and reads of a variable.
function M.colocate_with(x, fn)
  if not M.is_tensor(x) and not M.is_operation(x) then
    M.raise("tf.colocate_with: expected a Tensor, Variable or Operation, got %s", type(x))
  end
  local op = x.op or x
  local dev = op.device ~= "" and op.device or nil
  return M.device(nil, function() return M.device(dev, fn) end)
end

-- tf.control_dependencies(ops, fn): ops (Operations or Tensors) run before
-- anything created inside. nil clears the outer dependencies, as TF does.
function M.control_dependencies(ops, fn)
  local g = M.get_default_graph()
  local list = {}
  if ops ~= nil then
    if type(ops) ~= "table" or M.is_tensor(ops) or M.is_operation(ops) then ops = { ops } end
    for i, o in ipairs(ops) do
      if M.is_tensor(o) then o = o.op end
      if not M.is_operation(o) then
        M.raise("tf.control_dependencies: element %d is not an Operation or Tensor", i)
      end
      list[#list + 1] = o
    end
  end
  local saved
  return scoped(function()
    saved = g._control_stack
    if ops == nil then g._control_stack = {} else
      local s = table.move(saved, 1, #saved, 1, {})
      s[#s + 1] = list
      g._control_stack = s
    end
  end, function() g._control_stack = saved end, fn, "tf.control_dependencies")
end

-- Refuses inputs made inside a branch or loop body other than the ones
-- being built around this op (g._owner: op id -> the body that made it):
-- such a tensor exists only while that function runs.
function M.check_scope(g, op_type, inputs)
  local owner = g._owner
  if not owner then return end
  for i, t in ipairs(inputs) do
    local b = owner[t.op.id]
    if b then
      local ok = false
      local cur = g._body
      while cur and not ok do ok = cur == b; cur = cur.outer end
      if not ok then
        M.raise("%s: input %d ('%s') was made inside the branch or loop body '%s' (of tf.cond / tf.while_loop); "
                .. "it exists only there: use it inside that function, or return it from it", op_type, i, t.name,
                b.scope or "?")
      end
    end
  end
end

-- G.init_scope(g, fn): runs fn outside any function being built (TF's
-- init_scope): variables made in a branch or a loop body live in the
-- graph itself, and the function reads them through captures.
function M.init_scope(g, fn)
  local body = g._body
  if not body then return fn() end
  local ctrl = g._control_stack
  g._body, g._control_stack = nil, {}
  local first = core.graph_num_ops(g._g) + 1
  local res = table.pack(pcall(fn))
  g._body, g._control_stack = body, ctrl
  g._lifted = g._lifted or {}
  for id = first, core.graph_num_ops(g._g) do g._lifted[id] = true end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- ---------------------------------------------------------------- make_op

-- Creates an operation. inputs: Tensors (already converted); attrs: a flat
-- list {name, kind, value, ...}; opts: name, control_inputs. Returns the
-- Operation. The core checks dtypes and shapes and names the op and the
-- user's file:line in any error.
function M.make_op(op_type, inputs, attrs, opts)
  opts = opts or {}
  if opts.name ~= nil and type(opts.name) ~= "string" then
    M.raise("%s: name must be a string, got %s", op_type, type(opts.name))
  end
  local g
  for i, t in ipairs(inputs) do
    if not M.is_tensor(t) then M.raise("%s: input %d is not a Tensor", op_type, i) end
    if g and t.graph ~= g then
      M.raise("%s: input %d ('%s') is from a different graph than '%s'", op_type, i, t.name,
              inputs[1].name)
    end
    g = t.graph
  end
  local dg = M.get_default_graph()
  g = g or dg
  -- Inside tf.control_dependencies a variable is read after the
  -- dependencies (as TF 1.x's reference reads are): a read op carrying them.
  if g == dg and #g._control_stack > 0 and op_type ~= "ReadVariable" then
    for i, t in ipairs(inputs) do
      -- (inside a branch or loop body too: the read happens there, at each
      -- call, after the dependencies, as TF 1.x's; but gradients do not flow
      -- back through such a read to the variable)
      if t.op.type == "VariableV2" and not (op_type:match("^Assign") and i == 1) and not op_type:match("Apply")
         and op_type ~= "IsVariableInitialized" then
        inputs[i] = M.colocate_with(t, function()
          return M.make_op("ReadVariable", { t }, nil, { name = "read" }).outputs[1]
        end)
      end
    end
  end
  -- Inside a function being built (tf.cond, tf.while_loop), outer tensors
  -- come in through the function's arguments.
  -- Outer ops as control inputs there run before the If / While instead
  -- (once, as TF 1.x), not inside the function at every call.
  M.check_scope(g, op_type, inputs)
  if g._body then g._body:rewrite_inputs(op_type, inputs) end
  local flat = {}
  for i, t in ipairs(inputs) do flat[2 * i - 1], flat[2 * i] = t.op._ud, t.value_index end
  local ctrl, seen = {}, {}
  local function add_ctrl(o)
    if seen[o] then return end
    seen[o] = true
    if g._body and g._body:outer_control(o) then return end
    ctrl[#ctrl + 1] = o._ud
  end
  if g == dg then
    for _, list in ipairs(g._control_stack) do
      for _, o in ipairs(list) do add_ctrl(o) end
    end
  end
  for _, o in ipairs(opts.control_inputs or {}) do
    if M.is_tensor(o) then o = o.op end
    if o.graph ~= g then M.raise("%s: a control input is from a different graph", op_type) end
    add_ctrl(o)
  end
  local name = opts.abs_name or g:unique_name(opts.name or op_type)
  local device = g._device_stack[#g._device_stack]
  local ok, ud = pcall(core.op_new, g._g, op_type, name, flat, ctrl, attrs or {}, device, M.location())
  if not ok then error(ud, user_level()) end
  return g:_op(core.graph_num_ops(g._g), ud)
end

-- Wraps each method of class table `cls` so a call on something else (a dot
-- for a colon, nil, another object) is an error naming the method.
local guarded = setmetatable({}, { __mode = "k" })
function M.guard_methods(cls, label, is_self, kind)
  for k, f in pairs(cls) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" and type(f) == "function" and not guarded[f] then
      local w = function(self, ...)
        if not is_self(self) then
          M.raise("%s:%s: call it as %s:%s(...) (with a colon) on a %s, got %s", label, k, label, k,
                  kind or label, type(self))
        end
        return f(self, ...)
      end
      guarded[w] = true
      cls[k] = w
    end
  end
end

base_graph = M.new_graph()

return M
