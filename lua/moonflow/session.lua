-- Sessions: sess:run(fetches, feeds) with any fetch structure, feeds keyed
-- by tensor or name, close / <close>, and the interactive default session.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local Session = {}
  Session.__index = Session
  tf.Session_mt = Session

  local default_sessions = {}
  function tf.get_default_session() return default_sessions[#default_sessions] end

  -- A session config (TensorFlow's ConfigProto names are accepted too):
  -- inter_op_threads, intra_op_threads and the checked table.
  function Session._config(config, what)
    local cfg = C.opts(config, what .. " config", "inter_op_threads intra_op_threads "
                       .. "inter_op_parallelism_threads intra_op_parallelism_threads "
                       .. "allow_soft_placement log_device_placement allow_tf32")
    local inter = cfg.inter_op_threads or cfg.inter_op_parallelism_threads or 1
    local intra = cfg.intra_op_threads or cfg.intra_op_parallelism_threads or 0
    for key, n in pairs({ inter_op_threads = inter, intra_op_threads = intra }) do
      if math.type(n) ~= "integer" or n < (key == "inter_op_threads" and 1 or 0) then
        G.raise("%s: config.%s must be an integer >= %d", what, key, key == "inter_op_threads" and 1 or 0)
      end
    end
    for _, key in ipairs({ "allow_soft_placement", "log_device_placement", "allow_tf32" }) do
      if cfg[key] ~= nil and type(cfg[key]) ~= "boolean" then G.raise("%s: config.%s must be a boolean", what, key) end
    end
    return inter, intra, cfg
  end

  -- tf.Session() / tf.Session{target, graph, config = {inter_op_threads, intra_op_threads,
  -- allow_soft_placement, log_device_placement, allow_tf32}}
  tf.Session = A.def("tf.Session", "target:string=\"\", graph:any=nil, config:table=nil",
    "A session that runs a graph (config: inter_op_threads, intra_op_threads, placement).", function(opts)
    local target = opts.target or ""
    if target ~= "" and target ~= "local" then
      G.raise("tf.Session: target '%s' is not supported (only the local in-process target \"\")", target)
    end
    local g = opts.graph or G.get_default_graph()
    if getmetatable(g) ~= G.Graph then G.raise("tf.Session: graph must be a tf.Graph") end
    local inter, intra, cfg = Session._config(opts.config, "tf.Session")
    local ok, ud = pcall(core.session_new, g._g, inter, intra, cfg.allow_soft_placement,
                         cfg.log_device_placement, cfg.allow_tf32)
    if not ok then G.raise("tf.Session: %s", ud) end
    return Session._wrap(ud, g)
  end)

  -- A Session over the core session `ud` of the tf.Graph g (also a C host's,
  -- through moonflow_lua.h).
  function Session._wrap(ud, g)
    return setmetatable({ _ud = ud, graph = g, _closed = false, _sigs = {} }, Session)
  end

  function Session:close()
    if not self._closed then
      core.session_close(self._ud) -- may refuse (from inside a running graph): still open then
      self._closed = true
      for i = #default_sessions, 1, -1 do
        if default_sessions[i] == self then table.remove(default_sessions, i) end
      end
    end
  end
  Session.__close = Session.close
  Session.__gc = Session.close

  -- Step statistics: sess:set_tracing(true), then after a run
  -- sess:last_trace() lists {name, type, start_ns, end_ns, thread} per op.
  function Session:set_tracing(on)
    if self._closed then G.raise("sess:set_tracing: attempted to use a closed session") end
    core.session_set_tracing(self._ud, on)
  end
  function Session:last_trace()
    if self._closed then G.raise("sess:last_trace: attempted to use a closed session") end
    return core.session_trace(self._ud)
  end

  -- The devices this session can place operations on, as TensorFlow's
  -- sess.list_devices(): {name = "/job:localhost/.../device:CPU:0", device_type = "CPU",
  -- memory_limit_bytes = ...}.
  function Session:list_devices()
    if self._closed then G.raise("sess:list_devices: attempted to use a closed session") end
    local list = core.devices()
    for _, d in ipairs(list) do d.memory_limit_bytes = 0 end -- no limit is set on any device
    return list
  end

  function Session:as_default(fn)
    return G.scoped(function() default_sessions[#default_sessions + 1] = self end,
                    function() table.remove(default_sessions) end, fn, "sess:as_default")
  end

  -- ---------------------------------------------------------------- fetch structures

  -- Resolves a fetch element: a Tensor (or Variable), an Operation, or a name.
  local function element(self, x)
    if type(x) == "string" then
      if x:find(":%d+$") then return self.graph:get_tensor_by_name(x) end
      return self.graph:get_operation_by_name(x)
    end
    if G.is_tensor(x) then return x._tensor or x end
    if G.is_operation(x) then return x end
    return nil
  end

  -- Flattens `fetches` into tensors and target ops; returns a function that
  -- rebuilds the structure from the fetched Arrays.
  local function flatten(self, fetches, tensors, targets, slot_of)
    local e = element(self, fetches)
    if e then
      if e.graph ~= self.graph then
        G.raise("sess:run: fetch '%s' is from a different graph than the session's", e.name)
      end
      if G.is_operation(e) then
        targets[#targets + 1] = e._ud
        return function() return nil end
      end
      local slot = slot_of[e]
      if not slot then
        slot = #tensors + 1
        tensors[slot] = e
        slot_of[e] = slot
      end
      -- a fetchable that turns its value into a Lua one (tf.report_uninitialized_variables)
      local convert = type(fetches) == "table" and rawget(fetches, "_fetch_value")
      if convert then return function(vals) return convert(vals[slot]) end end
      return function(vals) return vals[slot] end
    end
    if type(fetches) ~= "table" then
      G.raise("sess:run: cannot fetch a %s (fetch Tensors, Operations, names, or tables of them)", type(fetches))
    end
    if tf.is_indexed_slices(fetches) then -- a sparse gradient: its values and ids
      fetches = { values = fetches.values, indices = fetches.indices }
    end
    local parts = {}
    for k, v in pairs(fetches) do
      -- a list's `n` (tf.gradients, table.pack) is its length, not a fetch
      if not (k == "n" and math.type(v) == "integer") then
        parts[k] = flatten(self, v, tensors, targets, slot_of)
      end
    end
    return function(vals)
      local r = { n = fetches.n }
      for k, f in pairs(parts) do r[k] = f(vals) end
      return r
    end
  end

  function Session:run(fetches, feeds)
    if getmetatable(self) ~= Session then G.raise("sess.run: call it as sess:run(...) (with a colon)") end
    if self._closed then G.raise("sess:run: attempted to use a closed session") end
    if fetches == nil then G.raise("sess:run: needs fetches") end
    local fetch_flat, targets, rebuild = {}, {}, nil
    local single = element(self, fetches)
    if single and G.is_tensor(single) and single.graph == self.graph
       and not (type(fetches) == "table" and rawget(fetches, "_fetch_value")) then
      fetch_flat[1], fetch_flat[2] = single.op._ud, single.value_index
    else
      local tensors = {}
      rebuild = flatten(self, fetches, tensors, targets, {})
      for i, t in ipairs(tensors) do fetch_flat[2 * i - 1], fetch_flat[2 * i] = t.op._ud, t.value_index end
    end
    local feed_flat, feed_vals = {}, {}
    if feeds ~= nil then
      if type(feeds) ~= "table" then G.raise("sess:run: feeds must be a table keyed by tensor or name") end
      for k, v in pairs(feeds) do
        local t = type(k) == "string" and self.graph:get_tensor_by_name(k:find(":%d+$") and k or k .. ":0")
                  or (G.is_tensor(k) and (k._tensor or k))
        if not t then G.raise("sess:run: a feed key must be a Tensor or a tensor name, got %s", type(k)) end
        if t.graph ~= self.graph then
          G.raise("sess:run: feed '%s' is from a different graph than the session's", t.name)
        end
        local n = #feed_vals + 1
        feed_flat[2 * n - 1], feed_flat[2 * n] = t.op._ud, t.value_index
        -- An Array goes to the core as is, which names the fed op on a dtype mismatch.
        feed_vals[n] = C.is_array(v) and v or C.to_array(v, t.dtype, "sess:run: feed for " .. t.name)
      end
    end
    local ok, vals = pcall(core.session_run, self._ud, feed_flat, feed_vals, fetch_flat, targets)
    if not ok then error(vals, 2) end
    if rebuild then return rebuild(vals) end
    return vals[1]
  end

  -- ---------------------------------------------------------------- interactive use

  tf.InteractiveSession = A.def("tf.InteractiveSession", "target:string=\"\", graph:any=nil, config:table=nil",
    "A session that becomes the default one (t:eval(), op:run()).", function(opts)
    local s = tf.Session(opts.target, opts.graph, opts.config)
    default_sessions[#default_sessions + 1] = s
    return s
  end)

  local function session_for(sess, what)
    sess = sess or tf.get_default_session()
    if sess and getmetatable(sess) ~= Session then
      G.raise("%s: sess must be a tf.Session, got %s", what, type(sess))
    end
    if not sess then
      G.raise("%s: no default session (pass one, or use tf.InteractiveSession / sess:as_default)", what)
    end
    return sess
  end

  function G.Tensor.eval(t, feeds, sess) return session_for(sess, "t:eval()"):run(t, feeds) end
  function G.Operation.run(op, feeds, sess) session_for(sess, "op:run()"):run(op, feeds) end
end
