-- The C module's argument layer (moonflow.core) with values the C API
-- cannot take as they are: negative lengths, strings with NUL bytes,
-- names over the C limit, special files as checkpoints. Each is an error
-- naming the function or argument, never a crash, a truncation or a hang.
local core = require("moonflow.core")

local function neg_len() return setmetatable({}, {__len = function() return -5 end}) end

describe("moonflow.core arguments", function()
  it("refuses a negative __len in session_run's and checkpoint's tables", function()
    local g = core.graph_new()
    local s = core.session_new(g)
    for _, arg in ipairs({2, 4, 5}) do -- feed values are counted by the feeds
      local args = {s, {}, {}, {}, {}}
      args[arg] = neg_len()
      local ok, err = pcall(core.session_run, table.unpack(args, 1, 5))
      assert.is_false(ok)
      assert.matches("session_run: argument #" .. arg .. " has length %-5", err)
    end
    local ok, err = pcall(core.checkpoint_save, s, neg_len(), neg_len(), "/tmp/x")
    assert.is_false(ok)
    assert.matches("checkpoint: argument #2 has length %-5", err)
    ok, err = pcall(core.gradients, g, neg_len(), {})
    assert.is_false(ok)
    assert.matches("length out of range", err)
  end)

  it("refuses strings with a NUL byte instead of cutting them", function()
    local g = core.graph_new()
    for _, call in ipairs({
      function() return core.graph_unique_name(g, "a\0b") end,
      function() return core.graph_op_id_by_name(g, "a\0b") end,
      function() return core.op_type_exists("Add\0junk") end,
      function() return core.op_new(g, "NoOp", "n\0m", {}, {}, {}) end,
      function() return core.op_new(g, "NoOp\0x", "n", {}, {}, {}) end,
    }) do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("NUL byte", err)
    end
    local s = core.session_new(g)
    local ok, err = pcall(core.checkpoint_save, s, {}, {}, "/tmp/ckpt\0.x")
    assert.is_false(ok)
    assert.matches("NUL byte", err)
  end)

  it("refuses names over 1023 bytes instead of cutting them", function()
    local ok, err = pcall(core.graph_unique_name, core.graph_new(), ("a"):rep(1024))
    assert.is_false(ok)
    assert.matches("at most 1023 bytes", err)
    local cg = core.graph_new()
    assert.equals(("b"):rep(1023), core.graph_unique_name(cg, ("b"):rep(1023)))
    ok, err = pcall(core.op_new, cg, "NoOp", ("c"):rep(1024), {}, {}, {})
    assert.is_false(ok)
    assert.matches("at most 1023 bytes", err)
  end)

  it("refuses to restore from a FIFO, without waiting for a writer", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(os.execute("mkdir " .. dir .. " && mkfifo " .. dir .. "/ckpt"))
    local g = core.graph_new()
    local v = core.op_new(g, "VariableV2", "v", {}, {}, {"dtype", "type", "float32", "shape", "shape", {2}})
    local s = core.session_new(g)
    local t0 = os.time()
    local ok, err = pcall(core.checkpoint_restore, s, {v}, {"v"}, dir .. "/ckpt")
    os.execute("rm -r " .. dir)
    assert.is_false(ok)
    assert.matches("not a regular file", err)
    assert.is_true(os.time() - t0 < 5)
  end)
end)
