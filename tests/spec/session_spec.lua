-- Sessions: tf.Session, sess:run with every fetch structure, feeds, closing,
-- pruning to the needed subgraph, and the interactive default session.
local tf = require("moonflow")

math.randomseed(777)

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

local function rand_floats(n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = f32(lo + (hi - lo) * math.random()) end
  return t
end

local function rand_ints(n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = math.random(lo, hi) end
  return t
end

-- The sorted names of the operations the last traced run executed.
local function ran(sess)
  local names = {}
  for i, e in ipairs(sess:last_trace()) do names[i] = e.name end
  table.sort(names)
  return names
end

before_each(function() tf.reset_default_graph() end)

describe("tf.Session", function()
  it("runs the default graph when made with no arguments", function()
    local a = rand_ints(3, -100, 100)
    local c = tf.constant(a)
    local sess <close> = tf.Session()
    assert.are.equal(tf.get_default_graph(), sess.graph)
    assert.are.same(a, sess:run(c):totable())
  end)

  it("runs the graph it is given, with a config", function()
    local g = tf.Graph()
    local a, b = rand_ints(4, -50, 50), rand_ints(4, -50, 50)
    local s = g:as_default(function() return tf.constant(a) * tf.constant(b) end)
    local sess <close> = tf.Session{ target = "", graph = g, config = { inter_op_threads = 2, intra_op_threads = 1 } }
    local got = sess:run(s)
    for i = 1, 4 do assert.are.equal(a[i] * b[i], got[i]) end
  end)

  it("gives the same results whatever the inter-op thread count", function()
    local xs = rand_floats(16, -3, 3)
    local x = tf.constant(xs)
    local branches = {}
    for i = 1, 6 do branches[i] = tf.reduce_sum(x * i + i) end
    local total = tf.add(tf.add(tf.add(branches[1], branches[2]), tf.add(branches[3], branches[4])),
                         tf.add(branches[5], branches[6]))
    local s1 <close> = tf.Session{ config = { inter_op_threads = 1 } }
    local s4 <close> = tf.Session{ config = { inter_op_threads = 4 } }
    local r1 = s1:run(total):item()
    assert.are.equal(r1, s4:run(total):item())
    local expected = 0
    for i = 1, 6 do for _, v in ipairs(xs) do expected = expected + v * i + i end end
    assert.is_true(math.abs(expected - r1) < 1e-3 * math.abs(expected) + 1e-3)
  end)

  it("refuses a fetch from another graph", function()
    local other = tf.Graph():as_default(function() return tf.constant(1) end)
    local sess <close> = tf.Session()
    assert.has_error(function() sess:run(other) end)
  end)
end)

describe("sess:run fetches", function()
  local a, b, c, noop, A, B

  before_each(function()
    A, B = rand_ints(3, -9, 9), rand_floats(2, -1, 1)
    a = tf.constant(A, "a")
    b = tf.constant(B, "b")
    c = tf.constant(42, "c")
    noop = tf.no_op("nothing")
  end)

  it("returns an Array for a single tensor", function()
    local sess <close> = tf.Session()
    local v = sess:run(a)
    assert.is_true(tf.is_array(v))
    assert.are.same(A, v:totable())
  end)

  it("returns a list for a list", function()
    local sess <close> = tf.Session()
    local r = sess:run({ a, b, c })
    assert.are.equal(3, #r)
    assert.are.same(A, r[1]:totable())
    assert.are.same(B, r[2]:totable())
    assert.are.equal(42, r[3]:item())
  end)

  it("returns a named table for a named table", function()
    local sess <close> = tf.Session()
    local r = sess:run({ first = a, second = b })
    assert.are.same(A, r.first:totable())
    assert.are.same(B, r.second:totable())
  end)

  it("keeps any nesting of lists and named tables", function()
    local sess <close> = tf.Session()
    local r = sess:run({ a, { x = b, y = { c, a } } })
    assert.are.same(A, r[1]:totable())
    assert.are.same(B, r[2].x:totable())
    assert.are.equal(42, r[2].y[1]:item())
    assert.are.same(A, r[2].y[2]:totable())
  end)

  it("fetches nothing for an Operation: nil alone, a hole in a list, absent in a named table", function()
    local sess <close> = tf.Session()
    assert.is_nil(sess:run(noop))
    local r = sess:run({ a, noop, c })
    assert.is_nil(r[2])
    assert.are.same(A, r[1]:totable())
    assert.are.equal(42, r[3]:item())
    local named = sess:run({ value = c, step = noop })
    assert.is_nil(named.step)
    assert.are.equal(42, named.value:item())
  end)

  it("fetches a tensor by name 'a:0' and runs an operation by name 'a'", function()
    local sess <close> = tf.Session()
    assert.are.same(A, sess:run("a:0"):totable())
    local r = sess:run({ "c:0", "nothing", "a" })
    assert.are.equal(42, r[1]:item())
    assert.is_nil(r[2])
    assert.is_nil(r[3])
  end)

  it("returns the same value twice when a tensor is fetched twice", function()
    local sess <close> = tf.Session()
    local r = sess:run({ c, c })
    assert.are.equal(42, r[1]:item())
    assert.are.equal(42, r[2]:item())
  end)
end)

describe("sess:run feeds", function()
  local x, y, X

  before_each(function()
    X = rand_floats(2, -5, 5)
    x = tf.placeholder("float32", { 2 }, "x")
    y = x * 3 + 1
  end)

  local function expected(v) return { f32(f32(v[1] * 3) + 1), f32(f32(v[2] * 3) + 1) } end

  it("accepts feeds keyed by the tensor", function()
    local sess <close> = tf.Session()
    assert.are.same(expected(X), sess:run(y, { [x] = X }):totable())
  end)

  it("accepts feeds keyed by the tensor name 'x:0'", function()
    local sess <close> = tf.Session()
    assert.are.same(expected(X), sess:run(y, { ["x:0"] = X }):totable())
  end)

  it("accepts feeds keyed by the operation name 'x'", function()
    local sess <close> = tf.Session()
    assert.are.same(expected(X), sess:run(y, { x = X }):totable())
  end)

  it("accepts an Array as a fed value", function()
    local sess <close> = tf.Session()
    assert.are.same(expected(X), sess:run(y, { [x] = tf.array(X, "float32") }):totable())
  end)

  it("uses each run's own feed", function()
    local sess <close> = tf.Session()
    local X2 = rand_floats(2, -5, 5)
    assert.are.same(expected(X), sess:run(y, { [x] = X }):totable())
    assert.are.same(expected(X2), sess:run(y, { [x] = X2 }):totable())
  end)

  it("can feed an intermediate tensor, replacing what computes it", function()
    local z = y * 2
    local sess <close> = tf.Session()
    assert.are.same({ 20, -4 }, sess:run(z, { [y] = { 10, -2 } }):totable())
  end)

  it("raises, naming the placeholder, when a needed placeholder is not fed", function()
    local sess <close> = tf.Session()
    local ok, err = pcall(sess.run, sess, y)
    assert.is_false(ok)
    assert.matches("'x'", err)
  end)
end)

describe("closing a session", function()
  it("makes sess:run an error after sess:close()", function()
    local c = tf.constant(1)
    local sess = tf.Session()
    assert.are.equal(1, sess:run(c):item())
    sess:close()
    local ok, err = pcall(sess.run, sess, c)
    assert.is_false(ok)
    assert.matches("closed", err)
  end)

  it("lets sess:close() be called twice", function()
    local sess = tf.Session()
    sess:close()
    assert.has_no.errors(function() sess:close() end)
  end)

  it("closes a `local sess <close>` session at the end of its block", function()
    local c = tf.constant(1)
    local keep
    do
      local sess <close> = tf.Session()
      keep = sess
      assert.are.equal(1, sess:run(c):item())
    end
    assert.has_error(function() keep:run(c) end)
  end)
end)

describe("pruning", function()
  it("runs only the subgraph the fetches need: an unfed placeholder elsewhere does not matter", function()
    local a = tf.constant(2, "a")
    local unfed = tf.placeholder("int32", {}, "unfed")
    local _ = unfed + a
    local wanted = a * 5
    local sess <close> = tf.Session()
    assert.are.equal(10, sess:run(wanted):item())
  end)

  it("executes exactly the needed operations (seen through the trace)", function()
    local a = tf.constant(2, "a")
    local b = tf.constant(3, "b")
    local x = tf.placeholder("int32", {}, "x")
    local sum = tf.add(a, b, "sum")
    local _ = tf.mul(sum, x, "unrelated")
    local _2 = tf.neg(b, "also_unrelated")
    local out = tf.square(sum, "out")
    local sess <close> = tf.Session()
    sess:set_tracing(true)
    assert.are.equal(25, sess:run(out):item())
    assert.are.same({ "a", "b", "out", "sum" }, ran(sess))
  end)

  it("does not run what computes a fed tensor", function()
    local a = tf.constant(2, "a")
    local mid = tf.mul(a, 3, "mid")
    local out = tf.add(mid, tf.constant(1, "one"), "out")
    local sess <close> = tf.Session()
    sess:set_tracing(true)
    assert.are.equal(101, sess:run(out, { [mid] = 100 }):item())
    assert.are.same({ "one", "out" }, ran(sess))   -- neither 'a' nor 'mid'
  end)

  it("runs each operation at most once per run, even when fetched twice", function()
    local counter = tf.Variable(0, "counter")
    local inc = counter:assign_add(1)
    local sess <close> = tf.Session()
    sess:run(counter.initializer)
    local r = sess:run({ inc, inc })
    assert.are.equal(1, r[1]:item())
    assert.are.equal(1, r[2]:item())
    assert.are.equal(1, sess:run(counter):item())
    sess:run({ inc, { again = inc }, inc.op })
    assert.are.equal(2, sess:run(counter):item())
  end)

  it("shares one evaluation of a random op between all its consumers in a run", function()
    local r = tf.random_uniform({ 5 })
    local sess <close> = tf.Session()
    local got = sess:run({ r, r + 0, tf.identity(r) })
    assert.are.same(got[1]:totable(), got[2]:totable())
    assert.are.same(got[1]:totable(), got[3]:totable())
  end)

  it("lists each executed operation once in the trace", function()
    local a = tf.constant(1, "a")
    local b = tf.add(a, a, "b")
    local c = tf.add(b, a, "c")
    local sess <close> = tf.Session()
    sess:set_tracing(true)
    sess:run({ b, c, c })
    assert.are.same({ "a", "b", "c" }, ran(sess))
  end)
end)

describe("tf.InteractiveSession", function()
  local isess

  after_each(function()
    if isess then isess:close() end
    isess = nil
  end)

  it("becomes the default session, so t:eval() runs in it", function()
    local n = math.random(1, 1000)
    local t = tf.constant(n) * 2
    isess = tf.InteractiveSession()
    assert.are.equal(isess, tf.get_default_session())
    assert.are.equal(2 * n, t:eval():item())
  end)

  it("runs an operation with op:run()", function()
    local v = tf.Variable(5, "v")
    isess = tf.InteractiveSession()
    v.initializer:run()
    local inc = v:assign_add(3)
    inc.op:run()
    assert.are.equal(8, v:eval():item())
  end)

  it("takes feeds in t:eval(feeds) and op:run(feeds)", function()
    local x = tf.placeholder("int32", {}, "x")
    local v = tf.Variable(0, "acc")
    local add = v:assign_add(x)
    isess = tf.InteractiveSession()
    v.initializer:run()
    assert.are.equal(12, (x * 4):eval({ [x] = 3 }):item())
    add.op:run({ [x] = 7 })
    assert.are.equal(7, v:eval():item())
  end)

  it("stops being the default once closed", function()
    local t = tf.constant(1)
    isess = tf.InteractiveSession()
    isess:close()
    isess = nil
    assert.is_nil(tf.get_default_session())
    assert.has_error(function() t:eval() end)
  end)
end)

describe("t:eval(feeds, sess)", function()
  it("runs in the session it is given", function()
    local x = tf.placeholder("float32", { 2 }, "x")
    local X = rand_floats(2, -1, 1)
    local sess <close> = tf.Session()
    assert.are.same({ f32(X[1] - 1), f32(X[2] - 1) }, (x - 1):eval({ [x] = X }, sess):totable())
  end)

  it("raises when there is no default session and none is given", function()
    assert.is_nil(tf.get_default_session())
    assert.has_error(function() tf.constant(1):eval() end)
  end)
end)
