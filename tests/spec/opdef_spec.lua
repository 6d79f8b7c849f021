-- Op introspection: tf.sysconfig.op_def describes every registered op type
-- from the registry (a one-line doc, inputs, outputs, attributes with kinds
-- and defaults), consistently with what building an op accepts: an
-- attribute the type does not declare is refused, a declared one is not.
local tf = require("moonflow")
local core = require("moonflow.core")

local function sorted_types()
  local out = {}
  for t in pairs(core.op_types()) do out[#out + 1] = t end
  table.sort(out)
  return out
end

-- Builds an op of `op_type` with no inputs and one integer attribute: the
-- attribute check comes first, so the error says which failed.
local function build_error(g, op_type, attr)
  local ok, err = pcall(core.op_new, g._g, op_type, op_type, {}, {}, { attr, "int", 1 }, "", "")
  return not ok and tostring(err) or nil
end

local kinds = { int = true, float = true, bool = true, type = true, string = true, ints = true,
                shape = true, tensor = true }

describe("tf.sysconfig.op_def", function()
  it("describes every registered op type, consistently with its input counts", function()
    local types = sorted_types()
    assert.is_true(#types > 100)
    for _, t in ipairs(types) do
      local d = tf.sysconfig.op_def(t)
      assert(d, t .. " has no definition")
      assert.are.equal(t, d.type)
      assert(type(d.doc) == "string" and d.doc:match("^%u.*%.$") and not d.doc:find("\n"), t .. ": doc")
      local req, opt, list = 0, 0, false
      for i, a in ipairs(d.inputs) do
        assert(a.name:match("^[%a_][%w_]*$"), t .. ": input name")
        if a.list then
          assert(i == #d.inputs, t .. ": a list input comes last")
          list = true
        elseif a.optional then
          opt = opt + 1
        else
          assert(opt == 0, t .. ": optional inputs trail")
          req = req + 1
        end
      end
      if list then
        assert(req <= d.min_inputs, t .. ": list inputs")
      else
        assert(req == d.min_inputs and req + opt == d.max_inputs,
               ("%s: declares %d + %d optional inputs, takes %s..%s"):format(t, req, opt, d.min_inputs,
                                                                             tostring(d.max_inputs)))
      end
      local seen = {}
      for _, a in ipairs(d.attrs) do
        assert(kinds[a.kind], t .. ": kind of " .. a.name)
        assert(not seen[a.name], t .. ": attribute " .. a.name .. " twice")
        seen[a.name] = true
        assert(not (a.required and a.default ~= nil), t .. ": a required attribute has no default")
        if a.default ~= nil then
          local want = ({ int = "number", float = "number", bool = "boolean" })[a.kind] or "string"
          assert(type(a.default) == want, t .. ": default of " .. a.name)
        end
      end
    end
  end)

  it("refuses at construction an attribute the type does not declare, and accepts every declared one", function()
    local g = tf.Graph()
    for _, t in ipairs(sorted_types()) do
      local err = build_error(g, t, "no_such_attribute")
      assert(err and err:find("has no attribute 'no_such_attribute'", 1, true), t .. ": " .. tostring(err))
      for _, a in ipairs(tf.sysconfig.op_def(t).attrs) do
        err = build_error(g, t, a.name)
        assert(not (err and err:find("has no attribute", 1, true)), t .. ": " .. tostring(err))
      end
    end
  end)

  it("gives inputs, outputs and attributes in the Lua forms", function()
    local mm = tf.sysconfig.op_def("MatMul")
    assert.are.same({ { name = "a" }, { name = "b" } }, mm.inputs)
    assert.are.same({ { name = "product" } }, mm.outputs)
    assert.are.same({ name = "transpose_a", kind = "bool", default = false, required = false }, mm.attrs[1])
    local oh = tf.sysconfig.op_def("OneHot")
    assert.are.same({ name = "depth", optional = true, host = true }, oh.inputs[2])
    local by = {}
    for _, a in ipairs(oh.attrs) do by[a.name] = a end
    assert.are.equal(-1, by.axis.default)
    assert.is_true(math.type(by.axis.default) == "integer")
    assert.are.equal("float32", by.dtype.default)
    assert.are.equal(1.0, by.on_value.default)
    local split = tf.sysconfig.op_def("Split")
    assert.is_true(split.attrs[1].required and split.attrs[1].name == "num_split")
    assert.is_true(split.outputs[1].list)
    local adam = tf.sysconfig.op_def("ApplyAdam")
    assert.is_true(adam.inputs[1].ref and adam.inputs[3].ref and not adam.inputs[4].ref)
    assert.is_nil(tf.sysconfig.op_def("AddN").max_inputs) -- any number
    local seeds = {}
    for _, a in ipairs(tf.sysconfig.op_def("RandomNormal").attrs) do seeds[a.name] = a.kind end
    assert.are.equal("int", seeds.seed)
    assert.are.equal("int", seeds.seed2)
  end)

  it("is nil for an unknown type and an error for a non-string", function()
    assert.is_nil(tf.sysconfig.op_def("NoSuchOp"))
    assert.has_error(function() tf.sysconfig.op_def(1) end,
                     "tf.sysconfig.op_def: op_type must be a string, got number")
  end)

  it("names the op and the attribute when a wrapper-less build passes an undeclared attribute", function()
    local g = tf.Graph()
    local err = build_error(g, "MatMul", "transpose")
    assert.truthy(err:find("MatMul 'MatMul': has no attribute 'transpose' (MatMul takes these: "
                           .. "transpose_a: bool = false; transpose_b: bool = false)", 1, true))
    err = build_error(g, "Identity", "axis")
    assert.truthy(err:find("has no attribute 'axis' (Identity takes none)", 1, true))
  end)
end)

describe("the uninitialized-variable error", function()
  it("names the initializer op, in Lua's idiom for a Lua caller", function()
    local g = tf.Graph()
    local v, sess
    g:as_default(function()
      v = tf.Variable(tf.zeros({ 2 }), { name = "v" })
      sess = tf.Session()
    end)
    local ok, err = pcall(sess.run, sess, v)
    assert.is_false(ok)
    assert.truthy(err:find("uninitialized value v (run its initializer op 'v/Assign', or "
                           .. "tf.global_variables_initializer(), first)", 1, true))
    sess:close()
  end)
end)
