-- TensorBoard summaries: event files written by tf.summary ops and
-- tf.summary.FileWriter, read back by TensorBoard's own reader
-- (scripts/tensorboard_check.py runs PyPI's tensorboard EventAccumulator;
-- scripts/test.sh installs it) and decoded by `protoc --decode`. A missing
-- tensorboard or protoc fails these specs: they never skip. Python and
-- protoc run without the sanitizer runtime the ASan step preloads.
local tf = require("moonflow")
local G = require("moonflow.graph")
local cjson = require("cjson")
local sh = dofile("tests/spec/support/process.lua").sh

local made = {}
local function tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/mf_summary_spec.XXXXXX"))
  local d = p:read("l")
  p:close()
  made[#made + 1] = d
  return d
end

-- What TensorBoard's EventAccumulator loads from logdir (decoded JSON).
local function tensorboard(logdir)
  local err = os.tmpname()
  local p = assert(io.popen("env -u LD_PRELOAD python3 scripts/tensorboard_check.py '" .. logdir .. "' 2>" .. err))
  local out = p:read("a")
  local ok = p:close()
  local f = io.open(err)
  local msg = f and f:read("a") or ""
  if f then f:close() end
  os.remove(err)
  assert(ok, "scripts/tensorboard_check.py failed (is PyPI's tensorboard installed? "
    .. "scripts/test.sh installs it):\n" .. msg .. out)
  return cjson.decode(out)
end

local function event_file(logdir)
  local p = assert(io.popen("ls " .. logdir .. "/events.out.tfevents.*"))
  local path = p:read("l")
  p:close()
  assert(path, "no event file in " .. logdir)
  return path
end

-- The records of a TFRecord file (framing only; tests/c/test_summary checks the CRCs).
local function records(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  local out, at = {}, 1
  while at + 12 <= #data do
    local len = string.unpack("<I8", data, at)
    if at + 12 + len + 4 - 1 > #data then break end
    out[#out + 1] = data:sub(at + 12, at + 12 + len - 1)
    at = at + 12 + len + 4
  end
  return out
end

local function protoc_decode(bytes)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(bytes)
  f:close()
  local out, ok = sh("env -u LD_PRELOAD protoc --decode=tensorflow.Event proto/event.proto < " .. tmp)
  os.remove(tmp)
  assert(ok, "protoc --decode failed (Debian: protobuf-compiler):\n" .. out)
  return out
end

-- TF's default bucket limits and its histogram of values (histogram.cc:
-- bucket i takes limit[i-1] <= v < limit[i]; runs of empty buckets become one).
local function tf_histogram(values)
  local pos, v = {}, 1e-12
  while v < 1e20 do pos[#pos + 1] = v; v = v * 1.1 end
  pos[#pos + 1] = math.huge -- stands for DBL_MAX
  local lim = {}
  for i = #pos, 1, -1 do lim[#lim + 1] = -pos[i] end
  lim[#lim + 1] = 0
  for i = 1, #pos do lim[#lim + 1] = pos[i] end
  local counts = {}
  for i = 1, #lim do counts[i] = 0 end
  for _, x in ipairs(values) do
    local i = 1
    while lim[i] <= x do i = i + 1 end
    counts[i] = counts[i] + 1
  end
  local out_lim, out_cnt, i = {}, {}, 1
  while i <= #lim do
    local e, c = lim[i], counts[i]
    i = i + 1
    if c == 0 then
      while i <= #lim and counts[i] == 0 do e, c = lim[i], counts[i]; i = i + 1 end
    end
    out_lim[#out_lim + 1], out_cnt[#out_cnt + 1] = e, c
  end
  return out_lim, out_cnt
end

describe("tf.summary and FileWriter", function()
  before_each(function() tf.reset_default_graph() end)
  teardown(function()
    for _, d in ipairs(made) do os.execute("rm -rf '" .. d .. "'") end
  end)

  it("writes what TensorBoard's EventAccumulator loads: scalars, histograms, text, images, the graph", function()
    local logdir = tmpdir() .. "/run 1"
    local x = tf.placeholder(tf.float32, { 4 }, "x")
    local loss
    tf.name_scope("model", function()
      loss = tf.reduce_sum(x * x, nil, false, "loss")
    end)
    local parts = tf.split(x, 2, 1, { name = "halves" })
    local dep
    tf.device("/cpu:0", function()
      tf.control_dependencies({ loss.op }, function() dep = tf.identity(parts[2], "after_loss") end)
    end)
    tf.name_scope("train", function()
      tf.summary.scalar("loss", loss)
      tf.summary.histogram("x", x)
    end)
    tf.summary.scalar("lr", 0.5, nil, "hyper")
    tf.summary.text("note", "step **text**")
    -- one RGB image of 2x3 pixels, floats in [0, 1] (scaled by 255)
    local img = tf.constant({ { { { 0, 0, 0 }, { 1, 1, 1 }, { 0.5, 0, 1 } }, { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } } } })
    tf.summary.image("img", img, 1)
    local merged = tf.summary.merge_all()
    local sess = tf.Session()
    local w = tf.summary.FileWriter(logdir, sess.graph)
    assert.equal(logdir, w:get_logdir())
    local xs = { { 1, 2, 0.5, -3 }, { 0, 0, 1e-13, 2 }, { -1e-12, 1e15, 4, 4 } }
    for step = 1, 3 do
      local s = sess:run(merged, { [x] = xs[step] })
      -- the fetched string Array, or its bytes as a Lua string
      w:add_summary(step == 3 and s:item() or s, step)
    end
    w:close()
    assert.truthy(sess:run(dep, { [x] = xs[1] }))

    local r = tensorboard(logdir)
    local loss3 = sess:run(loss, { [x] = xs[3] }):item() -- float32, as simple_value stores it
    assert.same({ { 1, 14.25 }, { 2, 4 }, { 3, loss3 } }, r.scalars["train/loss"])
    assert.same({ { 1, 0.5 }, { 2, 0.5 }, { 3, 0.5 } }, r.scalars["hyper/hyper/lr"])
    local h = r.histograms["train/x"]
    assert.equal(3, #h)
    for k = 1, 3 do
      local lim, cnt = tf_histogram(xs[k])
      local e = h[k]
      assert.equal(4, e.num)
      assert.equal(#lim, #e.bucket_limit)
      for i = 1, #lim do
        if lim[i] == math.huge then
          assert.is_true(e.bucket_limit[i] > 1.7e308)
        elseif lim[i] == -math.huge then
          assert.is_true(e.bucket_limit[i] < -1.7e308)
        else
          assert.equal(lim[i], e.bucket_limit[i])
        end
      end
      assert.same(cnt, e.bucket)
    end
    assert.equal(-3, h[1].min)
    assert.equal(2, h[1].max)
    assert.equal(0.5, h[1].sum)
    assert.equal("text", r.text.note.plugin)
    assert.same({ 1, { "step **text**" }, {} }, r.text.note.values[1])
    local im = r.images["img/image"]
    assert.equal(3, #im)
    assert.equal(3, im[1].width)
    assert.equal(2, im[1].height)
    assert.same({ mode = "RGB", size = { 3, 2 },
                  data = { 0, 0, 0, 255, 255, 255, 128, 0, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255 } }, im[1].pixels)
    -- the graph: names (scopes group them), types, inputs "op:i" and "^ctrl", devices, attributes
    local nodes = {}
    for _, n in ipairs(r.graph) do nodes[n.name] = n end
    assert.equal("Placeholder", nodes.x.op)
    assert.same({ "dtype", "shape", "_output_shapes" }, (function()
      local a = {}
      for _, k in ipairs(nodes.x.attr) do a[#a + 1] = k end
      table.sort(a, function(p, q) return (p == "_output_shapes" and "~" or p) < (q == "_output_shapes" and "~" or q) end)
      return a
    end)())
    assert.equal("Sum", nodes["model/loss"].op)
    assert.equal("ScalarSummary", nodes["train/loss"].op)
    assert.same({ "halves:1", "^model/loss" }, nodes.after_loss.input)
    assert.equal("/device:CPU:0", nodes.after_loss.device)
    assert.equal("MergeSummary", nodes["Merge/MergeSummary"].op)
    -- constants in TF's TensorProto: strings as string_val (DT_STRING 7), numbers as tensor_content
    assert.same({ dtype = 7, shape = {}, strings = { "train/loss" }, content_bytes = 0 }, nodes["train/loss/tag"].value)
    assert.same({ dtype = 1, shape = { 1, 2, 3, 3 }, strings = {}, content_bytes = 72 }, nodes.Const.value)
  end)

  it("has TensorFlow's message and field names, numbers and types in proto/ (tensorboard's copies)", function()
    local set = os.tmpname()
    local out, ok = sh("env -u LD_PRELOAD protoc --include_imports -o " .. set .. " proto/*.proto")
    assert(ok, "protoc failed (Debian: protobuf-compiler):\n" .. out)
    local p = assert(io.popen("env -u LD_PRELOAD python3 scripts/tensorboard_check.py --protos " .. set))
    local res = p:read("a")
    assert(p:close(), "scripts/tensorboard_check.py --protos failed (is tensorboard installed?)\n" .. res)
    os.remove(set)
    assert.same({}, cjson.decode(res))
  end)

  it("writes records that protoc decodes as tensorflow.Event", function()
    local logdir = tmpdir()
    local w = tf.summary.FileWriter(logdir)
    local s = tf.Session():run(tf.summary.scalar("accuracy", 0.75))
    w:add_summary(s, 42)
    w:add_graph(tf.get_default_graph(), 0)
    w:close()
    local recs = records(event_file(logdir))
    assert.equal(3, #recs)
    local first = protoc_decode(recs[1])
    assert.matches('file_version: "brain.Event:2"', first, 1, true)
    assert.matches("wall_time: %d", first)
    local second = protoc_decode(recs[2])
    assert.matches("step: 42", second, 1, true)
    assert.matches('tag: "accuracy"', second, 1, true)
    assert.matches("simple_value: 0.75", second, 1, true)
    assert.matches("graph_def: ", protoc_decode(recs[3]), 1, true)
    assert.matches("^events%.out%.tfevents%.%d+%.", event_file(logdir):match("[^/]+$"))
  end)

  it("keeps the flushed events of a process that dies, and TensorBoard reads past a torn tail", function()
    local logdir = tmpdir()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(string.format([[
      local tf = require("moonflow")
      local w = tf.summary.FileWriter(%q)
      local v = tf.placeholder(tf.float32, {})
      local s = tf.summary.scalar("v", v)
      local sess = tf.Session()
      for step = 1, 3 do w:add_summary(sess:run(s, { [v] = step }), step) end
      w:flush()
      for step = 4, 5 do w:add_summary(sess:run(s, { [v] = step }), step) end
      os.exit(3, false) -- no close, no __gc: the queued events are lost
    ]], logdir))
    f:close()
    local out, ok, _, code = sh("lua5.4 " .. script)
    os.remove(script)
    assert(not ok and code == 3, out)
    assert.same({ { 1, 1 }, { 2, 2 }, { 3, 3 } }, tensorboard(logdir).scalars.v)
    -- half a record at the end, as a write cut by a crash leaves it
    local path = event_file(logdir)
    local recs = records(path)
    local g = assert(io.open(path, "ab"))
    g:write(string.pack("<I8", #recs[2]) .. "\1\2\3\4" .. recs[2]:sub(1, 5))
    g:close()
    assert.same({ { 1, 1 }, { 2, 2 }, { 3, 3 } }, tensorboard(logdir).scalars.v)
  end)

  it("gives a new file to each writer, and merges only what is asked", function()
    local logdir = tmpdir()
    local w1, w2 = tf.summary.FileWriter(logdir), tf.summary.FileWriter(logdir)
    assert.are_not.equal(w1:path(), w2:path())
    w1:close()
    w2:close()
    assert.is_nil(tf.summary.merge_all())
    local a = tf.summary.scalar("a", 1, { "mine" })
    assert.is_nil(tf.summary.merge_all())
    assert.equal(a, tf.get_collection("mine")[1])
    assert.truthy(tf.summary.merge_all("mine"))
  end)

  it("scripts/char_rnn.lua --logdir logs what TensorBoard shows: losses, rates, histograms, samples, the graph", function()
    local dir = tmpdir()
    local out, ok = sh("lua5.4 scripts/char_rnn.lua --rnn_size 16 --wordvec_size 8 --batch_size 4 --seq_length 10"
      .. " --max_steps 8 --summary_every 2 --eval_val_every 4 --checkpoint_every 4 --log_sample_length 20 --quiet"
      .. " --checkpoint_dir " .. dir .. "/ckpt --logdir " .. dir .. "/logs")
    assert(ok, out)
    local r = tensorboard(dir .. "/logs")
    local steps = {}
    for _, e in ipairs(r.scalars["train/loss"]) do steps[#steps + 1] = e[1] end
    assert.same({ 2, 4, 6, 8 }, steps)
    for _, tag in ipairs({ "train/learning_rate", "train/gradient_norm", "train/tokens_per_sec" }) do
      assert.equal(4, #r.scalars[tag], tag)
    end
    assert.same({ 4, 8 }, { r.scalars["validation/loss"][1][1], r.scalars["validation/loss"][2][1] })
    local nw, ng = 0, 0
    for tag, h in pairs(r.histograms) do
      assert.equal(4, #h, tag)
      if tag:match("^weights/") then nw = nw + 1 elseif tag:match("^gradients/") then ng = ng + 1 end
    end
    assert.is_true(nw >= 3 and nw == ng, string.format("%d weight and %d gradient histograms", nw, ng))
    assert.equal(2, #r.text["samples/text"].values)
    assert.is_true(#r.graph > 100)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("refuses what it cannot encode, naming the op or function and the parameter", function()
    local x = tf.placeholder(tf.float32, { 2 })
    local sess = tf.Session()
    local hist = tf.summary.histogram("h", x)
    assert.has_error(function() sess:run(hist, { [x] = { 1, 0 / 0 } }) end)
    local ok, err = pcall(sess.run, sess, hist, { [x] = { 1, 0 / 0 } })
    assert.is_false(ok)
    assert.matches("HistogramSummary 'h'.*NaN in summary histogram for: h", tostring(err))
    ok, err = pcall(tf.summary.scalar, "s", tf.constant("text"))
    assert.is_false(ok)
    assert.matches("values must be a real%-number tensor, got string", tostring(err))
    ok, err = pcall(tf.summary.image, "i", tf.zeros({ 2, 3 }))
    assert.is_false(ok)
    assert.matches("tensor must be 4%-D", tostring(err))
    -- tag "a/a/b" twice: family a, name b; and the name a/a/b
    local a, b = tf.summary.scalar("b", 1, nil, "a"), tf.summary.scalar("a/a/b", 2)
    ok, err = pcall(sess.run, sess, tf.summary.merge({ a, b }))
    assert.is_false(ok)
    assert.matches("MergeSummary.*duplicate tag a/a/b", tostring(err))
    local w = tf.summary.FileWriter(tmpdir())
    ok, err = pcall(w.add_summary, w, "\255\255\255", 1)
    assert.is_false(ok)
    assert.matches("is not a serialized Summary", tostring(err))
    ok, err = pcall(w.add_summary, w, "", 1.5)
    assert.is_false(ok)
    assert.matches("global_step must be an integer", tostring(err))
    ok, err = pcall(w.add_graph, w, 3)
    assert.is_false(ok)
    assert.matches("FileWriter:add_graph: graph must be a tf.Graph", tostring(err))
    w:close()
    ok, err = pcall(w.add_summary, w, "", 1)
    assert.is_false(ok)
    assert.matches("closed", tostring(err))
    local f = os.tmpname()
    ok, err = pcall(tf.summary.FileWriter, f)
    os.remove(f)
    assert.is_false(ok)
    assert.matches("cannot create logdir", tostring(err))
    -- a tag of unknown shape that turns out empty when it runs; a lying __len
    local tag = tf.placeholder(tf.string)
    local hs = G.make_op("HistogramSummary", { tag, tf.constant({ 1.0 }) }, nil, { name = "hs" }).outputs[1]
    ok, err = pcall(sess.run, sess, hs, { [tag] = tf.array({}, "string") })
    assert.is_false(ok)
    assert.matches("tag has 0 elements", tostring(err))
    local core = require("moonflow.core")
    local cw = core.summary_writer_new(tmpdir())
    local evil = setmetatable({}, { __len = function() return 1 << 61 end, __index = function() return 1.0 end })
    assert.is_true((pcall(cw.add_histogram, cw, "h", evil, 0)))
  end)
end)
