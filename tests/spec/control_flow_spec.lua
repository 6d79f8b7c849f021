-- Control flow: tf.cond, tf.case, tf.while_loop, map_fn, scan, folds, and
-- dynamic_rnn over a custom cell. Gradients are checked in
-- gradient_check_spec (If, While); here: semantics, structures, errors.
local tf = require("moonflow")
local N = require("tests.spec.support.numeric")

math.randomseed(os.time())

local function run(fetch, feeds) return tf.Session():run(fetch, feeds) end

local function raises(pattern, fn)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), "error '" .. tostring(err) .. "' does not match " .. pattern)
end

describe("tf.cond", function()
  before_each(function() tf.reset_default_graph() end)

  it("runs only the taken branch", function()
    local p = tf.placeholder("bool", {})
    local hits_t, hits_f = tf.Variable(0), tf.Variable(0)
    local y = tf.cond(p, function()
      return tf.identity(hits_t:assign_add(1))
    end, function()
      return tf.identity(hits_f:assign_add(10))
    end)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    for _, v in ipairs({ true, true, false, true }) do sess:run(y, { [p] = v }) end
    assert.are.equal(3, sess:run(hits_t):item())
    assert.are.equal(10, sess:run(hits_f):item())
  end)

  it("never evaluates the branch not taken (an integer division by zero there is no error)", function()
    local d = tf.placeholder("int32", {})
    local y = tf.cond(tf.equal(d, 0), function() return tf.constant(-1) end, function() return tf.div(7, d) end)
    assert.are.equal(-1, run(y, { [d] = 0 }):item())
    assert.are.equal(3, run(y, { [d] = 2 }):item())
  end)

  it("gives values equal to the branch's own for random inputs", function()
    local x = tf.placeholder("float64", { 3, 4 })
    local p = tf.placeholder("bool", {})
    local y = tf.cond(p, function() return tf.matmul(x, x, { transpose_b = true }) end,
                      function() return tf.matmul(x, x, { transpose_a = true }) * 2 end)
    local v = N.rows_of(N.rand_list(12, -1, 1), 4)
    local sess = tf.Session()
    local a = sess:run(y, { [x] = tf.array(v, "float64"), [p] = true })
    local b = sess:run(tf.matmul(x, x, { transpose_b = true }), { [x] = tf.array(v, "float64") })
    assert.are.same(b:totable(), a:totable())
    assert.are.same({ 4, 4 }, sess:run(y, { [x] = tf.array(v, "float64"), [p] = false }):shape())
    assert.are.same({ -1, -1 }, y.shape) -- the branches' shapes differ: unknown dims
  end)

  it("returns the branches' structure: several values, tables, and Lua numbers in the other's dtype", function()
    local p = tf.placeholder("bool", {})
    local x = tf.constant(2.5)
    local a, b = tf.cond(p, function() return x, x * 2 end, function() return 0, x end)
    assert.are.equal("float32", a.dtype)
    local r = tf.Session():run({ a, b }, { [p] = false })
    assert.are.same({ 0, 2.5 }, { r[1]:item(), r[2]:item() })
    local t = tf.cond(p, function() return { h = x, c = { x + 1 } } end, function() return { h = -x, c = { x } } end)
    local s = tf.Session():run({ t.h, t.c[1] }, { [p] = true })
    assert.are.same({ 2.5, 3.5 }, { s[1]:item(), s[2]:item() })
  end)

  it("accepts a Lua boolean and TF's keyword form", function()
    local y = tf.cond(false, function() return tf.constant(1) end, function() return tf.constant(2) end)
    assert.are.equal(2, run(y):item())
    local z = tf.cond(tf.constant(true), { true_fn = function() return tf.constant(5) end,
                                            false_fn = function() return tf.constant(6) end })
    assert.are.equal(5, run(z):item())
  end)

  it("reads outer tensors and variables when it runs (captures)", function()
    local v = tf.Variable(3.0)
    local x = tf.placeholder("float32", {})
    local y = tf.cond(tf.greater(x, 0), function() return v * x end, function() return v end)
    local sess = tf.Session()
    sess:run(v.initializer)
    assert.are.equal(6, sess:run(y, { [x] = 2 }):item())
    sess:run(v:assign(5))
    assert.are.equal(5, sess:run(y, { [x] = -1 }):item())
  end)

  it("applies outer control dependencies to the whole cond", function()
    local c = tf.Variable(0)
    local p = tf.placeholder("bool", {})
    local y = tf.control_dependencies({ c:assign_add(1) }, function()
      return tf.cond(p, function() return tf.constant(1) end, function() return tf.constant(2) end)
    end)
    local sess = tf.Session()
    sess:run(c.initializer)
    sess:run(y, { [p] = true })
    sess:run(y, { [p] = false })
    assert.are.equal(2, sess:run(c):item())
  end)

  it("refuses what TF refuses, naming the parameter", function()
    local x = tf.constant(1.0)
    raises("pred must be a bool tensor, got float32", function() tf.cond(x, function() return x end, function() return x end) end)
    raises("true_fn must be a function", function() tf.cond(true, 1, function() return x end) end)
    raises("pred must be a scalar", function()
      tf.cond(tf.constant({ true, false }), function() return x end, function() return x end)
    end)
    raises("true_fn returns 2 values, false_fn 1", function()
      tf.cond(tf.constant(true), function() return x, x end, function() return x end)
    end)
    raises("float32 from the true branch but int32", function()
      tf.cond(tf.constant(true), function() return x end, function() return tf.constant(1) end)
    end)
  end)

  it("reports an error inside a branch with the op and the Lua line that made it", function()
    local d = tf.placeholder("int32", {})
    local y = tf.cond(tf.constant(true), function() return tf.div(1, d) end, function() return d end)
    local ok, err = pcall(run, y, { [d] = 0 })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("control_flow_spec.lua:%d+"))
    assert.is_truthy(tostring(err):find("division by zero"))
  end)
end)

describe("tf.case", function()
  before_each(function() tf.reset_default_graph() end)

  it("runs the first pair whose predicate holds, else the default", function()
    local x = tf.placeholder("int32", {})
    local y = tf.case({ { tf.less(x, 0), function() return tf.constant(-1) end },
                        { tf.less(x, 10), function() return tf.constant(1) end },
                        { tf.less(x, 100), function() return tf.constant(2) end } },
                      function() return tf.constant(3) end)
    local sess = tf.Session()
    local got = {}
    for i, v in ipairs({ -5, 5, -1, 50, 500 }) do got[i] = sess:run(y, { [x] = v }):item() end
    assert.are.same({ -1, 1, -1, 2, 3 }, got)
  end)

  it("with exclusive = true, fails the run when more than one predicate holds", function()
    local x = tf.placeholder("int32", {})
    local y = tf.case({ { tf.less(x, 0), function() return tf.constant(-1) end },
                        { tf.less(x, 10), function() return tf.constant(1) end } },
                      function() return tf.constant(3) end, { exclusive = true })
    local sess = tf.Session()
    assert.are.equal(1, sess:run(y, { [x] = 5 }):item())
    assert.are.equal(3, sess:run(y, { [x] = 50 }):item())
    local ok, err = pcall(sess.run, sess, y, { [x] = -5 })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("more than one predicate is true", 1, true))
  end)
end)

describe("tf.while_loop", function()
  before_each(function() tf.reset_default_graph() end)

  it("runs a trip count known only at run time", function()
    local n = tf.placeholder("int32", {})
    local i, s = table.unpack(tf.while_loop(function(i) return tf.less(i, n) end,
      function(i, s) return i + 1, s + i end, { 0, 0 }))
    local sess = tf.Session()
    for _, k in ipairs({ 0, 1, 7, 100 }) do
      local r = sess:run({ i, s }, { [n] = k })
      assert.are.same({ k, k * (k - 1) // 2 }, { r[1]:item(), r[2]:item() })
    end
  end)

  it("returns a single loop variable as a tensor, as TF 1.x does", function()
    local r = tf.while_loop(function(i) return tf.less(i, 10) end, function(i) return i + 3 end, { 0 })
    assert.is_true(tf.is_tensor(r))
    assert.are.equal(12, run(r):item())
    local same = tf.while_loop(function(i) return tf.less(i, 10) end, function(i) return { i + 3 } end, { 0 },
                               { return_same_structure = true })
    assert.are.equal(12, run(same[1]):item())
    local bare = tf.while_loop(function(i) return tf.less(i, 4) end, function(i) return i * 2 end, tf.constant(1))
    assert.are.equal(4, run(bare):item())
  end)

  it("keeps nested structures of loop variables", function()
    local st = { h = tf.constant({ 1.0, 2.0 }), c = tf.constant({ 0.5, 0.5 }) }
    local r = tf.while_loop(function(i) return tf.less(i, 3) end,
      function(i, s) return i + 1, { h = s.h * 2, c = s.c + s.h } end, { 0, st })
    local v = tf.Session():run({ r[2].h, r[2].c })
    assert.are.same({ 8, 16 }, v[1]:totable())
    assert.are.same({ 7.5, 14.5 }, v[2]:totable())
  end)

  it("stops at maximum_iterations (a number or a tensor)", function()
    local m = tf.placeholder("int32", {})
    local a = tf.while_loop(function() return tf.constant(true) end, function(i) return i + 1 end, { 0 },
                            { maximum_iterations = 5 })
    local b = tf.while_loop(function(i) return tf.less(i, 100) end, function(i) return i + 1 end, { 0 },
                            { maximum_iterations = m })
    local sess = tf.Session()
    assert.are.equal(5, sess:run(a):item())
    assert.are.equal(9, sess:run(b, { [m] = 9 }):item())
    assert.are.equal(100, sess:run(b, { [m] = 1000 }):item())
  end)

  it("lets a loop variable change shape under a shape invariant, and refuses it without one", function()
    local x = tf.constant({ 1.0 })
    raises("shape invariant", function()
      tf.while_loop(function(i) return tf.less(i, 3) end, function(i, v) return i + 1, tf.concat({ v, v }, 1) end, { 0, x })
    end)
    local r = tf.while_loop(function(i) return tf.less(i, 3) end, function(i, v) return i + 1, tf.concat({ v, v }, 1) end,
                            { 0, x }, { shape_invariants = { {}, { -1 } } })
    assert.are.same({ 8 }, run(r[2]):shape())
    local ts = tf.while_loop(function(i) return tf.less(i, 2) end, function(i, v) return i + 1, tf.concat({ v, v }, 1) end,
                             { 0, x }, { shape_invariants = { tf.TensorShape({}), tf.TensorShape({ -1 }) } })
    assert.are.same({ 4 }, run(ts[2]):shape())
  end)

  it("trains a weight used inside the loop (gradients reach captured variables)", function()
    local w = tf.Variable(0.5, { dtype = "float64" })
    local x = tf.constant(1.5, { dtype = "float64" })
    local r = tf.while_loop(function(i) return tf.less(i, 4) end, function(i, h) return i + 1, tf.tanh(h * w + x) end,
                            { 0, tf.constant(0.0, { dtype = "float64" }) })
    local loss = tf.square(r[2] - 0.3)
    local step = tf.train.GradientDescentOptimizer(0.5):minimize(loss)
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local first = sess:run(loss):item()
    for _ = 1, 40 do sess:run(step) end
    assert.is_true(sess:run(loss):item() < first / 100)
  end)

  it("draws fresh random numbers in each iteration", function()
    local r = tf.while_loop(function(i) return tf.less(i, 3) end,
      function(i, acc) return i + 1, tf.concat({ acc, tf.random_uniform({ 1 }, { seed = 7 }) }, 1) end,
      { 0, tf.zeros({ 0 }) }, { shape_invariants = { {}, { -1 } } })
    local v = run(r[2]):totable()
    assert.are.equal(3, #v)
    assert.is_true(v[1] ~= v[2] and v[2] ~= v[3])
  end)

  it("gives no gradient with back_prop = false", function()
    local x = tf.constant(2.0)
    local r = tf.while_loop(function(i) return tf.less(i, 2) end, function(i, h) return i + 1, h * x end, { 0, x },
                            { back_prop = false })
    assert.is_nil(tf.gradients(r[2], { x })[1])
  end)

  it("refuses bad loops with errors that say what to write", function()
    local x = tf.constant(1.0)
    raises("cond must be a function", function() tf.while_loop(nil, function(i) return i end, { 0 }) end)
    raises("body returned 1 values for 2 loop variables", function()
      tf.while_loop(function(i) return tf.less(i, 2) end, function(i) return i + 1 end, { 0, x })
    end)
    raises("cond must return a bool tensor", function()
      tf.while_loop(function(i) return i end, function(i) return i + 1 end, { 0 })
    end)
    raises("loop variable 1 enters as int32 but body returns float32", function()
      tf.while_loop(function(i) return tf.less(i, 2) end, function(i) return tf.cast(i, "float32") end, { 0 })
    end)
    raises("unknown option 'maximum_iteration'", function()
      tf.while_loop(function(i) return tf.less(i, 2) end, function(i) return i + 1 end, { 0 }, { maximum_iteration = 3 })
    end)
  end)

  it("runs a loop inside a cond and a cond inside a loop", function()
    local n = tf.placeholder("int32", {})
    local y = tf.cond(tf.greater(n, 0), function()
      return tf.while_loop(function(i, s) return tf.less(i, n) end, function(i, s)
        return i + 1, tf.cond(tf.equal(tf.mod(i, 2), 0), function() return s + i end, function() return s - i end)
      end, { 0, 0 })[2]
    end, function() return tf.constant(-7) end)
    local sess = tf.Session()
    assert.are.equal(0 - 1 + 2 - 3 + 4, sess:run(y, { [n] = 5 }):item())
    assert.are.equal(-7, sess:run(y, { [n] = 0 }):item())
  end)
end)

describe("control flow corner cases (found by review)", function()
  before_each(function() tf.reset_default_graph() end)

  it("gradients replay the forward's random draws in a branch and in each loop iteration", function()
    local x = tf.placeholder("float64", { 4 })
    local y, u = tf.cond(tf.constant(true), function()
      local u = tf.random_uniform({ 4 }, { dtype = "float64" })
      return x * u, u
    end, function() return x, x end)
    local gx = tf.gradients(tf.reduce_sum(y), { x })[1]
    local r = tf.Session():run({ u, gx }, { [x] = tf.array({ 1, 2, 3, 4 }, "float64") })
    assert.are.same(r[1]:totable(), r[2]:totable())
    local x2 = tf.placeholder("float64", { 3 })
    local w = tf.while_loop(function(i) return tf.less(i, 3) end, function(i, a, p)
      local v = tf.random_uniform({ 3 }, { dtype = "float64" })
      return i + 1, a * v, p * v
    end, { 0, x2, tf.ones({ 3 }, "float64") })
    local g2 = tf.gradients(tf.reduce_sum(w[2]), { x2 })[1]
    local r2 = tf.Session():run({ w[3], g2 }, { [x2] = tf.array({ 1, 1, 1 }, "float64") })
    N.assert_close(r2[1]:totable(), r2[2]:totable(), 1e-15, "d acc / d x = the product of the draws")
  end)

  it("refuses to differentiate a branch or body that updates a variable (the gradient would update it again)", function()
    local x = tf.placeholder("float64", {})
    local hits = tf.Variable(0, { dtype = "float64" })
    local y = tf.cond(tf.constant(true), function() return x * hits:assign_add(1) end, function() return x end)
    raises("updates a variable", function() tf.gradients(y, { x }) end)
  end)

  it("runs an outer op given as a control dependency inside a body once, before the loop", function()
    local counter = tf.Variable(0)
    local inc = counter:assign_add(1)
    local r = tf.while_loop(function(i) return tf.less(i, 5) end,
      function(i) return tf.control_dependencies({ inc }, function() return tf.identity(i + 1) end) end, { 0 })
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    assert.are.equal(5, sess:run(r):item())
    assert.are.equal(1, sess:run(counter):item())
  end)

  it("reads a variable under control dependencies inside a body at each iteration, as TF 1.x", function()
    local v = tf.Variable(0)
    local r = tf.while_loop(function(i) return tf.less(i, 3) end, function(i, s)
      local a = v:assign_add(1)
      return tf.control_dependencies({ a }, function() return i + 1, s + v end)
    end, { 0, 0 })
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    assert.are.equal(1 + 2 + 3, sess:run(r[2]):item())
  end)

  it("refuses a tensor made inside another branch", function()
    local x = tf.placeholder("float64", {})
    local t
    raises("was made inside the branch or loop body 'cond/true'", function()
      tf.cond(tf.less(x, 1), function() t = x * 2; return t end, function() return t + 1 end)
    end)
  end)

  it("refuses a trip count that does not match the loop's history, and gives zero-row inputs zero-row gradients", function()
    local xs = tf.placeholder("float64", { 3, 2 })
    local r = tf.while_loop(function(i) return tf.less(i, 3) end,
      function(i, a) return i + 1, a + tf.reduce_sum(xs) * a end, { 0, tf.ones({ 2 }, "float64") })
    local g = tf.gradients(tf.reduce_sum(r[2]), { xs })[1]
    local sess = tf.Session()
    local arr = tf.array({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, "float64")
    assert.are.same({ 3, 2 }, sess:run(g, { [xs] = arr }):shape())
    local ok, err = pcall(sess.run, sess, g, { [xs] = arr, [r[1].op.outputs[1]] = tf.array(-1, "int32") })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("the trip count (-1) does not match", 1, true))
    local z = tf.placeholder("float64", { -1, -1 })
    local gz = tf.gradients(tf.reduce_sum(tf.map_fn(function(row) return row * 2 end, z)), { z })[1]
    assert.are.same({ 0, 5 }, sess:run(gz, { [z] = tf.array({}, "float64"):reshape({ 0, 5 }) }):shape())
  end)

  it("gives an integer result of a cond no gradient", function()
    local x = tf.placeholder("float32", {})
    local y = tf.cond(tf.constant(true), function() return tf.cast(x, "int32") end, function() return tf.constant(1) end)
    assert.is_nil(tf.gradients(y, { x })[1])
  end)
end)

describe("control flow on the inter-op pool", function()
  before_each(function() tf.reset_default_graph() end)

  it("gives the inline session's results with independent loops and branches in parallel", function()
    local x = tf.placeholder("float64", { 4 })
    local v = tf.Variable(0, { dtype = "float64" })
    local outs = {}
    for k = 1, 6 do
      local r = tf.while_loop(function(i) return tf.less(i, k + 2) end,
                              function(i, h) return i + 1, tf.sin(h) * x + k end, { 0, x })
      local c = tf.cond(tf.greater(tf.reduce_sum(x), k - 3), function() return r[2] * 2 end,
                        function() return tf.exp(r[2]) end)
      outs[k] = c + tf.gradients(tf.reduce_sum(c), { x })[1]
    end
    local bump = v:assign_add(tf.reduce_sum(tf.add_n(outs)))
    local xv = tf.array({ 0.3, -0.7, 1.1, 0.05 }, "float64")
    local ref
    for _, threads in ipairs({ 1, 2 }) do
      local sess = tf.Session{ config = { inter_op_threads = threads } }
      sess:run(v.initializer)
      local got = sess:run({ outs, bump }, { [x] = xv })
      local flat = {}
      for k = 1, 6 do flat[k] = got[1][k]:totable() end
      flat[7] = got[2]:item()
      if ref then assert.are.same(ref, flat) else ref = flat end
      sess:close()
    end
  end)
end)

describe("tf.map_fn, tf.scan, tf.foldl, tf.foldr", function()
  before_each(function() tf.reset_default_graph() end)

  it("map_fn applies fn to each row, over a structure of elems", function()
    local a = N.rows_of(N.rand_list(12, -2, 2), 3)
    local x = tf.constant(a, { dtype = "float64" })
    local y = tf.map_fn(function(r) return tf.reduce_sum(r * r) end, x)
    local got = run(y):totable()
    for i = 1, 4 do
      local e = 0
      for j = 1, 3 do e = e + a[i][j] * a[i][j] end
      assert.is_true(math.abs(got[i] - e) < 1e-12)
    end
    local z = tf.map_fn(function(e) return e.u * e.v end, { u = x, v = x * 2 })
    assert.are.same({ 4, 3 }, run(z):shape())
  end)

  it("map_fn over a run-time number of rows, including none", function()
    local x = tf.placeholder("float32", { -1, 2 })
    local y = tf.map_fn(function(r) return r * 2 end, x)
    local sess = tf.Session()
    assert.are.same({ { 2, 4 }, { 6, 8 } }, sess:run(y, { [x] = { { 1, 2 }, { 3, 4 } } }):totable())
    assert.are.same({ 0, 2 }, sess:run(y, { [x] = tf.array({}, "float32"):reshape({ 0, 2 }) }):shape())
  end)

  it("scan, foldl and foldr accumulate as TF's (with and without an initializer, reverse)", function()
    local e = tf.constant({ 1, 2, 3, 4 })
    local sess = tf.Session()
    assert.are.same({ 1, 3, 6, 10 }, sess:run(tf.scan(function(a, x) return a + x end, e)):totable())
    assert.are.same({ 11, 13, 16, 20 }, sess:run(tf.scan(function(a, x) return a + x end, e, tf.constant(10))):totable())
    assert.are.same({ 10, 9, 7, 4 }, sess:run(tf.scan(function(a, x) return a + x end, e, nil, { reverse = true })):totable())
    assert.are.equal(1234, sess:run(tf.foldl(function(a, x) return a * 10 + x end, e)):item())
    assert.are.equal(4321, sess:run(tf.foldr(function(a, x) return a * 10 + x end, e)):item())
    assert.are.equal(54321, sess:run(tf.foldr(function(a, x) return a * 10 + x end, e, tf.constant(5))):item())
  end)
end)

describe("tf.nn.dynamic_rnn with a custom cell", function()
  before_each(function() tf.reset_default_graph() end)

  -- A cell written by the user: h' = tanh(x W + h U), on a while loop.
  local function custom_cell(units)
    local cell = { state_size = units, output_size = units }
    setmetatable(cell, { __call = function(self, x, h)
      local W = tf.get_variable("W", { x.shape[2], units }, { dtype = x.dtype })
      local U = tf.get_variable("U", { units, units }, { dtype = x.dtype })
      local y = tf.tanh(tf.matmul(x, W) + tf.matmul(h, U))
      return y, y
    end })
    function cell.zero_state(_, batch, dtype) return tf.zeros({ batch, units }, dtype) end
    return cell
  end

  it("matches the same cell unrolled by hand, and respects sequence_length", function()
    local B, T, F, H = 3, 5, 2, 4
    local x = tf.placeholder("float64", { B, -1, F })     -- T known only when it runs
    local lens = tf.placeholder("int32", { B })
    local cell = custom_cell(H)
    local y, h = tf.nn.dynamic_rnn(cell, x, { sequence_length = lens, initial_state = tf.zeros({ B, H }, "float64") })
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local W, U = table.unpack(sess:run({ tf.global_variables()[1], tf.global_variables()[2] }))
    local xv = {}
    for b = 1, B do xv[b] = N.rows_of(N.rand_list(T * F, -1, 1), F) end
    local lv = { 5, 2, 0 }
    local r = sess:run({ y, h }, { [x] = tf.array(xv, "float64"), [lens] = lv })
    W, U = W:totable(), U:totable()
    for b = 1, B do
      local hv = {}
      for k = 1, H do hv[k] = 0 end
      for t = 1, T do
        local out = {}
        if t <= lv[b] then
          for k = 1, H do
            local s = 0
            for f = 1, F do s = s + xv[b][t][f] * W[f][k] end
            for j = 1, H do s = s + hv[j] * U[j][k] end
            out[k] = math.tanh(s)
          end
          hv = out
        else
          for k = 1, H do out[k] = 0 end
        end
        N.assert_close(out, r[1]:totable()[b][t], 1e-12, "output")
      end
      N.assert_close(hv, r[2]:totable()[b], 1e-12, "final state")
    end
    -- and it trains: the loss falls
    local loss = tf.reduce_mean(tf.square(y - 0.25))
    local step = tf.train.AdamOptimizer(0.05):minimize(loss)
    sess:run(tf.global_variables_initializer())
    local feeds = { [x] = tf.array(xv, "float64"), [lens] = lv }
    local before = sess:run(loss, feeds):item()
    for _ = 1, 30 do sess:run(step, feeds) end
    assert.is_true(sess:run(loss, feeds):item() < before / 2)
  end)
end)
