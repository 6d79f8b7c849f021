-- Devices: tf.device names validated when an op is created, placement with
-- and without soft placement, copies at device boundaries, fetches in host
-- memory, variables and their updates on a device, memory statistics, and
-- introspection. The test device (/device:TEST:0, CPU-backed, memory
-- poisoned with NaN) exists when MOONFLOW_TEST_DEVICE is set, as
-- scripts/test.sh does for this spec; without it those parts are pending.
local tf = require("moonflow")
local P = dofile("tests/spec/support/process.lua")

local TEST_DEVICE = false
for _, d in ipairs(tf.Session():list_devices()) do
  if d.device_type == "TEST" then TEST_DEVICE = true end
end
local function with_test_device(name, fn)
  if TEST_DEVICE then
    it(name, fn)
  else
    pending(name .. " (needs MOONFLOW_TEST_DEVICE=1)")
  end
end

local function errmsg(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function random_matrix(r, c, seed)
  math.randomseed(seed)
  local m = {}
  for i = 1, r do
    m[i] = {}
    for j = 1, c do m[i][j] = math.random() * 2 - 1 end
  end
  return m
end

-- Runs a Lua snippet in a fresh process with the given environment prefix.
local function lua_child(env, code)
  local f = os.tmpname()
  local h = assert(io.open(f, "w"))
  h:write(code)
  h:close()
  local out, ok = P.sh(env .. " lua5.4 " .. f)
  os.remove(f)
  return out, ok
end

describe("tf.device", function()
  before_each(function() tf.reset_default_graph() end)

  it("accepts TensorFlow's spellings and keeps the canonical one", function()
    local names = {
      ["/cpu:0"] = "/device:CPU:0", ["/device:CPU:0"] = "/device:CPU:0",
      ["CPU:0"] = "/device:CPU:0", ["/gpu:1"] = "/device:GPU:1",
      ["/device:GPU:*"] = "/device:GPU:*", ["/GPU:0"] = "/device:GPU:0",
      ["/job:localhost/replica:0/task:0/device:CPU:0"] = "/device:CPU:0",
    }
    for spelled, canonical in pairs(names) do
      local c = tf.device(spelled, function() return tf.constant(1) end)
      assert.are.equal(canonical, c.op.device, spelled)
    end
  end)

  it("merges nested scopes as TensorFlow does; nil clears", function()
    local a, b, c
    tf.device("/job:localhost", function()
      tf.device("/gpu:1", function()
        a = tf.constant(1)
        tf.device("/cpu:0", function() b = tf.constant(2) end)
        tf.device(nil, function() c = tf.constant(3) end)
      end)
    end)
    assert.are.equal("/device:GPU:1", a.op.device)
    assert.are.equal("/device:CPU:0", b.op.device)
    assert.are.equal("", c.op.device)
    -- an inner scope that leaves the index open keeps the outer one
    local d = tf.device("/gpu:1", function() return tf.device("/device:GPU", function() return tf.constant(4) end) end)
    assert.are.equal("/device:GPU:1", d.op.device)
  end)

  it("refuses a malformed or foreign device name when the op is created, naming the op and line", function()
    local cases = {
      ["/gpu:x"] = "is not a device name", ["/tpu:0"] = "unknown device type 'tpu'",
      ["/job:worker/cpu:0"] = "one process", ["/replica:3/cpu:0"] = "only replica 0",
      ["//cpu:0"] = "is not a device name",
    }
    for spelled, why in pairs(cases) do
      local err = errmsg(function() tf.device(spelled, function() return tf.constant(1, { name = "k" }) end) end)
      assert.truthy(err:find(why, 1, true), spelled .. ": " .. err)
      assert.truthy(err:find("Const 'k", 1, true), err)
      assert.truthy(err:find("device_spec.lua:%d+"), err)
    end
    assert.truthy(errmsg(function() tf.device(42, function() end) end):find("device name", 1, true))
  end)

  it("makes a device that does not exist a run error naming the op, its line and the device", function()
    local x = tf.constant({ 1, 2, 3 })
    local y = tf.device("/gpu:7", function() return tf.negative(x, "negated") end)
    local sess = tf.Session()
    local err = errmsg(function() sess:run(y) end)
    assert.truthy(err:find("Neg 'negated'", 1, true), err)
    assert.truthy(err:find("device_spec.lua:%d+"), err)
    assert.truthy(err:find("/device:GPU:7", 1, true), err)
    assert.truthy(err:find("allow_soft_placement", 1, true), err)
  end)

  it("falls back to the default device under allow_soft_placement, with the same result", function()
    local m = random_matrix(3, 4, 11)
    local x = tf.constant(m, { dtype = "float64" })
    local y = tf.device("/gpu:7", function() return tf.reduce_sum(tf.matmul(x, x, { transpose_b = true })) end)
    local soft = tf.Session { config = { allow_soft_placement = true } }
    local want = 0
    for i = 1, 3 do for j = 1, 3 do for k = 1, 4 do want = want + m[i][k] * m[j][k] end end end
    assert.is_true(math.abs(soft:run(y):item() - want) < 1e-12)
  end)

  it("logs each op's device once under log_device_placement", function()
    local out, ok = lua_child("", [[
      local tf = require("moonflow")
      local y = tf.device("/cpu:0", function()
        return tf.add(tf.constant(1, {name = "one"}), tf.constant(2, {name = "two"}), "sum")
      end)
      local sess = tf.Session{config = {log_device_placement = true}}
      sess:run(y); sess:run(y)
    ]])
    assert.is_true(ok, out)
    local _, n = out:gsub("sum: %(Add%): /job:localhost/replica:0/task:0/device:CPU:0", "")
    assert.are.equal(1, n, out)
    assert.truthy(out:find("one: (Const): /job:localhost", 1, true), out)
  end)

  it("refuses non-boolean placement options", function()
    local err = errmsg(function() tf.Session { config = { allow_soft_placement = 1 } } end)
    assert.truthy(err:find("allow_soft_placement must be a boolean", 1, true), err)
    err = errmsg(function() tf.Session { config = { allow_tf32 = "yes" } } end)
    assert.truthy(err:find("allow_tf32 must be a boolean", 1, true), err)
  end)

  -- TF32 changes GPU float32 products only (10-bit mantissas); elsewhere
  -- the numbers are the same.
  it("takes allow_tf32, off by default", function()
    local x = tf.constant(random_matrix(4, 3, 11))
    local y = tf.matmul(x, x, { transpose_b = true })
    local plain = tf.Session():run(y):totable()
    local tf32 = tf.Session { config = { allow_tf32 = true } }:run(y):totable()
    local tol = tf.test.is_gpu_available() and 1e-2 or 0
    for i = 1, 4 do
      for j = 1, 4 do assert(math.abs(plain[i][j] - tf32[i][j]) <= tol * math.max(1, math.abs(plain[i][j]))) end
    end
  end)
end)

describe("devices and kernels", function()
  it("lists the CPU first, with TensorFlow's full names", function()
    local devs = tf.Session():list_devices()
    assert.are.equal("/job:localhost/replica:0/task:0/device:CPU:0", devs[1].name)
    assert.are.equal("CPU", devs[1].device_type)
    assert.are.equal(tf.test.is_gpu_available(), (function()
      for _, d in ipairs(devs) do if d.device_type == "GPU" then return true end end
      return false
    end)())
  end)

  it("gives every op type a CPU kernel in tf.sysconfig.op_kernels()", function()
    local n = 0
    for op_type, backends in pairs(tf.sysconfig.op_kernels()) do
      assert.are.equal("cpu", backends[1], op_type)
      n = n + 1
    end
    assert.is_true(n > 100, "op types: " .. n)
  end)

  it("counts the bytes of live buffers per device, and trim gives cached ones back", function()
    local cpu = "/job:localhost/replica:0/task:0/device:CPU:0"
    collectgarbage()
    local before = tf.sysconfig.memory_stats()[cpu]
    local big = tf.Session():run(tf.fill({ 1000, 1000 }, 1.5)) -- 4 MB stays alive in `big`
    local during = tf.sysconfig.memory_stats()[cpu]
    assert.is_true(during.bytes_in_use >= before.bytes_in_use + 4000000,
                   during.bytes_in_use .. " vs " .. before.bytes_in_use)
    assert.is_true(during.peak_bytes_in_use >= during.bytes_in_use)
    assert.are.equal(1.5, big[1000][1000])
    big = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    local after = tf.sysconfig.memory_stats()[cpu]
    assert.is_true(after.bytes_in_use <= during.bytes_in_use - 4000000)
    tf.sysconfig.allocator_trim()
    assert.are.equal(0, tf.sysconfig.memory_stats()[cpu].bytes_cached)
  end)
end)

describe("the test device", function()
  local TEST = "/device:TEST:0"
  before_each(function() tf.reset_default_graph() end)

  with_test_device("is listed, with the CUDA kernels' host build as its kernels", function()
    local names = {}
    for _, d in ipairs(tf.Session():list_devices()) do names[d.device_type] = d.name end
    assert.are.equal("/job:localhost/replica:0/task:0/device:TEST:0", names.TEST)
    local k = tf.sysconfig.op_kernels()
    local want = tf.sysconfig.cuda_built() and { "cpu", "cuda", "test" } or { "cpu", "test" }
    assert.are.same(want, k.MatMul)
    assert.are.same(want, k.RandomNormal)
  end)

  with_test_device("computes what the CPU computes, across device boundaries, and fetches to the host", function()
    local m = random_matrix(5, 4, 3)
    local x = tf.placeholder("float32", { -1, 4 })
    local w = tf.device("/cpu:0", function() return tf.random_normal({ 4, 3 }, { seed = 7 }) end)
    local function model() return tf.nn.softmax(tf.nn.relu(tf.matmul(x, w)) + 0.5) end
    local on_cpu = model()
    local on_test = tf.device(TEST, model)
    local sess = tf.Session()
    local r = sess:run({ on_cpu, on_test }, { [x] = m })
    local a, b = r[1]:totable(), r[2]:totable()
    for i = 1, 5 do
      for j = 1, 3 do
        assert(math.abs(a[i][j] - b[i][j]) <= 1e-6, "float32 rounding apart at most")
        assert.is_true(b[i][j] == b[i][j], "NaN: a poisoned value leaked")
      end
    end
  end)

  -- Every op type has a kernel there; MOONFLOW_TEST_DEVICE_WITHOUT takes one away.
  with_test_device("refuses an op without a kernel there unless placement is soft", function()
    local out, ok = lua_child("MOONFLOW_TEST_DEVICE=1 MOONFLOW_TEST_DEVICE_WITHOUT=RandomUniform", [[
      local tf = require("moonflow")
      local r = tf.device("/device:TEST:0", function() return tf.random_uniform({ 2 }, { seed = 1, name = "noise" }) end)
      local ok, err = pcall(function() tf.Session():run(r) end)
      assert(not ok)
      print(err)
      print("soft: " .. #tf.Session { config = { allow_soft_placement = true } }:run(r))
    ]])
    assert.is_true(ok, out)
    assert.truthy(out:find("RandomUniform 'noise'", 1, true), out)
    assert.truthy(out:find("no kernel for TEST", 1, true), out)
    assert.truthy(out:find("it has: cpu", 1, true), out)
    assert.truthy(out:find("soft: 2", 1, true), out)
  end)

  with_test_device("keeps variables there; reads, assignments and optimizer updates follow them", function()
    local out, ok = lua_child("MOONFLOW_TEST_DEVICE=1", [[
      local tf = require("moonflow")
      local w
      tf.device("/device:TEST:0", function() w = tf.Variable({{1.0, 2.0}, {3.0, 4.0}}, "w") end)
      local loss = tf.reduce_sum(tf.square(w))
      local step = tf.train.GradientDescentOptimizer(0.25):minimize(loss)
      local sess = tf.Session{config = {log_device_placement = true}}
      sess:run(tf.global_variables_initializer())
      sess:run(step)
      local v = sess:run(w)
      print(string.format("w = %g %g %g %g", v[1][1], v[1][2], v[2][1], v[2][2]))
    ]])
    assert.is_true(ok, out)
    -- w <- w - 0.25 * 2w = w / 2
    assert.truthy(out:find("w = 0.5 1 1.5 2", 1, true), out)
    assert.truthy(out:find("w: (VariableV2): /job:localhost/replica:0/task:0/device:TEST:0", 1, true), out)
    assert.truthy(out:find("w/Assign: (Assign): /job:localhost/replica:0/task:0/device:TEST:0", 1, true), out)
    assert.truthy(out:find("ApplyGradientDescent): /job:localhost/replica:0/task:0/device:TEST:0", 1, true), out)
  end)

  with_test_device("saves and restores variables that live there", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local w = tf.device(TEST, function() return tf.Variable(random_matrix(3, 2, 5), "w") end)
    local saver = tf.train.Saver()
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local want = sess:run(w):totable()
    saver:save(sess, dir .. "/model")
    local fresh = tf.Session()
    saver:restore(fresh, dir .. "/model")
    assert.are.same(want, fresh:run(w):totable())
    assert(os.execute("rm -rf " .. dir))
  end)

  -- TensorFlow's CudnnLSTM saved weights only a GPU could read; here a
  -- model trained on the device restores in a process without it (a
  -- CPU-only machine), trains on there, and goes back.
  with_test_device("checkpoints a model trained there for a CPU-only process, and back", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local env = string.format("LUA_PATH='%s' LUA_CPATH='%s'", package.path, package.cpath)
    local function run(test_device, device, mode)
      local out, ok = P.sh(string.format("env -u MOONFLOW_TEST_DEVICE %s %s lua5.4 "
                                         .. "tests/spec/support/lstm_checkpoint.lua '%s' %s %s/model",
                                         env, test_device and "MOONFLOW_TEST_DEVICE=1" or "", device, mode, dir))
      assert(ok, out)
      return tonumber(out:match("loss (%S+)")), out
    end
    local function close(a, b) assert(math.abs(a - b) <= 1e-5 * math.max(1, math.abs(a)), a .. " vs " .. b) end
    local trained = run(true, TEST, "train")
    close(trained, run(false, "", "loss"))
    local resumed = run(false, "", "resume")
    assert(resumed < trained, "training on the CPU went on from the device's weights")
    close(resumed, run(true, TEST, "loss"))
    assert(os.execute("rm -rf " .. dir))
  end)

  with_test_device("trains as on the CPU, and bit for bit from run to run", function()
    local data = random_matrix(16, 3, 9)
    local function train(device)
      tf.reset_default_graph()
      local losses = {}
      local function build()
        local x = tf.constant(data)
        local h = tf.layers.dense(x, 8, { activation = tf.nn.relu,
                                          kernel_initializer = tf.glorot_uniform_initializer { seed = 1 } })
        local y = tf.layers.dense(h, 1, { kernel_initializer = tf.glorot_uniform_initializer { seed = 2 } })
        local loss = tf.reduce_mean(tf.square(y - 0.5))
        return loss, tf.train.AdamOptimizer(0.05):minimize(loss)
      end
      local loss, step
      if device then
        loss, step = tf.device(device, build)
      else
        loss, step = build()
      end
      local sess = tf.Session { config = { allow_soft_placement = true } }
      sess:run(tf.global_variables_initializer())
      for i = 1, 20 do losses[i] = sess:run({ loss, step })[1]:item() end
      return losses
    end
    -- The device's kernels are the CUDA ones: float32 rounding apart from the
    -- CPU's, and bit for bit the same from run to run.
    local cpu, test, again = train(nil), train(TEST), train(TEST)
    for i = 1, 20 do
      assert(math.abs(cpu[i] - test[i]) <= 1e-4 * math.abs(cpu[i]), "step " .. i)
      assert.are.equal(test[i], again[i], "step " .. i)
    end
    assert.is_true(cpu[20] < cpu[1])
  end)

  with_test_device("creates an optimizer's slots where the variable lives, whatever the scope", function()
    local w = tf.device(TEST, function() return tf.Variable({ 1.0, -2.0 }, "w") end)
    local step = tf.device("/cpu:0", function()
      return tf.train.MomentumOptimizer(0.5, 0.9):minimize(tf.reduce_sum(tf.square(w)))
    end)
    local opt_slot = tf.get_default_graph():get_operation_by_name("w/Momentum")
    assert.are.equal("/device:TEST:0", opt_slot.device)
    local sess = tf.Session() -- no soft placement needed: updates go where their variable lives
    sess:run(tf.global_variables_initializer())
    sess:run(step)
    -- accum = grad = 2w; w <- w - 0.5 * accum = w - w = 0
    assert.are.same({ 0, 0 }, sess:run(w):totable())
  end)

  with_test_device("refuses an update asked for elsewhere than its variable, unless placement is soft", function()
    local w = tf.device(TEST, function() return tf.Variable({ 1.0, 2.0 }, "w") end)
    local grow = tf.device("/cpu:0", function() return w:assign_add({ 1.0, 1.0 }) end)
    local strict = tf.Session()
    strict:run(w.initializer)
    local err = errmsg(function() strict:run(grow) end)
    assert.truthy(err:find("lives on /job:localhost/replica:0/task:0/device:TEST:0", 1, true), err)
    local soft = tf.Session { config = { allow_soft_placement = true } }
    soft:run(w.initializer)
    assert.are.same({ 2, 3 }, soft:run(grow):totable())
  end)

  with_test_device("reads a variable where it lives, whatever the scope", function()
    local w = tf.device(TEST, function() return tf.Variable({ 1.0, 2.0 }, "w") end)
    local grow = w:assign_add({ 1.0, 1.0 })
    local after = tf.device("/cpu:0", function()
      return tf.control_dependencies({ grow }, function() return w * 10 end) -- reads w after grow
    end)
    local sess = tf.Session()
    sess:run(w.initializer)
    assert.are.same({ 20, 30 }, sess:run(after):totable())
    assert.are.same({ 2, 3 }, sess:run(tf.device("/cpu:0", function() return w:read_value() end)):totable())
  end)

  with_test_device("as the default device, takes variables that something computes with there", function()
    local out, ok = lua_child("MOONFLOW_TEST_DEVICE=prefer", [[
      local tf = require("moonflow")
      local used = tf.Variable({{1.0, 2.0}}, "used")
      local kept = tf.Variable({1.0, 2.0}, "kept")
      local y = tf.matmul(used, used, {transpose_b = true})
      local z = tf.identity(kept)
      local sess = tf.Session{config = {log_device_placement = true}}
      sess:run(tf.global_variables_initializer())
      sess:run({y, z})
    ]])
    assert.is_true(ok, out)
    assert.truthy(out:find("used: (VariableV2): /job:localhost/replica:0/task:0/device:TEST:0", 1, true), out)
    assert.truthy(out:find("kept: (VariableV2): /job:localhost/replica:0/task:0/device:CPU:0", 1, true), out)
  end)

  with_test_device("adds up more inputs than a host-memory mask has bits", function()
    local xs, want = {}, 0
    for i = 1, 40 do
      xs[i] = tf.constant({ i, 2 * i })
      want = want + i
    end
    local sum = tf.device(TEST, function() return tf.add_n(xs) end)
    assert.are.same({ want, 2 * want }, tf.Session():run(sum):totable())
  end)

  with_test_device("counts its own memory", function()
    local name = "/job:localhost/replica:0/task:0/device:TEST:0"
    local v = tf.device(TEST, function() return tf.Variable(tf.zeros({ 256, 256 }), "big") end)
    local sess = tf.Session()
    local before = tf.sysconfig.memory_stats()[name].bytes_in_use
    sess:run(v.initializer)
    local after = tf.sysconfig.memory_stats()[name].bytes_in_use
    assert.is_true(after >= before + 256 * 256 * 4, before .. " -> " .. after)
    sess:close()
    assert.is_true(tf.sysconfig.memory_stats()[name].bytes_in_use <= before)
  end)
end)
