-- tf.nn.embedding_lookup and its sparse gradient: an embedding read only
-- through lookups is updated from the rows it touched (DedupRows +
-- SparseApply*), and the result equals the dense update.
local tf = require("moonflow")

local function build(dense_reader, opt_name)
  local g = tf.Graph()
  return g:as_default(function()
    local emb = tf.Variable(tf.constant({ { 0.1, -0.2, 0.3 }, { 0.5, 0.4, -0.1 }, { -0.3, 0.2, 0.9 },
                                          { 0.7, -0.6, 0.05 }, { 0.0, 0.25, -0.45 } }, { dtype = "float64" }), "emb")
    local ids = tf.placeholder("int32", { 2, 3 }, "ids")
    local w = tf.Variable(tf.constant({ { 1.0 }, { -2.0 }, { 0.5 } }, { dtype = "float64" }), "w")
    local h = tf.nn.embedding_lookup(emb, ids)                        -- [2, 3, 3]
    local y = tf.reshape(tf.matmul(tf.reshape(tf.tanh(h), { -1, 3 }), w), { 2, 3 })
    local loss = tf.reduce_sum(tf.square(y - 0.3))
    if dense_reader then loss = loss + tf.reduce_sum(emb) * 0 end    -- forces a dense gradient
    local opt = opt_name == "adam" and tf.train.AdamOptimizer(0.05) or tf.train.GradientDescentOptimizer(0.1)
    local train = opt:minimize(loss)
    local sess = tf.Session{ graph = g }
    sess:run(tf.global_variables_initializer())
    return { g = g, sess = sess, emb = emb, ids = ids, train = train, loss = loss }
  end)
end

local function op_types(g)
  local t = {}
  for _, op in ipairs(g:get_operations()) do t[op.type] = true end
  return t
end

describe("tf.nn.embedding_lookup", function()
  it("looks up 1-based rows", function()
    local params = tf.constant({ { 1, 2 }, { 3, 4 }, { 5, 6 } })
    local r = tf.Session():run(tf.nn.embedding_lookup(params, { 3, 1, 3 }))
    assert.are.same({ { 5, 6 }, { 1, 2 }, { 5, 6 } }, r:totable())
  end)

  for _, opt in ipairs({ "sgd", "adam" }) do
    it("gives an embedding-only variable a sparse gradient equal to the dense one (" .. opt .. ")", function()
      local sparse, dense = build(false, opt), build(true, opt)
      local st, dt = op_types(sparse.g), op_types(dense.g)
      assert.is_true(st.DedupRows)
      assert.is_true(st[opt == "adam" and "SparseApplyAdam" or "SparseApplyGradientDescent"])
      assert.is_nil(st.GatherGrad)            -- no dense vocabulary-sized gradient
      assert.is_true(dt.GatherGrad)
      local batches = { { { 1, 3, 3 }, { 5, 1, 2 } }, { { 2, 2, 2 }, { 4, 4, 1 } }, { { 3, 5, 1 }, { 1, 1, 1 } } }
      for step = 1, 6 do
        local feed = batches[(step - 1) % 3 + 1]
        local a = sparse.sess:run({ sparse.loss, sparse.train }, { [sparse.ids] = feed })[1]:item()
        local b = dense.sess:run({ dense.loss, dense.train }, { [dense.ids] = feed })[1]:item()
        assert.is_true(math.abs(a - b) <= 1e-12 * math.max(1, math.abs(b)), string.format("step %d: %.17g vs %.17g", step, a, b))
      end
      local ea, eb = sparse.sess:run(sparse.emb):totable(), dense.sess:run(dense.emb):totable()
      for i = 1, 5 do
        for j = 1, 3 do assert.is_true(math.abs(ea[i][j] - eb[i][j]) <= 1e-12) end
      end
    end)
  end

  it("sums repeated ids in DedupRows", function()
    local g = tf.Graph()
    g:as_default(function()
      local rows = tf.constant({ { 1.0, 2.0 }, { 10.0, 20.0 }, { 100.0, 200.0 } })
      local ids = tf.constant({ 4, 2, 4 })
      local op = require("moonflow.graph").make_op("DedupRows", { rows, ids }, nil, {})
      local r = tf.Session{ graph = g }:run({ op.outputs[1], op.outputs[2] })
      assert.are.same({ 4, 2 }, r[1]:totable())
      assert.are.same({ { 101, 202 }, { 10, 20 } }, r[2]:totable())
    end)
  end)

  it("reports an id outside the vocabulary when updating", function()
    local s = build(false, "sgd")
    local ok, err = pcall(s.sess.run, s.sess, s.train, { [s.ids] = { { 1, 2, 6 }, { 1, 1, 1 } } })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("out of range", 1, true))
  end)
end)
