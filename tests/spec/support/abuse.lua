-- The API abuse run (issue 15): every public Lua function and method called
-- with bad values, each call in pcall. Prints "@ <call>" before each call
-- (so a crash or hang shows the last one), "BAD <call>: <message>" for an
-- error raised from inside moonflow's own Lua ("attempt to index ...",
-- "bad argument #..." and the like), and "DONE <functions> <calls>" at the end.
-- Run from a scratch directory: functions given a string as a path may write there.
local tf = require("moonflow")
io.stdout:setvbuf("line")

-- Skipped, with the reason.
local SKIP = {
  ["tf.reset_default_graph"] = "resets the state every other call relies on (called once, below)",
  ["tf.get_default_graph"] = "no arguments; called once, below",
  ["Session:__gc"] = "the finalizer itself (closed sessions are among the bad values)",
  ["Session:__close"] = "as close()",
}

-- Values that stand for a user's mistakes.
local function deep(n) local t = 1.0; for _ = 1, n do t = { t } end; return t end
local closed = tf.Session(); closed:close()
local finalized = tf.Graph()
finalized:as_default(function() return tf.constant(1.0) end)
getmetatable(finalized._g).__gc(finalized._g)

local BAD = {
  { "nil", nil }, { "0", 0 }, { "-1", -1 }, { "1.5", 1.5 }, { "NaN", 0 / 0 }, { "inf", math.huge },
  { "2^62", 1 << 62 }, { "-2^40", -(1 << 40) }, { "''", "" }, { "'x'", "x" }, { "true", true },
  { "false", false }, { "{}", {} }, { "{-1,-5}", { -1, -5 } }, { "{2^40,2^40}", { 1 << 40, 1 << 40 } },
  { "{'a',true}", { "a", true } }, { "{x=1}", { x = 1 } }, { "deep table", deep(200) },
  { "function", function() end }, { "closed session", closed }, { "finalized graph", finalized },
  { "coroutine", coroutine.create(function() end) },
}

-- A bad-value error must come from moonflow's checks: none of these from
-- inside its own Lua (nor Lua's own argument errors for its internal calls).
local INTERNAL = { "attempt to index", "attempt to call", "attempt to perform arithmetic",
  "attempt to compare", "attempt to concatenate", "attempt to get length", "bad argument #",
  "number has no integer representation", "stack overflow", "attempt to perform bitwise" }

local nfun, ncalls, nbad = 0, 0, 0
local function check(name, desc, ok, err, ...)
  ncalls = ncalls + 1
  if ok then
    -- A scope handle (as_default, name_scope ... without a function): close it.
    for _, r in ipairs({ err, ... }) do
      local mt = getmetatable(r)
      if type(mt) == "table" and mt.__close and type(r) == "table" and next(r) == nil then
        mt.__close(r)
      end
    end
    return
  end
  local msg = tostring(err)
  for _, p in ipairs(INTERNAL) do
    if msg:find(p, 1, true) then
      nbad = nbad + 1
      print(string.format("BAD %s(%s): %s", name, desc, (msg:gsub("\n", " | "))))
      return
    end
  end
end

local function call(name, f, self, ...)
  local args = table.pack(...)
  local descs = {}
  for i = 1, args.n do descs[i] = args[i] == nil and "nil" or (args.desc and args.desc[i]) or tostring(args[i]) end
  local desc = table.concat(descs, ", ")
  io.stdout:write("@ ", name, "(", desc, ")\n")
  tf.reset_default_graph()
  local ok, err
  if self ~= nil then ok, err = pcall(f, self, table.unpack(args, 1, args.n))
  else ok, err = pcall(f, table.unpack(args, 1, args.n)) end
  check(name, desc, ok, err)
end

-- Calls f with each bad value alone, twice, and after one good argument.
local function abuse(name, f, self, good)
  if SKIP[name] then return end
  nfun = nfun + 1
  call(name, f, self)
  for _, b in ipairs(BAD) do
    local v = b[2]
    io.stdout:write("@ ", name, "(", b[1], ")\n")
    tf.reset_default_graph()
    check(name, b[1], pcall(f, self == nil and v or self, self == nil and nil or v))
    if self == nil then
      io.stdout:write("@ ", name, "(", b[1], ", ", b[1], ")\n")
      tf.reset_default_graph()
      check(name, b[1] .. ", " .. b[1], pcall(f, v, v))
    else
      io.stdout:write("@ ", name, "(", b[1], ", ", b[1], ")\n")
      tf.reset_default_graph()
      check(name, b[1] .. ", " .. b[1], pcall(f, self, v, v))
    end
    if good ~= nil then
      io.stdout:write("@ ", name, "(<good>, ", b[1], ")\n")
      tf.reset_default_graph()
      local g = good()
      if self == nil then check(name, "<good>, " .. b[1], pcall(f, g, v))
      else check(name, "<good>, " .. b[1], pcall(f, self, g, v)) end
    end
  end
end

local function good_tensor() return tf.constant({ { 1.0, 2.0 }, { 3.0, 4.0 } }) end

-- tf.* (recursively), each function once.
local seen = {}
local function walk(t, prefix)
  local keys = {}
  for k in pairs(t) do if type(k) == "string" then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v, name = t[k], prefix .. "." .. k
    if k:sub(1, 1) == "_" then -- luacheck: ignore 542 (metamethods, private fields: skipped)
    elseif type(v) == "function" and not seen[v] then
      seen[v] = true
      abuse(name, v, nil, good_tensor)
    elseif type(v) == "table" and not seen[v] and getmetatable(v) == nil then
      seen[v] = true
      walk(v, name)
    end
  end
end
walk(tf, "tf")

-- Methods of the objects a user holds, each on a fresh object per call.
local function methods_of(cls, obj_of, good)
  local mt = getmetatable(obj_of())
  local idx = type(mt.__index) == "table" and mt.__index or mt
  local names, tables = {}, { idx, mt }
  -- Methods inherited through __index chains (cells).
  local m2 = getmetatable(idx)
  if m2 and type(m2.__index) == "table" then tables[#tables + 1] = m2.__index end
  for _, t in ipairs(tables) do
    for k, v in pairs(t) do
      if type(k) == "string" and k:sub(1, 1) ~= "_" and type(v) == "function" and not names[k] then
        names[k] = v
      end
    end
  end
  local list = {}
  for k in pairs(names) do list[#list + 1] = k end
  table.sort(list)
  for _, k in ipairs(list) do
    local name = cls .. ":" .. k
    if not SKIP[name] then
      local f = names[k]
      nfun = nfun + 1
      local saved = nfun
      -- A fresh object for each bad value (a method may change or close it).
      for _, b in ipairs(BAD) do
        for form = 1, good and 3 or 2 do
          tf.reset_default_graph()
          local obj = obj_of()
          local desc = form == 1 and b[1] or form == 2 and (b[1] .. ", " .. b[1]) or ("<good>, " .. b[1])
          io.stdout:write("@ ", name, "(", desc, ")\n")
          if form == 1 then check(name, desc, pcall(f, obj, b[2]))
          elseif form == 2 then check(name, desc, pcall(f, obj, b[2], b[2]))
          else check(name, desc, pcall(f, obj, good(), b[2])) end
        end
      end
      -- The method called on a bad self (a dot instead of a colon).
      for _, b in ipairs(BAD) do
        io.stdout:write("@ ", name, " on self=", b[1], "\n")
        check(name, "self=" .. b[1], pcall(f, b[2]))
      end
      nfun = saved
    end
  end
end

methods_of("Graph", function() return tf.Graph() end)
methods_of("Tensor", good_tensor, good_tensor)
methods_of("Operation", function() return good_tensor().op end)
methods_of("TensorShape", function() return tf.TensorShape({ 2, -1 }) end,
           function() return tf.TensorShape({ -1, 3 }) end)
methods_of("Variable", function() return tf.Variable({ 1.0, 2.0 }, { name = "v" }) end, good_tensor)
methods_of("Session", function()
  local s = tf.Session(); good_tensor(); return s
end, good_tensor)
methods_of("Array", function() return tf.array({ { 1.0, 2.0 }, { 3.0, 4.0 } }) end)
methods_of("Saver", function() tf.Variable({ 1.0 }, { name = "w" }); return tf.train.Saver() end)
for _, opt in ipairs({ "GradientDescentOptimizer", "MomentumOptimizer", "AdamOptimizer",
                       "AdagradOptimizer", "RMSPropOptimizer" }) do
  if tf.train[opt] then
    methods_of(opt, function() return tf.train[opt](0.1, opt == "MomentumOptimizer" and 0.9 or nil) end, function()
      local v = tf.Variable({ 1.0, 2.0 }, { name = "v" })
      return tf.reduce_sum(v * v)
    end)
  end
end
if tf.nn.rnn_cell then
  methods_of("BasicLSTMCell", function() return tf.nn.rnn_cell.BasicLSTMCell(4) end, good_tensor)
  methods_of("MultiRNNCell", function()
    return tf.nn.rnn_cell.MultiRNNCell({ tf.nn.rnn_cell.BasicRNNCell(4), tf.nn.rnn_cell.BasicRNNCell(4) })
  end, good_tensor)
end

print(string.format("DONE %d %d %d", nfun, ncalls, nbad))
