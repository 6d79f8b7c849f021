-- tf.placeholder with full, partial and unknown shapes, and
-- tf.placeholder_with_default fed and unfed.
local tf = require("moonflow")

-- Row sums of a Lua matrix, computed in plain Lua.
local function row_sums(m)
  local out = {}
  for i, row in ipairs(m) do
    local s = 0
    for _, x in ipairs(row) do s = s + x end
    out[i] = s
  end
  return out
end

-- A batch x 3 matrix of small integers (exact in float32).
local function batch(n)
  local m = {}
  for i = 1, n do m[i] = { i, 2 * i + 1, -i } end
  return m
end

describe("tf.placeholder", function()
  before_each(function() tf.reset_default_graph() end)

  it("records dtype, name and a full shape", function()
    local p = tf.placeholder("float32", { 2, 3 }, "x")
    assert.are.equal("float32", p.dtype)
    assert.are.equal("x:0", p.name)
    assert.are.equal("Placeholder", p.op.type)
    assert.are.same({ 2, 3 }, p.shape)
    local p2 = tf.placeholder(tf.int32, { 4 })
    assert.are.equal("int32", p2.dtype)
    assert.are.equal("Placeholder:0", p2.name)
  end)

  it("a full shape: fed values flow through", function()
    local p = tf.placeholder("float32", { 2, 3 })
    local y = tf.reduce_sum(p * 2, 2)
    assert.are.same({ 2 }, y.shape)
    local sess = tf.Session()
    local m = { { 1, 2, 3 }, { 4, 5, 6 } }
    assert.are.same({ 12.0, 30.0 }, sess:run(y, { [p] = m }):totable())
    -- feeding by name, and an Array as the value
    assert.are.same({ 12.0, 30.0 }, sess:run(y, { ["Placeholder:0"] = tf.array(m, "float32") }):totable())
    assert.are.same({ 12.0, 30.0 }, sess:run(y, { ["Placeholder"] = m }):totable())
  end)

  it("a partial shape {-1, 3} accepts several batch sizes", function()
    local p = tf.placeholder("float32", { -1, 3 }, "batch_in")
    assert.are.same({ -1, 3 }, p.shape)
    local w = tf.constant({ { 1.0 }, { 10.0 }, { 100.0 } })
    local y = tf.matmul(p, w)
    assert.are.same({ -1, 1 }, y.shape)
    local s = tf.reduce_sum(p, 2)
    assert.are.same({ -1 }, s.shape)
    local n = tf.shape(p)
    local sess = tf.Session()
    for _, bs in ipairs({ 1, 2, 5, 17, 64 }) do
      local m = batch(bs)
      local r = sess:run({ y = y, s = s, n = n }, { [p] = m })
      assert.are.same({ bs, 1 }, r.y:shape())
      for i = 1, bs do
        local row = m[i]
        assert.are.equal(row[1] * 1 + row[2] * 10 + row[3] * 100, r.y:totable()[i][1])
      end
      assert.are.same(row_sums(m), r.s:totable())
      assert.are.same({ bs, 3 }, r.n:totable())
    end
  end)

  it("a partial shape rejects a value whose known dimension differs", function()
    local p = tf.placeholder("float32", { -1, 3 }, "pp")
    local sess = tf.Session()
    local ok, err = pcall(sess.run, sess, p, { [p] = { { 1, 2 }, { 3, 4 } } })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("Placeholder 'pp'", 1, true))
    ok, err = pcall(sess.run, sess, p, { [p] = { 1, 2, 3 } })   -- rank 1, not 2
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("Placeholder 'pp'", 1, true))
    assert.are.same({ { 1, 2, 3 } }, sess:run(p, { [p] = { { 1, 2, 3 } } }):totable())
  end)

  it("an unknown shape (nil) accepts any rank", function()
    local p = tf.placeholder("float32")
    assert.is_nil(p.shape)
    local total = tf.reduce_sum(p)
    local twice = p * 2
    local sess = tf.Session()
    assert.are.equal(3.0, sess:run(total, { [p] = 3.0 }):item())
    assert.are.same({}, sess:run(twice, { [p] = 3.0 }):shape())
    assert.are.equal(6.0, sess:run(total, { [p] = { 1, 2, 3 } }):item())
    assert.are.equal(21.0, sess:run(total, { [p] = { { 1, 2, 3 }, { 4, 5, 6 } } }):item())
    local cube = { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }
    local r = sess:run(twice, { [p] = cube })
    assert.are.same({ 2, 2, 2 }, r:shape())
    assert.are.same({ { { 2, 4 }, { 6, 8 } }, { { 10, 12 }, { 14, 16 } } }, r:totable())
  end)

  it("several placeholders fed in one run, integer dtypes too", function()
    local a = tf.placeholder("int32", { -1 })
    local b = tf.placeholder("int32", { -1 })
    local c = a * b + a
    assert.are.equal("int32", c.dtype)
    local sess = tf.Session()
    assert.are.same({ 2 * 5 + 2, 3 * -1 + 3 }, sess:run(c, { [a] = { 2, 3 }, [b] = { 5, -1 } }):totable())
    assert.are.same({ 7 * 7 + 7 }, sess:run(c, { [a] = { 7 }, [b] = { 7 } }):totable())
  end)

  it("a placeholder can be fetched: the fed value comes back", function()
    local p = tf.placeholder("float64", { -1 })
    local sess = tf.Session()
    local r = sess:run(p, { [p] = { 0.1, 0.2 } })
    assert.are.equal("float64", r.dtype)
    assert.are.same({ 0.1, 0.2 }, r:totable())  -- exact in float64
  end)
end)

describe("tf.placeholder_with_default", function()
  before_each(function() tf.reset_default_graph() end)

  it("unfed, it yields its default", function()
    local d = tf.placeholder_with_default(tf.constant({ 1.0, 2.0, 3.0 }), { -1 })
    assert.are.equal("float32", d.dtype)
    assert.are.same({ -1 }, d.shape)
    local y = d * 10
    local sess = tf.Session()
    assert.are.same({ 10.0, 20.0, 30.0 }, sess:run(y):totable())
    assert.are.same({ 1.0, 2.0, 3.0 }, sess:run(d):totable())
  end)

  it("fed, it yields the fed value, of any compatible length", function()
    local d = tf.placeholder_with_default(tf.constant({ 1.0, 2.0, 3.0 }), { -1 })
    local y = tf.reduce_sum(d)
    local sess = tf.Session()
    assert.are.equal(6.0, sess:run(y):item())
    assert.are.equal(9.0, sess:run(y, { [d] = { 4.0, 5.0 } }):item())
    assert.are.equal(5.0, sess:run(y, { [d] = { 1.0, 1.0, 1.0, 1.0, 1.0 } }):item())
    -- unfed again: back to the default
    assert.are.equal(6.0, sess:run(y):item())
  end)

  it("with a Lua value and no shape takes the default's shape", function()
    local d = tf.placeholder_with_default({ { 1, 2 }, { 3, 4 } })
    assert.are.equal("int32", d.dtype)
    assert.are.same({ 2, 2 }, d.shape)
    local sess = tf.Session()
    assert.are.same({ { 1, 2 }, { 3, 4 } }, sess:run(d):totable())
    assert.are.same({ { 5, 6 }, { 7, 8 } }, sess:run(d, { [d] = { { 5, 6 }, { 7, 8 } } }):totable())
    local ok, err = pcall(sess.run, sess, d, { [d] = { 1, 2, 3 } })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("PlaceholderWithDefault", 1, true))
  end)

  it("a training flag: scalar bool default, fed false", function()
    local training = tf.placeholder_with_default(tf.constant(true), {})
    local x = tf.constant({ 1.0, 2.0 })
    local y = tf.where(training, x * 2, x)
    local sess = tf.Session()
    assert.are.same({ 2.0, 4.0 }, sess:run(y):totable())
    assert.are.same({ 1.0, 2.0 }, sess:run(y, { [training] = false }):totable())
  end)
end)
