-- Collections and initializers (issue 10, item 5): tf.GraphKeys, the
-- collection functions with TF's scope filter, Variable's collections and
-- trainable options, local variables, and finding uninitialized variables.
local tf = require("moonflow")

local function fresh()
  tf.reset_default_graph()
  return tf.get_default_graph()
end

local function names(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v.name end
  return out
end

local function rand(n)
  local t = {}
  for i = 1, n do t[i] = math.random() * 4 - 2 end
  return t
end

describe("tf.GraphKeys", function()
  it("has TF's string values", function()
    assert.are.equal("variables", tf.GraphKeys.GLOBAL_VARIABLES)
    assert.are.equal("trainable_variables", tf.GraphKeys.TRAINABLE_VARIABLES)
    assert.are.equal("local_variables", tf.GraphKeys.LOCAL_VARIABLES)
    assert.are.equal("update_ops", tf.GraphKeys.UPDATE_OPS)
    assert.are.equal("summaries", tf.GraphKeys.SUMMARIES)
    assert.are.equal("regularization_losses", tf.GraphKeys.REGULARIZATION_LOSSES)
    assert.are.equal("losses", tf.GraphKeys.LOSSES)
  end)
end)

describe("collections", function()
  before_each(fresh)

  it("tf.add_to_collection and tf.get_collection keep insertion order; get_collection returns a copy", function()
    local a, b = tf.constant(1.0, { name = "a" }), tf.constant(2.0, { name = "b" })
    tf.add_to_collection(tf.GraphKeys.LOSSES, a)
    tf.add_to_collection(tf.GraphKeys.LOSSES, b)
    local got = tf.get_collection(tf.GraphKeys.LOSSES)
    assert.are.same({ "a:0", "b:0" }, names(got))
    got[3] = "x"
    assert.are.equal(2, #tf.get_collection("losses"))
    assert.are.same({}, tf.get_collection("nothing here"))
  end)

  it("tf.add_to_collections adds to each collection", function()
    local a = tf.constant(1.0, { name = "a" })
    tf.add_to_collections({ "one", "two" }, a)
    assert.are.same({ "a:0" }, names(tf.get_collection("one")))
    assert.are.same({ "a:0" }, names(tf.get_collection("two")))
  end)

  it("filters by scope: a regex matched at the start of the item's name", function()
    local w1, w2, w3
    tf.name_scope("encoder", function() w1 = tf.Variable(rand(3), { name = "w" }) end)
    tf.name_scope("encoder_2", function() w2 = tf.Variable(rand(3), { name = "w" }) end)
    tf.name_scope("decoder", function() w3 = tf.Variable(rand(3), { name = "w" }) end)
    assert.are.same({ w1.name }, names(tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES, "encoder/")))
    assert.are.same({ w1.name, w2.name }, names(tf.get_collection("variables", "encoder")))
    assert.are.same({ w1.name, w3.name }, names(tf.get_collection("variables", ".*coder/")))
    assert.are.same({ w3.name }, names(tf.trainable_variables("dec")))
    assert.are.same({ w2.name }, names(tf.global_variables("encoder_[0-9]")))
    assert.are.same({}, names(tf.get_collection("variables", "w")))
    -- items without a name are left out under a scope, as TF does
    tf.add_to_collection("mixed", 42)
    tf.add_to_collection("mixed", w1)
    assert.are.same({ w1 }, tf.get_collection("mixed", "enc"))
    assert.are.equal(2, #tf.get_collection("mixed"))
    assert.has_error(function() tf.get_collection("variables", "(a|b)") end)
    assert.has_error(function() tf.get_collection("variables", 3) end)
  end)

  it("tf.get_collection_ref is the live list", function()
    local ref = tf.get_collection_ref(tf.GraphKeys.UPDATE_OPS)
    assert.are.same({}, ref)
    local op = tf.no_op()
    tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, op)
    assert.are.equal(op, ref[1])
    ref[#ref + 1] = "extra"
    assert.are.equal(2, #tf.get_collection(tf.GraphKeys.UPDATE_OPS))
    table.remove(ref, 1)
    assert.are.same({ "extra" }, tf.get_collection(tf.GraphKeys.UPDATE_OPS))
  end)

  it("collection names must be strings, with errors naming the function", function()
    assert.has_error(function() tf.add_to_collection(nil, 1) end, "tf.add_to_collection: name must be a collection name (a string), got nil")
    assert.has_error(function() tf.get_collection({}) end)
    assert.has_error(function() tf.add_to_collections(5, 1) end)
  end)

  it("are per graph", function()
    local g = tf.Graph()
    g:as_default(function() tf.add_to_collection("c", 1) end)
    assert.are.same({}, tf.get_collection("c"))
    assert.are.same({ 1 }, g:get_collection("c"))
  end)
end)

describe("tf.Variable's collections and trainable options", function()
  before_each(fresh)

  it("default: global and trainable", function()
    local v = tf.Variable(rand(2), { name = "v" })
    assert.are.same({ v }, tf.global_variables())
    assert.are.same({ v }, tf.trainable_variables())
    assert.are.same({}, tf.local_variables())
  end)

  it("trainable = false keeps it out of the trainable variables", function()
    local v = tf.Variable(0, { name = "step", trainable = false })
    assert.are.same({ v }, tf.global_variables())
    assert.are.same({}, tf.trainable_variables())
    assert.is_false(v.trainable)
  end)

  it("collections replaces the global collection; a trainable one still joins the trainable variables", function()
    local l = tf.Variable(rand(2), { name = "l", collections = { tf.GraphKeys.LOCAL_VARIABLES }, trainable = false })
    local m = tf.Variable(rand(2), { name = "m", collections = { "variables", "mine", "mine" } })
    local t = tf.Variable(rand(2), { name = "t", collections = { "mine" } })
    assert.are.same({ l }, tf.local_variables())
    assert.are.same({ m }, tf.global_variables())
    assert.are.same({ m, t }, tf.get_collection("mine")) -- each collection once
    assert.are.same({ m, t }, tf.trainable_variables())
  end)

  it("refuses bad option values, naming them", function()
    assert.has_error(function() tf.Variable(1, { collections = 3 }) end,
                     "tf.Variable: collections must be a list of collection names, got number")
    assert.has_error(function() tf.Variable(1, { collections = { 1 } }) end,
                     "tf.Variable: collections[1] must be a string, got number")
    assert.has_error(function() tf.Variable(1, { trainable = "yes" }) end,
                     "tf.Variable: trainable must be a boolean, got string")
  end)
end)

describe("initializers", function()
  before_each(fresh)

  it("tf.local_variables_initializer initializes the local variables only", function()
    local init_g, init_l = rand(3), rand(2)
    local g = tf.Variable(init_g, { name = "g" })
    local l = tf.Variable(init_l, { name = "l", collections = { tf.GraphKeys.LOCAL_VARIABLES }, trainable = false })
    local sess = tf.Session()
    sess:run(tf.local_variables_initializer())
    local got = sess:run(l):totable()
    for i = 1, 2 do assert.is_true(math.abs(got[i] - init_l[i]) < 1e-6) end
    assert.has_error(function() sess:run(g) end)
    sess:run(tf.global_variables_initializer())
    assert.are.equal(3, #sess:run(g):totable())
  end)

  it("tf.variables_initializer initializes the listed variables", function()
    local a, b = tf.Variable(rand(2), { name = "a" }), tf.Variable(rand(2), { name = "b" })
    local sess = tf.Session()
    sess:run(tf.variables_initializer({ b }))
    assert.has_error(function() sess:run(a) end)
    assert.are.equal(2, #sess:run(b):totable())
    sess:run(tf.variables_initializer({})) -- a no-op, as TF
    assert.has_error(function() tf.variables_initializer(3) end)
  end)

  it("tf.is_variable_initialized is false until the variable has a value", function()
    local v = tf.Variable(rand(4), { name = "v" })
    local q = tf.is_variable_initialized(v)
    assert.are.equal("bool", q.dtype)
    local sess = tf.Session()
    assert.is_false(sess:run(q):item())
    sess:run(v.initializer)
    assert.is_true(sess:run(q):item())
    assert.has_error(function() tf.is_variable_initialized(tf.constant(1)) end)
  end)

  it("tf.is_variable_initialized works inside tf.control_dependencies (it reads no value)", function()
    local v = tf.Variable(rand(2), { name = "v" })
    local q = tf.control_dependencies({ tf.no_op() }, function() return tf.is_variable_initialized(v) end)
    assert.is_false(tf.Session():run(q):item())
  end)

  it("tf.report_uninitialized_variables fetches the names still without a value (a Lua list)", function()
    local a = tf.Variable(rand(2), { name = "a" })
    local b = tf.Variable(rand(2), { name = "scope/b" })
    tf.Variable(0, { name = "l", collections = { tf.GraphKeys.LOCAL_VARIABLES }, trainable = false })
    local report = tf.report_uninitialized_variables()
    local sess = tf.Session()
    assert.are.same({ "a", "scope/b", "l" }, sess:run(report))
    sess:run(a.initializer)
    assert.are.same({ "scope/b", "l" }, sess:run(report))
    local both = sess:run({ r = report, x = a })
    assert.are.same({ "scope/b", "l" }, both.r)
    sess:run({ tf.global_variables_initializer(), tf.local_variables_initializer() })
    assert.are.same({}, sess:run(report))
    assert.are.same({}, sess:run(tf.report_uninitialized_variables({})))
    assert.are.same({}, sess:run(tf.report_uninitialized_variables({ b })))
    assert.has_error(function() tf.report_uninitialized_variables({ 1 }) end)
  end)
end)
