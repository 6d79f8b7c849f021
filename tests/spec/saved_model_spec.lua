-- tf.saved_model: simple_save / SavedModelBuilder write a directory that
-- mf_model_load (through tf.saved_model.load) reads back: outputs equal bit
-- for bit, signatures, tags, collections, the main op; every damaged part
-- is a clear error naming it.
local tf = require("moonflow")
local P = require("tests.spec.support.process")
local read = P.read_file
local write = P.write_file
local tmpdir = P.tmpdir

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok)
  return tostring(e)
end

-- Random float32 values in [-1, 1).
local function rand_matrix(r, c)
  local m = {}
  for i = 1, r do
    m[i] = {}
    for j = 1, c do m[i][j] = math.random() * 2 - 1 end
  end
  return tf.array(m, "float32")
end

-- A small model in a fresh graph: y = softmax(x·w + b), z = x·w.
local function build()
  local g = tf.Graph()
  local m = {}
  g:as_default(function()
    m.x = tf.placeholder(tf.float32, { -1, 3 }, "x")
    m.w = tf.Variable(tf.random_normal({ 3, 4 }), { name = "w" })
    m.b = tf.Variable(tf.random_uniform({ 4 }), { name = "b" })
    m.z = tf.matmul(m.x, m.w, { name = "z" })
    m.y = tf.nn.softmax(m.z + m.b, { name = "y" })
    m.init = tf.global_variables_initializer()
  end)
  m.g = g
  m.sess = tf.Session({ graph = g })
  m.sess:run(m.init)
  return m
end

describe("tf.saved_model", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("simple_save then load: the same outputs bit for bit, TF's layout and names", function()
    local m = build()
    local path = tf.saved_model.simple_save(m.sess, dir .. "/m", { x = m.x }, { y = m.y, z = m.z })
    assert.are.equal(dir .. "/m/saved_model.pb", path)
    assert.are.same({ "saved_model.pb", "variables" }, P.list_dir(dir .. "/m"))
    assert.are.same({ "variables.safetensors" }, P.list_dir(dir .. "/m/variables"))
    assert.are.same({ "m" }, P.list_dir(dir)) -- no temporary directory left
    local feed = rand_matrix(5, 3)
    local want = m.sess:run({ y = m.y, z = m.z }, { [m.x] = feed })
    local model <close> = tf.saved_model.load(dir .. "/m")
    local sig = model.signatures.serving_default
    assert.are.equal("tensorflow/serving/predict", sig.method_name)
    assert.are.equal("x:0", sig.inputs.x.name)
    assert.are.equal("y:0", sig.outputs.y.name)
    local got = sig({ x = feed })
    assert.are.same(want.y:totable(), got.y:totable())
    assert.are.same(want.z:totable(), got.z:totable())
    -- the variables' values and collections came along
    local names = {}
    for _, v in ipairs(model.graph:get_collection("trainable_variables")) do names[#names + 1] = v.name end
    assert.are.same({ "w:0", "b:0" }, names)
    assert.are.same(m.sess:run(m.w):totable(), model.session:run(model.graph:get_tensor_by_name("w:0")):totable())
    -- a missing feed and an unknown input name are errors naming them
    assert.matches("no input named 'q'", err_of(sig, { q = feed }))
    assert.matches("x", err_of(sig, {}))
    m.sess:close()
  end)

  it("the builder: several signatures, a second tag set, the main op, cleared devices", function()
    local m = build()
    local counter
    m.g:as_default(function()
      counter = tf.Variable(0, { name = "counter", collections = { tf.GraphKeys.LOCAL_VARIABLES }, trainable = false })
      m.init_local = tf.local_variables_initializer()
      m.bump = tf.identity(counter:assign_add(1), { name = "bump" })
    end)
    local b = tf.saved_model.builder.SavedModelBuilder(dir .. "/m")
    local S = tf.saved_model.signature_def_utils
    b:add_meta_graph_and_variables(m.sess, { tf.saved_model.tag_constants.SERVING }, {
      signature_def_map = {
        serving_default = S.predict_signature_def({ x = m.x }, { y = m.y }),
        logits = S.build_signature_def({ x = tf.saved_model.utils.build_tensor_info(m.x) },
                                       { z = tf.saved_model.utils.build_tensor_info(m.z) }, "custom/method"),
        bump = S.build_signature_def(nil, { n = m.bump }, "tensorflow/serving/predict"),
      },
      main_op = m.init_local })
    b:add_meta_graph({ "train", "gpu" }, { signature_def_map = { train = S.predict_signature_def({ x = m.x }, { z = m.z }) } })
    assert.matches("already added", err_of(b.add_meta_graph, b, { "gpu", "train" }))
    assert.matches("binary", err_of(b.save, b, true))
    b:save()
    assert.matches("already saved", err_of(b.save, b))

    local feed = rand_matrix(2, 3)
    local serve <close> = tf.saved_model.load(dir .. "/m")
    local keys = {}
    for k in pairs(serve.signatures) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.are.same({ "bump", "logits", "serving_default" }, keys)
    assert.are.equal("custom/method", serve.signatures.logits.method_name)
    assert.are.same(m.sess:run(m.z, { [m.x] = feed }):totable(), serve.signatures.logits({ x = feed }).z:totable())
    -- the main op initialized the local variable (it is not in the variables file)
    assert.are.equal(1, serve.signatures.bump().n:item())
    assert.are.equal(2, serve.signatures.bump().n:item())

    local train <close> = tf.saved_model.load(dir .. "/m", { "train", "gpu" })
    assert.is_nil(train.signatures.serving_default)
    assert.are.same(m.sess:run(m.z, { [m.x] = feed }):totable(), train.signatures.train({ x = feed }).z:totable())
    assert.matches("no meta graph tagged {train}.*{serve}, {gpu, train}",
                   err_of(tf.saved_model.load, dir .. "/m", { "train" }))
    m.sess:close()
  end)

  it("simple_save clears devices; TF's names and constants; the TF 1.x loader says what to write", function()
    local m = build()
    local y2
    m.g:as_default(function() tf.device("/cpu:0", function() y2 = tf.identity(m.y, { name = "y2" }) end) end)
    tf.saved_model.simple_save(m.sess, dir .. "/m", { x = m.x }, { y = y2 })
    local model <close> = tf.saved_model.load(dir .. "/m")
    assert.are.equal("", model.graph:get_operation_by_name("y2").device)
    assert.is_true(tf.saved_model.loader.maybe_saved_model_directory(dir .. "/m"))
    assert.is_false(tf.saved_model.contains_saved_model(dir))
    assert.are.equal("serve", tf.saved_model.SERVING)
    assert.are.equal("serving_default", tf.saved_model.signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY)
    assert.matches("tf.saved_model.load%(export_dir, tags%)", err_of(tf.saved_model.loader.load, m.sess, { "serve" }, dir))
    m.sess:close()
  end)

  it("refuses what TF refuses when saving", function()
    local m = build()
    tf.saved_model.simple_save(m.sess, dir .. "/m", { x = m.x }, { y = m.y })
    assert.matches("already exists, and isn't empty",
                   err_of(tf.saved_model.simple_save, m.sess, dir .. "/m", { x = m.x }, { y = m.y }))
    local b = tf.saved_model.Builder(dir .. "/n")
    assert.matches("add_meta_graph_and_variables%(%) first", err_of(b.add_meta_graph, b, { "serve" }))
    assert.matches("prediction inputs cannot be empty",
                   err_of(tf.saved_model.signature_def_utils.predict_signature_def, {}, { y = m.y }))
    local other = build()
    assert.matches("another graph", err_of(b.add_meta_graph_and_variables, b, m.sess, { "serve" },
      { signature_def_map = { s = tf.saved_model.predict_signature_def({ x = other.x }, { y = other.y }) } }))
    assert.matches("tags", err_of(b.add_meta_graph_and_variables, b, m.sess, {}))
    assert.are.same({ "m" }, P.list_dir(dir))
    m.sess:close()
    other.sess:close()
  end)

  it("the main op and legacy_init_op run after restoring; a failing one names the directory", function()
    for _, key in ipairs({ "main_op", "legacy_init_op" }) do
      local m = build()
      local c, bad
      m.g:as_default(function()
        c = tf.Variable(5, { name = "c", collections = { tf.GraphKeys.LOCAL_VARIABLES } })
        bad = tf.identity(m.x, { name = "needs_x" })
      end)
      local path = dir .. "/" .. key
      local b = tf.saved_model.Builder(path)
      b:add_meta_graph_and_variables(m.sess, { "serve" }, {
        signature_def_map = { c = tf.saved_model.build_signature_def(nil, { c = tf.identity(c) }, "m") },
        [key] = m.g:get_operation_by_name("c/Assign") })
      b:save()
      local model <close> = tf.saved_model.load(path)
      assert.are.equal(5, model.signatures.c().c:item())
      -- a main op that cannot run
      local b2 = tf.saved_model.Builder(path .. "_bad")
      b2:add_meta_graph_and_variables(m.sess, { "serve" }, { [key] = bad.op })
      b2:save()
      local e = err_of(tf.saved_model.load, path .. "_bad")
      assert(e:find("mf_model_load: '" .. path .. "_bad': the ", 1, true) and e:find("needs_x", 1, true), e)
      m.sess:close()
    end
  end)

  it("tags match as sets, as TF's loader does", function()
    local m = build()
    local b = tf.saved_model.Builder(dir .. "/m")
    b:add_meta_graph_and_variables(m.sess, { "serve", "gpu", "serve" }, {
      signature_def_map = { s = tf.saved_model.predict_signature_def({ x = m.x }, { y = m.y }) } })
    b:save()
    local model <close> = tf.saved_model.load(dir .. "/m", { "gpu", "serve", "gpu" })
    assert.is_not_nil(model.signatures.s)
    assert.matches("no meta graph tagged {serve}", err_of(tf.saved_model.load, dir .. "/m"))
    assert.matches("no meta graph tagged", err_of(tf.saved_model.load, dir .. "/m", { "serve", "gpu", "tpu" }))
    m.sess:close()
  end)

  it("loads thousands of signatures in time that grows gently", function()
    local m = build()
    local map = {}
    for i = 1, 3000 do map[string.format("s%05d", i)] = tf.saved_model.predict_signature_def({ x = m.x }, { y = m.y }) end
    local b = tf.saved_model.Builder(dir .. "/m")
    b:add_meta_graph_and_variables(m.sess, { "serve" }, { signature_def_map = map })
    b:save()
    local t0 = os.clock()
    local model <close> = tf.saved_model.load(dir .. "/m")
    assert.is_not_nil(model.signatures.s03000)
    assert(os.clock() - t0 < 20, "loading 3000 signatures took " .. (os.clock() - t0) .. " s")
    m.sess:close()
  end)

  describe("loading damaged directories", function()
    local pb
    before_each(function()
      local m = build()
      tf.saved_model.simple_save(m.sess, dir .. "/m", { x = m.x }, { y = m.y })
      m.sess:close()
      pb = read(dir .. "/m/saved_model.pb")
    end)
    local proto = tf.train._proto

    it("a missing directory or file", function()
      assert.matches("tf.saved_model.load: .*saved model '" .. dir .. "/none/saved_model.pb'",
                     err_of(tf.saved_model.load, dir .. "/none"))
      os.remove(dir .. "/m/variables/variables.safetensors")
      assert.matches(dir .. "/m/variables/variables.safetensors", err_of(tf.saved_model.load, dir .. "/m"))
    end)

    it("truncated or flipped bytes of saved_model.pb", function()
      for _, cut in ipairs({ 1, 7, #pb // 2, #pb - 1 }) do
        write(dir .. "/m/saved_model.pb", pb:sub(1, cut))
        local e = err_of(tf.saved_model.load, dir .. "/m")
        assert.matches("mf_model_load: '" .. dir .. "/m", e)
      end
      math.randomseed(os.time())
      for _ = 1, 30 do
        local i = math.random(1, #pb)
        write(dir .. "/m/saved_model.pb", pb:sub(1, i - 1) .. string.char(math.random(0, 255)) .. pb:sub(i + 1))
        local ok, e = pcall(tf.saved_model.load, dir .. "/m")
        if ok then e:close() else assert(tostring(e):find(dir .. "/m", 1, true), tostring(e)) end
      end
    end)

    it("another schema version, another producer, a signature naming a missing tensor", function()
      local f = proto.decode(pb, "test")
      local meta = f[2][1]
      write(dir .. "/m/saved_model.pb", proto.field_varint(1, 2) .. proto.field_bytes(2, meta))
      assert.matches("schema version 2", err_of(tf.saved_model.load, dir .. "/m"))
      local info = proto.field_bytes(1, proto.field_bytes(1, "2.15.0") .. proto.field_bytes(4, "serve"))
      local mf = proto.decode(meta, "test")
      local rest = {}
      for _, g in ipairs(mf[2]) do rest[#rest + 1] = proto.field_bytes(2, g) end
      write(dir .. "/m/saved_model.pb", proto.field_varint(1, 1) .. proto.field_bytes(2, info .. table.concat(rest)))
      assert.matches("not written by moonflow", err_of(tf.saved_model.load, dir .. "/m"))
      -- the signature's tensor renamed to one the graph lacks
      write(dir .. "/m/saved_model.pb", (pb:gsub("y:0", "q:0")))
      assert.matches("signature 'serving_default' output 'y' is 'q:0', which the graph lacks",
                     err_of(tf.saved_model.load, dir .. "/m"))
      -- a VariableDef naming an operation, not a variable's tensor (a hostile meta graph)
      write(dir .. "/m/saved_model.pb", (pb:gsub("\n\003b:0", "\n\003y:0")))
      assert.matches("is not a variable", err_of(tf.saved_model.load, dir .. "/m"))
    end)

    it("a variables file that lacks a variable, holds a stranger, or was altered", function()
      local g = tf.Graph()
      local sess
      g:as_default(function()
        local w = tf.Variable(tf.zeros({ 3, 4 }), { name = "w" })
        local q = tf.Variable(tf.zeros({ 2 }), { name = "q" })
        sess = tf.Session({ graph = g })
        sess:run(tf.global_variables_initializer())
        tf.train.Saver({ w }):save(sess, dir .. "/only_w", { write_meta_graph = false })
        tf.train.Saver({ w, q }):save(sess, dir .. "/w_q", { write_meta_graph = false })
      end)
      sess:close()
      local file = dir .. "/m/variables/variables.safetensors"
      local good = read(file)
      write(file, read(dir .. "/only_w"))
      assert.matches("variable 'b' of the meta graph is not in the variables file", err_of(tf.saved_model.load, dir .. "/m"))
      write(file, read(dir .. "/w_q"))
      assert.matches("holds 'q', which is not a variable of the graph", err_of(tf.saved_model.load, dir .. "/m"))
      -- a file with the right names but another dtype or shape
      local g2 = tf.Graph()
      g2:as_default(function()
        local w64 = tf.Variable(tf.zeros({ 3, 4 }, "float64"), { name = "w" })
        local b5 = tf.Variable(tf.zeros({ 5 }), { name = "b" })
        local wrong = tf.Variable(tf.zeros({ 4, 3 }), { name = "w_shape" })
        local b4 = tf.Variable(tf.zeros({ 4 }), { name = "b4" })
        local s2 = tf.Session({ graph = g2 })
        s2:run(tf.global_variables_initializer())
        tf.train.Saver({ w = w64, b = b4 }):save(s2, dir .. "/w64", { write_meta_graph = false })
        tf.train.Saver({ w = wrong, b = b5 }):save(s2, dir .. "/shape", { write_meta_graph = false })
        s2:close()
      end)
      write(file, read(dir .. "/w64"))
      assert.matches("float64", err_of(tf.saved_model.load, dir .. "/m"))
      write(file, read(dir .. "/shape"))
      assert.matches("shape", err_of(tf.saved_model.load, dir .. "/m"))
      write(file, good:sub(1, -2) .. string.char((good:byte(-1) + 1) % 256))
      assert.matches("checksum", err_of(tf.saved_model.load, dir .. "/m"))
      write(file, good)
      local model = tf.saved_model.load(dir .. "/m")
      model:close()
    end)
  end)
end)
