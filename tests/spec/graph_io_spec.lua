-- Graph export and import: graph:as_graph_def, tf.train.write_graph (binary
-- and text), tf.import_graph_def (input_map, return_elements, name prefix),
-- export_meta_graph / import_meta_graph and the Saver's .meta files. A graph
-- exported and imported into a new graph runs bit for bit as the original.
package.path = "scripts/lib/?.lua;" .. package.path
local tf = require("moonflow")
local char_model = require("char_model")

local made = {}
local function tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/mf_graph_io_spec.XXXXXX"))
  local d = p:read("l")
  p:close()
  made[#made + 1] = d
  return d
end
teardown(function()
  for _, d in ipairs(made) do os.execute("rm -rf '" .. d .. "'") end
end)

local function bytes_of(a)
  if a.dtype == "string" then return table.concat(a:totable(), "\0") end
  return a:tobytes()
end

-- Builds with build() in a fresh graph, runs run(sess, g) there, then in a
-- graph imported from its GraphDef; the fetched Arrays must agree bit for bit.
local function round_trip(build, run)
  local g1 = tf.Graph()
  local gd, want
  g1:as_default(function()
    build()
    gd = g1:as_graph_def()
    want = run(tf.Session(), g1)
  end)
  local g2 = tf.Graph()
  local got
  g2:as_default(function()
    tf.import_graph_def(gd, { name = "" })
    got = run(tf.Session(), g2)
  end)
  assert.are.equal(#want, #got)
  for i = 1, #want do
    assert.are.same(want[i]:shape(), got[i]:shape())
    assert.is_true(bytes_of(want[i]) == bytes_of(got[i]), "fetch " .. i .. " differs")
  end
  -- and the import exports the same nodes again
  assert.are.equal(#tostring(gd), #tostring(g2:as_graph_def()))
  return gd, g2
end

local function T(g, name) return g:get_tensor_by_name(name) end
local function O(g, name) return g:get_operation_by_name(name) end

describe("graph round trip", function()
  it("an MLP trains the same after export and import", function()
    local rows = {}
    for i = 1, 16 do rows[i] = { i / 7, -i / 3, (i % 5) / 2, 1 / i } end
    round_trip(function()
      local x = tf.placeholder("float32", { -1, 4 }, "x")
      local y = tf.placeholder("float32", { -1, 1 }, "y")
      local h = tf.layers.dense(x, 8, { activation = tf.nn.relu, name = "h",
                                        kernel_initializer = tf.glorot_uniform_initializer({ seed = 1 }) })
      local out = tf.layers.dense(h, 1, { name = "out",
                                          kernel_initializer = tf.glorot_uniform_initializer({ seed = 2 }) })
      local loss = tf.reduce_mean(tf.square(out - y), nil, { name = "loss" })
      local train = tf.train.AdamOptimizer(0.01):minimize(loss)
      tf.group({ train }, { name = "train" })
      tf.global_variables_initializer()
    end, function(sess, g)
      local xv = tf.array(rows, "float32")
      local feeds = { [T(g, "x:0")] = xv, [T(g, "y:0")] = tf.array({ { 1 }, { 2 }, { 3 }, { 4 }, { 5 }, { 6 }, { 7 },
        { 8 }, { 1 }, { 2 }, { 3 }, { 4 }, { 5 }, { 6 }, { 7 }, { 8 } }, "float32") }
      sess:run(O(g, "init"))
      local losses = {}
      for i = 1, 5 do
        sess:run(O(g, "train"), feeds)
        losses[i] = sess:run(T(g, "loss:0"), feeds)
      end
      losses[#losses + 1] = sess:run(T(g, "h/kernel:0"))
      return losses
    end)
  end)

  it("the char-RNN model trains and samples the same", function()
    local o = { vocab_size = 11, model = "lstm", rnn_size = 8, num_layers = 2, wordvec_size = 5,
                seq_length = 6, batch = 2, seed = 5 }
    local names
    round_trip(function()
      tf.set_random_seed(7)
      local m = char_model.build(tf, o)
      local op = char_model.train_op(tf, m.loss, { learning_rate = 0.01, grad_clip = 5 })
      tf.global_variables_initializer()
      names = { loss = m.loss.name, train = op.name, x = m.x.name, y = m.y.name, state = {} }
      local function walk(p, out)
        for k, v in pairs(p) do
          if type(v) == "table" and v.op == nil then out[k] = {}; walk(v, out[k]) else out[k] = v.name end
        end
      end
      walk(m.init_state, names.state)
    end, function(sess, g)
      sess:run(O(g, "init"))
      local ids = {}
      for b = 1, 2 do
        ids[b] = {}
        for t = 1, 6 do ids[b][t] = (b * 7 + t * 3) % 11 + 1 end
      end
      local feeds = { [T(g, names.x)] = tf.array(ids, "int32"), [T(g, names.y)] = tf.array(ids, "int32") }
      local function feed_state(p, zero)
        for _, v in pairs(p) do
          if type(v) == "table" then feed_state(v, zero) else feeds[T(g, v)] = zero end
        end
      end
      local zero = {}
      for b = 1, 2 do zero[b] = { 0, 0, 0, 0, 0, 0, 0, 0 } end
      feed_state(names.state, tf.array(zero, "float32"))
      local out = {}
      for i = 1, 3 do
        sess:run(O(g, names.train), feeds)
        out[i] = sess:run(T(g, names.loss), feeds)
      end
      return out
    end)
  end)

  it("cond and while_loop with gradients", function()
    round_trip(function()
      local x = tf.placeholder("float32", {}, "x")
      local v = tf.Variable(1.5, { name = "v" })
      local c = tf.cond(tf.greater(x, 0), function() return v * x * x end, function() return v - x end)
      local w = tf.while_loop(function(i) return tf.less(i, 4) end,
        function(i, a) return i + 1, a * x + v end, { tf.constant(0), tf.constant(1.0) })[2]
      local total = tf.add(c, w, "total")
      local grads = tf.gradients(total, { x, v })
      tf.identity(grads[1], "dx")
      tf.identity(grads[2], "dv")
      tf.global_variables_initializer()
    end, function(sess, g)
      sess:run(O(g, "init"))
      local out = {}
      for _, xv in ipairs({ 0.5, -1.25, 2.0 }) do
        local f = { [T(g, "x:0")] = xv }
        out[#out + 1] = sess:run(T(g, "total:0"), f)
        out[#out + 1] = sess:run(T(g, "dx:0"), f)
        out[#out + 1] = sess:run(T(g, "dv:0"), f)
      end
      return out
    end)
  end)

  it("string constants and float attributes that a float32 does not hold", function()
    round_trip(function()
      tf.constant({ "hello", "", "a\0b\n\255" }, { name = "s" })
      tf.random_normal({ 3 }, { mean = 0.1, stddev = 0.3, seed = 4, dtype = "float64", name = "r" })
    end, function(sess, g)
      return { sess:run(T(g, "s:0")), sess:run(T(g, "r:0")) }
    end)
  end)
end)

describe("tf.import_graph_def", function()
  local function small()
    local g = tf.Graph()
    g:as_default(function()
      local a = tf.placeholder("float32", { 2 }, "a")
      tf.multiply(a, 3, "b")
    end)
    return g:as_graph_def()
  end

  it("prefixes names with import/ by default, uniquely, and returns elements", function()
    local gd = small()
    tf.Graph():as_default(function()
      local r = tf.import_graph_def(gd, { return_elements = { "b:0", "a" } })
      assert.are.equal("import/b:0", r[1].name)
      assert.is_true(tf.Operation == getmetatable(r[2]))
      assert.are.equal("import/a", r[2].name)
      local r2 = tf.import_graph_def(gd, { return_elements = { "b:0" } })
      assert.are.equal("import_1/b:0", r2[1].name)
      local r3 = tf.import_graph_def(gd, { return_elements = { "b:0" }, name = "mine" })
      assert.are.equal("mine/b:0", r3[1].name)
      assert.is_nil(tf.import_graph_def(gd))
    end)
  end)

  it("maps inputs to existing tensors", function()
    local gd = small()
    tf.Graph():as_default(function()
      local c = tf.constant({ 1.0, 2.0 }, { name = "c" })
      local r = tf.import_graph_def(gd, { input_map = { ["a:0"] = c }, return_elements = { "b:0" } })
      assert.are.same({ 3, 6 }, tf.Session():run(r[1]):totable())
    end)
  end)

  it("imports a graph with functions twice, under two prefixes", function()
    local g = tf.Graph()
    g:as_default(function()
      local x = tf.placeholder("float32", {}, "x")
      local y = tf.cond(tf.greater(x, 0), function() return x * x end, function() return -x end)
      tf.identity(tf.gradients(y, { x })[1], "dx")
    end)
    local gd = g:as_graph_def()
    tf.Graph():as_default(function()
      local a = tf.import_graph_def(gd, { return_elements = { "x:0", "dx:0" }, name = "a" })
      local b = tf.import_graph_def(gd, { return_elements = { "x:0", "dx:0" }, name = "b" })
      local sess = tf.Session()
      assert.are.equal(6, sess:run(a[2], { [a[1]] = 3 }):totable())
      assert.are.equal(-1, sess:run(b[2], { [b[1]] = -2 }):totable())
    end)
  end)

  it("refuses what does not fit, leaving the graph as it was", function()
    local gd = small()
    tf.Graph():as_default(function()
      local g = tf.get_default_graph()
      local c = tf.constant({ 1, 2 }, { name = "c" })
      local n = #g:get_operations()
      assert.has_error(function() tf.import_graph_def(gd, { input_map = { ["a:0"] = c } }) end)
      assert.has_error(function() tf.import_graph_def(gd, { return_elements = { "nope:0" } }) end)
      assert.has_error(function() tf.import_graph_def(gd, { return_elements = { "b:7" } }) end)
      assert.has_error(function() tf.import_graph_def("\255\255\255", {}) end)
      assert.are.equal(n, #g:get_operations())
    end)
  end)

  it("sorts nodes whose inputs come later, and refuses a cycle", function()
    -- a GraphDef by hand: b (reads a) before a; then a cycle
    local g = tf.Graph()
    g:as_default(function()
      local a = tf.constant(2.0, { name = "a" })
      tf.negative(a, "b")
    end)
    local text = tostring(g:as_graph_def())
    assert.is_truthy(text:find('name: "a"'))
    -- the binary one reversed: nodes are field 1, each length-delimited
    local bytes, nodes, pos = g:as_graph_def():SerializeToString(), {}, 1
    local rest = ""
    while pos <= #bytes do
      local key = bytes:byte(pos)
      local len, shift, p = 0, 0, pos + 1
      repeat
        local b = bytes:byte(p)
        len = len | ((b & 0x7f) << shift)
        shift, p = shift + 7, p + 1
      until b < 0x80
      local field = bytes:sub(pos, p + len - 1)
      if key == 0x0a then nodes[#nodes + 1] = field else rest = rest .. field end
      pos = p + len
    end
    local reversed = nodes[2] .. nodes[1] .. rest
    tf.Graph():as_default(function()
      local r = tf.import_graph_def(reversed, { return_elements = { "b:0" }, name = "" })
      assert.are.equal(-2, tf.Session():run(r[1]):totable())
    end)
    -- a cycle: b reads itself (its input "a", field 3, becomes "b")
    local looped = (nodes[2]:gsub("\26\1a", "\26\1b")) .. nodes[1]
    tf.Graph():as_default(function()
      assert.has_error(function() tf.import_graph_def(looped, { name = "" }) end,
        "tf.import_graph_def: mf_graph_import: the GraphDef's nodes form a cycle (through node 'b'): no order has "
          .. "every input before its reader")
    end)
  end)
end)

describe("tf.train.write_graph", function()
  it("writes binary and text GraphDefs", function()
    local dir = tmpdir() .. "/sub/dir"
    local g = tf.Graph()
    g:as_default(function() tf.add(tf.constant(1), tf.constant(2), "sum") end)
    local p1 = tf.train.write_graph(g, dir, "g.pb", false)
    local p2 = tf.train.write_graph(g:as_graph_def(), dir, "g.pbtxt")
    assert.are.equal(dir .. "/g.pb", p1)
    local f = assert(io.open(p1, "rb"))
    local bin = f:read("a")
    f:close()
    assert.are.equal(g:as_graph_def():SerializeToString(), bin)
    f = assert(io.open(p2, "r"))
    local text = f:read("a")
    f:close()
    assert.is_truthy(text:find('name: "sum"', 1, true))
    assert.is_truthy(text:find('op: "Add"', 1, true))
  end)
end)

describe("meta graphs", function()
  it("export_meta_graph / import_meta_graph restore variables through the Saver", function()
    local dir = tmpdir()
    local g = tf.Graph()
    local ckpt
    g:as_default(function()
      local v = tf.Variable({ 1.0, 2.0 }, { name = "v" })
      local w = tf.Variable(3.0, { name = "w", trainable = false })
      tf.add(v, w, "out")
      tf.add_to_collection("outputs", tf.get_default_graph():get_tensor_by_name("out:0"))
      local sess = tf.Session()
      sess:run(tf.global_variables_initializer())
      sess:run(v:assign({ 5.0, 6.0 }))
      local saver = tf.train.Saver({ v, w }, { max_to_keep = 1 })
      ckpt = saver:save(sess, dir .. "/model", 1)
      saver:save(sess, dir .. "/model", 2)
      ckpt = dir .. "/model-2"
    end)
    -- the pruned checkpoint's .meta went with it
    assert.is_nil(io.open(dir .. "/model-1.meta", "rb"))
    assert.is_truthy(io.open(ckpt .. ".meta", "rb"))
    tf.Graph():as_default(function()
      local saver = tf.train.import_meta_graph(ckpt .. ".meta")
      assert.are.equal(2, #tf.global_variables())
      assert.are.equal(1, #tf.trainable_variables())
      local out = tf.get_collection("outputs")[1]
      assert.are.equal("out:0", out.name)
      local sess = tf.Session()
      saver:restore(sess, ckpt)
      assert.are.same({ 8, 9 }, sess:run(out):totable())
    end)
    tf.Graph():as_default(function()
      local saver = tf.train.import_meta_graph(ckpt .. ".meta", { import_scope = "copy" })
      assert.are.equal("copy/v:0", tf.global_variables()[1].name)
      local sess = tf.Session()
      saver:restore(sess, ckpt)
      assert.are.same({ 8, 9 }, sess:run(tf.get_default_graph():get_tensor_by_name("copy/out:0")):totable())
    end)
  end)

  it("refuses malformed files", function()
    local dir = tmpdir()
    local f = assert(io.open(dir .. "/bad.meta", "wb"))
    f:write("\18\200garbage")
    f:close()
    assert.has_error(function() tf.train.import_meta_graph(dir .. "/bad.meta") end)
  end)
end)
