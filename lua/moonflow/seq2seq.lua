-- tf.contrib.seq2seq as TF 1.x shapes it: attention mechanisms (Bahdanau,
-- Luong), the AttentionWrapper cell, helpers (TrainingHelper,
-- GreedyEmbeddingHelper), decoders (BasicDecoder, BeamSearchDecoder),
-- dynamic_decode (a while loop), tile_batch, gather_tree and sequence_loss;
-- and tf.layers.Dense, the layer object the decoders take as output_layer.
-- Everything is composed of existing ops, so gradients come from theirs.
-- Token ids and beam (parent) indices are 1-based, as everywhere in moonflow.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local rc = tf.nn.rnn_cell
  local is_cell, Cell, check_batch = rc._is_cell, rc._Cell, rc._check_batch
  tf.contrib = tf.contrib or {}
  local s2s = {}
  tf.contrib.seq2seq = s2s

  -- ---------------------------------------------------------------- small pieces

  local function dim(t, i) -- a static size, or the size as a scalar int32 tensor
    local d = t.shape and t.shape[i]
    if d and d >= 0 then return d end
    return tf.gather(tf.shape(t), i)
  end

  local function last_dim(t, what, param)
    local d = t.shape and t.shape[#t.shape]
    if not d or d < 0 then G.raise("%s: the last dimension of %s must be known", what, param) end
    return d
  end

  local function tensor_arg(v, what, param, dtype)
    if v == nil then G.raise("%s: needs %s", what, param) end
    local ok, t = pcall(C.to_tensor, v, dtype)
    if not ok or not G.is_tensor(t) then G.raise("%s: %s must be a tensor, got %s", what, param, type(v)) end
    return t
  end

  local function int_tensor(v, what, param)
    local t = tensor_arg(v, what, param, "int32")
    if t.dtype == "int64" then t = tf.cast(t, "int32") end
    if t.dtype ~= "int32" then G.raise("%s: %s must be an int32 tensor, got %s", what, param, t.dtype) end
    return t
  end

  -- cond [B] (or [B, K]) broadcast against x's rank for tf.where; a scalar
  -- (an attention wrapper's time) is y, the new value, as in TF.
  local function where_rows(cond, x, y)
    local rc_, rx = #cond.shape, x.shape and #x.shape or 0
    if rx == 0 then return y end
    local c = cond
    for _ = rc_ + 1, rx do c = tf.expand_dims(c, -1) end
    return tf.where(c, x, y)
  end

  -- Packs flat into structure, keeping the metatables of structure's tables
  -- (AttentionWrapperState and its clone method).
  local function repack(structure, flat)
    local packed = tf.nest.pack_sequence_as(structure, flat)
    local function walk(s, p)
      if type(s) ~= "table" or G.is_tensor(s) or type(p) ~= "table" or G.is_tensor(p) then return p end
      for k, v in pairs(s) do p[k] = walk(v, p[k]) end
      local mt = getmetatable(s)
      if mt then setmetatable(p, mt) end
      return p
    end
    return walk(structure, packed)
  end

  local function map_structure(f, s)
    local flat = tf.nest.flatten(s)
    for i, v in ipairs(flat) do flat[i] = f(v, i) end
    return repack(s, flat)
  end

  local function callable(f)
    if type(f) == "function" then return true end
    local mt = type(f) == "table" and getmetatable(f)
    return mt and mt.__call ~= nil or false
  end

  -- ---------------------------------------------------------------- tf.layers.Dense

  -- A layer object: its variables are made on the first call (under the
  -- variable scope of that call, named after the layer) and used by every
  -- later call, as TF's Dense layer does.
  local Dense = {}
  Dense.__index = Dense
  Dense.__call = function(self, x) return self:apply(x) end

  local function next_layer_name(base)
    local g = G.get_default_graph()
    g._layer_count = (g._layer_count or 0) + 1
    return g._layer_count == 1 and base or base .. "_" .. (g._layer_count - 1)
  end

  tf.layers = tf.layers or {}
  tf.layers.Dense = A.def("tf.layers.Dense",
    "units:int, activation:function=nil, use_bias:bool=true, kernel_initializer:any=nil, bias_initializer:any=nil, "
    .. "kernel_regularizer:function=nil, bias_regularizer:function=nil, trainable:bool=true, name:string=nil, "
    .. "dtype:dtype=nil",
    "A fully connected layer object (variables made on its first call, shared by later calls).", function(a)
    if a.units < 1 then G.raise("tf.layers.Dense: units must be a positive integer, got %d", a.units) end
    local o = {}
    for k, v in pairs(a) do o[k] = v end
    o.name = a.name or next_layer_name("dense")
    return setmetatable(o, Dense)
  end)

  function Dense:apply(x)
    x = C.to_tensor(x)
    local n_in = last_dim(x, "tf.layers.Dense", "its input")
    if not self.kernel then
      tf.variable_scope(self.name, function()
        self.kernel = tf.get_variable("kernel", { n_in, self.units },
          { initializer = self.kernel_initializer, dtype = x.dtype, trainable = self.trainable,
            regularizer = self.kernel_regularizer })
        if self.use_bias then
          self.bias = tf.get_variable("bias", { self.units },
            { initializer = self.bias_initializer or tf.zeros_initializer(), dtype = x.dtype,
              trainable = self.trainable, regularizer = self.bias_regularizer })
        end
      end)
    elseif self.kernel.shape[1] ~= n_in then
      G.raise("tf.layers.Dense: the layer was built for %d input features, got %d", self.kernel.shape[1], n_in)
    end
    local y
    if #x.shape == 2 then
      y = tf.matmul(x, self.kernel)
    else
      local lead = {}
      for i = 1, #x.shape - 1 do lead[i] = dim(x, i) end
      lead[#lead + 1] = self.units
      y = tf.reshape(tf.matmul(tf.reshape(x, { -1, n_in }), self.kernel), lead)
    end
    if self.bias then y = y + self.bias end
    if self.activation then y = self.activation(y) end
    return y
  end

  local function layer_arg(l, what, param)
    if l == nil then return nil end
    if not callable(l) then G.raise("%s: %s must be a layer (tf.layers.Dense) or a function", what, param) end
    return l
  end

  -- ---------------------------------------------------------------- attention mechanisms

  local Mechanism = {}
  Mechanism.__index = Mechanism

  -- memory [B, T, D] with the entries past each length zeroed (as TF's
  -- _prepare_memory), keys = memory_layer(values).
  local function new_mechanism(kind, a, what)
    local memory = tensor_arg(a.memory, what, "memory")
    if not memory.shape or #memory.shape ~= 3 then G.raise("%s: memory must have rank 3 [batch, time, depth]", what) end
    last_dim(memory, what, "memory")
    if a.num_units < 1 then G.raise("%s: num_units must be a positive integer", what) end
    local m = setmetatable({ kind = kind, num_units = a.num_units, normalize = a.normalize, scale = a.scale,
                             probability_fn = a.probability_fn or function(s) return tf.nn.softmax(s) end,
                             score_mask_value = a.score_mask_value, dtype = memory.dtype }, Mechanism)
    tf.name_scope(a.name or what:match("[%w_]+$"), function()
      local values = memory
      if a.memory_sequence_length ~= nil then
        m.memory_sequence_length = int_tensor(a.memory_sequence_length, what, "memory_sequence_length")
        m.mask = tf.sequence_mask(m.memory_sequence_length, dim(memory, 2)) -- [B, T]
        values = memory * tf.expand_dims(tf.cast(m.mask, memory.dtype), -1)
      end
      m.values = values
      m.memory_layer = tf.layers.Dense(a.num_units, { name = "memory_layer", use_bias = false })
      m.keys = m.memory_layer(values)
      if kind == "bahdanau" then
        m.query_layer = tf.layers.Dense(a.num_units, { name = "query_layer", use_bias = false })
      end
    end)
    m.batch_size = dim(memory, 1)
    m.alignments_size = dim(memory, 2)
    return m
  end

  s2s.BahdanauAttention = A.def("tf.contrib.seq2seq.BahdanauAttention",
    "num_units:int, memory:tensor, memory_sequence_length:tensor=nil, normalize:bool=false, "
    .. "probability_fn:function=nil, score_mask_value:number=nil, dtype:dtype=nil, name:string=\"BahdanauAttention\"",
    "Additive attention: score = v' tanh(keys + query_layer(query)), softmax over the memory (masked past "
    .. "memory_sequence_length).", function(a)
    return new_mechanism("bahdanau", a, "tf.contrib.seq2seq.BahdanauAttention")
  end)

  s2s.LuongAttention = A.def("tf.contrib.seq2seq.LuongAttention",
    "num_units:int, memory:tensor, memory_sequence_length:tensor=nil, scale:bool=false, "
    .. "probability_fn:function=nil, score_mask_value:number=nil, dtype:dtype=nil, name:string=\"LuongAttention\"",
    "Multiplicative attention: score = query . keys (times a learned g when scale), softmax over the memory "
    .. "(masked past memory_sequence_length).", function(a)
    return new_mechanism("luong", a, "tf.contrib.seq2seq.LuongAttention")
  end)

  -- The scores [B, T] of a query [B, num_units or any] against the keys.
  function Mechanism:score(query)
    local U = self.num_units
    if self.kind == "luong" then
      local d = last_dim(query, "LuongAttention", "the query")
      if d ~= U then G.raise("LuongAttention: the query has depth %d but num_units is %d", d, U) end
      return tf.variable_scope("luong_attention", function()
        local s = tf.squeeze(tf.matmul(tf.expand_dims(query, 2), self.keys, { transpose_b = true }), { 2 })
        if self.scale then
          self.g = self.g or tf.get_variable("attention_g", {}, { dtype = query.dtype,
                                                                  initializer = tf.constant_initializer(1.0) })
          s = self.g * s
        end
        return s
      end)
    end
    return tf.variable_scope("bahdanau_attention", function()
      local q = tf.expand_dims(self.query_layer(query), 2) -- [B, 1, U]
      self.v = self.v or tf.get_variable("attention_v", { U }, { dtype = query.dtype })
      local v = self.v
      if self.normalize then
        self.g = self.g or tf.get_variable("attention_g", {}, { dtype = query.dtype,
                                                                initializer = tf.constant_initializer(math.sqrt(1 / U)) })
        self.b = self.b or tf.get_variable("attention_b", { U }, { dtype = query.dtype,
                                                                   initializer = tf.zeros_initializer() })
        v = self.g * v * tf.rsqrt(tf.reduce_sum(tf.square(v)))
        return tf.reduce_sum(v * tf.tanh(self.keys + q + self.b), 3)
      end
      return tf.reduce_sum(v * tf.tanh(self.keys + q), 3)
    end)
  end

  -- Mechanism(query, state) -> alignments [B, T], next state (the alignments).
  function Mechanism:__call(query, _)
    query = C.to_tensor(query)
    local s = self:score(query)
    if self.mask then
      local fill = self.score_mask_value or -math.huge
      s = tf.where(self.mask, s, tf.fill(tf.shape(s), fill, { dtype = s.dtype }))
    end
    local al = self.probability_fn(s)
    return al, al
  end

  function Mechanism:initial_alignments(batch_size, dtype)
    return tf.zeros({ batch_size, self.alignments_size }, dtype or self.dtype)
  end
  Mechanism.initial_state = Mechanism.initial_alignments

  local function is_mechanism(x) return type(x) == "table" and getmetatable(x) == Mechanism end

  -- ---------------------------------------------------------------- AttentionWrapper

  local State = {}
  State.__index = State
  -- state:clone{cell_state = ...}: a copy with the named fields replaced.
  function State:clone(fields)
    if type(fields) ~= "table" then G.raise("AttentionWrapperState:clone: takes a table of fields {cell_state = ...}") end
    local c = {}
    for k, v in pairs(self) do c[k] = v end
    for k, v in pairs(fields) do
      if c[k] == nil and k ~= "alignment_history" then
        G.raise("AttentionWrapperState:clone: unknown field '%s'", tostring(k))
      end
      c[k] = v
    end
    return setmetatable(c, State)
  end

  local Wrapper = setmetatable({}, { __index = Cell })
  Wrapper.__index = Wrapper
  Wrapper.__call = Cell.__call

  s2s.AttentionWrapper = A.def("tf.contrib.seq2seq.AttentionWrapper",
    "cell:any, attention_mechanism:any, attention_layer_size:int=nil, alignment_history:bool=false, "
    .. "cell_input_fn:function=nil, output_attention:bool=true, initial_cell_state:any=nil, name:string=nil, "
    .. "attention_layer:any=nil",
    "A cell that attends over a memory at each step: its input is concatenated with the previous attention, "
    .. "its output attention_layer([cell output, context]).", function(a)
    local what = "tf.contrib.seq2seq.AttentionWrapper"
    if not is_cell(a.cell) then G.raise("%s: cell must be an RNN cell, got %s", what, type(a.cell)) end
    local mech = a.attention_mechanism
    if type(mech) == "table" and not is_mechanism(mech) and #mech == 1 then mech = mech[1] end
    if not is_mechanism(mech) then
      G.raise("%s: attention_mechanism must be one attention mechanism (BahdanauAttention, LuongAttention)", what)
    end
    if a.attention_layer_size ~= nil and a.attention_layer ~= nil then
      G.raise("%s: give attention_layer_size or attention_layer, not both", what)
    end
    if a.attention_layer_size ~= nil and a.attention_layer_size < 1 then
      G.raise("%s: attention_layer_size must be a positive integer", what)
    end
    local layer = layer_arg(a.attention_layer, what, "attention_layer")
    if a.attention_layer_size then
      layer = tf.layers.Dense(a.attention_layer_size, { name = "attention_layer", use_bias = false })
    end
    local att_size = a.attention_layer_size or (layer and layer.units) or last_dim(mech.values, what, "the memory")
    return setmetatable({ kind = "attention", cell = a.cell, mechanism = mech, attention_layer = layer,
      attention_size = att_size, alignment_history = a.alignment_history, cell_input_fn = a.cell_input_fn,
      output_attention = a.output_attention, initial_cell_state = a.initial_cell_state,
      scope_name = a.name or "attention_wrapper", output_size = a.output_attention and att_size or a.cell.output_size,
      state_size = { cell_state = a.cell.state_size, attention = att_size, time = {},
                     alignments = mech.alignments_size, attention_state = mech.alignments_size } }, Wrapper)
  end)

  function Wrapper:zero_state(batch_size, dtype)
    batch_size = check_batch(batch_size, "AttentionWrapper:zero_state")
    dtype = dtype or "float32"
    return tf.name_scope("AttentionWrapperZeroState", function()
      local cs = self.initial_cell_state or self.cell:zero_state(batch_size, dtype)
      return setmetatable({ cell_state = cs, attention = tf.zeros({ batch_size, self.attention_size }, dtype),
        time = tf.constant(0, { dtype = "int32" }),
        alignments = self.mechanism:initial_alignments(batch_size, dtype),
        attention_state = self.mechanism:initial_state(batch_size, dtype) }, State)
    end)
  end

  function Wrapper:call(x, state, scope)
    x = C.to_tensor(x)
    if type(state) ~= "table" or G.is_tensor(state) or state.attention == nil or state.cell_state == nil then
      G.raise("AttentionWrapper: state must be an AttentionWrapperState (from zero_state), got %s", type(state))
    end
    local f = function()
      return tf.variable_scope(self.scope_name, function()
        local inp = self.cell_input_fn and self.cell_input_fn(x, state.attention)
                    or tf.concat({ x, state.attention }, -1)
        local cell_out, next_cell = self.cell(inp, state.cell_state)
        local al, att_state = self.mechanism(cell_out, state.attention_state)
        -- context [B, D] = alignments [B, 1, T] x values [B, T, D]
        local context = tf.squeeze(tf.matmul(tf.expand_dims(al, 2), self.mechanism.values), { 2 })
        local attention = context
        if self.attention_layer then attention = self.attention_layer(tf.concat({ cell_out, context }, -1)) end
        local nxt = setmetatable({ cell_state = next_cell, attention = attention, time = state.time + 1,
                                   alignments = al, attention_state = att_state }, State)
        return self.output_attention and attention or cell_out, nxt
      end)
    end
    if scope then return tf.variable_scope(scope, f) end
    return f()
  end

  -- ---------------------------------------------------------------- helpers

  local function batch_major_to_time_major(t)
    local perm = { 2, 1 }
    for i = 3, #t.shape do perm[i] = i end
    return tf.transpose(t, perm)
  end

  local Training = {}
  Training.__index = Training

  s2s.TrainingHelper = A.def("tf.contrib.seq2seq.TrainingHelper",
    "inputs:tensor, sequence_length:tensor, time_major:bool=false, name:string=nil",
    "Feeds the given inputs step by step (teacher forcing); a row finishes after sequence_length steps.", function(a)
    local what = "tf.contrib.seq2seq.TrainingHelper"
    local x = tensor_arg(a.inputs, what, "inputs")
    if not x.shape or #x.shape < 3 then G.raise("%s: inputs must have rank 3 or more", what) end
    local lens = int_tensor(a.sequence_length, what, "sequence_length")
    if not lens.shape or #lens.shape ~= 1 then G.raise("%s: sequence_length must be a vector", what) end
    local tm = a.time_major and x or batch_major_to_time_major(x)
    return setmetatable({ inputs = tm, sequence_length = lens, batch_size = dim(lens, 1), T = dim(tm, 1) }, Training)
  end)

  local function read_step(self, t) -- inputs at 0-based step t (clamped: past the end no row reads it)
    local last = self.T - 1
    return tf.gather(self.inputs, tf.minimum(t, last) + 1)
  end

  function Training:initialize()
    return tf.equal(self.sequence_length, 0), read_step(self, tf.constant(0, { dtype = "int32" }))
  end

  function Training.sample(_, _, outputs) return tf.cast(tf.argmax(outputs, -1), "int32") end

  function Training:next_inputs(time, _, state)
    local nt = time + 1
    return tf.greater_equal(nt, self.sequence_length), read_step(self, nt), state
  end

  local function embedding_fn_of(embedding, what)
    if callable(embedding) then return embedding end
    local params = tensor_arg(embedding, what, "embedding")
    return function(ids) return tf.nn.embedding_lookup(params, ids) end
  end

  local Greedy = {}
  Greedy.__index = Greedy

  s2s.GreedyEmbeddingHelper = A.def("tf.contrib.seq2seq.GreedyEmbeddingHelper",
    "embedding:any, start_tokens:tensor, end_token:tensor",
    "Feeds back the embedding of each step's argmax token; a row finishes when it emits end_token.", function(a)
    local what = "tf.contrib.seq2seq.GreedyEmbeddingHelper"
    local start = int_tensor(a.start_tokens, what, "start_tokens")
    if not start.shape or #start.shape ~= 1 then G.raise("%s: start_tokens must be a vector", what) end
    local stop = int_tensor(a.end_token, what, "end_token")
    if not stop.shape or #stop.shape ~= 0 then G.raise("%s: end_token must be a scalar", what) end
    local embed = embedding_fn_of(a.embedding, what)
    return setmetatable({ embed = embed, start_tokens = start, end_token = stop, batch_size = dim(start, 1),
                          start_inputs = embed(start) }, Greedy)
  end)

  function Greedy:initialize()
    return tf.not_equal(self.start_tokens, self.start_tokens), self.start_inputs
  end

  function Greedy.sample(_, _, outputs) return tf.cast(tf.argmax(outputs, -1), "int32") end

  function Greedy:next_inputs(_, _, state, sample_ids)
    return tf.equal(sample_ids, self.end_token), self.embed(sample_ids), state
  end

  -- ---------------------------------------------------------------- BasicDecoder

  local Basic = {}
  Basic.__index = Basic

  s2s.BasicDecoder = A.def("tf.contrib.seq2seq.BasicDecoder",
    "cell:any, helper:any, initial_state:any, output_layer:any=nil",
    "A decoder: the cell, then output_layer, then the helper's sampling and next inputs.", function(a)
    local what = "tf.contrib.seq2seq.BasicDecoder"
    if not is_cell(a.cell) then G.raise("%s: cell must be an RNN cell, got %s", what, type(a.cell)) end
    local h = a.helper
    if type(h) ~= "table" or type(h.initialize) ~= "function" or type(h.next_inputs) ~= "function" then
      G.raise("%s: helper must be a helper (TrainingHelper, GreedyEmbeddingHelper)", what)
    end
    if a.initial_state == nil then G.raise("%s: needs initial_state", what) end
    return setmetatable({ cell = a.cell, helper = h, initial_state = a.initial_state, batch_size = h.batch_size,
                          output_layer = layer_arg(a.output_layer, what, "output_layer") }, Basic)
  end)

  function Basic:initialize()
    local finished, inputs = self.helper:initialize()
    return finished, inputs, self.initial_state
  end

  function Basic:step(time, inputs, state)
    local out, cell_state = self.cell(inputs, state)
    if self.output_layer then out = self.output_layer(out) end
    local ids = self.helper:sample(time, out, cell_state)
    local finished, next_inputs, next_state = self.helper:next_inputs(time, out, cell_state, ids)
    return { rnn_output = out, sample_id = ids }, next_state, next_inputs, finished
  end

  -- ---------------------------------------------------------------- beam search

  -- tile_batch: each row repeated multiplier times in place ([B, ...] -> [B*m, ...]).
  local function tile_one(t, m)
    t = C.to_tensor(t)
    if not t.shape or #t.shape == 0 then return t end
    local mult, shape = { 1, m }, { -1 }
    for i = 2, #t.shape do mult[i + 1] = 1; shape[i] = dim(t, i) end
    return tf.reshape(tf.tile(tf.expand_dims(t, 2), mult), shape)
  end

  s2s.tile_batch = A.def("tf.contrib.seq2seq.tile_batch", "t:any, multiplier:int, name:string=nil",
    "Each batch row of t (a tensor or a structure of tensors) repeated multiplier times in place: "
    .. "[B, ...] -> [B*multiplier, ...].", function(a)
    if a.multiplier < 1 then G.raise("tf.contrib.seq2seq.tile_batch: multiplier must be positive") end
    if a.t == nil then G.raise("tf.contrib.seq2seq.tile_batch: needs t") end
    return tf.name_scope(a.name or "tile_batch", function()
      if G.is_tensor(a.t) or type(a.t) ~= "table" then return tile_one(a.t, a.multiplier) end
      return map_structure(function(v) return tile_one(v, a.multiplier) end, a.t)
    end)
  end)

  -- x [B, K] (or [B*K, ...] merged when merged) picked per row by 0-based beam indices ptr [B, K].
  -- Each element's 0-based batch row, for x [B, ...] (B known only at run time).
  local function row_index(x) return tf.cumsum(tf.ones_like(x), 1, { exclusive = true }) end

  local function gather_beams(x, ptr, K, merged)
    local idx = ptr + row_index(ptr) * K + 1 -- 1-based rows of the merged batch
    idx = tf.reshape(idx, { -1 })
    if merged then
      if not x.shape or #x.shape == 0 then return x end
      return tf.gather(x, idx)
    end
    return tf.reshape(tf.gather(tf.reshape(x, { -1 }), idx), { -1, K })
  end

  -- gather_tree(step_ids [T, B, K], parent_ids [T, B, K] (1-based), max_sequence_lengths [B], end_token):
  -- each final beam's tokens traced back through its parents; steps at or past
  -- max_sequence_lengths and after a beam's first end_token are end_token.
  local function gather_tree(step_ids, parent_ids, max_lens, end_token)
    local K = last_dim(step_ids, "tf.contrib.seq2seq.gather_tree", "step_ids")
    local T = dim(step_ids, 1)
    local rev_ids, rev_par = tf.reverse(step_ids, { 1 }), tf.reverse(parent_ids, { 1 })
    local ident = tf.zeros_like(tf.gather(step_ids, 1)) + tf.range(0, K) -- [B, K]
    local lens = tf.expand_dims(max_lens, 2)
    -- t: the 0-based time of the row being read, from the last
    local init = { ptr = ident, id = tf.zeros_like(ident), t = C.to_tensor(T) - 1 }
    local out = tf.scan(function(acc, row)
      local valid = tf.less(acc.t, lens) -- [B, 1]
      local ptr = acc.ptr
      local id = tf.where(valid, gather_beams(row.ids, ptr, K), tf.zeros_like(ptr) + end_token)
      local nptr = tf.where(valid, gather_beams(row.par, ptr, K) - 1, ident)
      return { ptr = nptr, id = id, t = acc.t - 1 }
    end, { ids = rev_ids, par = rev_par }, init)
    local ids = tf.reverse(out.id, { 1 })
    local ended = tf.greater(tf.cumsum(tf.cast(tf.equal(ids, end_token), "int32"), 1, { exclusive = true }), 0)
    return tf.where(ended, tf.zeros_like(ids) + end_token, ids)
  end

  s2s.gather_tree = A.def("tf.contrib.seq2seq.gather_tree",
    "step_ids:tensor, parent_ids:tensor, max_sequence_lengths:tensor, end_token:tensor, name:string=nil",
    "Beam search's full token sequences [T, B, K] traced back from each last beam through the 1-based "
    .. "parent_ids; end_token after each beam's first end_token and past max_sequence_lengths.", function(a)
    local what = "tf.contrib.seq2seq.gather_tree"
    local ids, par = int_tensor(a.step_ids, what, "step_ids"), int_tensor(a.parent_ids, what, "parent_ids")
    if not ids.shape or #ids.shape ~= 3 or not par.shape or #par.shape ~= 3 then
      G.raise("%s: step_ids and parent_ids must have rank 3 [time, batch, beam]", what)
    end
    return tf.name_scope(a.name or "gather_tree", function()
      return gather_tree(ids, par, int_tensor(a.max_sequence_lengths, what, "max_sequence_lengths"),
                         int_tensor(a.end_token, what, "end_token"))
    end)
  end)

  local Beam = {}
  Beam.__index = Beam

  s2s.BeamSearchDecoder = A.def("tf.contrib.seq2seq.BeamSearchDecoder",
    "cell:any, embedding:any, start_tokens:tensor, end_token:tensor, initial_state:any, beam_width:int, "
    .. "output_layer:any=nil, length_penalty_weight:number=0.0, coverage_penalty_weight:number=0.0, "
    .. "reorder_tensor_arrays:bool=true",
    "Beam search over the cell's outputs: the beam_width best hypotheses per row by summed log "
    .. "probability (divided by ((5 + length) / 6)^length_penalty_weight); initial_state tiled with tile_batch.",
    function(a)
    local what = "tf.contrib.seq2seq.BeamSearchDecoder"
    if not is_cell(a.cell) then G.raise("%s: cell must be an RNN cell, got %s", what, type(a.cell)) end
    if a.beam_width < 1 then G.raise("%s: beam_width must be a positive integer", what) end
    if a.coverage_penalty_weight ~= 0 then G.raise("%s: coverage_penalty_weight is not supported", what) end
    if a.initial_state == nil then G.raise("%s: needs initial_state", what) end
    local start = int_tensor(a.start_tokens, what, "start_tokens")
    if not start.shape or #start.shape ~= 1 then G.raise("%s: start_tokens must be a vector", what) end
    local stop = int_tensor(a.end_token, what, "end_token")
    if not stop.shape or #stop.shape ~= 0 then G.raise("%s: end_token must be a scalar", what) end
    local embed = embedding_fn_of(a.embedding, what)
    local K = a.beam_width
    local d = setmetatable({ cell = a.cell, embed = embed, start_tokens = start, end_token = stop,
      initial_state = a.initial_state, beam_width = K, output_layer = layer_arg(a.output_layer, what, "output_layer"),
      length_penalty_weight = a.length_penalty_weight, batch_size = dim(start, 1), tracks_own_finished = true }, Beam)
    d.start_inputs = embed(tf.reshape(tile_one(start, K), { -1 }))
    return d
  end)

  function Beam:initialize()
    local K = self.beam_width
    local beam = tf.zeros_like(tf.expand_dims(self.start_tokens, 2)) + tf.range(0, K) -- [B, K]
    local finished = tf.greater(beam, 0) -- only the first beam is live at the start
    local dtype = "float32"
    local lp = tf.where(finished, tf.fill(tf.shape(beam), -math.huge), tf.zeros(tf.shape(beam), dtype))
    local state = { cell_state = self.initial_state, log_probs = lp, finished = finished,
                    lengths = tf.zeros_like(beam) }
    return finished, self.start_inputs, state
  end

  function Beam:step(_, inputs, state)
    local K, stop = self.beam_width, self.end_token
    local out, next_cell = self.cell(inputs, state.cell_state)
    if self.output_layer then out = self.output_layer(out) end
    local V = last_dim(out, "tf.contrib.seq2seq.BeamSearchDecoder", "the logits")
    local lp = tf.nn.log_softmax(tf.reshape(out, { -1, K, V }))              -- [B, K, V]
    local vocab = tf.range(1, V + 1)
    local is_end = tf.equal(vocab, stop)                                       -- [V]
    -- a finished beam can only go on with end_token, at no cost
    local fin_row = tf.where(is_end, tf.zeros({ V }, lp.dtype), tf.fill({ V }, -3.4028234663852886e38))
    local fin3 = tf.expand_dims(state.finished, 3)
    lp = tf.where(fin3, tf.zeros_like(lp) + fin_row, lp)
    local total = tf.expand_dims(state.log_probs, 3) + lp
    local scores = total
    local w = self.length_penalty_weight
    if w ~= 0 then
      local add = tf.cast(tf.logical_not(is_end), "int32") * tf.cast(tf.logical_not(fin3), "int32")
      local lens = tf.cast(add + tf.expand_dims(state.lengths, 3), total.dtype)
      scores = total / tf.pow((5 + lens) / 6, w)
    end
    local best, idx = tf.nn.top_k(tf.reshape(scores, { -1, K * V }), K)      -- [B, K], 1-based
    local idx0 = idx - 1
    local word = tf.floormod(idx0, V) + 1
    local parent0 = tf.floordiv(idx0, V)
    local flat_idx = tf.reshape(idx0 + row_index(idx0) * (K * V), { -1 }) + 1
    local log_probs = tf.reshape(tf.gather(tf.reshape(total, { -1 }), flat_idx), { -1, K })
    local prev_fin = gather_beams(state.finished, parent0, K)
    local finished = tf.logical_or(prev_fin, tf.equal(word, stop))
    local lengths = gather_beams(state.lengths, parent0, K) + tf.cast(tf.logical_not(prev_fin), "int32")
    local cell_state = map_structure(function(v) return gather_beams(C.to_tensor(v), parent0, K, true) end, next_cell)
    local nxt = { cell_state = cell_state, log_probs = log_probs, finished = finished, lengths = lengths }
    local output = { scores = best, predicted_ids = word, parent_ids = parent0 + 1 }
    return output, nxt, self.embed(tf.reshape(word, { -1 })), finished
  end

  function Beam:finalize(outputs, final_state)
    local ids = gather_tree(outputs.predicted_ids, outputs.parent_ids, tf.reduce_max(final_state.lengths, 2),
                            self.end_token)
    return { predicted_ids = ids, beam_search_decoder_output = outputs }, final_state
  end

  -- ---------------------------------------------------------------- dynamic_decode

  -- The steps run in one tf.while_loop until every row has finished (or
  -- maximum_iterations); each step's outputs are stacked.
  s2s.dynamic_decode = A.def("tf.contrib.seq2seq.dynamic_decode",
    "decoder:any, output_time_major:bool=false, impute_finished:bool=false, maximum_iterations:any=nil, "
    .. "parallel_iterations:int=32, swap_memory:bool=false, scope:string=nil",
    "final_outputs, final_state, final_sequence_lengths of running decoder step by step in a while loop "
    .. "until every row finishes (or maximum_iterations).", function(a)
    local what = "tf.contrib.seq2seq.dynamic_decode"
    local dec = a.decoder
    if type(dec) ~= "table" or type(dec.step) ~= "function" or type(dec.initialize) ~= "function" then
      G.raise("%s: decoder must be a decoder (BasicDecoder, BeamSearchDecoder)", what)
    end
    local max = a.maximum_iterations
    if max ~= nil then
      if math.type(max) == "float" and max == math.floor(max) then max = math.tointeger(max) end
      if math.type(max) == "integer" then
        if max < 0 then G.raise("%s: maximum_iterations must be >= 0", what) end
      else
        max = int_tensor(max, what, "maximum_iterations")
        if #max.shape ~= 0 then G.raise("%s: maximum_iterations must be a scalar", what) end
      end
    end
    return tf.variable_scope(a.scope or "decoder", function()
      local finished, inputs, state = dec:initialize()
      if max ~= nil then finished = tf.logical_or(finished, tf.greater_equal(0, max)) end
      local lens = tf.cast(finished, "int32") * 0
      local inputs_flat, state_flat = tf.nest.flatten(inputs), tf.nest.flatten(state)
      local ni, ns = #inputs_flat, #state_flat
      local vars = { tf.constant(0, { dtype = "int32" }), finished, lens }
      for i = 1, ni do vars[#vars + 1] = C.to_tensor(inputs_flat[i]) end
      for i = 1, ns do vars[#vars + 1] = C.to_tensor(state_flat[i]) end
      local out_structure
      -- (alignment_history: for a BasicDecoder over an AttentionWrapper)
      local wrapper = getmetatable(dec) == Basic and getmetatable(dec.cell) == Wrapper and dec.cell.alignment_history
      local finals, outs = tf._loop(what, vars, {},
        function(v) return tf.logical_not(tf.reduce_all(v[2])) end,
        function(v)
          local time, fin, ls = v[1], v[2], v[3]
          local inp = tf.nest.pack_sequence_as(inputs, table.move(v, 4, 3 + ni, 1, {}))
          local st = repack(state, table.move(v, 4 + ni, 3 + ni + ns, 1, {}))
          local o, nstate, ninp, dfin = dec:step(time, inp, st)
          local nfin = dec.tracks_own_finished and dfin or tf.logical_or(dfin, fin)
          if max ~= nil then nfin = tf.logical_or(nfin, tf.greater_equal(time + 1, max)) end
          local nls = tf.where(fin, ls, tf.zeros_like(ls) + (time + 1))
          local emit = tf.nest.flatten(o)
          if a.impute_finished and not dec.tracks_own_finished then
            for i, e in ipairs(emit) do emit[i] = where_rows(fin, tf.zeros_like(e), e) end
          end
          local nflat = tf.nest.flatten(nstate)
          if #nflat ~= ns then G.raise("%s: the decoder returned a state of %d tensors for one of %d", what, #nflat, ns) end
          if a.impute_finished and not dec.tracks_own_finished then
            for i = 1, ns do
              nflat[i] = where_rows(fin, v[3 + ni + i], C.to_tensor(nflat[i]))
            end
          end
          out_structure = o
          if wrapper then emit[#emit + 1] = nstate.alignments end
          local nextv = { time + 1, nfin, nls }
          for _, t in ipairs(tf.nest.flatten(ninp)) do nextv[#nextv + 1] = t end
          for _, t in ipairs(nflat) do nextv[#nextv + 1] = t end
          return nextv, emit
        end)
      local final_state = repack(state, table.move(finals, 4 + ni, 3 + ni + ns, 1, {}))
      local history
      if wrapper then history = table.remove(outs) end
      local final_outputs = repack(out_structure, outs)
      local final_lens = finals[3]
      if dec.finalize then final_outputs, final_state = dec:finalize(final_outputs, final_state, final_lens) end
      if history then
        final_state.alignment_history = setmetatable({ value = history }, {
          __index = { stack = function(self) return self.value end } })
      end
      if not a.output_time_major then
        final_outputs = map_structure(function(t)
          if t.shape and #t.shape >= 2 then return batch_major_to_time_major(t) end
          return t
        end, final_outputs)
      end
      return final_outputs, final_state, final_lens
    end)
  end)

  -- ---------------------------------------------------------------- sequence_loss

  local function div_no_nan(x, y)
    local zero = tf.equal(y, 0)
    return tf.where(zero, tf.zeros_like(x), x / tf.where(zero, tf.ones_like(y), y))
  end

  s2s.sequence_loss = A.def("tf.contrib.seq2seq.sequence_loss",
    "logits:tensor, targets:tensor, weights:tensor, average_across_timesteps:bool=true, "
    .. "average_across_batch:bool=true, sum_over_timesteps:bool=false, sum_over_batch:bool=false, "
    .. "softmax_loss_function:function=nil, name:string=nil",
    "Weighted cross-entropy of logits [B, T, V] against 1-based targets [B, T], summed or averaged "
    .. "(by the weights) over time and/or batch.", function(a)
    local what = "tf.contrib.seq2seq.sequence_loss"
    local logits = tensor_arg(a.logits, what, "logits")
    local targets = int_tensor(a.targets, what, "targets")
    local weights = tensor_arg(a.weights, what, "weights", logits.dtype)
    if not logits.shape or #logits.shape ~= 3 then G.raise("%s: logits must have rank 3 [batch, time, classes]", what) end
    if not targets.shape or #targets.shape ~= 2 then G.raise("%s: targets must have rank 2 [batch, time]", what) end
    if not weights.shape or #weights.shape ~= 2 then G.raise("%s: weights must have rank 2 [batch, time]", what) end
    if weights.dtype ~= logits.dtype then weights = tf.cast(weights, logits.dtype) end
    if a.average_across_timesteps and a.sum_over_timesteps then
      G.raise("%s: average_across_timesteps and sum_over_timesteps cannot both be true", what)
    end
    if a.average_across_batch and a.sum_over_batch then
      G.raise("%s: average_across_batch and sum_over_batch cannot both be true", what)
    end
    return tf.name_scope(a.name or "sequence_loss", function()
      local V = dim(logits, 3)
      local flat_logits, flat_targets = tf.reshape(logits, { -1, V }), tf.reshape(targets, { -1 })
      local ce
      if a.softmax_loss_function then
        ce = a.softmax_loss_function { labels = flat_targets, logits = flat_logits }
      else
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits { labels = flat_targets, logits = flat_logits }
      end
      ce = ce * tf.reshape(weights, { -1 })
      local function count(axis)
        return tf.reduce_sum(tf.cast(tf.not_equal(weights, 0), ce.dtype), axis)
      end
      if a.average_across_timesteps and a.average_across_batch then
        return div_no_nan(tf.reduce_sum(ce), tf.reduce_sum(weights))
      elseif a.sum_over_timesteps and a.sum_over_batch then
        return div_no_nan(tf.reduce_sum(ce), count())
      end
      ce = tf.reshape(ce, tf.shape(targets))
      if a.average_across_timesteps or a.average_across_batch then
        local axis = a.average_across_batch and 1 or 2
        return div_no_nan(tf.reduce_sum(ce, axis), tf.reduce_sum(weights, axis))
      elseif a.sum_over_timesteps or a.sum_over_batch then
        local axis = a.sum_over_batch and 1 or 2
        return div_no_nan(tf.reduce_sum(ce, axis), count(axis))
      end
      return ce
    end)
  end)

  G.guard_methods(Dense, "Dense", function(x) return getmetatable(x) == Dense end)
  G.guard_methods(Wrapper, "AttentionWrapper", function(x) return getmetatable(x) == Wrapper end)
end
