-- Recurrent networks: cells (BasicRNN, LSTM, GRU, MultiRNN) and wrappers
-- (Dropout, Residual, Device), static_rnn (one cell call per step),
-- dynamic_rnn (the fused sequence ops for the built-in cells, composed cell
-- calls otherwise), bidirectional_dynamic_rnn, and embedding_lookup.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local nn = tf.nn
  local rnn_cell = {}
  nn.rnn_cell = rnn_cell
  tf.contrib = tf.contrib or {}
  tf.contrib.rnn = rnn_cell

  -- ---------------------------------------------------------------- cells

  local Cell = {}
  Cell.__index = Cell
  Cell.__call = function(cell, x, state, scope) return cell:call(x, state, scope) end
  -- Every cell class (the wrappers, tf.contrib.seq2seq's AttentionWrapper)
  -- has _rnn_cell through its __index chain.
  Cell._rnn_cell = true
  local Multi, Dropout -- below
  local function is_cell(x)
    local mt = type(x) == "table" and getmetatable(x)
    return mt and mt._rnn_cell == true or false
  end
  rnn_cell._is_cell = is_cell
  rnn_cell._Cell = Cell

  local function new_cell(kind, default_name, fields)
    fields.kind = kind
    fields.scope_name = fields.name or default_name
    return setmetatable(fields, Cell)
  end

  -- Creates the cell's variables on first use (under the current variable
  -- scope), so that later calls share them.
  function Cell:_build(input_size, dtype)
    if self.vars then return self.vars end
    local n = self.num_units
    self.vars = tf.variable_scope(self.scope_name, function()
      local init = self.initializer
      if self.kind == "lstm" then
        return { kernel = tf.get_variable("kernel", { input_size + n, 4 * n }, { dtype = dtype, initializer = init }),
                 bias = tf.get_variable("bias", { 4 * n }, { dtype = dtype, initializer = tf.zeros_initializer() }) }
      elseif self.kind == "gru" then
        local v = {}
        tf.variable_scope("gates", function()
          v.gate_kernel = tf.get_variable("kernel", { input_size + n, 2 * n }, { dtype = dtype, initializer = init })
          v.gate_bias = tf.get_variable("bias", { 2 * n }, { dtype = dtype, initializer = tf.constant_initializer(1.0) })
        end)
        tf.variable_scope("candidate", function()
          v.cand_kernel = tf.get_variable("kernel", { input_size + n, n }, { dtype = dtype, initializer = init })
          v.cand_bias = tf.get_variable("bias", { n }, { dtype = dtype, initializer = tf.zeros_initializer() })
        end)
        return v
      else
        return { kernel = tf.get_variable("kernel", { input_size + n, n }, { dtype = dtype, initializer = init }),
                 bias = tf.get_variable("bias", { n }, { dtype = dtype, initializer = tf.zeros_initializer() }) }
      end
    end)
    self.input_size = input_size
    return self.vars
  end

  local function last_dim(x, what)
    local d = x.shape and x.shape[#x.shape]
    if not d or d < 0 then G.raise("%s: the input's last dimension must be known", what) end
    return d
  end

  -- One step: output, new_state.
  function Cell:call(x, state, scope)
    x = C.to_tensor(x)
    if self.kind == "lstm" then
      if type(state) ~= "table" or not G.is_tensor(state.c) or not G.is_tensor(state.h) then
        G.raise("LSTMCell: state must be an LSTMStateTuple {c = Tensor, h = Tensor}, got %s", type(state))
      end
    elseif not G.is_tensor(state) then
      G.raise("%s cell: state must be a Tensor, got %s", self.kind, type(state))
    end
    local f = function()
      local v = self:_build(last_dim(x, "rnn cell"), x.dtype)
      if self.kind == "lstm" then
        local z = tf.matmul(tf.concat({ x, state.h }, 2), v.kernel) + v.bias
        local parts = tf.split(z, 4, 2)
        local i, j, f, o = parts[1], parts[2], parts[3], parts[4]
        local c = tf.sigmoid(f + self.forget_bias) * state.c + tf.sigmoid(i) * tf.tanh(j)
        local h = tf.sigmoid(o) * tf.tanh(c)
        return h, { c = c, h = h }
      elseif self.kind == "gru" then
        local gates = tf.sigmoid(tf.matmul(tf.concat({ x, state }, 2), v.gate_kernel) + v.gate_bias)
        local ru = tf.split(gates, 2, 2)
        local r, u = ru[1], ru[2]
        local c = tf.tanh(tf.matmul(tf.concat({ x, r * state }, 2), v.cand_kernel) + v.cand_bias)
        local h = u * state + (1 - u) * c
        return h, h
      else
        local h = tf.tanh(tf.matmul(tf.concat({ x, state }, 2), v.kernel) + v.bias)
        return h, h
      end
    end
    if scope then return tf.variable_scope(scope, f) end
    return f()
  end

  -- batch: an integer or a scalar int32 tensor (a batch known when it runs).
  local function check_batch(batch, what)
    if math.type(batch) == "integer" and batch >= 0 then return batch end
    if G.is_tensor(batch) and (batch.dtype == "int32" or batch.dtype == "int64") and batch.shape and #batch.shape == 0 then
      return batch.dtype == "int32" and batch or tf.cast(batch, "int32")
    end
    G.raise("%s: batch_size must be a non-negative integer or a scalar int32 tensor, got %s", what,
            G.is_tensor(batch) and "a Tensor" or type(batch))
  end
  rnn_cell._check_batch = check_batch

  function Cell:zero_state(batch, dtype)
    batch = check_batch(batch, "cell:zero_state")
    dtype = dtype or "float32"
    local z = function() return tf.zeros({ batch, self.num_units }, dtype) end
    if self.kind == "lstm" then return { c = z(), h = z() } end
    return z()
  end

  local function check_units(n, what)
    if math.type(n) ~= "integer" or n < 1 then G.raise("%s: num_units must be a positive integer", what) end
  end

  function rnn_cell.BasicRNNCell(n, opts)
    opts = C.opts(opts, "BasicRNNCell", "name initializer")
    check_units(n, "BasicRNNCell")
    return new_cell("rnn", "basic_rnn_cell", { num_units = n, name = opts.name, state_size = n, output_size = n,
                                              initializer = opts.initializer })
  end

  function rnn_cell.LSTMCell(n, opts)
    opts = C.opts(opts, "LSTMCell", "name initializer forget_bias")
    check_units(n, "LSTMCell")
    return new_cell("lstm", "lstm_cell", { num_units = n, name = opts.name, forget_bias = opts.forget_bias or 1.0,
      state_size = { c = n, h = n }, output_size = n, initializer = opts.initializer })
  end
  rnn_cell.BasicLSTMCell = rnn_cell.LSTMCell

  function rnn_cell.GRUCell(n, opts)
    opts = C.opts(opts, "GRUCell", "name initializer")
    check_units(n, "GRUCell")
    return new_cell("gru", "gru_cell", { num_units = n, name = opts.name, state_size = n, output_size = n,
                                        initializer = opts.initializer })
  end

  -- A stack of cells; its state is the list of its cells' states.
  Multi = setmetatable({}, { __index = Cell })
  Multi.__index = Multi
  Multi.__call = Cell.__call

  function rnn_cell.MultiRNNCell(cells)
    if type(cells) ~= "table" or #cells == 0 then G.raise("MultiRNNCell: needs a list of cells") end
    for i, c in ipairs(cells) do
      if not is_cell(c) then G.raise("MultiRNNCell: cells[%d] is not an RNN cell", i) end
    end
    local sizes = {}
    for i, c in ipairs(cells) do sizes[i] = c.state_size end
    return setmetatable({ kind = "multi", cells = cells, state_size = sizes,
                          output_size = cells[#cells].output_size, scope_name = "multi_rnn_cell" }, Multi)
  end

  function Multi:call(x, state, scope)
    if type(state) ~= "table" or G.is_tensor(state) or #state ~= #self.cells then
      G.raise("MultiRNNCell: state must be a list of %d cell states, got %s", #self.cells, type(state))
    end
    local f = function()
      return tf.variable_scope(self.scope_name, function()
        local new = {}
        for i, cell in ipairs(self.cells) do
          x, new[i] = cell(x, state[i], "cell_" .. (i - 1))
        end
        return x, new
      end)
    end
    if scope then return tf.variable_scope(scope, f) end
    return f()
  end

  function Multi:zero_state(batch, dtype)
    local s = {}
    for i, c in ipairs(self.cells) do s[i] = c:zero_state(batch, dtype) end
    return s
  end

  -- A wrapper class: calls go to the wrapped cell unless it says otherwise.
  local function wrapper_class()
    local cls = setmetatable({}, { __index = Cell })
    cls.__index = cls
    cls.__call = Cell.__call
    cls.zero_state = function(self, batch, dtype) return self.cell:zero_state(batch, dtype) end
    return cls
  end

  local function keep_prob(v, what, param)
    if v == nil then return 1.0 end
    if type(v) == "number" then
      if not (v > 0 and v <= 1) then G.raise("%s: %s must be in (0, 1], got %s", what, param, tostring(v)) end
      return v
    end
    if G.is_tensor(v) then return v end
    G.raise("%s: %s must be a number or a scalar Tensor, got %s", what, param, type(v))
  end

  -- Dropout on a cell's inputs, outputs and/or new state (as TF 1.x's
  -- default filter: every state tensor but an LSTM's c).
  Dropout = wrapper_class()

  rnn_cell.DropoutWrapper = A.def("tf.nn.rnn_cell.DropoutWrapper",
    "cell:any, input_keep_prob:scalar=1.0, output_keep_prob:scalar=1.0, state_keep_prob:scalar=1.0, "
    .. "variational_recurrent:bool=false, input_size:any=nil, dtype:dtype=nil, seed:int=nil, "
    .. "dropout_state_filter_visitor:function=nil",
    "A cell with dropout on its inputs, outputs and new state (not an LSTM's c).", function(a)
    local what = "DropoutWrapper"
    if not is_cell(a.cell) then G.raise("%s: cell must be an RNN cell, got %s", what, type(a.cell)) end
    if a.variational_recurrent then G.raise("%s: variational_recurrent is not supported", what) end
    return setmetatable({ kind = "dropout", cell = a.cell,
      input_keep_prob = keep_prob(a.input_keep_prob, what, "input_keep_prob"),
      output_keep_prob = keep_prob(a.output_keep_prob, what, "output_keep_prob"),
      state_keep_prob = keep_prob(a.state_keep_prob, what, "state_keep_prob"),
      state_filter = a.dropout_state_filter_visitor,
      seed = a.seed, state_size = a.cell.state_size,
      output_size = a.cell.output_size, scope_name = a.cell.scope_name }, Dropout)
  end)

  -- A distinct op seed per use, so that the input, output and state masks differ.
  local function maybe_dropout(x, keep, seed, salt)
    if keep == 1 then return x end -- a number 1 (a tensor may vary per run)
    return nn.dropout(x, keep, { seed = seed and seed + (salt or 0) })
  end

  local function drop_state(self, s, salt)
    if G.is_tensor(s) then
      if self.state_filter and not self.state_filter(s) then return s end
      return maybe_dropout(s, self.state_keep_prob, self.seed, salt)
    end
    local out = {}
    for k, v in pairs(s) do
      if k == "c" and s.h ~= nil and not self.state_filter then out[k] = v -- an LSTM's memory stays
      else out[k] = drop_state(self, v, salt + 1) end
    end
    return out
  end

  function Dropout:call(x, state, scope)
    x = maybe_dropout(C.to_tensor(x), self.input_keep_prob, self.seed, 1)
    local out, new = self.cell(x, state, scope)
    if self.state_keep_prob ~= 1 then new = drop_state(self, new, 2) end
    return maybe_dropout(out, self.output_keep_prob, self.seed, 0), new
  end

  -- output = residual_fn(inputs, cell output) (default: their sum).
  local Residual = wrapper_class()
  rnn_cell.ResidualWrapper = A.def("tf.nn.rnn_cell.ResidualWrapper", "cell:any, residual_fn:function=nil",
    "A cell whose output is its input plus the wrapped cell's output (or residual_fn(input, output)).", function(a)
    if not is_cell(a.cell) then G.raise("ResidualWrapper: cell must be an RNN cell, got %s", type(a.cell)) end
    return setmetatable({ kind = "residual", cell = a.cell, residual_fn = a.residual_fn, state_size = a.cell.state_size,
                          output_size = a.cell.output_size, scope_name = a.cell.scope_name }, Residual)
  end)

  function Residual:call(x, state, scope)
    x = C.to_tensor(x)
    local out, new = self.cell(x, state, scope)
    if self.residual_fn then return self.residual_fn(x, out), new end
    if x.shape and out.shape and x.shape[#x.shape] ~= out.shape[#out.shape]
       and x.shape[#x.shape] >= 0 and out.shape[#out.shape] >= 0 then
      G.raise("ResidualWrapper: the input has %d features but the cell outputs %d", x.shape[#x.shape],
              out.shape[#out.shape])
    end
    return x + out, new
  end

  -- The wrapped cell's ops placed on one device.
  local Device = wrapper_class()
  rnn_cell.DeviceWrapper = A.def("tf.nn.rnn_cell.DeviceWrapper", "cell:any, device:string",
    "A cell whose ops (and zero state) go on device.", function(a)
    if not is_cell(a.cell) then G.raise("DeviceWrapper: cell must be an RNN cell, got %s", type(a.cell)) end
    return setmetatable({ kind = "device", cell = a.cell, device = a.device, state_size = a.cell.state_size,
                          output_size = a.cell.output_size, scope_name = a.cell.scope_name }, Device)
  end)

  function Device:call(x, state, scope)
    return tf.device(self.device, function() return self.cell(x, state, scope) end)
  end

  function Device:zero_state(batch, dtype)
    return tf.device(self.device, function() return self.cell:zero_state(batch, dtype) end)
  end

  -- ---------------------------------------------------------------- static_rnn

  -- tf.nn.static_rnn(cell, inputs, {initial_state, dtype, sequence_length, scope}):
  -- inputs a list of {batch, features} tensors; returns outputs (a list) and the final state.
  function nn.static_rnn(cell, inputs, opts)
    opts = C.opts(opts, "tf.nn.static_rnn", "initial_state dtype sequence_length scope")
    if type(inputs) ~= "table" or #inputs == 0 then G.raise("tf.nn.static_rnn: needs a list of inputs") end
    if not is_cell(cell) then G.raise("tf.nn.static_rnn: cell must be an RNN cell, got %s", type(cell)) end
    for i, x in ipairs(inputs) do
      if not G.is_tensor(x) then G.raise("tf.nn.static_rnn: inputs[%d] is not a Tensor", i) end
    end
    local state = opts.initial_state
    if not state then
      local b = inputs[1].shape and inputs[1].shape[1]
      if not b or b < 0 then G.raise("tf.nn.static_rnn: needs an initial_state when the batch size is unknown") end
      state = cell:zero_state(b, inputs[1].dtype)
    end
    return tf.variable_scope(opts.scope or "rnn", function()
      local outputs = {}
      for t, x in ipairs(inputs) do outputs[t], state = cell(x, state) end
      return outputs, state
    end)
  end

  -- ---------------------------------------------------------------- dynamic_rnn

  -- Zeros [B, n] with B taken from x [B, T, F] at run time.
  local function dynamic_zeros(x, n)
    local first = tf.slice(x, { 1, 1, 1 }, { -1, 1, 1 })          -- [B, 1, 1]
    return tf.reshape(tf.tile(tf.zeros_like(first), { 1, 1, n }), { -1, n })
  end

  local builtin = { lstm = true, gru = true, rnn = true }
  local function zero_state_like(cell, x)
    if cell.kind == "multi" then
      local s = {}
      for i, c in ipairs(cell.cells) do s[i] = zero_state_like(c, x) end
      return s
    elseif cell.kind == "dropout" or cell.kind == "residual" then
      return zero_state_like(cell.cell, x)
    end
    local b = x.shape and x.shape[1]
    if b and b >= 0 then return cell:zero_state(b, x.dtype) end
    if not builtin[cell.kind] then return cell:zero_state(tf.gather(tf.shape(x), 1), x.dtype) end
    local z = dynamic_zeros(x, cell.num_units)
    if cell.kind == "lstm" then return { c = z, h = z } end
    return z
  end

  local fused_ops = { lstm = "LSTMSequence", gru = "GRUSequence", rnn = "RNNSequence" }

  -- When x is an embedding lookup of a table with fewer rows than the
  -- sequence has tokens, x W_x + b is cheaper as (table W_x + b)[ids]: a small
  -- GEMM and a gather instead of a GEMM over every token (and the same for the
  -- gradients). Returns that projection [B, T, width], or nil.
  local function small_lookup(x)
    local lookup = x.graph._embedding_lookups and x.graph._embedding_lookups[x.op]
    local params = lookup and lookup.params
    local V = params and params.shape and params.shape[1]
    if not V or V < 0 or #params.shape ~= 2 or not x.shape then return nil end
    local B, T = x.shape[1], x.shape[2]
    if B and T and B >= 0 and T >= 0 and V >= B * T then return nil end
    return lookup
  end

  local function projected_input(lookup, kernel, bias, n_in)
    local wx = tf.slice(kernel, { 1, 1 }, { n_in, -1 })
    return tf.gather(tf.matmul(lookup.params, wx) + bias, lookup.ids)
  end

  -- One built-in cell over the whole sequence as one fused op: outputs [B,T,H], state.
  local function fused_layer(cell, x, state, seq_len)
    local n_in = last_dim(x, "tf.nn.dynamic_rnn")
    local v = cell:_build(n_in, x.dtype)
    local k = cell.kind
    local inputs, attrs
    local lookup = (k == "lstm" or k == "gru") and small_lookup(x)
    local function recurrent(kernel) return tf.slice(kernel, { n_in + 1, 1 }, { -1, -1 }) end
    if lookup and k == "lstm" then
      inputs = { projected_input(lookup, v.kernel, v.bias, n_in), state.h, state.c, recurrent(v.kernel) }
      if seq_len then inputs[#inputs + 1] = seq_len end
      local op = G.make_op("LSTMSequenceProjected", inputs, { "forget_bias", "float", cell.forget_bias + 0.0 },
                           { name = "LSTMSequence" })
      return op.outputs[1], { c = op.outputs[3], h = op.outputs[2] }
    elseif lookup then
      inputs = { projected_input(lookup, v.gate_kernel, v.gate_bias, n_in),
                 projected_input(lookup, v.cand_kernel, v.cand_bias, n_in), state,
                 recurrent(v.gate_kernel), recurrent(v.cand_kernel) }
      if seq_len then inputs[#inputs + 1] = seq_len end
      local op = G.make_op("GRUSequenceProjected", inputs, nil, { name = "GRUSequence" })
      return op.outputs[1], op.outputs[2]
    end
    if k == "lstm" then
      inputs, attrs = { x, state.h, state.c, v.kernel, v.bias }, { "forget_bias", "float", cell.forget_bias + 0.0 }
    elseif k == "gru" then
      inputs = { x, state, v.gate_kernel, v.gate_bias, v.cand_kernel, v.cand_bias }
    else
      inputs = { x, state, v.kernel, v.bias }
    end
    if seq_len then inputs[#inputs + 1] = seq_len end
    local op = G.make_op(fused_ops[k], inputs, attrs, { name = fused_ops[k] })
    if k == "lstm" then return op.outputs[1], { c = op.outputs[3], h = op.outputs[2] } end
    return op.outputs[1], op.outputs[2]
  end

  local function fusable(cell)
    if cell.kind == "dropout" then return cell.state_keep_prob == 1 and fusable(cell.cell) end
    if cell.kind == "multi" then
      for _, c in ipairs(cell.cells) do if not fusable(c) then return false end end
      return true
    end
    return fused_ops[cell.kind] ~= nil and core.op_type_exists(fused_ops[cell.kind])
  end

  -- Runs a fusable cell (possibly stacked, possibly with dropout) over the sequence.
  local function run_fused(cell, x, state, seq_len)
    if cell.kind == "multi" then
      return tf.variable_scope(cell.scope_name, function()
        local new = {}
        for i, c in ipairs(cell.cells) do
          x, new[i] = tf.variable_scope("cell_" .. (i - 1), function() return run_fused(c, x, state[i], seq_len) end)
        end
        return x, new
      end)
    elseif cell.kind == "dropout" then
      -- Dropout per element of every step, as the per-step wrapper does.
      local y, s = run_fused(cell.cell, maybe_dropout(x, cell.input_keep_prob, cell.seed, 1), state, seq_len)
      return maybe_dropout(y, cell.output_keep_prob, cell.seed, 0), s
    end
    return fused_layer(cell, x, state, seq_len)
  end

  -- Any other cell: a while loop over the time steps (their number known
  -- only when it runs), the cell built once as the loop's body.
  local function run_loop(cell, x, state, seq_len)
    local xs = tf.transpose(x, { 2, 1, 3 })                      -- [T, B, F]: a row per step
    local flat = tf.nest.flatten(state)
    local vars = { C.constant(0, { dtype = "int32", name = "time" }) }
    for i, s in ipairs(flat) do vars[i + 1] = C.to_tensor(s) end
    local T = xs.shape[1] >= 0 and xs.shape[1] or tf.gather(tf.shape(xs), 1)
    local lens = seq_len and tf.expand_dims(seq_len, 2)           -- [B, 1] for broadcasting over units
    local finals, outs = tf._loop("tf.nn.dynamic_rnn", vars, { xs },
      function(args) return tf.less(args[1], T) end,
      function(args, rows)
        local t = args[1]
        local old = tf.nest.pack_sequence_as(state, table.move(args, 2, #args, 1, {}))
        local out, new = cell(rows[1], old)
        local new_flat, old_flat = tf.nest.flatten(new), tf.nest.flatten(old)
        if #new_flat ~= #old_flat then
          G.raise("tf.nn.dynamic_rnn: the cell returned a state of %d tensors for one of %d", #new_flat, #old_flat)
        end
        if lens then -- past a sequence's end: zero output, state unchanged
          local live = tf.greater(lens, t)
          out = tf.where(live, out, tf.zeros_like(out))
          for i = 1, #new_flat do -- scalars (an attention wrapper's time) go on, as in TF
            local nf = C.to_tensor(new_flat[i])
            if not (nf.shape and #nf.shape == 0) then new_flat[i] = tf.where(live, nf, old_flat[i]) end
          end
        end
        local nextv = { t + 1 }
        for i, v in ipairs(new_flat) do nextv[i + 1] = v end
        return nextv, { out }
      end)
    local final = tf.nest.pack_sequence_as(state, table.move(finals, 2, #finals, 1, {}))
    return tf.transpose(outs[1], { 2, 1, 3 }), final
  end

  -- tf.nn.dynamic_rnn(cell, inputs, {initial_state, sequence_length, time_major, dtype, scope})
  function nn.dynamic_rnn(cell, inputs, opts)
    opts = C.opts(opts, "tf.nn.dynamic_rnn", "initial_state dtype sequence_length time_major scope fused")
    local x = C.to_tensor(inputs)
    if not x.shape or #x.shape ~= 3 then G.raise("tf.nn.dynamic_rnn: inputs must have rank 3") end
    if opts.time_major then x = tf.transpose(x, { 2, 1, 3 }) end
    local seq_len = opts.sequence_length and C.to_tensor(opts.sequence_length, "int32")
    if seq_len and seq_len.dtype ~= "int32" then seq_len = tf.cast(seq_len, "int32") end
    return tf.variable_scope(opts.scope or "rnn", function()
      local state = opts.initial_state or zero_state_like(cell, x)
      local y, final
      if fusable(cell) and opts.fused ~= false then
        y, final = run_fused(cell, x, state, seq_len)
      else
        y, final = run_loop(cell, x, state, seq_len)
      end
      if opts.time_major then y = tf.transpose(y, { 2, 1, 3 }) end
      return y, final
    end)
  end

  -- The backward direction reads each sequence reversed within its length
  -- (padding stays at the end) and its outputs are reversed back, as TF does.
  nn.bidirectional_dynamic_rnn = A.def("tf.nn.bidirectional_dynamic_rnn",
    "cell_fw:any, cell_bw:any, inputs:tensor, sequence_length:tensor=nil, initial_state_fw:any=nil, "
    .. "initial_state_bw:any=nil, dtype:dtype=nil, parallel_iterations:int=nil, swap_memory:bool=false, "
    .. "time_major:bool=false, scope:string=nil",
    "outputs {fw, bw} and final states {fw, bw} of a forward and a backward dynamic_rnn over inputs.", function(a)
    local what = "tf.nn.bidirectional_dynamic_rnn"
    if not is_cell(a.cell_fw) then G.raise("%s: cell_fw must be an RNN cell, got %s", what, type(a.cell_fw)) end
    if not is_cell(a.cell_bw) then G.raise("%s: cell_bw must be an RNN cell, got %s", what, type(a.cell_bw)) end
    local x = C.to_tensor(a.inputs)
    if not x.shape or #x.shape ~= 3 then G.raise("%s: inputs must have rank 3", what) end
    local seq_len = a.sequence_length and C.to_tensor(a.sequence_length, "int32")
    if seq_len and seq_len.dtype ~= "int32" then seq_len = tf.cast(seq_len, "int32") end
    local t_axis, b_axis = a.time_major and 1 or 2, a.time_major and 2 or 1
    local function reverse(v)
      if seq_len then return tf.reverse_sequence(v, seq_len, { seq_axis = t_axis, batch_axis = b_axis }) end
      return tf.reverse(v, { t_axis })
    end
    return tf.variable_scope(a.scope or "bidirectional_rnn", function()
      local out_fw, st_fw = nn.dynamic_rnn(a.cell_fw, x, { initial_state = a.initial_state_fw, sequence_length = seq_len,
                                                          time_major = a.time_major, scope = "fw" })
      local out_bw, st_bw = nn.dynamic_rnn(a.cell_bw, reverse(x), { initial_state = a.initial_state_bw,
        sequence_length = seq_len, time_major = a.time_major, scope = "bw" })
      return { out_fw, reverse(out_bw) }, { st_fw, st_bw }
    end)
  end)

  -- ---------------------------------------------------------------- embeddings

  -- Rows of params for 1-based ids. The lookup is remembered so that an
  -- optimizer can give params a sparse gradient (the rows it touched) rather
  -- than a dense vocabulary-sized one.
  nn.embedding_lookup = A.def("tf.nn.embedding_lookup",
    "params:tensor, ids:tensor, partition_strategy:string=\"mod\", name:string=nil, validate_indices:bool=true, "
    .. "max_norm:any=nil", "The rows of params at the 1-based ids (a sparse gradient for params).", function(opts)
    local params, ids = opts.params, opts.ids
    if opts.max_norm ~= nil then G.raise("tf.nn.embedding_lookup: max_norm is not supported") end
    if not G.is_tensor(params) then params = C.to_tensor(params) end
    local out = tf.gather(params, ids, { name = opts.name or "embedding_lookup" })
    local g = out.graph
    g._embedding_lookups = g._embedding_lookups or {}
    g._embedding_lookups[out.op] = { params = params._tensor or params, ids = out.op.inputs[2] }
    return out
  end)

  -- Cell methods called on something else are errors naming them.
  G.guard_methods(Cell, "RNNCell", is_cell)
  G.guard_methods(Multi, "MultiRNNCell", function(x) return getmetatable(x) == Multi end)
  G.guard_methods(Dropout, "DropoutWrapper", function(x) return getmetatable(x) == Dropout end)
  G.guard_methods(Residual, "ResidualWrapper", function(x) return getmetatable(x) == Residual end)
  G.guard_methods(Device, "DeviceWrapper", function(x) return getmetatable(x) == Device end)
end
