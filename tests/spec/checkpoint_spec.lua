-- Checkpoints: tf.train.Saver save / restore, global_step naming, the
-- "checkpoint" index and latest_checkpoint, max_to_keep, every corruption
-- case (a clear error, and the variables keep their values), atomic writes,
-- and the file read back independently with lua-cjson as plain safetensors.
local tf = require("moonflow")
local P = dofile("tests/spec/support/process.lua")
local read = P.read_file
local write = P.write_file
local new_dir = P.tmpdir
local cjson = require("cjson")
local O = dofile("tests/spec/support/oracle.lua")

math.randomseed(4242)

-- ---------------------------------------------------------------- helpers

local function remove_dir(d) os.execute("rm -rf '" .. d .. "'") end

local list_dir = dofile("tests/spec/support/process.lua").list_dir

-- The flat values of a fetched Array.
local function flat(a)
  local t = {}
  for i = 1, a:numel() do t[i] = a:flat(i) end
  return t
end

-- Raises unless fn fails with a message containing `text` (plain).
local function fails_with(text, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error containing: " .. text)
  err = tostring(err)
  assert(err:find(text, 1, true), "expected an error containing:\n  " .. text .. "\ngot:\n  " .. err)
  return err
end

-- zlib's CRC-32 in plain Lua: the oracle for moonflow_crc32.
local function crc32(s)
  local crc = 0xffffffff
  for i = 1, #s do
    crc = crc ~ s:byte(i)
    for _ = 1, 8 do crc = (crc >> 1) ~ (0xedb88320 & -(crc & 1)) end
  end
  return (~crc) & 0xffffffff
end

-- The model: variables of three dtypes and several shapes, with values from
-- the oracle (float32-rounded, so what comes back must be equal).
local SPECS = {
  { name = "w", dtype = "float32", shape = { 2, 3 }, st = "F32", fmt = "<f" },
  { name = "b", dtype = "float32", shape = { 3 }, st = "F32", fmt = "<f" },
  { name = "cube", dtype = "float32", shape = { 2, 2, 2 }, st = "F32", fmt = "<f" },
  { name = "d", dtype = "float64", shape = { 4 }, st = "F64", fmt = "<d" },
  { name = "k", dtype = "int32", shape = {}, st = "I32", fmt = "<i4" },
  { name = "ids", dtype = "int32", shape = { 5 }, st = "I32", fmt = "<i4" },
}

local function values_for(spec)
  local n = O.numel(spec.shape)
  if spec.dtype == "int32" then return O.rand_ints(n, -2 ^ 31, 2 ^ 31 - 1) end
  return O.rand_floats(n, -1e3, 1e3, spec.dtype == "float32")
end

-- Nests a flat list into `shape` for tf.Variable.
local function nest(flat_vals, shape)
  if #shape == 0 then return flat_vals[1] end
  local pos = 0
  local function build(d)
    local t = {}
    for i = 1, shape[d] do
      if d == #shape then pos = pos + 1; t[i] = flat_vals[pos] else t[i] = build(d + 1) end
    end
    return t
  end
  return build(1)
end

-- Builds the model in the default graph: {vars = {name = Variable}, init}.
local function build(values)
  local vars = {}
  for _, s in ipairs(SPECS) do
    vars[s.name] = tf.Variable(nest(values[s.name], s.shape), { name = s.name, dtype = s.dtype })
  end
  return { vars = vars, init = tf.global_variables_initializer() }
end

local function random_values()
  local v = {}
  for _, s in ipairs(SPECS) do v[s.name] = values_for(s) end
  return v
end

local function current(sess, m)
  local v = {}
  for _, s in ipairs(SPECS) do v[s.name] = flat(sess:run(m.vars[s.name])) end
  return v
end

-- Sets every variable to `values` through assign ops.
local function assign_all(sess, m, values)
  local ops = {}
  for _, s in ipairs(SPECS) do ops[#ops + 1] = m.vars[s.name]:assign(nest(values[s.name], s.shape)) end
  sess:run(ops)
end

before_each(function() tf.reset_default_graph() end)

-- ---------------------------------------------------------------- save and restore

describe("tf.train.Saver", function()
  local dir
  before_each(function() dir = new_dir() end)
  after_each(function() remove_dir(dir) end)

  it("restores float32, float64 and int32 variables of several shapes exactly", function()
    local a, b = random_values(), random_values()
    local m = build(a)
    local sess <close> = tf.Session()
    sess:run(m.init)
    local saver = tf.train.Saver()
    assert.are.equal(dir .. "/model", saver:save(sess, dir .. "/model"))
    assign_all(sess, m, b)
    assert.are.same(b, current(sess, m))
    saver:restore(sess, dir .. "/model")
    assert.are.same(a, current(sess, m))
  end)

  it("restores into a fresh session of the same graph", function()
    local a = random_values()
    local m = build(a)
    local sess <close> = tf.Session()
    sess:run(m.init)
    local saver = tf.train.Saver()
    local path = saver:save(sess, dir .. "/model")
    local fresh <close> = tf.Session()
    saver:restore(fresh, path)
    assert.are.same(a, current(fresh, m))
  end)

  it("restores into a freshly built identical graph", function()
    local a = random_values()
    local m = build(a)
    local sess <close> = tf.Session()
    sess:run(m.init)
    local path = tf.train.Saver():save(sess, dir .. "/model")
    sess:close()

    tf.reset_default_graph()
    local m2 = build(random_values())
    local sess2 <close> = tf.Session()
    tf.train.Saver():restore(sess2, path) -- no initializer run: restore initializes
    assert.are.same(a, current(sess2, m2))
  end)

  it("saves a list of Variables under their op names, or a table under its keys", function()
    local a = random_values()
    local m = build(a)
    local sess <close> = tf.Session()
    sess:run(m.init)
    tf.train.Saver({ m.vars.w, m.vars.d }):save(sess, dir .. "/list")
    tf.train.Saver({ weights = m.vars.w }):save(sess, dir .. "/map")
    local function names(path)
      local bytes = read(path)
      local header = cjson.decode(bytes:sub(9, 8 + string.unpack("<I8", bytes)))
      local t = {}
      for k in pairs(header) do if k ~= "__metadata__" then t[#t + 1] = k end end
      table.sort(t)
      return t
    end
    assert.are.same({ "d", "w" }, names(dir .. "/list"))
    assert.are.same({ "weights" }, names(dir .. "/map"))
    local w2 = tf.Variable(tf.zeros({ 2, 3 }), { name = "w2" })
    sess:run(w2.initializer)
    tf.train.Saver({ weights = w2 }):restore(sess, dir .. "/map")
    assert.are.same(a.w, flat(sess:run(w2)))
  end)

  it("refuses an uninitialized variable, naming it, and writes nothing", function()
    build(random_values())
    local sess <close> = tf.Session()
    fails_with("variable 'w' is uninitialized", function() tf.train.Saver():save(sess, dir .. "/model") end)
    assert.are.same({}, list_dir(dir))
  end)

  it("refuses an empty variable list", function()
    fails_with("no variables to save", function() tf.train.Saver() end)
  end)
end)

-- ---------------------------------------------------------------- global step, index, max_to_keep

describe("checkpoint files and the index", function()
  local dir
  -- the files beside the checkpoints, less the Saver's "<checkpoint>.meta"
  -- graphs (graph_io_spec checks those, written and pruned with them)
  local list_all = list_dir
  local function list_dir(d) -- luacheck: ignore 431
    local out = {}
    for _, name in ipairs(list_all(d)) do
      if not name:find("%.meta$") then out[#out + 1] = name end
    end
    return out
  end
  before_each(function() dir = new_dir() end)
  after_each(function() remove_dir(dir) end)

  it("names files <path>-<global_step> and records them in the checkpoint index", function()
    local m = build(random_values())
    local step = tf.train.get_or_create_global_step()
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local saver = tf.train.Saver()
    assert.is_nil(tf.train.latest_checkpoint(dir))
    assert.are.equal(dir .. "/model-1000", saver:save(sess, dir .. "/model", { global_step = 1000 }))
    assert.are.equal(dir .. "/model-7", saver:save(sess, dir .. "/model", 7))
    sess:run(step:assign(42))
    assert.are.equal(dir .. "/model-42", saver:save(sess, dir .. "/model", { global_step = step }))
    assert.are.same({ "checkpoint", "model-1000", "model-42", "model-7" }, list_dir(dir))
    assert.are.equal('model_checkpoint_path: "model-42"\n' ..
                     'all_model_checkpoint_paths: "model-1000"\n' ..
                     'all_model_checkpoint_paths: "model-7"\n' ..
                     'all_model_checkpoint_paths: "model-42"\n', read(dir .. "/checkpoint"))
    assert.are.equal(dir .. "/model-42", tf.train.latest_checkpoint(dir))
    assert.are.equal(dir .. "/model-42", tf.train.latest_checkpoint(dir .. "/"))
    -- the latest checkpoint restores
    local before = current(sess, m)
    assign_all(sess, m, random_values())
    saver:restore(sess, tf.train.latest_checkpoint(dir))
    assert.are.same(before, current(sess, m))
  end)

  it("reads an index written by TensorFlow, and returns nil when the file is gone", function()
    write(dir .. "/checkpoint", 'model_checkpoint_path: "my model-5"\nall_model_checkpoint_paths: "my model-5"\n')
    assert.is_nil(tf.train.latest_checkpoint(dir))
    write(dir .. "/my model-5", "x")
    assert.are.equal(dir .. "/my model-5", tf.train.latest_checkpoint(dir))
    assert.is_nil(tf.train.latest_checkpoint(dir .. "/nowhere"))
  end)

  it("keeps max_to_keep checkpoints, deleting the oldest files", function()
    build(random_values())
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local saver = tf.train.Saver(nil, { max_to_keep = 2 })
    for step = 1, 4 do saver:save(sess, dir .. "/model", step) end
    assert.are.same({ "checkpoint", "model-3", "model-4" }, list_dir(dir))
    assert.are.equal('model_checkpoint_path: "model-4"\n' ..
                     'all_model_checkpoint_paths: "model-3"\n' ..
                     'all_model_checkpoint_paths: "model-4"\n', read(dir .. "/checkpoint"))
    assert.are.same({ dir .. "/model-3", dir .. "/model-4" }, saver:last_checkpoints())
    -- the default keeps 5; saving a step again moves it to the end
    local five = tf.train.Saver()
    for step = 11, 17 do five:save(sess, dir .. "/m", step) end
    five:save(sess, dir .. "/m", 14)
    assert.are.same({ "checkpoint", "m-13", "m-14", "m-15", "m-16", "m-17", "model-3", "model-4" },
                    list_dir(dir))
    assert.are.equal(dir .. "/m-14", tf.train.latest_checkpoint(dir))
  end)

  it("prunes across restarts: a new Saver counts the index's checkpoints of its prefix", function()
    build(random_values())
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local first = tf.train.Saver(nil, { max_to_keep = 3 })
    for step = 1, 3 do first:save(sess, dir .. "/model", step) end
    tf.train.Saver():save(sess, dir .. "/best", 1) -- another prefix: never taken
    for step = 4, 5 do first:save(sess, dir .. "/model", step) end
    assert.are.same({ "best-1", "checkpoint", "model-3", "model-4", "model-5" }, list_dir(dir))
    -- a restart: a new saver (as in a new process) prunes what the first one left
    local second = tf.train.Saver(nil, { max_to_keep = 3 })
    second:save(sess, dir .. "/model", 6)
    assert.are.same({ "best-1", "checkpoint", "model-4", "model-5", "model-6" }, list_dir(dir))
    assert.are.same({ dir .. "/model-4", dir .. "/model-5", dir .. "/model-6" }, second:last_checkpoints())
    assert.are.equal('model_checkpoint_path: "model-6"\n' ..
                     'all_model_checkpoint_paths: "model-4"\n' ..
                     'all_model_checkpoint_paths: "model-5"\n' ..
                     'all_model_checkpoint_paths: "model-6"\n', read(dir .. "/checkpoint"))
    -- a restart that saves a step again (resumed from model-5): it moves to the end
    local third = tf.train.Saver(nil, { max_to_keep = 2 })
    third:save(sess, dir .. "/model", 5)
    assert.are.same({ "best-1", "checkpoint", "model-5", "model-6" }, list_dir(dir))
    assert.are.same({ dir .. "/model-6", dir .. "/model-5" }, third:last_checkpoints())
    assert.are.equal(dir .. "/model-5", tf.train.latest_checkpoint(dir))
    -- listed but already deleted (a save killed while pruning): skipped
    os.remove(dir .. "/model-6")
    local fourth = tf.train.Saver(nil, { max_to_keep = 2 })
    fourth:save(sess, dir .. "/model", 7)
    assert.are.same({ dir .. "/model-5", dir .. "/model-7" }, fourth:last_checkpoints())
  end)

  it("recover_last_checkpoints and set_last_checkpoints set the list (TF's)", function()
    build(random_values())
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local saver = tf.train.Saver(nil, { max_to_keep = 2 })
    for step = 1, 2 do saver:save(sess, dir .. "/model", step) end
    local other = tf.train.Saver(nil, { max_to_keep = 2 })
    other:recover_last_checkpoints({ dir .. "/model-1", dir .. "/gone", dir .. "/model-2" })
    assert.are.same({ dir .. "/model-1", dir .. "/model-2" }, other:last_checkpoints())
    other:save(sess, dir .. "/model", 3)
    assert.are.same({ "checkpoint", "model-2", "model-3" }, list_dir(dir))
    -- an explicit list replaces the index's: model-2 is left alone
    local keep = tf.train.Saver(nil, { max_to_keep = 1 })
    keep:set_last_checkpoints({})
    keep:save(sess, dir .. "/model", 4)
    assert.are.same({ "checkpoint", "model-2", "model-3", "model-4" }, list_dir(dir))
    fails_with("saver:recover_last_checkpoints: checkpoint_paths must be a list",
               function() other:recover_last_checkpoints("model-1") end)
    fails_with("saver:set_last_checkpoints: checkpoint_paths[2] must be a path",
               function() other:set_last_checkpoints({ "a", 2 }) end)
  end)

  it("removes the temporary files of saves killed mid-write, only those of dead processes", function()
    build(random_values())
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local function sh(cmd)
      local p = assert(io.popen(cmd))
      local out = p:read("a")
      p:close()
      return assert(tonumber(out))
    end
    local dead = sh("sh -c 'echo $$'") -- a shell that has exited: its pid names no process
    local own = sh("echo $PPID") -- this process, which is not saving now
    for _, name in ipairs({ "model-3.tmp." .. dead, "checkpoint.tmp." .. dead, "model-4.tmp." .. own,
                            "model-6.tmp.1", "other-1.tmp." .. dead }) do
      write(dir .. "/" .. name, "partial")
    end
    tf.train.Saver():save(sess, dir .. "/model", 5)
    -- pid 1 is alive (a concurrent writer, for all we know); other prefixes are not ours
    assert.are.same({ "checkpoint", "model-5", "model-6.tmp.1", "other-1.tmp." .. dead }, list_dir(dir))
  end)

  it("writes atomically: no temporary files are left, and a failed write leaves nothing", function()
    build(random_values())
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local saver = tf.train.Saver()
    for step = 1, 3 do saver:save(sess, dir .. "/model", step) end
    saver:save(sess, dir .. "/model", 3) -- over an existing file
    for _, name in ipairs(list_dir(dir)) do assert.is_nil(name:find("tmp", 1, true)) end
    local err = fails_with(dir .. "/missing/model", function() saver:save(sess, dir .. "/missing/model") end)
    assert.truthy(err:find("No such file or directory", 1, true))
    assert.are.same({ "checkpoint", "model-1", "model-2", "model-3" }, list_dir(dir))
  end)
end)

-- ---------------------------------------------------------------- corruption

describe("restoring a bad checkpoint", function()
  local dir, m, sess, saver, path, good, b
  before_each(function()
    dir = new_dir()
    m = build(random_values())
    sess = tf.Session()
    sess:run(m.init)
    saver = tf.train.Saver()
    path = saver:save(sess, dir .. "/model")
    good = read(path)
    b = random_values()
    assign_all(sess, m, b) -- the values every failed restore must keep
  end)
  after_each(function()
    sess:close()
    remove_dir(dir)
  end)

  local function refuses(text, bytes, restore_saver)
    if bytes then write(dir .. "/bad", bytes) end
    local err = fails_with(text, function() (restore_saver or saver):restore(sess, dir .. "/bad") end)
    assert.are.same(b, current(sess, m))
    return err
  end

  local header_len = function(bytes) return (string.unpack("<I8", bytes)) end

  it("refuses a truncated file", function()
    refuses("is the file truncated?", good:sub(1, #good - 10))
    refuses("exceeds the file size", good:sub(1, 8 + header_len(good) // 2))
    refuses("too short", good:sub(1, 5))
  end)

  it("refuses a flipped byte in the data", function()
    local i = #good - 2
    refuses("data checksum mismatch", good:sub(1, i - 1) .. string.char(good:byte(i) ~ 0x04) .. good:sub(i + 1))
  end)

  it("refuses a flipped byte in the header", function()
    -- a renamed tensor keeps the header valid JSON: the header checksum catches it
    local i = good:find('"cube"', 1, true) + 1
    local err = refuses("header checksum mismatch",
                        good:sub(1, i - 1) .. string.char(good:byte(i) ~ 0x01) .. good:sub(i + 1))
    assert.truthy(err:find(dir .. "/bad", 1, true))
    -- a changed dimension ({2, 3} -> {1, 3}) no longer matches the offsets
    local j = good:find('"shape":[2,3]', 1, true) + #'"shape":['
    refuses("(24 bytes) but its dtype F32 and shape need 12 bytes", good:sub(1, j - 1) .. "1" .. good:sub(j + 1))
    -- broken JSON
    local k = good:find('"dtype"', 1, true)
    refuses("not valid JSON", good:sub(1, k - 1) .. "#" .. good:sub(k + 1))
  end)

  it("refuses a checkpoint without a requested tensor, naming it", function()
    write(dir .. "/bad", good)
    local other = tf.train.Saver({ w = m.vars.w, bias = m.vars.b })
    refuses("has no tensor 'bias' (for variable 'b')", nil, other)
    refuses("has no tensor 'cube2' (for variable 'cube')", nil,
            tf.train.Saver({ w = m.vars.w, cube2 = m.vars.cube, d = m.vars.d }))
  end)

  it("refuses a shape mismatch, showing both shapes", function()
    write(dir .. "/bad", good)
    local wrong = tf.Variable(tf.zeros({ 3, 2 }), { name = "w_t" })
    sess:run(wrong.initializer)
    refuses("tensor 'w' has shape {2, 3} but variable 'w_t' has shape {3, 2}", nil,
            tf.train.Saver({ w = wrong, b = m.vars.b }))
    assert.are.same({ 0, 0, 0, 0, 0, 0 }, flat(sess:run(wrong)))
  end)

  it("refuses a dtype mismatch, showing both dtypes", function()
    write(dir .. "/bad", good)
    local wrong = tf.Variable(tf.zeros({ 2, 3 }, "float64"), { name = "w64" })
    sess:run(wrong.initializer)
    refuses("tensor 'w' is F32 (float32) but variable 'w64' is float64", nil,
            tf.train.Saver({ b = m.vars.b, w = wrong }))
    refuses("tensor 'ids' is I32 (int32) but variable 'd' is float64", nil,
            tf.train.Saver({ ids = m.vars.d }))
  end)

  it("refuses a file that is not a checkpoint", function()
    local bytes = {}
    for i = 1, 200 do bytes[i] = string.char(math.random(0, 255)) end
    refuses("not a safetensors checkpoint", table.concat(bytes))
    refuses("not a safetensors checkpoint", "")
    refuses("not a safetensors checkpoint", "Hello, this is a plain text file.\nNot a checkpoint.\n")
    refuses("not a safetensors checkpoint", string.pack("<I8", 12) .. "hello world!")
  end)

  it("refuses a missing file, naming it", function()
    local err = fails_with("not found", function() saver:restore(sess, dir .. "/nothing-here") end)
    assert.truthy(err:find(dir .. "/nothing-here", 1, true))
    assert.are.same(b, current(sess, m))
  end)
end)

-- ---------------------------------------------------------------- read by other tools

describe("the safetensors file", function()
  local dir
  before_each(function() dir = new_dir() end)
  after_each(function() remove_dir(dir) end)

  it("parses with lua-cjson: names, dtypes, shapes, offsets, checksums and raw data", function()
    local a = random_values()
    local m = build(a)
    local sess <close> = tf.Session()
    sess:run(m.init)
    local bytes = read(tf.train.Saver():save(sess, dir .. "/model"))

    local n = string.unpack("<I8", bytes)
    assert.is_true(8 + n <= #bytes)
    local header = cjson.decode(bytes:sub(9, 8 + n))
    local data = bytes:sub(9 + n)

    assert.are.equal("moonflow", header.__metadata__.format)
    assert.are.equal(string.format("%08x", crc32(data)), header.__metadata__.moonflow_crc32)
    assert.truthy(header.__metadata__.moonflow_header_crc32:match("^%x%x%x%x%x%x%x%x$"))

    local names, ranges = {}, {}
    for name, info in pairs(header) do
      if name ~= "__metadata__" then
        names[#names + 1] = name
        ranges[#ranges + 1] = info.data_offsets
      end
    end
    table.sort(names)
    local expected = {}
    for _, s in ipairs(SPECS) do expected[#expected + 1] = s.name end
    table.sort(expected)
    assert.are.same(expected, names)

    -- the tensors tile the data with no gaps
    table.sort(ranges, function(x, y) return x[1] < y[1] end)
    local at = 0
    for _, r in ipairs(ranges) do
      assert.are.equal(at, r[1])
      at = r[2]
    end
    assert.are.equal(#data, at)

    for _, s in ipairs(SPECS) do
      local info = header[s.name]
      assert.are.equal(s.st, info.dtype)
      assert.are.same(s.shape, info.shape)
      local size = string.packsize(s.fmt)
      assert.are.equal(O.numel(s.shape) * size, info.data_offsets[2] - info.data_offsets[1])
      local vals = {}
      for i = 1, O.numel(s.shape) do
        vals[i] = string.unpack(s.fmt, data, info.data_offsets[1] + (i - 1) * size + 1)
      end
      assert.are.same(a[s.name], vals)
    end
  end)

  it("loads a file written by another tool (lua-cjson, no moonflow metadata)", function()
    local w = { 1.5, -2.25, 3, 0.125, 1e-3, 7 }
    local ids = { 10, -20, 30, 2147483647, -2147483648 }
    local wdata, idata = {}, {}
    for i, x in ipairs(w) do wdata[i] = string.pack("<f", x) end
    for i, x in ipairs(ids) do idata[i] = string.pack("<i4", x) end
    local wbytes, ibytes = table.concat(wdata), table.concat(idata)
    local header = cjson.encode({
      __metadata__ = { format = "pt" },
      ids = { dtype = "I32", shape = { 5 }, data_offsets = { 0, #ibytes } },
      weights = { dtype = "F32", shape = { 2, 3 }, data_offsets = { #ibytes, #ibytes + #wbytes } },
    })
    header = header .. string.rep(" ", (8 - #header % 8) % 8)
    write(dir .. "/foreign.safetensors", string.pack("<I8", #header) .. header .. ibytes .. wbytes)

    local wv = tf.Variable(tf.zeros({ 2, 3 }), { name = "w" })
    local iv = tf.Variable(tf.zeros({ 5 }, "int32"), { name = "i" })
    local sess <close> = tf.Session()
    tf.train.Saver({ weights = wv, ids = iv }):restore(sess, dir .. "/foreign.safetensors")
    local got = flat(sess:run(wv))
    for i = 1, 6 do assert.are.equal(O.f32(w[i]), got[i]) end
    assert.are.same(ids, flat(sess:run(iv)))
    -- and lists: names sorted, shapes, dtypes
    assert.are.same({ { "ids", { 5 }, "int32" }, { "weights", { 2, 3 }, "float32" } },
                    tf.train.list_variables(dir .. "/foreign.safetensors"))
  end)

  it("tf.train.list_variables lists a checkpoint, or a directory's latest, without a session", function()
    local m = build(random_values())
    local sess <close> = tf.Session()
    sess:run(m.init)
    local saver = tf.train.Saver()
    saver:save(sess, dir .. "/model", { global_step = 1 })
    local path = saver:save(sess, dir .. "/model", { global_step = 2 })
    local want = {}
    for _, s in ipairs(SPECS) do want[#want + 1] = { s.name, s.shape, s.dtype } end
    table.sort(want, function(a, b) return a[1] < b[1] end)
    assert.are.same(want, tf.train.list_variables(path))
    assert.are.same(want, tf.train.list_variables(dir))
    assert.are.same(want, tf.train.list_variables(dir .. "/"))
    fails_with("tf.train.list_variables: checkpoint '" .. dir .. "/none' not found", tf.train.list_variables,
               dir .. "/none")
    fails_with("tf.train.list_variables: expected a checkpoint path or directory, got nil", tf.train.list_variables)
    write(dir .. "/junk", "not a checkpoint at all")
    fails_with("tf.train.list_variables: ", tf.train.list_variables, dir .. "/junk")
  end)
end)
