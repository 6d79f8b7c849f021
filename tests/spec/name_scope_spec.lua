-- tf.name_scope and unique operation names, exactly as TensorFlow 1.x makes
-- them: the first use of a name keeps it, later ones get _1, _2, ...
local tf = require("moonflow")

before_each(function() tf.reset_default_graph() end)

describe("unique operation names", function()
  it("names unnamed operations after their type, then _1, _2", function()
    assert.are.equal("Const", tf.constant(1).op.name)
    assert.are.equal("Const_1", tf.constant(2).op.name)
    assert.are.equal("Const_2", tf.constant(3).op.name)
  end)

  it("counts each name separately", function()
    local a, b = tf.constant(1), tf.constant(2)
    assert.are.equal("Add", (a + b).op.name)
    assert.are.equal("Mul", (a * b).op.name)
    assert.are.equal("Add_1", (a + b).op.name)
  end)

  it("uniquifies explicit names too", function()
    assert.are.equal("c", tf.constant(1, "c").op.name)
    assert.are.equal("c_1", tf.constant(1, { name = "c" }).op.name)
    assert.are.equal("total", tf.add(1, 2, "total").op.name)
    assert.are.equal("total_1", tf.add(1, 2, "total").op.name)
  end)

  it("treats names as case-insensitively unique, keeping the caller's capitalization", function()
    tf.constant(1)                                   -- Const
    tf.constant(2)                                   -- Const_1
    assert.are.equal("const_2", tf.constant(3, "const").op.name)
    assert.are.equal("CONST_3", tf.constant(4, "CONST").op.name)
  end)

  it("never hands out a name already taken by an explicit '_N' name", function()
    assert.are.equal("x_1", tf.constant(1, "x_1").op.name)
    assert.are.equal("x", tf.constant(1, "x").op.name)
    assert.are.equal("x_2", tf.constant(1, "x").op.name)   -- x_1 is taken
  end)

  it("suffixes an explicit name that looks like a generated one", function()
    tf.constant(1)                                   -- Const
    tf.constant(2)                                   -- Const_1
    assert.are.equal("Const_1_1", tf.constant(3, "Const_1").op.name)
  end)

  it("rejects names TensorFlow rejects (spaces, ':', a leading '_' or '/')", function()
    -- TensorFlow 1.x accepts op names matching [A-Za-z0-9.][A-Za-z0-9_./-]*;
    -- a ':' would make "x:0" ambiguous between a tensor and an operation name.
    for _, bad in ipairs({ "bad name", "x:0", "_hidden", "/abs", "semi;colon" }) do
      assert.is_false(pcall(tf.constant, 1, bad), "accepted the op name '" .. bad .. "'")
    end
    assert.is_false(pcall(tf.name_scope, "bad scope!", function() end), "accepted the scope 'bad scope!'")
  end)

  it("names an operation's tensors 'op:index'", function()
    local c = tf.constant(1, "seven")
    assert.are.equal("seven:0", c.name)
    local parts = tf.unstack(tf.ones({ 3 }), { axis = 1 })
    assert.are.same({ "unstack:0", "unstack:1", "unstack:2" },
                    { parts[1].name, parts[2].name, parts[3].name })
  end)

  it("keeps names unique per graph", function()
    tf.constant(1)
    local g = tf.Graph()
    assert.are.equal("Const", g:as_default(function() return tf.constant(1) end).op.name)
  end)
end)

describe("tf.name_scope", function()
  it("prefixes names inside a `local _ <close>` scope and stops at the end of the block", function()
    local inner
    do
      local _ <close> = tf.name_scope("Scope1")
      inner = tf.constant(1)
    end
    assert.are.equal("Scope1/Const:0", inner.name)
    assert.are.equal("Const:0", tf.constant(1).name)
  end)

  it("prefixes names inside the callback form and returns the callback's results", function()
    local t, extra = tf.name_scope("Scope1", function() return tf.constant(1), 42 end)
    assert.are.equal("Scope1/Const", t.op.name)
    assert.are.equal(42, extra)
    assert.are.equal("Const", tf.constant(1).op.name)
  end)

  it("nests, as in the documented example (nested_var.op.name == 'Scope1/Scope_nested/Mul')", function()
    local nested_var
    do
      local _ <close> = tf.name_scope("Scope1")
      tf.name_scope("Scope_nested", function()
        nested_var = tf.mul(5, 5)
      end)
    end
    assert.are.equal("Scope1/Scope_nested/Mul", nested_var.op.name)
    assert.are.equal("Scope1/Scope_nested/Mul:0", nested_var.name)
    local sess <close> = tf.Session()
    assert.are.equal(25, sess:run(nested_var):item())
  end)

  it("makes a scope opened twice 'Scope1' then 'Scope1_1'", function()
    local a = tf.name_scope("Scope1", function() return tf.constant(1) end)
    local b = tf.name_scope("Scope1", function() return tf.constant(1) end)
    local c
    do
      local _ <close> = tf.name_scope("Scope1")
      c = tf.constant(1)
    end
    assert.are.equal("Scope1/Const", a.op.name)
    assert.are.equal("Scope1_1/Const", b.op.name)
    assert.are.equal("Scope1_2/Const", c.op.name)
  end)

  it("uniquifies inner scopes per outer scope", function()
    local function make()
      return tf.name_scope("outer", function()
        return tf.name_scope("inner", function() return tf.constant(1) end)
      end)
    end
    assert.are.equal("outer/inner/Const", make().op.name)
    assert.are.equal("outer_1/inner/Const", make().op.name)
  end)

  it("uniquifies names within a scope", function()
    local a, b = tf.name_scope("S", function() return tf.constant(1), tf.constant(2) end)
    assert.are.equal("S/Const", a.op.name)
    assert.are.equal("S/Const_1", b.op.name)
  end)

  it("re-enters an existing scope when its name ends with '/'", function()
    local a = tf.name_scope("S", function() return tf.constant(1) end)
    local b = tf.name_scope("S/", function() return tf.constant(1) end)
    assert.are.equal("S/Const", a.op.name)
    assert.are.equal("S/Const_1", b.op.name)
  end)

  it("restores the outer scope when the callback raises", function()
    local ok = pcall(tf.name_scope, "Broken", function() error("boom") end)
    assert.is_false(ok)
    assert.are.equal("Const", tf.constant(1).op.name)
  end)

  it("restores the outer scope when a `<close>` block raises", function()
    local ok = pcall(function()
      local _ <close> = tf.name_scope("Broken")
      error("boom")
    end)
    assert.is_false(ok)
    assert.are.equal("Const", tf.constant(1).op.name)
  end)

  it("lets tensors be looked up by their scoped name", function()
    local m = tf.name_scope("Scope1", function() return tf.mul(2, 3) end)
    assert.are.equal(m, tf.get_default_graph():get_tensor_by_name("Scope1/Mul:0"))
  end)
end)

describe("variable names", function()
  it("names a variable's tensor 'my_variable:0' from the name option", function()
    local v = tf.Variable(1, { name = "my_variable" })
    assert.are.equal("my_variable:0", v.name)
    assert.are.equal("my_variable", v.op.name)
  end)

  it("takes a string in the options place as the name", function()
    assert.are.equal("my_variable:0", tf.Variable(1, "my_variable").name)
  end)

  it("uniquifies variable names", function()
    assert.are.equal("v:0", tf.Variable(1, "v").name)
    assert.are.equal("v_1:0", tf.Variable(1, "v").name)
    assert.are.equal("Variable:0", tf.Variable(1).name)
    assert.are.equal("Variable_1:0", tf.Variable(1).name)
  end)

  it("puts a variable's initializer under the variable's name", function()
    local v = tf.Variable(1, "w")
    assert.are.equal("w/Assign", v.initializer.name)
  end)

  it("places variables inside the enclosing name scope", function()
    local v = tf.name_scope("layer1", function() return tf.Variable(1, "weights") end)
    assert.are.equal("layer1/weights:0", v.name)
  end)
end)
