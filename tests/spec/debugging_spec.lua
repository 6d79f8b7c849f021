-- Debugging ops (issue 10, item 6): tf.Print and tf.print, the assertions
-- of tf.debugging and their tf.assert_* aliases, tf.check_numerics and
-- tf.add_check_numerics_ops. Errors name the op and the Lua line that
-- created it. (tf.lua_func: lua_func_spec.lua.)
local tf = require("moonflow")
local sh = require("tests.spec.support.process").sh

local function rand(n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = (lo or -2) + ((hi or 2) - (lo or -2)) * math.random() end
  return t
end

local function ints(n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = math.random(lo, hi) end
  return t
end

-- The output of a Lua snippet run in a child process (stdout and stderr).
local function child(code)
  local f = os.tmpname()
  local h = assert(io.open(f, "w"))
  h:write('local tf = require("moonflow")\n', code)
  h:close()
  local env = string.format("LUA_PATH='%s' LUA_CPATH='%s'", package.path, package.cpath)
  local out, ok = sh(env .. " lua5.4 " .. f)
  os.remove(f)
  return out, ok
end

local function line_here() return debug.getinfo(2, "l").currentline end

-- Runs fetch and returns the error message (the run must fail).
local function run_error(fetch, feeds, sess)
  local ok, err = pcall(function() return (sess or tf.Session()):run(fetch, feeds) end)
  assert(not ok, "the run succeeded")
  return err
end

local function has(s, part) assert(s:find(part, 1, true), string.format("%q not in:\n%s", part, s)) end

describe("tf.Print", function()
  before_each(function() tf.reset_default_graph() end)

  it("returns its input's value unchanged", function()
    local v = rand(5)
    local x = tf.placeholder("float32", { 5 })
    local y = tf.Print(x, { x }, "x: ", { first_n = 0 })
    local got = tf.Session():run(y, { [x] = v }):totable()
    for i = 1, 5 do assert.is_true(math.abs(got[i] - v[i]) < 1e-6) end
    assert.are.equal("float32", y.dtype)
    assert.are.same({ 5 }, y.shape)
  end)

  it("prints the message and each data tensor to stderr when it runs, as TF 1.x", function()
    local out = child([[
      local x = tf.constant({ { 1, 2 }, { 3, 4 } })
      local y = tf.Print(x, { x, tf.constant(7), tf.range(0, 10) }, "values: ")
      tf.Session():run(y)
      tf.Session():run(tf.Print(x, { x }, "all: ", { summarize = 4 }))
    ]])
    has(out, "values: [[1 2][3...]][7][0 1 2...]\n")
    has(out, "all: [[1 2][3 4]]\n")
  end)

  it("prints only the first first_n times, and summarize elements of each tensor", function()
    local out = child([[
      local x = tf.placeholder("int32", { 5 })
      local y = tf.Print(x, { x }, "run ", 2, 4)
      local sess = tf.Session()
      for i = 1, 4 do sess:run(y, { [x] = { i, i, i, i, i } }) end
    ]])
    assert.are.equal("run [1 1 1 1...]\nrun [2 2 2 2...]\n", out)
  end)

  it("passes the gradient through", function()
    local v = rand(3)
    local x = tf.constant(v, { dtype = "float64" })
    local g = tf.gradients(tf.reduce_sum(tf.Print(x, { x }, "", { first_n = 0 }) * x), x)[1]
    local got = tf.Session():run(g):totable()
    for i = 1, 3 do assert.is_true(math.abs(got[i] - 2 * v[i]) < 1e-12) end
  end)

  it("checks its arguments", function()
    local x = tf.constant(1.0)
    assert.has_error(function() tf.Print(nil, {}) end, "tf.Print: needs an input tensor")
    assert.has_error(function() tf.Print(x, 5) end, "tf.Print: data must be a list of tensors, got number")
    assert.has_error(function() tf.Print(x, { x }, 5) end, "tf.Print: message must be a string, got number")
    assert.has_error(function() tf.Print(x, { x }, "m", 1.5) end, "tf.Print: first_n must be an integer, got number")
    assert.has_error(function() tf.Print(x, { x }, { bogus = 1 }) end)
  end)
end)

describe("tf.print", function()
  before_each(function() tf.reset_default_graph() end)

  local function captured(...)
    local lines = {}
    local args = table.pack(...)
    local opts = args[args.n]
    opts.output_stream = function(s) lines[#lines + 1] = s end
    local op = tf.print(table.unpack(args, 1, args.n))
    return op, lines
  end

  it("returns an Operation that prints strings and tensors, sep-separated, to a Lua function", function()
    local v = ints(3, -9, 9)
    local x = tf.placeholder("int32", { 3 })
    local op, lines = captured("x =", x, "and", 2.5, {})
    assert.is_true(tf.Operation ~= nil and op.type == "PrintV2")
    tf.Session():run(op, { [x] = v })
    assert.are.same({ string.format("x = [%d %d %d] and 2.5", v[1], v[2], v[3]) }, lines)
  end)

  it("shows the first and last summarize entries of each dimension, NumPy's layout", function()
    local op, lines = captured(tf.range(0, 10), tf.reshape(tf.range(0, 4), { 2, 2 }), { summarize = 2, sep = "|" })
    tf.Session():run(op)
    assert.are.same({ "[0 1 ... 8 9]|[[0 1]\n [2 3]]" }, lines)
    local all, lines2 = captured(tf.range(0, 8), { summarize = -1 })
    tf.Session():run(all)
    assert.are.same({ "[0 1 2 3 4 5 6 7]" }, lines2)
  end)

  it("runs where control dependencies put it", function()
    local x = tf.placeholder("float32", {})
    local op, lines = captured("value", x, {})
    local y = tf.control_dependencies({ op }, function() return tf.identity(x) end)
    assert.are.equal(1.5, tf.Session():run(y, { [x] = 1.5 }):item())
    assert.are.same({ "value 1.5" }, lines)
  end)

  it("writes to stderr by default and to stdout when asked, with end", function()
    local out = child([[
      local sess = tf.Session()
      sess:run(tf.print("err", tf.constant({ true, false })))
      sess:run(tf.print("out", 3, { output_stream = "stdout", ["end"] = "!\n" }))
    ]])
    has(out, "err [True False]\n")
    has(out, "out 3!\n")
  end)

  it("checks its options", function()
    assert.has_error(function() tf.print("x", { output_stream = "file" }) end)
    assert.has_error(function() tf.print("x", { sep = 1 }) end, "tf.print: sep must be a string, got number")
    assert.has_error(function() tf.print(function() end) end)
  end)
end)

describe("assertions", function()
  before_each(function() tf.reset_default_graph() end)

  it("tf.debugging.assert_equal passes equal values and fails with the op, the line and the values", function()
    local v = ints(4, -5, 5)
    local x, y = tf.placeholder("int32", { 4 }), tf.placeholder("int32", { 4 })
    local a = tf.debugging.assert_equal(x, y, { message = "must match" }) local line = line_here()
    assert.are.equal("Assert", a.type)
    local z = tf.control_dependencies({ a }, function() return tf.identity(x) end)
    local sess = tf.Session()
    assert.are.same(v, sess:run(z, { [x] = v, [y] = v }):totable())
    local w = { v[1], v[2], v[3], v[4] + 1 }
    local err = run_error(z, { [x] = v, [y] = w }, sess)
    has(err, "Assert 'assert_equal/Assert' (created at ")
    has(err, "debugging_spec.lua:" .. line .. ")")
    has(err, "assertion failed: [must match] [Condition x == y did not hold element-wise:] [x (Placeholder:0) = ] ")
    has(err, string.format("[%d %d %d...]", v[1], v[2], v[3]))
  end)

  it("each comparison and sign check holds or fails as its condition says", function()
    local x = tf.placeholder("float32", { 3 })
    local sess = tf.Session()
    local function holds(a, v) return pcall(sess.run, sess, a, { [x] = v }) end
    local cases = {
      { tf.debugging.assert_less(x, 1), { -1, 0, 0.5 }, { 0, 1, 0 } },
      { tf.assert_less_equal(x, 1), { -1, 1, 0.5 }, { 0, 1.5, 0 } },
      { tf.debugging.assert_greater(x, 0), { 1, 2, 3 }, { 1, 0, 3 } },
      { tf.assert_greater_equal(x, 0), { 0, 2, 3 }, { 1, -1, 3 } },
      { tf.debugging.assert_positive(x), rand(3, 0.1, 2), { 1, 0, 1 } },
      { tf.assert_non_negative(x), { 0, 0, 2 }, { 0, -0.5, 2 } },
      { tf.debugging.assert_negative(x), rand(3, -2, -0.1), { -1, 0, -1 } },
      { tf.assert_non_positive(x), { 0, -1, 0 }, { 0, 1, 0 } },
      { tf.assert_none_equal(x, 5), { 1, 2, 3 }, { 1, 5, 3 } },
    }
    for i, c in ipairs(cases) do
      assert(holds(c[1], c[2]), "case " .. i .. " should hold")
      assert(not holds(c[1], c[3]), "case " .. i .. " should fail")
    end
    local ok, err = pcall(sess.run, sess, tf.debugging.assert_positive(x, { name = "pos" }), { [x] = { 1, -1, 1 } })
    assert.is_false(ok)
    has(err, "Assert 'pos/Assert'")
    has(err, "[Condition x > 0 did not hold element-wise:] [x (Placeholder:0) = ] [1 -1 1]")
  end)

  it("tf.Assert takes a bool condition and data of strings and tensors", function()
    local x = tf.placeholder("float32", {})
    local a = tf.Assert(tf.less(x, 10), { "x is", x, "too big" })
    local sess = tf.Session()
    sess:run(a, { [x] = 3 })
    local err = run_error(a, { [x] = 12 }, sess)
    has(err, "assertion failed: [x is] [12] [too big]")
    assert.has_error(function() tf.Assert(x, {}) end, "tf.Assert: condition must be a bool tensor, got float32")
  end)

  it("assert_rank checks a known rank when built, an unknown one when run", function()
    local x = tf.placeholder("float32", { 2, 3 })
    assert.are.equal("NoOp", tf.debugging.assert_rank(x, 2).type)
    assert.has_error(function() tf.assert_rank(x, 3) end,
                     "tf.debugging.assert_rank: tensor Placeholder:0 must have rank 3; received rank 2, shape {2, 3}")
    local u = tf.placeholder("float32")
    local a = tf.assert_rank(u, 2, { message = "need a matrix" })
    local sess = tf.Session()
    sess:run(a, { [u] = { { 1 }, { 2 } } })
    local err = run_error(a, { [u] = { 1, 2, 3 } }, sess)
    has(err, "[need a matrix] [Tensor Placeholder_1:0 must have rank 2.] [Received rank: ] [1]")
  end)

  it("assert_type checks the dtype when it is called", function()
    local x = tf.constant(rand(2))
    assert.are.equal("NoOp", tf.debugging.assert_type(x, "float32").type)
    assert.has_error(function() tf.assert_type(x, "int32") end)
  end)

  it("assert_shapes checks ranks, sizes and named sizes, statically and at run time", function()
    local x = tf.placeholder("float32", { -1, 3 })
    local y = tf.placeholder("float32", { -1 })
    assert.has_error(function() tf.debugging.assert_shapes({ { x, { "N", 4 } } }) end)
    assert.has_error(function() tf.debugging.assert_shapes({ { x, { "N" } } }) end)
    local a = tf.debugging.assert_shapes({ { x, { "N", 3 } }, { y, { "N" } } })
    local sess = tf.Session()
    sess:run(a, { [x] = { rand(3), rand(3) }, [y] = rand(2) })
    local err = run_error(a, { [x] = { rand(3), rand(3) }, [y] = rand(3) }, sess)
    has(err, "Assert")
    has(err, "('N')")
    local fixed = tf.debugging.assert_shapes({ { tf.constant(rand(3)), { 3 } } })
    assert.are.equal("NoOp", fixed.type)
  end)

  it("checks the arguments, naming them", function()
    assert.has_error(function() tf.debugging.assert_equal(nil, 1) end, "tf.debugging.assert_equal: needs x and y")
    assert.has_error(function() tf.debugging.assert_less(1, 2, { message = 3 }) end,
                     "tf.debugging.assert_less: message must be a string, got number")
    assert.has_error(function() tf.assert_rank(tf.constant(1), -1) end)
  end)
end)

describe("tf.check_numerics", function()
  before_each(function() tf.reset_default_graph() end)

  it("passes finite values on and fails on a NaN or an Inf, naming the op and its line", function()
    local x = tf.placeholder("float32", { 4 })
    local y = tf.check_numerics(tf.log(x), "log of x") local line = line_here()
    local sess = tf.Session()
    local v = rand(4, 0.5, 2)
    local got = sess:run(y, { [x] = v }):totable()
    for i = 1, 4 do assert.is_true(math.abs(got[i] - math.log(v[i])) < 1e-5) end
    local err = run_error(y, { [x] = { 1, -1, 2, 3 } }, sess)
    has(err, "CheckNumerics 'CheckNumerics' (created at ")
    has(err, "debugging_spec.lua:" .. line .. "): log of x : Tensor had NaN values")
    has(run_error(y, { [x] = { 1, 0, 2, 3 } }, sess), "log of x : Tensor had Inf values")
    has(run_error(y, { [x] = { 1, 0, -2, 3 } }, sess), "Tensor had Inf and NaN values")
  end)

  it("passes the gradient through", function()
    local v = rand(3)
    local x = tf.constant(v, { dtype = "float64" })
    local g = tf.gradients(tf.reduce_sum(tf.check_numerics(x * x, "sq")), x)[1]
    local got = tf.Session():run(g):totable()
    for i = 1, 3 do assert.is_true(math.abs(got[i] - 2 * v[i]) < 1e-12) end
  end)

  it("checks float tensors only", function()
    assert.has_error(function() tf.check_numerics(tf.constant({ 1, 2 }), "m") end,
                     "tf.check_numerics: checks float tensors, got int32")
    assert.has_error(function() tf.check_numerics(tf.constant(1.0), 5) end)
  end)

  it("tf.add_check_numerics_ops checks every float tensor made so far", function()
    local x = tf.placeholder("float32", { 3 })
    local w = tf.Variable(rand(3), { name = "w" })
    local h = tf.sqrt(x * w, "h")
    local loss = tf.reduce_sum(h)
    local check = tf.add_check_numerics_ops()
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    sess:run(w:assign({ 1, 1, 1 }))
    local r = sess:run({ loss, check }, { [x] = { 1, 4, 9 } })
    assert.is_true(math.abs(r[1]:item() - 6) < 1e-5)
    -- running the checks never runs an update again (w's initializer)
    assert.are.same({ 1, 1, 1 }, sess:run(w):totable())
    local err = run_error({ loss, check }, { [x] = { 1, -4, 9 } }, sess)
    has(err, "CheckNumerics")
    has(err, "h:0 : Tensor had NaN values")
  end)
end)

-- With MOONFLOW_TEST_DEVICE=1 (scripts/test.sh runs the suite so once), the
-- device kernels: CheckNumerics scans where its input lives; the host ops
-- take their data through host memory.
describe("debugging ops on the test device", function()
  local has_test = false
  do
    local sess <close> = tf.Session{ graph = tf.Graph() }
    for _, d in ipairs(sess:list_devices()) do if d.device_type == "TEST" then has_test = true end end
  end
  if not has_test then
    pending("needs MOONFLOW_TEST_DEVICE=1")
    return
  end
  before_each(function() tf.reset_default_graph() end)

  it("finds a NaN or an Inf there, and passes finite values on", function()
    local x = tf.placeholder("float64", { -1 })
    local y = tf.device("/device:TEST:0", function() return tf.check_numerics(tf.sqrt(x), "on device") end)
    local sess = tf.Session()
    local v = rand(5000, 0.1, 4)
    local got = sess:run(y, { [x] = v }):totable()
    for i = 1, #v, 997 do assert.is_true(math.abs(got[i] - math.sqrt(v[i])) < 1e-12) end
    v[4321] = -1
    has(run_error(y, { [x] = v }, sess), "on device : Tensor had NaN values")
    v[4321], v[17] = 1, math.huge
    has(run_error(y, { [x] = v }, sess), "on device : Tensor had Inf values")
  end)

  it("runs Lua functions, prints and assertions on values that live there", function()
    local lines = {}
    local x = tf.placeholder("float32", { 3 })
    local y, p, a
    tf.device("/device:TEST:0", function()
      local d = x * 2
      y = tf.lua_func(function(arr) return arr end, { d }, "float32")
      p = tf.print(d, { output_stream = function(s) lines[#lines + 1] = s end })
      a = tf.debugging.assert_positive(d)
    end)
    local sess = tf.Session()
    local r = sess:run({ y, p, a }, { [x] = { 1, 2, 3 } })
    assert.are.same({ 2, 4, 6 }, r[1]:totable())
    assert.are.same({ "[2 4 6]" }, lines)
    has(run_error(a, { [x] = { 1, -2, 3 } }, sess), "[2 -4 6]")
  end)
end)
