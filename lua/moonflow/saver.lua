-- Checkpoints: tf.train.Saver writes variable values to safetensors files
-- (the C core does the file format, checksums and atomic writes) and keeps
-- TensorFlow's "checkpoint" index file beside them; latest_checkpoint reads it.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local C = require("moonflow.convert")

return function(tf)
  tf.train = tf.train or {}

  local Saver = {}
  Saver.__index = Saver
  tf.train.Saver_mt = Saver

  -- ---------------------------------------------------------------- paths and the index file

  local INDEX = "checkpoint"

  -- "dir/model-10" -> "dir", "model-10"; "model" -> ".", "model"; "/m" -> "/", "m"
  local function split_path(path)
    local dir, base = path:match("^(.*)/([^/]*)$")
    if not dir then return ".", path end
    if dir == "" then dir = "/" end
    return dir, base
  end

  local function join(dir, name)
    if name:sub(1, 1) == "/" then return name end
    if dir == "." then return name end
    return dir:sub(-1) == "/" and dir .. name or dir .. "/" .. name
  end

  -- Text-format protocol buffer string literals (C escapes).
  local function quote(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
      if c == '"' then return '\\"' elseif c == "\\" then return "\\\\"
      elseif c == "\n" then return "\\n" elseif c == "\r" then return "\\r"
      elseif c == "\t" then return "\\t" end
      return string.format("\\%03o", c:byte())
    end) .. '"'
  end

  local simple = { n = "\n", r = "\r", t = "\t", ['"'] = '"', ["'"] = "'", ["\\"] = "\\",
                   a = "\a", b = "\b", f = "\f", v = "\v", ["?"] = "?" }
  local function unquote(body)
    local out, i = {}, 1
    while i <= #body do
      local c = body:sub(i, i)
      if c ~= "\\" then
        out[#out + 1], i = c, i + 1
      else
        local oct = body:match("^[0-7][0-7]?[0-7]?", i + 1)
        local hex = body:match("^[xX](%x%x?)", i + 1)
        if oct then
          out[#out + 1], i = string.char(tonumber(oct, 8) % 256), i + 1 + #oct
        elseif hex then
          out[#out + 1], i = string.char(tonumber(hex, 16)), i + 2 + #hex
        else
          local e = body:sub(i + 1, i + 1)
          out[#out + 1], i = simple[e] or e, i + 2
        end
      end
    end
    return table.concat(out)
  end

  -- The index file's model_checkpoint_path and all_model_checkpoint_paths
  -- (as written: relative to the directory, or absolute); nil if unreadable.
  local function read_index(dir)
    local f = io.open(join(dir, INDEX), "r")
    if not f then return nil end
    local text = f:read("a")
    f:close()
    local latest, all = nil, {}
    for line in text:gmatch("[^\n]+") do
      local key, body = line:match('^%s*([%w_]+)%s*:%s*"(.*)"%s*$')
      if key == "model_checkpoint_path" then latest = unquote(body)
      elseif key == "all_model_checkpoint_paths" then all[#all + 1] = unquote(body) end
    end
    return latest, all
  end

  -- Writes the index atomically, as checkpoints are written (the C core's
  -- temporary file "checkpoint.tmp.<pid>", fsync, rename).
  local function write_index(dir, latest, all)
    local function rel(p)
      local d, base = split_path(p)
      return d == dir and base or p
    end
    local lines = { "model_checkpoint_path: " .. quote(rel(latest)) }
    for _, p in ipairs(all) do lines[#lines + 1] = "all_model_checkpoint_paths: " .. quote(rel(p)) end
    local ok, err = pcall(core.checkpoint_write_file, join(dir, INDEX), table.concat(lines, "\n") .. "\n")
    if not ok then G.raise("saver:save: cannot write the checkpoint index: %s", err) end
  end

  local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
  end

  -- tf.train.latest_checkpoint(dir) -> the newest checkpoint's path, or nil.
  function tf.train.latest_checkpoint(dir)
    if type(dir) ~= "string" then G.raise("tf.train.latest_checkpoint: expected a directory name") end
    dir = dir:gsub("(.)/+$", "%1")
    local latest = read_index(dir)
    if not latest then return nil end
    local path = join(dir, latest)
    if not exists(path) then return nil end
    return path
  end

  -- tf.train.list_variables(ckpt) -> {{name, shape, dtype}, ...} sorted by name: the
  -- tensors of a checkpoint file, or of a directory's latest checkpoint, without a
  -- session (TF's pairs, with moonflow's dtype name third).
  function tf.train.list_variables(ckpt)
    if type(ckpt) ~= "string" or ckpt == "" then
      G.raise("tf.train.list_variables: expected a checkpoint path or directory, got %s", tostring(ckpt))
    end
    -- a directory with an index means its latest checkpoint
    local path = read_index((ckpt:gsub("(.)/+$", "%1"))) and tf.train.latest_checkpoint(ckpt) or ckpt
    local ok, list = pcall(core.checkpoint_list, path)
    if not ok then G.raise("tf.train.list_variables: %s", list) end
    local out = {}
    for i, e in ipairs(list) do out[i] = { e.name, e.shape, e.dtype } end
    return out
  end

  -- ---------------------------------------------------------------- Saver

  local function variable_op(v, what)
    local op = type(v) == "table" and rawget(v, "op")
    if not (G.is_tensor(v) and G.is_operation(op) and op.type == "VariableV2") then
      G.raise("%s: expected Variables, got %s", what, tostring(v))
    end
    return op
  end

  -- tf.train.Saver(var_list, {max_to_keep = 5}): var_list is nil (all global
  -- variables), a list of Variables (saved under their op names, "w" for
  -- "w:0"), or a table name -> Variable. max_to_keep 0 keeps every file.
  --
  -- Across restarts (TF's recover_last_checkpoints): the first save under a
  -- prefix "dir/model" takes the older checkpoints of that prefix ("dir/model"
  -- and "dir/model-<step>") that dir's "checkpoint" index lists in
  -- all_model_checkpoint_paths and that still exist, oldest first, before the
  -- ones this saver wrote; max_to_keep then counts them too, so a restarted
  -- job prunes what the previous run left. Other prefixes' entries are never
  -- taken. Calling saver:recover_last_checkpoints or set_last_checkpoints
  -- replaces this (the list is then exactly what was given).
  function tf.train.Saver(var_list, opts)
    opts = C.opts(opts, "tf.train.Saver", "max_to_keep")
    local max_to_keep = opts.max_to_keep
    if max_to_keep == nil then max_to_keep = 5 end
    if math.type(max_to_keep) ~= "integer" or max_to_keep < 0 then
      G.raise("tf.train.Saver: max_to_keep must be a non-negative integer (0 keeps all)")
    end
    if var_list == nil then var_list = tf.global_variables() end
    if type(var_list) ~= "table" then G.raise("tf.train.Saver: var_list must be a table") end
    local ops, names, seen = {}, {}, {}
    local function add(name, v)
      local op = variable_op(v, "tf.train.Saver")
      if seen[name] then G.raise("tf.train.Saver: two variables are saved as '%s'", name) end
      seen[name] = true
      ops[#ops + 1], names[#names + 1] = op, name
    end
    if #var_list > 0 or next(var_list) == nil then
      for _, v in ipairs(var_list) do add(variable_op(v, "tf.train.Saver").name, v) end
    else
      local keys = {}
      for k in pairs(var_list) do
        if type(k) ~= "string" then G.raise("tf.train.Saver: var_list keys must be names (strings)") end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      for _, k in ipairs(keys) do add(k, var_list[k]) end
    end
    if #ops == 0 then G.raise("tf.train.Saver: no variables to save") end
    return setmetatable({ _ops = ops, _names = names, _last = {}, _recovered = {}, max_to_keep = max_to_keep },
                        Saver)
  end

  local function check_session(sess, what)
    if getmetatable(sess) ~= tf.Session_mt then G.raise("%s: expected a tf.Session", what) end
    if sess._closed then G.raise("%s: attempted to use a closed session", what) end
  end

  local function uds(self)
    local u = {}
    for i, op in ipairs(self._ops) do u[i] = op._ud end
    return u
  end

  local function step_number(sess, step)
    if G.is_tensor(step) then
      local v = sess:run(step)
      step = v:numel() == 1 and v:flat(1) or nil
    end
    local n = type(step) == "number" and math.tointeger(step)
    if not n then G.raise("saver:save: global_step must be an integer or a scalar integer tensor") end
    return n
  end

  -- Whether p is a checkpoint of the save prefix: "<prefix>" or "<prefix>-<step>".
  local function of_prefix(p, prefix)
    if p == prefix then return true end
    return p:sub(1, #prefix + 1) == prefix .. "-" and p:sub(#prefix + 2):match("^%-?%d+$") ~= nil
  end

  -- The first save under a prefix: the index's older checkpoints of it go
  -- before this saver's own (see tf.train.Saver).
  local function recover_from_index(self, prefix, dir)
    if self._recovered[prefix] then return end
    self._recovered[prefix] = true
    local _, all = read_index(dir)
    if not all then return end
    local _, base = split_path(prefix)
    local head = prefix:sub(1, #prefix - #base) -- the directory as the user wrote it
    local have, found = {}, {}
    for _, p in ipairs(self._last) do have[p] = true end
    for _, e in ipairs(all) do
      local p = e:find("/", 1, true) and e or head .. e
      if not have[p] and of_prefix(p, prefix) and exists(p) then
        found[#found + 1], have[p] = p, true
      end
    end
    self._last = table.move(self._last, 1, #self._last, #found + 1, found)
  end

  -- saver:save(sess, path, global_step) or saver:save(sess, path,
  -- {global_step = ..., write_meta_graph = true}): writes "<path>-<step>"
  -- (or "<path>") and its graph as a MetaGraphDef "<path>-<step>.meta"
  -- (unless write_meta_graph is false; pruned with it), records it in
  -- the directory's "checkpoint" index, deletes checkpoints beyond
  -- max_to_keep (oldest first, counting those of earlier runs the index
  -- lists), removes the temporary files of saves under this prefix killed
  -- mid-write (see mf_checkpoint_remove_stale_temps: only those of dead
  -- processes), and returns the path written.
  --
  -- Crash safety: the checkpoint and the index are each written to a
  -- temporary file and renamed, so the index's latest checkpoint is always
  -- complete. Checkpoints to prune stay listed in the index until they are
  -- deleted (the index is written twice then), so a save killed at any point
  -- leaves no old checkpoint that a restarted saver does not prune.
  function Saver:save(sess, path, opts)
    check_session(sess, "saver:save")
    if type(path) ~= "string" or path == "" then G.raise("saver:save: expected a path") end
    local step, write_meta = opts, true
    if type(opts) == "table" and not G.is_tensor(opts) then
      step = opts.global_step
      if opts.write_meta_graph ~= nil then write_meta = opts.write_meta_graph ~= false end
    end
    local file = path
    if step ~= nil then file = path .. "-" .. step_number(sess, step) end
    local ok, err = pcall(core.checkpoint_save, sess._ud, uds(self), self._names, file)
    if not ok then G.raise("saver:save: %s", err) end
    -- the graph beside it, as TF's "<file>.meta" (written atomically too)
    if write_meta then
      local g = self._ops[1].graph
      ok, err = pcall(function() core.checkpoint_write_file(file .. ".meta", tf.train._meta_graph_bytes(g, self)) end)
      if not ok then G.raise("saver:save: cannot write the meta graph: %s", err) end
    end
    local dir = split_path(file)
    recover_from_index(self, path, dir)
    local last = self._last
    for i = #last, 1, -1 do if last[i] == file then table.remove(last, i) end end
    last[#last + 1] = file
    local pruned = {}
    while self.max_to_keep > 0 and #last > self.max_to_keep do pruned[#pruned + 1] = table.remove(last, 1) end
    if #pruned > 0 then
      write_index(dir, file, table.move(last, 1, #last, #pruned + 1, table.move(pruned, 1, #pruned, 1, {})))
      for _, p in ipairs(pruned) do os.remove(p); os.remove(p .. ".meta") end -- already gone is fine
    end
    write_index(dir, file, last)
    -- best effort: the save itself succeeded
    pcall(core.checkpoint_remove_stale_temps, path)
    pcall(core.checkpoint_remove_stale_temps, join(dir, INDEX))
    return file
  end

  -- saver:restore(sess, path): all variables from the file, or none (the
  -- session keeps its old values on any error).
  function Saver:restore(sess, path)
    check_session(sess, "saver:restore")
    if type(path) ~= "string" or path == "" then G.raise("saver:restore: expected a checkpoint path") end
    local ok, err = pcall(core.checkpoint_restore, sess._ud, uds(self), self._names, path)
    if not ok then G.raise("saver:restore: %s", err) end
  end

  -- The checkpoints this saver keeps, oldest first.
  function Saver:last_checkpoints() return table.move(self._last, 1, #self._last, 1, {}) end

  local function path_list(paths, what)
    if type(paths) ~= "table" then G.raise("%s: checkpoint_paths must be a list of paths", what) end
    local out = {}
    for i, p in ipairs(paths) do
      if type(p) ~= "string" or p == "" then
        G.raise("%s: checkpoint_paths[%d] must be a path (a non-empty string)", what, i)
      end
      out[i] = p
    end
    return out
  end

  -- saver:set_last_checkpoints(paths): the checkpoints this saver keeps
  -- (and prunes beyond max_to_keep), oldest first, exactly as given.
  function Saver:set_last_checkpoints(paths)
    if getmetatable(self) ~= Saver then G.raise("saver:set_last_checkpoints: expected a tf.train.Saver") end
    self._last = path_list(paths, "saver:set_last_checkpoints")
    self._recovered = setmetatable({}, { __index = function() return true end })
  end

  -- saver:recover_last_checkpoints(paths), after a crash (TF's): as
  -- set_last_checkpoints with the paths that exist, typically the index's
  -- all_model_checkpoint_paths.
  function Saver:recover_last_checkpoints(paths)
    if getmetatable(self) ~= Saver then G.raise("saver:recover_last_checkpoints: expected a tf.train.Saver") end
    local kept = {}
    for _, p in ipairs(path_list(paths, "saver:recover_last_checkpoints")) do
      if exists(p) then kept[#kept + 1] = p end
    end
    self:set_last_checkpoints(kept)
  end
end
