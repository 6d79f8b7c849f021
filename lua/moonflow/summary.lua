-- TensorBoard summaries (TF 1.x's tf.summary): summary ops, whose runs give
-- serialized Summary protocol buffers (scalar string tensors), and
-- tf.summary.FileWriter, which writes them into event files with the graph.
-- The encoding is the core's (csrc/summary*.c, protobuf-c).
local core = require("moonflow.core")
local G = require("moonflow.graph")
local A = require("moonflow.args")
local C = require("moonflow.convert")

local KEY = "summaries" -- tf.GraphKeys.SUMMARIES

return function(tf)
  local S = {}
  tf.summary = S

  -- TF's summary_scope: ops under name_scope(family/name); the tag is the
  -- scope's full name (prefixed by family once more when given), the
  -- summary op is named as the scope itself.
  local function summary_op(what, name, family, collections, build)
    if family ~= nil and type(family) ~= "string" then
      G.raise("%s: family must be a string, got %s", what, type(family))
    end
    local base = family and family .. "/" .. name or name
    local op
    G.name_scope(base, function()
      local scope = G.get_default_graph()._name_stack
      local tag = family and family .. "/" .. scope or scope
      op = build(tf.constant(tag, { dtype = "string", name = "tag" }), scope)
    end)
    local t = op.outputs[1]
    for _, key in ipairs(collections or { KEY }) do tf.add_to_collection(key, t) end
    return t
  end

  local function tensor_of(v, dtype) return C.to_tensor(v, dtype) end

  S.scalar = A.def("tf.summary.scalar",
    "name:string, tensor:tensor, collections:table=nil, family:string=nil",
    "A serialized Summary (string scalar) of a real scalar, for FileWriter:add_summary.", function(a)
      return summary_op("tf.summary.scalar", a.name, a.family, a.collections, function(tag, scope)
        return G.make_op("ScalarSummary", { tag, tensor_of(a.tensor) }, nil, { abs_name = scope })
      end)
    end)

  S.histogram = A.def("tf.summary.histogram",
    "name:string, values:tensor, collections:table=nil, family:string=nil",
    "A serialized Summary of a histogram of values over TF's default buckets.", function(a)
      return summary_op("tf.summary.histogram", a.name, a.family, a.collections, function(tag, scope)
        return G.make_op("HistogramSummary", { tag, tensor_of(a.values) }, nil, { abs_name = scope })
      end)
    end)

  S.image = A.def("tf.summary.image",
    "name:string, tensor:tensor, max_outputs:int=3, collections:table=nil, family:string=nil",
    "A serialized Summary of up to max_outputs PNG images from a [batch, height, width, channels] tensor "
    .. "(uint8, or floats scaled as TF's).", function(a)
      return summary_op("tf.summary.image", a.name, a.family, a.collections, function(tag, scope)
        return G.make_op("ImageSummary", { tag, tensor_of(a.tensor) }, { "max_images", "int", a.max_outputs },
                         { abs_name = scope })
      end)
    end)

  S.text = A.def("tf.summary.text", "name:string, tensor:any, collections:table=nil",
    "A serialized Summary of a string tensor for TensorBoard's text dashboard.", function(a)
      return summary_op("tf.summary.text", a.name, nil, a.collections, function(tag, scope)
        local md = tf.constant(core.summary_metadata("text"), { dtype = "string", name = "summary_metadata" })
        return G.make_op("TensorSummaryV2", { tag, tensor_of(a.tensor, "string"), md }, nil, { abs_name = scope })
      end)
    end)

  S.merge = A.def("tf.summary.merge", "inputs:tensors, collections:table=nil, name:string=nil",
    "One serialized Summary holding the values of the summaries in inputs (a tag twice is an error when run).",
    function(a)
      local ins = {}
      for i, t in ipairs(a.inputs) do ins[i] = tensor_of(t, "string") end
      if #ins == 0 then G.raise("tf.summary.merge: inputs must hold at least one summary") end
      local t = G.make_op("MergeSummary", ins, nil, { name = a.name or "Merge/MergeSummary" }).outputs[1]
      for _, key in ipairs(a.collections or {}) do tf.add_to_collection(key, t) end
      return t
    end)

  S.merge_all = A.def("tf.summary.merge_all", "key:string=\"summaries\", scope:string=nil, name:string=nil",
    "tf.summary.merge of the collection key's summaries, or nil when there are none.", function(a)
      local list = tf.get_collection(a.key, a.scope)
      if #list == 0 then return nil end
      return S.merge(list, nil, a.name)
    end)

  -- ---------------------------------------------------------------- FileWriter

  local FileWriter = {}
  FileWriter.__index = FileWriter
  S.FileWriter_mt = FileWriter

  local function core_graph(g, what)
    if getmetatable(g) ~= G.Graph then G.raise("%s: graph must be a tf.Graph, got %s", what, type(g)) end
    return g._g
  end

  -- TF's max_queue, flush_secs, graph_def, filename_suffix and session are
  -- not taken (an error): up to 10 events are queued, written by the 10th
  -- add, by the first add 120 s after the oldest, and at flush and close.
  S.FileWriter = A.def("tf.summary.FileWriter", "logdir:string, graph:any=nil",
    "Writes an event file in logdir (created if missing) for TensorBoard; with graph, its GraphDef first.",
    function(a)
      local w = setmetatable({ _w = core.summary_writer_new(a.logdir), _logdir = a.logdir }, FileWriter)
      if a.graph ~= nil then w:add_graph(a.graph) end
      return w
    end)

  -- summary: what a summary op's run gave (a string Array) or its bytes (a Lua string).
  function FileWriter:add_summary(summary, global_step)
    if global_step ~= nil and math.type(global_step) ~= "integer" then
      G.raise("FileWriter:add_summary: global_step must be an integer, got %s", tostring(global_step))
    end
    self._w:add_summary(summary, global_step or 0)
  end
  function FileWriter:add_graph(graph, global_step)
    self._w:add_graph(core_graph(graph, "FileWriter:add_graph"), global_step or 0)
  end
  -- A whole serialized Event.
  function FileWriter:add_event(event) self._w:add_event(event) end
  function FileWriter:flush() self._w:flush() end
  function FileWriter:close() self._w:close() end
  function FileWriter:get_logdir() return self._logdir end
  -- The event file's path (moonflow's).
  function FileWriter:path() return self._w:path() end

  G.guard_methods(FileWriter, "FileWriter", function(x) return getmetatable(x) == FileWriter end,
                  "tf.summary.FileWriter")
  local d, F = A.doc, FileWriter
  d(F.add_summary, "tf.summary.FileWriter_mt.add_summary", "writer, summary, [global_step]",
    "Writes a serialized Summary (a summary op's fetched value, or its bytes) as the event at global_step.")
  d(F.add_graph, "tf.summary.FileWriter_mt.add_graph", "writer, graph, [global_step]",
    "Writes the graph as a GraphDef (TensorBoard's graph page; name scopes group).")
  d(F.add_event, "tf.summary.FileWriter_mt.add_event", "writer, event",
    "Writes a serialized Event as it is (it must parse as one).")
  d(F.flush, "tf.summary.FileWriter_mt.flush", "writer", "Writes the queued events to disk (and syncs).")
  d(F.close, "tf.summary.FileWriter_mt.close", "writer", "Flushes and closes the event file; later adds are errors.")
  d(F.get_logdir, "tf.summary.FileWriter_mt.get_logdir", "writer", "The logdir it writes in.")
  d(F.path, "tf.summary.FileWriter_mt.path", "writer", "The event file's path.")
end
