-- Graphs leave the process and come back: graph:as_graph_def(),
-- tf.train.write_graph, tf.import_graph_def and the MetaGraphDef of
-- tf.train.export_meta_graph / import_meta_graph (also written by the Saver
-- beside each checkpoint). The GraphDef is the C core's (mf_graph_export /
-- mf_graph_import: TF's encoding with moonflow's op types and attributes);
-- the MetaGraphDef around it is encoded here (proto/meta_graph.proto):
--   meta_info_def { meta_graph_version: "moonflow <version>", tags }
--   graph_def, saver_def (TF's field values for a V2 saver: the tensor and
--   op names are TF's conventional ones; moonflow's Saver has no such ops),
--   collection_def: "variables" and "trainable_variables" as bytes_list of
--   TF VariableDefs (variable_name, initializer_name, snapshot_name,
--   initial_value_name, trainable), and every other collection whose items
--   are all Tensors or Operations as a node_list of their names.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local A = require("moonflow.args")

return function(tf)
  tf.train = tf.train or {}

  -- ---------------------------------------------------------------- GraphDef objects

  local GraphDef = {}
  GraphDef.__index = GraphDef
  tf.GraphDef_mt = GraphDef

  local function graph_def(bytes) return setmetatable({ _bytes = bytes }, GraphDef) end

  -- TF's graph_def.SerializeToString(): the binary GraphDef.
  function GraphDef:SerializeToString() return self._bytes end
  -- TF's text format (str(graph_def) in Python).
  function GraphDef:to_text() return core.graph_def_to_text(self._bytes) end
  -- TF's graph_def.ParseFromString(bytes): checks that they parse.
  function GraphDef:ParseFromString(bytes)
    if type(bytes) ~= "string" then G.raise("GraphDef:ParseFromString: expected a string, got %s", type(bytes)) end
    local ok, err = pcall(core.graph_def_to_text, bytes)
    if not ok then G.raise("GraphDef:ParseFromString: %s", err) end
    self._bytes = bytes
  end
  GraphDef.__tostring = function(gd) return core.graph_def_to_text(gd._bytes) end
  GraphDef.__len = function(gd) return #gd._bytes end

  -- tf.GraphDef(): an empty one to ParseFromString into.
  tf.GraphDef = function() return graph_def("") end

  -- graph:as_graph_def(): the graph as a GraphDef object (:SerializeToString()
  -- binary, :to_text() and tostring() TF's text format).
  function G.Graph:as_graph_def() return graph_def(core.graph_export(self._g)) end

  -- A GraphDef's bytes from a Graph, a GraphDef object or a string.
  local function bytes_of(x, what)
    if getmetatable(x) == G.Graph then return core.graph_export(x._g) end
    if getmetatable(x) == GraphDef then return x._bytes end
    if type(x) == "string" then return x end
    G.raise("%s: expected a tf.Graph, a GraphDef (graph:as_graph_def()) or its bytes, got %s", what, type(x))
  end

  local function join(dir, name)
    if name:sub(1, 1) == "/" or dir == "" then return name end
    return dir:sub(-1) == "/" and dir .. name or dir .. "/" .. name
  end

  local function write_file(path, data, what)
    local ok, err = pcall(core.checkpoint_write_file, path, data)
    if not ok then G.raise("%s: cannot write '%s': %s", what, path, err) end
  end

  tf.train.write_graph = A.def("tf.train.write_graph",
    "graph_or_graph_def:any, logdir:string, name:string, as_text:bool=true",
    "Writes a graph's GraphDef to logdir/name (created if missing), as TF's text format or binary; returns the path.",
    function(a)
      local bytes = bytes_of(a.graph_or_graph_def, "tf.train.write_graph")
      local ok, err = pcall(core.make_dirs, a.logdir)
      if not ok then G.raise("tf.train.write_graph: %s", err) end
      local data = bytes
      if a.as_text then
        ok, data = pcall(core.graph_def_to_text, bytes)
        if not ok then G.raise("tf.train.write_graph: %s", data) end
      end
      local path = join(a.logdir, a.name)
      write_file(path, data, "tf.train.write_graph")
      return path
    end)

  -- ---------------------------------------------------------------- import

  -- Imports bytes into graph g under prefix; returns what return_elements asks for.
  local function import(g, bytes, prefix, input_map, return_elements, what)
    local keys, ops, idx = {}, {}, {}
    if input_map ~= nil then
      if type(input_map) ~= "table" then G.raise("%s: input_map must be a table of name -> Tensor", what) end
      for k, t in pairs(input_map) do
        if type(k) ~= "string" then G.raise("%s: input_map keys must be names ('op:i'), got %s", what, type(k)) end
        if not G.is_tensor(t) then G.raise("%s: input_map['%s'] must be a Tensor", what, k) end
        if t.graph ~= g then G.raise("%s: input_map['%s'] is from another graph", what, k) end
        keys[#keys + 1], ops[#ops + 1], idx[#idx + 1] = k, t.op._ud, t.value_index
      end
    end
    local names = {}
    if return_elements ~= nil then
      if type(return_elements) ~= "table" then G.raise("%s: return_elements must be a list of names", what) end
      for i, n in ipairs(return_elements) do
        if type(n) ~= "string" then G.raise("%s: return_elements[%d] must be a name", what, i) end
        names[i] = n
      end
    end
    local ok, count, ret = pcall(core.graph_import, g._g, bytes, prefix, keys, ops, idx, names)
    if not ok then G.raise("%s: %s", what, count) end
    if return_elements == nil then return nil, count end
    local out = {}
    for i = 1, #names do
      local op = g:_op(ret[2 * i - 1])
      out[i] = ret[2 * i] < 0 and op or op.outputs[ret[2 * i] + 1]
    end
    return out, count
  end

  -- TF's name: nil is "import", "" none; made unique in the current name scope.
  local function prefix_for(g, name)
    if name == "" then return g._name_stack end
    return g:unique_name(name or "import")
  end

  tf.import_graph_def = A.def("tf.import_graph_def",
    "graph_def:any, input_map:table=nil, return_elements:table=nil, name:string=nil",
    "Adds a GraphDef's nodes to the default graph under name/ (default \"import\"); input_map replaces inputs, "
      .. "returns the Tensors ('op:i') and Operations ('op') of return_elements.",
    function(a)
      local g = G.get_default_graph()
      local bytes = bytes_of(a.graph_def, "tf.import_graph_def")
      return (import(g, bytes, prefix_for(g, a.name), a.input_map, a.return_elements, "tf.import_graph_def"))
    end)

  -- ---------------------------------------------------------------- protocol buffer wire format

  local function varint(n)
    local out = {}
    repeat
      local b = n & 0x7f
      n = n >> 7
      out[#out + 1] = string.char(n ~= 0 and (b | 0x80) or b)
    until n == 0
    return table.concat(out)
  end
  local function field_bytes(num, s) return varint(num << 3 | 2) .. varint(#s) .. s end
  local function field_varint(num, v) return varint(num << 3) .. varint(v) end

  -- Fields of a message: {num = {values...}} (varints as integers,
  -- length-delimited as strings, fixed as raw strings); errors on bad bytes.
  -- The fields of a message in order: {num, value, raw} (varints as
  -- integers, length-delimited as strings, fixed as raw strings; raw: the
  -- whole field's bytes, key included); errors on bad bytes.
  local function fields_of(s, what)
    local out, pos, n = {}, 1, #s
    local function read_varint()
      local v, shift = 0, 0
      while true do
        if pos > n or shift > 63 then error(what .. ": a truncated or malformed protocol buffer", 0) end
        local b = s:byte(pos)
        pos = pos + 1
        v = v | ((b & 0x7f) << shift)
        if b < 0x80 then return v end
        shift = shift + 7
      end
    end
    while pos <= n do
      local start = pos
      local key = read_varint()
      local num, wt = key >> 3, key & 7
      local v
      if wt == 0 then v = read_varint()
      elseif wt == 2 then
        local len = read_varint()
        if len < 0 or pos + len - 1 > n then error(what .. ": a truncated protocol buffer", 0) end
        v = s:sub(pos, pos + len - 1)
        pos = pos + len
      elseif wt == 1 or wt == 5 then
        local len = wt == 1 and 8 or 4
        if pos + len - 1 > n then error(what .. ": a truncated protocol buffer", 0) end
        v = s:sub(pos, pos + len - 1)
        pos = pos + len
      else
        error(string.format("%s: a malformed protocol buffer (wire type %d)", what, wt), 0)
      end
      if num == 0 then error(what .. ": a malformed protocol buffer (field 0)", 0) end
      out[#out + 1] = { num = num, value = v, raw = s:sub(start, pos - 1) }
    end
    return out
  end

  -- Fields of a message by number: {num = {values...}}.
  local function decode(s, what)
    local fields = {}
    for _, f in ipairs(fields_of(s, what)) do
      local list = fields[f.num] or {}
      fields[f.num] = list
      list[#list + 1] = f.value
    end
    return fields
  end

  -- ---------------------------------------------------------------- MetaGraphDef

  local VARIABLE_COLLECTIONS = { variables = true, trainable_variables = true }

  local function variable_def(v)
    local init = rawget(v, "initial_value")
    return field_bytes(1, v.name)
      .. field_bytes(2, v.initializer.name)
      .. field_bytes(3, v.name)
      .. (init and field_bytes(6, init.name) or "")
      .. field_varint(7, v.trainable and 1 or 0)
  end

  local function collection_defs(g, skip)
    local names = {}
    for name in pairs(g._collections) do
      if type(name) == "string" and not (skip and skip[name]) then names[#names + 1] = name end
    end
    table.sort(names)
    local out = {}
    for _, name in ipairs(names) do
      local items, body = g._collections[name], nil
      if VARIABLE_COLLECTIONS[name] then
        local vs = {}
        for _, v in ipairs(items) do
          if getmetatable(v) == tf.Variable_mt and v.graph == g then vs[#vs + 1] = field_bytes(1, variable_def(v)) end
        end
        body = field_bytes(2, table.concat(vs))
      else
        local list, ok = {}, #items > 0
        for _, x in ipairs(items) do
          if (G.is_tensor(x) or G.is_operation(x)) and x.graph == g and type(x.name) == "string" then
            list[#list + 1] = field_bytes(1, x.name)
          else
            ok = false
          end
        end
        if ok then body = field_bytes(1, table.concat(list)) end
      end
      if body then out[#out + 1] = field_bytes(4, field_bytes(1, name) .. field_bytes(2, body)) end
    end
    return table.concat(out)
  end

  local function saver_def(max_to_keep)
    return field_bytes(1, "save/Const:0") .. field_bytes(2, "save/control_dependency:0")
      .. field_bytes(3, "save/restore_all") .. field_varint(4, max_to_keep or 5)
      .. varint(6 << 3 | 5) .. string.pack("<f", 10000.0) .. field_varint(7, 2)
  end

  local MetaGraphDef = {}
  MetaGraphDef.__index = MetaGraphDef
  tf.MetaGraphDef_mt = MetaGraphDef
  function MetaGraphDef:SerializeToString() return self._bytes end
  MetaGraphDef.__len = function(m) return #m._bytes end

  -- The MetaGraphDef bytes of graph g (saver: the Saver whose max_to_keep
  -- goes in). extra (tf.saved_model): tags (default {"serve"}), collections
  -- (name -> list of op names, replacing the graph's own of that name) and
  -- signature_defs (encoded map entries, field 5).
  local function meta_graph_bytes(g, saver, extra)
    extra = extra or {}
    local tags = {}
    for i, t in ipairs(extra.tags or { "serve" }) do tags[i] = field_bytes(4, t) end
    local info = field_bytes(1, "moonflow " .. tf.version) .. table.concat(tags)
    local own = {}
    local names = {}
    for name in pairs(extra.collections or {}) do names[#names + 1] = name end
    table.sort(names)
    for i, name in ipairs(names) do
      local list = {}
      for j, n in ipairs(extra.collections[name]) do list[j] = field_bytes(1, n) end
      own[i] = field_bytes(4, field_bytes(1, name) .. field_bytes(2, field_bytes(1, table.concat(list))))
    end
    return field_bytes(1, info) .. field_bytes(2, core.graph_export(g._g))
      .. field_bytes(3, saver_def(saver and saver.max_to_keep)) .. collection_defs(g, extra.collections)
      .. table.concat(own) .. (extra.signature_defs or "")
  end
  tf.train._meta_graph_bytes = meta_graph_bytes
  tf.train._proto = { field_bytes = field_bytes, field_varint = field_varint, varint = varint, decode = decode,
                      fields_of = fields_of }

  tf.train.export_meta_graph = A.def("tf.train.export_meta_graph",
    "filename:string=nil, graph:any=nil, saver:any=nil",
    "The default graph (or graph) as a MetaGraphDef (graph, saver_def, variable and other collections), "
      .. "written to filename when given; returns it.",
    function(a)
      local g = a.graph or G.get_default_graph()
      if getmetatable(g) ~= G.Graph then G.raise("tf.train.export_meta_graph: graph must be a tf.Graph") end
      local bytes = meta_graph_bytes(g, a.saver)
      if a.filename then write_file(a.filename, bytes, "tf.train.export_meta_graph") end
      return setmetatable({ _bytes = bytes }, MetaGraphDef)
    end)

  local function read_file(path, what)
    local f, err = io.open(path, "rb")
    if not f then G.raise("%s: cannot read '%s': %s", what, path, err) end
    local data, rerr = f:read("a")
    f:close()
    if type(data) ~= "string" then G.raise("%s: cannot read '%s': %s", what, path, tostring(rerr or "not a file")) end
    return data
  end

  -- Adds the collections of a decoded MetaGraphDef m to g, whose nodes were
  -- imported under prefix; returns the variables as {{name, Variable}, ...}.
  local function restore_collections(g, m, prefix, what)
    local function lookup(name)
      local full = prefix ~= "" and prefix .. "/" .. name or name
      local okl, r = pcall(function()
        return name:find(":%d+$") and g:get_tensor_by_name(full) or g:get_operation_by_name(full)
      end)
      if not okl then G.raise("%s: the collections name '%s', which the graph lacks", what, name) end
      return r
    end
    local vars, saved = {}, {}
    for _, entry in ipairs(m[4] or {}) do
      local okd, e = pcall(decode, entry, what)
      if not okd then G.raise("%s", e) end
      local name, body = e[1] and e[1][1], e[2] and e[2][1]
      if type(name) == "string" and type(body) == "string" then
        local okb, c = pcall(decode, body, what)
        if not okb then G.raise("%s", c) end
        if VARIABLE_COLLECTIONS[name] and c[2] then
          local okv, list = pcall(decode, c[2][1], what)
          if not okv then G.raise("%s", list) end
          for _, vd_bytes in ipairs(list[1] or {}) do
            local okx, vd = pcall(decode, vd_bytes, what)
            if not okx or type(vd[1] and vd[1][1]) ~= "string" then G.raise("%s: a malformed VariableDef", what) end
            local vname = vd[1][1]
            local v = vars[vname]
            if not v then
              local t = lookup(vname)
              if not (G.is_tensor(t) and t.op.type == "VariableV2") then
                G.raise("%s: the VariableDef names '%s', which is not a variable's tensor", what, vname)
              end
              local init_name, iv_name = vd[2] and vd[2][1], vd[6] and vd[6][1]
              v = setmetatable({
                _tensor = t, op = t.op, value_index = t.value_index, dtype = t.dtype, shape = t.shape,
                name = t.name, graph = g, trainable = vd[7] ~= nil and vd[7][1] ~= 0,
                initializer = type(init_name) == "string" and lookup(init_name) or nil,
                initial_value = type(iv_name) == "string" and lookup(iv_name) or nil,
              }, tf.Variable_mt)
              v.location = t.op.location
              vars[vname] = v
              saved[#saved + 1] = { vname, v }
            end
            g:add_to_collection(name, v)
          end
        elseif c[1] then
          local okn, list = pcall(decode, c[1][1], what)
          if not okn then G.raise("%s", list) end
          for _, n in ipairs(list[1] or {}) do g:add_to_collection(name, lookup(n)) end
        end
      end
    end
    return saved
  end
  tf.train._restore_collections = restore_collections

  tf.train.import_meta_graph = A.def("tf.train.import_meta_graph",
    "meta_graph_or_file:any, import_scope:string=nil",
    "Imports a MetaGraphDef (a file or export_meta_graph's result) into the default graph, with its variable "
      .. "and other collections; returns a Saver over its variables (nil when it has none).",
    function(a)
      local what = "tf.train.import_meta_graph"
      local x, bytes = a.meta_graph_or_file, nil
      if getmetatable(x) == MetaGraphDef then bytes = x._bytes
      elseif type(x) == "string" then bytes = read_file(x, what)
      else G.raise("%s: expected a file name or a MetaGraphDef, got %s", what, type(x)) end
      local ok, m = pcall(decode, bytes, what)
      if not ok then G.raise("%s", m) end
      local gd = m[2] and m[2][#m[2]]
      if type(gd) ~= "string" then G.raise("%s: the MetaGraphDef has no graph_def", what) end
      local max_to_keep
      if m[3] and type(m[3][1]) == "string" then
        local okd, sd = pcall(decode, m[3][1], what)
        if okd and sd[4] and math.type(sd[4][1]) == "integer" then max_to_keep = sd[4][1] end
      end
      local g = G.get_default_graph()
      local scope = a.import_scope or ""
      local prefix = scope ~= "" and g:unique_name(scope) or ""
      import(g, gd, prefix, nil, nil, what)
      local saved = restore_collections(g, m, prefix, what)
      if #saved == 0 then return nil end
      -- saved under their names in the exporting graph (the checkpoint's)
      local var_list = {}
      for _, e in ipairs(saved) do var_list[e[1]:gsub(":0$", "")] = e[2] end
      return tf.train.Saver(var_list, { max_to_keep = max_to_keep })
    end)

  G.guard_methods(GraphDef, "GraphDef", function(x) return getmetatable(x) == GraphDef end, "GraphDef")
  G.guard_methods(MetaGraphDef, "MetaGraphDef", function(x) return getmetatable(x) == MetaGraphDef end,
                  "MetaGraphDef")
  local d = A.doc
  d(GraphDef.SerializeToString, "tf.GraphDef_mt.SerializeToString", "graph_def", "The binary GraphDef (a string).")
  d(GraphDef.to_text, "tf.GraphDef_mt.to_text", "graph_def", "The GraphDef in TF's protocol buffer text format.")
  d(GraphDef.ParseFromString, "tf.GraphDef_mt.ParseFromString", "graph_def, bytes",
    "Takes a binary GraphDef (checked to parse).")
  d(tf.GraphDef, "tf.GraphDef", "", "An empty GraphDef object (for ParseFromString).")
  d(MetaGraphDef.SerializeToString, "tf.MetaGraphDef_mt.SerializeToString", "meta_graph_def",
    "The binary MetaGraphDef (a string).")
end
