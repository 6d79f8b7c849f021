-- Where a char-RNN training step's time goes (issue 14 item 3): runs
-- scripts/bench/char_rnn.lua under a profiler twice, with --steps SHORT and
-- --steps LONG (the same warm-up), and subtracts the two profiles function
-- by function, so what remains is LONG - SHORT steady training steps
-- (reading the corpus, building and planning the graph and the warm-up
-- cancel out). Each function goes to a category by its source file (from
-- the symbols of a build with debug information, nm -l) or its library.
--   scripts/bench/profile.sh [--tool callgrind|perf] [--short 1] [--long 3] [--threads 1]
--     [char_rnn.lua's model flags: --cell --embed --hidden --layers --batch --seq]
-- callgrind: instructions per step (valgrind --tool=callgrind; repeatable
-- on a noisy machine, slow: about 100 s per config-a step). perf: CPU time
-- per step from cpu-clock samples (perf record -F 4999, their periods
-- summed; hardware cycle counters are not available on these virtual
-- machines). Functions are keyed by name: two static functions of one name
-- in different files share a category (the first nm lists). One JSON line per
-- category, then the top functions, then a summary line.
-- Run through profile.sh, which builds build-prof (-g) and sets the paths.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local argparse = require("argparse")
local cjson = require("cjson")

local p = argparse("bench/profile.lua", "Per-category profile of a char-RNN training step.")
p:option("--tool", "callgrind or perf."):choices({ "callgrind", "perf" }):default("callgrind")
p:option("--input", "Training text."):args(1)
p:option("--core", "The moonflow core.so the run loads (for nm -l)."):args(1)
p:option("--short", "Timed steps of the first run."):default("1"):convert(math.tointeger)
p:option("--long", "Timed steps of the second run."):default("3"):convert(math.tointeger)
p:option("--warmup", "Untimed steps of both runs."):default("1"):convert(math.tointeger)
p:option("--threads", "Intra-op threads."):default("1"):convert(math.tointeger)
p:option("--top", "Functions listed."):default("15"):convert(math.tointeger)
for _, o in ipairs({ "cell", "embed", "hidden", "layers", "batch", "seq" }) do p:option("--" .. o):args(1) end
local a = p:parse(arg)
if not (a.input and a.core) then p:error("--input and --core are required") end
if not (a.short and a.long and a.long > a.short and a.short >= 1) then p:error("needs 1 <= --short < --long") end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function run(cmd)
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  local ok, _, code = f:close()
  if not ok then error("failed (" .. tostring(code) .. "): " .. cmd, 0) end
  return out
end

-- symbol -> source file (relative: csrc/..., lua/core/..., gpu/...)
local file_of = {}
for line in run("nm -l --defined-only " .. quote(a.core)):gmatch("[^\n]+") do
  local sym, file = line:match("^%x+ %a (%S+)%s+(%S+):%d+$")
  local rel = file and (file:match("(csrc/.*)$") or file:match("(lua/core/.*)$") or file:match("(gpu/.*)$"))
  if rel then file_of[sym] = rel end
end

-- Categories, first match wins: source-file prefixes of the core, library
-- names, symbol patterns.
local CATEGORIES = {
  { "gemm", "GEMM (moonflow's kernels, packing, OpenBLAS)",
    files = { "csrc/sgemm.c", "csrc/ops/matmul.c" }, dsos = { "openblas" } },
  { "cells", "recurrent cells: gates and BPTT elementwise, bias sums", files = { "csrc/ops/rnn.c" } },
  { "softmax", "softmax and cross-entropy", files = { "csrc/ops/nn.c" } },
  { "optimizer", "optimizer (Adam, sparse Adam)", files = { "csrc/ops/train.c" } },
  { "embedding", "embedding lookup and its sparse gradient",
    files = { "csrc/ops/array.c", "csrc/ops/grad_ops.c", "csrc/ops/sparse.c" } },
  { "other_ops", "other ops (elementwise, reductions: clipping's norm)", files = { "csrc/ops/", "gpu/" } },
  { "executor", "executor (session, plan, thread team, allocator, tensors)", files = { "csrc/" } },
  { "lua", "Lua (the script, feeds and fetches, bindings)", files = { "lua/core/" }, dsos = { "lua" } },
  { "memcpy", "memcpy/memset (libc; callgrind charges them to their callers)", syms = { "^__mem", "^mem" } },
  { "kernel", "kernel (page faults, scheduling, system calls)", dsos = { "kernel" } },
  { "other", "other (libc, libm, the dynamic loader)" },
}

local function category(dso, sym)
  sym = sym:gsub(" %(%a+%)$", "") -- a copy charged to its caller: the caller's category
  local file = file_of[sym] or file_of[sym:match("^[^%.]+")] -- clones: name.avx2, name.constprop.0
  for _, c in ipairs(CATEGORIES) do
    for _, f in ipairs(c.files or {}) do
      if file and file:sub(1, #f) == f then return c end
    end
    for _, d in ipairs(c.dsos or {}) do
      if dso:find(d, 1, true) and not (d == "lua" and dso:find("core.so", 1, true)) then return c end
    end
    for _, s in ipairs(c.syms or {}) do if sym:find(s) then return c end end
  end
  return CATEGORIES[#CATEGORIES]
end

-- A callgrind output file (format version 1) -> { ["object\tfunction"] =
-- self instructions }, total. Costs after a calls= line are the call's
-- inclusive cost, not the caller's own: those to libc's copies and fills
-- (__mem*) are moved from the callee to the caller as "caller (memcpy)", so
-- GEMM packing, the cells' row copies and the gather keep their copies.
-- Names are compressed: "(id) name" defines an id, "(id)" reuses it.
local function parse_callgrind(path)
  local names = { ob = {}, fl = {}, fn = {} }
  local map = { ob = "ob", cob = "ob", fl = "fl", fi = "fl", fe = "fl", cfl = "fl", cfi = "fl", fn = "fn", cfn = "fn" }
  local cur = {}
  local counts, total, in_call = {}, nil, false
  local function add(key, n) counts[key] = (counts[key] or 0) + n end
  for line in io.lines(path) do
    local k, rest = line:match("^(%a+)=(.*)$")
    if k and map[k] then
      local id, name = rest:match("^%((%d+)%)%s*(.*)$")
      local tbl = names[map[k]]
      if id and name ~= "" then tbl[id] = name end
      cur[k] = id and tbl[id] or rest
      if k == "fn" then cur.cob, cur.cfn = nil, nil end
    elseif k == "calls" then
      in_call = true
    elseif k == nil and line:match("^[%d%+%-%*]") then
      local n = tonumber(line:match("^%S+%s+(%d+)"))
      if n and in_call then
        local callee = cur.cfn or "?"
        if callee:find("^__mem") then
          local name = callee:match("^__(%a+)")
          add((cur.ob or "?") .. "\t" .. (cur.fn or "?") .. " (" .. name .. ")", n)
          add((cur.cob or cur.ob or "?") .. "\t" .. callee, -n)
        end
        in_call, cur.cob = false, nil
      elseif n then
        add((cur.ob or "?") .. "\t" .. (cur.fn or "?"), n)
      end
    else
      local t = line:match("^summary:%s*(%d+)") or line:match("^totals:%s*(%d+)")
      if t then total = tonumber(t) end
    end
  end
  for key, n in pairs(counts) do if n == 0 then counts[key] = nil end end
  return counts, total or -1
end

-- One profile: { ["dso\tsym"] = count }.
local function profile(steps)
  local bench = { "lua5.4", script_dir .. "/char_rnn.lua", "--input", a.input, "--steps", steps, "--warmup", a.warmup,
                  "--threads", a.threads }
  for _, o in ipairs({ "cell", "embed", "hidden", "layers", "batch", "seq" }) do
    if a[o] then bench[#bench + 1] = "--" .. o; bench[#bench + 1] = a[o] end
  end
  for i, w in ipairs(bench) do bench[i] = quote(w) end
  local data = os.tmpname()
  local counts = {}
  if a.tool == "callgrind" then
    run("valgrind --tool=callgrind --callgrind-out-file=" .. quote(data) .. " " .. table.concat(bench, " ")
        .. " > /dev/null 2>&1")
    local total
    counts, total = parse_callgrind(data)
    local sum = 0
    for _, n in pairs(counts) do sum = sum + n end
    if sum ~= total then -- every instruction accounted for, or the format was misread
      error(string.format("the callgrind file's functions add up to %d instructions, its total is %d", sum, total), 0)
    end
  else
    run("perf record -q -e cpu-clock -F 4999 -o " .. quote(data) .. " " .. table.concat(bench, " ")
        .. " > /dev/null 2>&1")
    -- cpu-clock's period is CPU time in ns: summing it stays right when the
    -- kernel lowers the sampling rate
    local report = run("perf report -i " .. quote(data)
                       .. " --stdio --no-children -g none -F period,dso,sym 2>/dev/null")
    for line in report:gmatch("[^\n]+") do
      local n, dso, sym = line:match("^%s*(%d+)%s+(%S+)%s+%[[%.k]%]%s+(%S+)")
      if n then
        if dso == "[kernel.kallsyms]" then dso = "kernel" end
        local key = dso .. "\t" .. sym
        counts[key] = (counts[key] or 0) + tonumber(n) / 1e6 -- ms of CPU time
      end
    end
  end
  os.remove(data)
  return counts
end

local short, long = profile(a.short), profile(a.long)
local steps = a.long - a.short
local unit = a.tool == "callgrind" and "instructions" or "cpu_ms"
local per_cat, per_fn, total = {}, {}, 0
for key, n in pairs(long) do
  local d = (n - (short[key] or 0)) / steps
  local dso, sym = key:match("^(.-)\t(.*)$")
  local c = category(dso, sym)
  per_cat[c] = (per_cat[c] or 0) + d
  per_fn[#per_fn + 1] = { sym = sym, dso = dso:match("[^/]*$"), per_step = d, category = c[1] }
  total = total + d
end
for key, n in pairs(short) do -- functions only the short run reached (noise)
  if not long[key] then
    local dso, sym = key:match("^(.-)\t(.*)$")
    local c = category(dso, sym)
    per_cat[c] = (per_cat[c] or 0) - n / steps
    total = total - n / steps
  end
end
local common = { bench = "profile", tool = a.tool, unit = unit, threads = a.threads, steps = steps }
for _, o in ipairs({ "cell", "embed", "hidden", "layers", "batch", "seq" }) do common[o] = a[o] end
local function emit(t)
  for k, v in pairs(common) do if t[k] == nil then t[k] = v end end
  print(cjson.encode(t))
end
for _, c in ipairs(CATEGORIES) do
  local v = per_cat[c] or 0
  emit({ kind = "category", category = c[1], what = c[2], per_step = v, share = v / total })
end
table.sort(per_fn, function(x, y) return x.per_step > y.per_step end)
for i = 1, math.min(a.top, #per_fn) do
  local f = per_fn[i]
  emit({ kind = "function", ["function"] = f.sym, library = f.dso, category = f.category, per_step = f.per_step,
         share = f.per_step / total })
end
emit({ kind = "total", per_step = total })
