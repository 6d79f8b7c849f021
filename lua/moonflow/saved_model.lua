-- tf.saved_model: a model leaves the process as a directory that a C host
-- loads with mf_model_load (no Lua needed) and Lua with tf.saved_model.load:
--   <export_dir>/saved_model.pb                   TF's SavedModel protocol buffer
--                                                 (schema version 1): a MetaGraphDef
--                                                 per tag set, each with the graph,
--                                                 collections and signatures
--   <export_dir>/variables/variables.safetensors  the global variables' values
-- Unlike TF's, the variables are a safetensors file (moonflow's checkpoint
-- format), so TensorFlow cannot load the directory; the protocol buffers
-- parse with TF's own classes. The directory is built beside export_dir
-- and renamed into place by save(), so export_dir is either absent or
-- complete.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local A = require("moonflow.args")

return function(tf)
  local P = tf.train._proto
  local field_bytes, field_varint = P.field_bytes, P.field_varint
  local sm = {}
  tf.saved_model = sm

  sm.tag_constants = { SERVING = "serve", TRAINING = "train", EVAL = "eval", GPU = "gpu", TPU = "tpu" }
  sm.signature_constants = {
    DEFAULT_SERVING_SIGNATURE_DEF_KEY = "serving_default",
    PREDICT_METHOD_NAME = "tensorflow/serving/predict",
    CLASSIFY_METHOD_NAME = "tensorflow/serving/classify",
    REGRESS_METHOD_NAME = "tensorflow/serving/regress",
    PREDICT_INPUTS = "inputs", PREDICT_OUTPUTS = "outputs",
  }
  sm.SERVING, sm.TRAINING = "serve", "train"
  sm.DEFAULT_SERVING_SIGNATURE_DEF_KEY = "serving_default"
  sm.PREDICT_METHOD_NAME = "tensorflow/serving/predict"
  -- TF's collection keys for the op the loader runs after restoring.
  local MAIN_OP_KEY, LEGACY_INIT_OP_KEY = "saved_model_main_op", "legacy_init_op"

  -- TF's DataType numbers (proto/types.proto).
  local DATA_TYPE = { float32 = 1, float64 = 2, int32 = 3, uint8 = 4, string = 7, int64 = 9, bool = 10 }

  -- ---------------------------------------------------------------- TensorInfo, SignatureDef

  local TensorInfo = {}
  TensorInfo.__index = TensorInfo
  sm.TensorInfo_mt = TensorInfo
  local SignatureDef = {}
  SignatureDef.__index = SignatureDef
  sm.SignatureDef_mt = SignatureDef

  local build_tensor_info = A.def("tf.saved_model.utils.build_tensor_info", "tensor:any",
    "A TensorInfo (name, dtype, shape) of a graph tensor, for a signature.",
    function(a)
      local t = a.tensor
      if getmetatable(t) == tf.Variable_mt then t = t._tensor end
      if not G.is_tensor(t) then
        G.raise("tf.saved_model.utils.build_tensor_info: expected a Tensor of a graph, got %s", type(a.tensor))
      end
      return setmetatable({ name = t.name, dtype = t.dtype, shape = t.shape, _tensor = t }, TensorInfo)
    end)
  sm.utils = { build_tensor_info = build_tensor_info }
  sm.build_tensor_info = build_tensor_info

  -- name -> TensorInfo from name -> TensorInfo or Tensor (checked).
  local function info_map(x, what, param)
    if x == nil then return {} end
    if type(x) ~= "table" or getmetatable(x) ~= nil then G.raise("%s: %s must be a table of name -> Tensor", what, param) end
    local out = {}
    for k, v in pairs(x) do
      if type(k) ~= "string" or k == "" then G.raise("%s: %s keys must be non-empty names", what, param) end
      if getmetatable(v) == TensorInfo then out[k] = v
      elseif G.is_tensor(v) or getmetatable(v) == tf.Variable_mt then out[k] = build_tensor_info(v)
      else G.raise("%s: %s['%s'] must be a Tensor or a TensorInfo, got %s", what, param, k, type(v)) end
    end
    return out
  end

  local build_signature_def = A.def("tf.saved_model.signature_def_utils.build_signature_def",
    "inputs:table=nil, outputs:table=nil, method_name:string=nil",
    "A SignatureDef: named input and output tensors (TensorInfos or Tensors) and a method name.",
    function(a)
      local what = "tf.saved_model.signature_def_utils.build_signature_def"
      return setmetatable({ inputs = info_map(a.inputs, what, "inputs"), outputs = info_map(a.outputs, what, "outputs"),
                            method_name = a.method_name or "" }, SignatureDef)
    end)

  local predict_signature_def = A.def("tf.saved_model.signature_def_utils.predict_signature_def",
    "inputs:table, outputs:table",
    "A prediction SignatureDef (method tensorflow/serving/predict) of named input and output Tensors.",
    function(a)
      local what = "tf.saved_model.signature_def_utils.predict_signature_def"
      if next(a.inputs) == nil then G.raise("%s: prediction inputs cannot be empty", what) end
      if next(a.outputs) == nil then G.raise("%s: prediction outputs cannot be empty", what) end
      return setmetatable({ inputs = info_map(a.inputs, what, "inputs"), outputs = info_map(a.outputs, what, "outputs"),
                            method_name = sm.PREDICT_METHOD_NAME }, SignatureDef)
    end)
  sm.signature_def_utils = { build_signature_def = build_signature_def, predict_signature_def = predict_signature_def }
  sm.build_signature_def, sm.predict_signature_def = build_signature_def, predict_signature_def

  local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
  end

  local function tensor_info_bytes(ti)
    local shape
    if ti.shape then
      local dims = {}
      for i, d in ipairs(ti.shape) do dims[i] = field_bytes(2, field_varint(1, d or -1)) end
      shape = table.concat(dims)
    else
      shape = field_varint(3, 1)
    end
    return field_bytes(1, ti.name) .. field_varint(2, DATA_TYPE[ti.dtype] or 0) .. field_bytes(3, shape)
  end

  -- The MetaGraphDef's signature_def map entries (field 5), keys sorted.
  local function signature_defs_bytes(map)
    local out = {}
    for _, key in ipairs(sorted_keys(map)) do
      local sd = map[key]
      local body = {}
      for side, num in pairs({ inputs = 1, outputs = 2 }) do
        for _, name in ipairs(sorted_keys(sd[side])) do
          body[#body + 1] = { num, name, field_bytes(num, field_bytes(1, name) .. field_bytes(2, tensor_info_bytes(sd[side][name]))) }
        end
      end
      table.sort(body, function(x, y) return x[1] < y[1] or (x[1] == y[1] and x[2] < y[2]) end)
      local parts = {}
      for i, b in ipairs(body) do parts[i] = b[3] end
      parts[#parts + 1] = field_bytes(3, sd.method_name or "")
      out[#out + 1] = field_bytes(5, field_bytes(1, key) .. field_bytes(2, table.concat(parts)))
    end
    return table.concat(out)
  end

  -- ---------------------------------------------------------------- graph bytes without devices

  -- TF's clear_devices: the GraphDef with every NodeDef's device (field 4) dropped.
  local function clear_devices(gd, what)
    local out = {}
    for _, f in ipairs(P.fields_of(gd, what)) do
      if f.num == 1 and type(f.value) == "string" then
        local node = {}
        for _, nf in ipairs(P.fields_of(f.value, what)) do
          if nf.num ~= 4 then node[#node + 1] = nf.raw end
        end
        out[#out + 1] = field_bytes(1, table.concat(node))
      else
        out[#out + 1] = f.raw
      end
    end
    return table.concat(out)
  end

  -- ---------------------------------------------------------------- the builder

  local Builder = {}
  Builder.__index = Builder
  sm.Builder_mt = Builder

  local function join(dir, name) return dir:sub(-1) == "/" and dir .. name or dir .. "/" .. name end

  -- true when path names an existing file or directory; entries of a directory
  local function exists(path)
    local ok, _, code = os.rename(path, path)
    return ok or code ~= 2
  end
  local function non_empty_dir(path)
    local p = io.popen("ls -A '" .. path:gsub("'", "'\\''") .. "' 2>/dev/null")
    local listing = p and p:read("a") or ""
    if p then p:close() end
    return listing ~= ""
  end

  -- Removes what a builder wrote in its temporary directory.
  local function remove_tmp(self)
    if not self._tmp then return end
    os.remove(join(self._tmp, "variables/variables.safetensors"))
    os.remove(join(self._tmp, "variables"))
    os.remove(join(self._tmp, "saved_model.pb"))
    os.remove(self._tmp)
    self._tmp = nil
  end
  Builder.__gc = remove_tmp

  local new_builder = A.def("tf.saved_model.builder.SavedModelBuilder", "export_dir:string",
    "Builds a saved model in export_dir (which must not exist or be empty): add_meta_graph_and_variables, "
      .. "add_meta_graph, then save().",
    function(a)
      local what = "tf.saved_model.builder.SavedModelBuilder"
      local dir = a.export_dir:gsub("(.)/+$", "%1")
      if dir == "" then G.raise("%s: export_dir is empty", what) end
      local f = io.open(dir, "rb")
      if f then -- a directory opens too, but reading it fails
        local _, rerr = f:read(1)
        f:close()
        if not rerr then G.raise("%s: export_dir '%s' is a file", what, dir) end
      end
      if exists(dir) and non_empty_dir(dir) then
        G.raise("%s: export directory already exists, and isn't empty. Please choose a different export "
                .. "directory, or delete all the contents of the specified directory: %s", what, dir)
      end
      return setmetatable({ _dir = dir, _metas = {}, _tag_sets = {} }, Builder)
    end)
  sm.builder = { SavedModelBuilder = new_builder }
  sm.Builder = new_builder

  local function tag_list(tags, what)
    if type(tags) == "string" then tags = { tags } end
    if type(tags) ~= "table" or #tags == 0 then G.raise("%s: tags must be a non-empty list of strings", what) end
    local out, seen = {}, {}
    for i, t in ipairs(tags) do
      if type(t) ~= "string" or t == "" then G.raise("%s: tags[%d] must be a non-empty string", what, i) end
      if not seen[t] then seen[t], out[#out + 1] = true, t end
    end
    table.sort(out)
    return out
  end

  local function signature_map(map, g, what)
    if map == nil then return {} end
    if type(map) ~= "table" then G.raise("%s: signature_def_map must be a table of key -> SignatureDef", what) end
    for k, sd in pairs(map) do
      if type(k) ~= "string" or k == "" then G.raise("%s: signature_def_map keys must be non-empty strings", what) end
      if getmetatable(sd) ~= SignatureDef then
        G.raise("%s: signature_def_map['%s'] must be a SignatureDef (tf.saved_model.signature_def_utils)", what, k)
      end
      for _, side in ipairs({ "inputs", "outputs" }) do
        for name, ti in pairs(sd[side]) do
          if ti._tensor and ti._tensor.graph ~= g then
            G.raise("%s: signature '%s' %s '%s' is a tensor of another graph", what, k, side, name)
          end
        end
      end
    end
    return map
  end

  local function op_names(op, what, param)
    if op == nil then return nil end
    if G.is_tensor(op) then op = op.op end
    if not G.is_operation(op) then G.raise("%s: %s must be an Operation", what, param) end
    return { op.name }
  end

  -- The meta graph of the session's graph under tags (opts: signature_def_map,
  -- main_op / legacy_init_op, clear_devices).
  local function add_meta(self, g, tags, opts, what)
    opts = opts or {}
    if type(opts) ~= "table" then G.raise("%s: options must be a table", what) end
    for k in pairs(opts) do
      if not ({ signature_def_map = true, main_op = true, legacy_init_op = true, clear_devices = true,
                assets_collection = true, strip_default_attrs = true, saver = true })[k] then
        G.raise("%s: unknown option '%s'", what, tostring(k))
      end
    end
    if opts.assets_collection ~= nil then G.raise("%s: assets are not supported (assets_collection)", what) end
    if opts.saver ~= nil then
      G.raise("%s: a saver is not supported: the builder saves every global variable of the graph under its name", what)
    end
    if opts.main_op ~= nil and opts.legacy_init_op ~= nil then
      G.raise("%s: give main_op or legacy_init_op, not both", what)
    end
    tags = tag_list(tags, what)
    local key = table.concat(tags, "\0")
    if self._tag_sets[key] then
      G.raise("%s: a meta graph with tags {%s} was already added", what, table.concat(tags, ", "))
    end
    local collections = {}
    collections[MAIN_OP_KEY] = op_names(opts.main_op, what, "main_op")
    collections[LEGACY_INIT_OP_KEY] = op_names(opts.legacy_init_op, what, "legacy_init_op")
    local meta = tf.train._meta_graph_bytes(g, nil, {
      tags = tags, collections = collections,
      signature_defs = signature_defs_bytes(signature_map(opts.signature_def_map, g, what)) })
    if opts.clear_devices then
      local parts = {}
      for i, f in ipairs(P.fields_of(meta, what)) do
        parts[i] = f.num == 2 and type(f.value) == "string" and field_bytes(2, clear_devices(f.value, what)) or f.raw
      end
      meta = table.concat(parts)
    end
    self._tag_sets[key] = true
    self._metas[#self._metas + 1] = meta
  end

  local function check_builder(self, what)
    if getmetatable(self) ~= Builder then G.raise("%s: expected a SavedModelBuilder", what) end
    if self._saved then G.raise("%s: the saved model was already saved", what) end
  end

  function Builder:add_meta_graph_and_variables(sess, tags, opts)
    local what = "builder:add_meta_graph_and_variables"
    check_builder(self, what)
    if self._graph then
      G.raise("%s: graph state including variables has already been saved; use add_meta_graph()", what)
    end
    if getmetatable(sess) ~= tf.Session_mt or sess._closed then G.raise("%s: expected an open tf.Session", what) end
    local g = sess.graph
    add_meta(self, g, tags, opts, what)
    -- the variables now (as TF saves them here), into the temporary directory
    local ops, names, seen = {}, {}, {}
    for _, v in ipairs(g:get_collection("variables")) do
      local op = type(v) == "table" and rawget(v, "op")
      if G.is_operation(op) and op.type == "VariableV2" and not seen[op] then
        seen[op] = true
        ops[#ops + 1], names[#names + 1] = op._ud, op.name
      end
    end
    -- a name no other writer uses (the time, this Lua state's address, a random number)
    local tmp
    repeat
      tmp = string.format("%s.tmp-%x-%s-%08x", self._dir, os.time(), tostring(self):match("0x(%x+)") or "0",
                          math.random(0, 0x7fffffff))
    until not exists(tmp)
    local ok, err = pcall(core.make_dirs, join(tmp, "variables"))
    if ok then
      self._tmp = tmp
      ok, err = pcall(core.checkpoint_save, sess._ud, ops, names, join(tmp, "variables/variables.safetensors"))
    end
    if not ok then
      remove_tmp(self)
      self._metas, self._tag_sets = {}, {}
      G.raise("%s: %s", what, err)
    end
    self._graph = g
  end

  function Builder:add_meta_graph(tags, opts)
    local what = "builder:add_meta_graph"
    check_builder(self, what)
    if not self._graph then
      G.raise("%s: graph state including variables has not been saved yet; call add_meta_graph_and_variables() first",
              what)
    end
    add_meta(self, self._graph, tags, opts, what)
  end

  -- Writes saved_model.pb and moves the directory into place; returns the
  -- path of saved_model.pb.
  function Builder:save(as_text)
    local what = "builder:save"
    check_builder(self, what)
    if as_text then G.raise("%s: moonflow writes saved_model.pb only (binary): call save() or save(false)", what) end
    if not self._graph then G.raise("%s: nothing to save: call add_meta_graph_and_variables() first", what) end
    local parts = { field_varint(1, 1) }
    for _, meta in ipairs(self._metas) do parts[#parts + 1] = field_bytes(2, meta) end
    local pb = join(self._tmp, "saved_model.pb")
    local ok, err = pcall(core.checkpoint_write_file, pb, table.concat(parts))
    if ok and exists(self._dir) and non_empty_dir(self._dir) then
      ok, err = false, "export directory " .. self._dir .. " appeared meanwhile and isn't empty"
    end
    if ok then
      local renamed, rerr = os.rename(self._tmp, self._dir)
      ok, err = renamed, rerr
    end
    if not ok then
      remove_tmp(self)
      self._saved = true
      G.raise("%s: %s", what, tostring(err))
    end
    self._tmp, self._saved = nil, true
    return join(self._dir, "saved_model.pb")
  end

  sm.simple_save = A.def("tf.saved_model.simple_save",
    "session:any, export_dir:string, inputs:table, outputs:table, legacy_init_op:any=nil",
    "Saves the session's graph and variables to export_dir with one 'serving_default' prediction signature "
      .. "(tag 'serve', devices cleared), for mf_model_load and tf.saved_model.load.",
    function(a)
      local b = new_builder(a.export_dir)
      b:add_meta_graph_and_variables(a.session, { sm.SERVING }, {
        signature_def_map = { [sm.DEFAULT_SERVING_SIGNATURE_DEF_KEY] = predict_signature_def(a.inputs, a.outputs) },
        main_op = a.legacy_init_op, clear_devices = true }) -- as TF 1.15's simple_save
      return b:save()
    end)

  -- ---------------------------------------------------------------- loading

  local Model = {}
  Model.__index = Model
  sm.Model_mt = Model
  local Signature = {}
  Signature.__index = Signature
  sm.Signature_mt = Signature

  -- sig(feeds): runs the signature in the model's session; feeds name ->
  -- value (Array, number or nested table); returns name -> Array.
  function Signature.__call(self, feeds)
    if getmetatable(self) ~= Signature then
      G.raise("signature(feeds): call a signature of a loaded model (model.signatures[key]), got %s", type(self))
    end
    local what = "signature '" .. self.key .. "'"
    feeds = feeds or {}
    if type(feeds) ~= "table" then G.raise("%s: expected a table of input name -> value", what) end
    local by_tensor = {}
    for name, v in pairs(feeds) do
      local t = self.inputs[name]
      if not t then
        G.raise("%s: no input named '%s' (inputs: %s)", what, tostring(name), table.concat(sorted_keys(self.inputs), ", "))
      end
      by_tensor[t] = v
    end
    return self._session:run(self.outputs, by_tensor)
  end

  sm.load = A.def("tf.saved_model.load", "export_dir:string, tags:any=nil, config:table=nil",
    "Loads a saved model (mf_model_load) into its own graph and session: returns {graph, session, signatures = "
      .. "{key = callable {inputs, outputs, method_name}}, tags}.",
    function(a)
      local what = "tf.saved_model.load"
      local tags = a.tags and tag_list(a.tags, what) or { sm.SERVING }
      local inter, intra, cfg = tf.Session_mt._config(a.config, what)
      local ok, gud, sud, sigs, meta = pcall(core.model_load, a.export_dir, tags, inter, intra,
                                             cfg.allow_soft_placement, cfg.log_device_placement, cfg.allow_tf32)
      if not ok then G.raise("%s: %s", what, gud) end
      local g = G.wrap_graph(gud)
      local sess = tf.Session_mt._wrap(sud, g)
      local where = string.format("%s: '%s'", what, a.export_dir)
      tf.train._restore_collections(g, P.decode(meta, where), "", where)
      local model = setmetatable({ graph = g, session = sess, signatures = {}, tags = tags, export_dir = a.export_dir },
                                 Model)
      for _, s in ipairs(sigs) do
        local sig = setmetatable({ key = s.key, method_name = s.method, inputs = {}, outputs = {}, _session = sess },
                                 Signature)
        for _, side in ipairs({ "inputs", "outputs" }) do
          for _, e in ipairs(s[side]) do sig[side][e[1]] = g:_op(e[2]).outputs[e[3] + 1] end
        end
        model.signatures[s.key] = sig
      end
      return model
    end)

  -- TF 1.x's loader imports into the caller's session; moonflow's model has its own.
  sm.loader = {
    load = function()
      G.raise("tf.saved_model.loader.load: moonflow loads a saved model into its own graph and session: write "
              .. "`local m = tf.saved_model.load(export_dir, tags)` and use m.session, m.graph and "
              .. "m.signatures[key].inputs / .outputs")
    end,
    maybe_saved_model_directory = function(dir)
      if type(dir) ~= "string" then G.raise("tf.saved_model.loader.maybe_saved_model_directory: expected a path") end
      local f = io.open(join(dir, "saved_model.pb"), "rb")
      if f then f:close() end
      return f ~= nil
    end,
  }
  sm.contains_saved_model = sm.loader.maybe_saved_model_directory

  function Model:close() self.session:close() end
  Model.__close = Model.close

  G.guard_methods(Model, "model", function(x) return getmetatable(x) == Model end, "tf.saved_model.load result")
  G.guard_methods(Builder, "builder", function(x) return getmetatable(x) == Builder end, "SavedModelBuilder")
  local d = A.doc
  d(Builder.add_meta_graph_and_variables, "tf.saved_model.Builder_mt.add_meta_graph_and_variables",
    "builder, sess, tags, {signature_def_map, main_op, legacy_init_op, clear_devices}",
    "Adds the session's graph under tags with its signatures, and saves its global variables.")
  d(Builder.add_meta_graph, "tf.saved_model.Builder_mt.add_meta_graph",
    "builder, tags, {signature_def_map, main_op, legacy_init_op, clear_devices}",
    "Adds the same graph under other tags, with other signatures.")
  d(Builder.save, "tf.saved_model.Builder_mt.save", "builder, as_text=false",
    "Writes saved_model.pb and moves the directory into place; returns the path of saved_model.pb.")
  d(sm.loader.load, "tf.saved_model.loader.load", "sess, tags, export_dir",
    "Refused with the line to write instead: tf.saved_model.load gives the model its own graph and session.")
  d(sm.loader.maybe_saved_model_directory, "tf.saved_model.loader.maybe_saved_model_directory", "export_dir",
    "True when export_dir holds a saved_model.pb.")
  d(Model.close, "tf.saved_model.Model_mt.close", "model", "Closes the model's session (also on <close>).")
  d(Signature.__call, "tf.saved_model.Signature_mt.__call", "signature, feeds",
    "Runs the signature: feeds by input name, returns Arrays by output name.")
end
