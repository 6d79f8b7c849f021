-- require("moonflow.mpi"): data-parallel training over MPI with Horovod's
-- names (hvd.init, hvd.rank, hvd.allreduce, hvd.DistributedOptimizer, ...).
--
-- The collectives are graph ops (MPIAllreduce, MPIAllgather, MPIBroadcast)
-- that the session runs, so a graph saved here runs them in a C host too.
-- Every rank must run the same collectives in the same order: each one
-- checks that first (a fingerprint of its name, dtypes and shapes) and fails
-- with an error naming both sides when the ranks disagree; a rank that does
-- not come within the timeout (MOONFLOW_MPI_TIMEOUT, default 60 s) is an
-- error too, never a hang. The collectives one call here builds are chained
-- by control edges in the order they were built. Gradients flow through
-- allreduce (the gradients' sum or average over the ranks) and broadcast
-- (root's input gets the sum of every rank's output gradient, the others
-- zeros), as Horovod's; allgather has none.
--
-- Launch: mpirun -np 4 lua5.4 train.lua (on several hosts: mpirun -np 8 -H
-- host1:4,host2:4 lua5.4 train.lua).
local core = require("moonflow.core")
if not core.mpi_built() then
  error("moonflow.mpi: this moonflow was built without MPI: install Open MPI (Debian: apt-get "
        .. "install openmpi-bin libopenmpi-dev, or scripts/deps.sh) and rebuild (CMake finds it)", 2)
end
local tf = require("moonflow")
local G = require("moonflow.graph")
local C = require("moonflow.convert")

local M = {}

local MAX_TENSORS = 32 -- inputs of one collective op (host-memory masks hold 32)
local fusion_threshold = tonumber(os.getenv("MOONFLOW_FUSION_THRESHOLD") or "") or 64 * 1024 * 1024

local function check_init(what)
  if not core.mpi_info().initialized then
    G.raise("%s: call mpi.init() first", what)
  end
end

local function opts_table(opts, what, keys)
  if opts == nil then return {} end
  if type(opts) ~= "table" then G.raise("%s: options must be a table, got %s", what, type(opts)) end
  return C.opts(opts, what, keys)
end

-- mpi.init({timeout = seconds, fusion_threshold = bytes}): starts MPI once
-- per process; intra-op and OpenBLAS threads default to cores / local_size.
function M.init(opts)
  opts = opts_table(opts, "mpi.init", "timeout fusion_threshold")
  if opts.timeout ~= nil then
    if type(opts.timeout) ~= "number" or opts.timeout ~= opts.timeout or opts.timeout <= 0 then
      G.raise("mpi.init: timeout must be a positive number of seconds, got %s", tostring(opts.timeout))
    end
  end
  if opts.fusion_threshold ~= nil then M.set_fusion_threshold(opts.fusion_threshold) end
  core.mpi_init()
  if opts.timeout then core.mpi_set_timeout(opts.timeout) end
end

-- mpi.shutdown(): waits (bounded) for every rank and finalizes MPI. A
-- process that exits without it does the same at exit.
function M.shutdown() core.mpi_finalize() end

function M.is_initialized() return core.mpi_info().initialized end
function M.rank() check_init("mpi.rank"); return core.mpi_info().rank end
function M.size() check_init("mpi.size"); return core.mpi_info().size end
function M.local_rank() check_init("mpi.local_rank"); return core.mpi_info().local_rank end
function M.local_size() check_init("mpi.local_size"); return core.mpi_info().local_size end
-- mpi.rank_op(), size_op(), local_rank_op(), local_size_op() ({name}):
-- the same as int32 scalar tensors read when the graph runs (Horovod's), so
-- that one graph serves every rank (and a C host that loads it).
for _, f in ipairs({ { "rank_op", "MPIRank" }, { "size_op", "MPISize" }, { "local_rank_op", "MPILocalRank" },
                     { "local_size_op", "MPILocalSize" } }) do
  M[f[1]] = function(opts)
    opts = opts_table(opts, "mpi." .. f[1], "name")
    return G.make_op(f[2], {}, {}, { name = opts.name or f[2] }).outputs[1]
  end
end
-- Data collectives this process has issued (a fused allreduce counts once).
function M.collective_calls() return core.mpi_info().calls end

function M.set_fusion_threshold(bytes)
  if math.type(bytes) ~= "integer" or bytes < 0 then
    G.raise("mpi.set_fusion_threshold: bytes must be an integer >= 0, got %s", tostring(bytes))
  end
  fusion_threshold = bytes
end
function M.fusion_threshold() return fusion_threshold end

-- Builds one collective op per MAX_TENSORS tensors, each after the one
-- before (`prev`: the last op built, or nil); returns the outputs and the
-- last op.
local function collective(op_type, tensors, attrs, name, prev)
  local outs = {}
  for first = 1, #tensors, MAX_TENSORS do
    local chunk = {}
    for i = first, math.min(first + MAX_TENSORS - 1, #tensors) do chunk[#chunk + 1] = tensors[i] end
    local op = G.make_op(op_type, chunk, attrs, { name = name, control_inputs = prev and { prev } or nil })
    for i = 1, #chunk do outs[first + i - 1] = op.outputs[i] end
    prev = op
  end
  return outs, prev
end

local function tensor_arg(t, what)
  if tf.is_indexed_slices(t) then return t end
  local ok, v = pcall(C.to_tensor, t)
  if not ok then G.raise("%s: tensor must be a Tensor (or convertible), got %s", what, type(t)) end
  return v
end

local function gather_slices(s, average, name)
  local values, prev = collective("MPIAllgather", { s.values }, {}, name .. "_values")
  local indices = collective("MPIAllgather", { s.indices }, {}, name .. "_indices", prev)
  local v = values[1]
  if average then v = v / C.to_tensor(M.size() + 0.0, v.dtype) end
  return tf.IndexedSlices(v, indices[1], s.dense_shape)
end

-- mpi.allreduce(t, {average = true, name}): the sum (or average, Horovod's
-- default) over the ranks. An IndexedSlices is gathered instead (its rows
-- from every rank, values divided by size when averaging), as Horovod does.
function M.allreduce(t, opts)
  opts = opts_table(opts, "mpi.allreduce", "average name")
  t = tensor_arg(t, "mpi.allreduce")
  check_init("mpi.allreduce")
  local average = opts.average ~= false
  local name = opts.name or "MPIAllreduce"
  if type(name) ~= "string" then G.raise("mpi.allreduce: name must be a string, got %s", type(name)) end
  if tf.is_indexed_slices(t) then return gather_slices(t, average, name) end
  local outs = collective("MPIAllreduce", { t },
    { "average", "bool", average, "fusion_threshold", "int", fusion_threshold }, name)
  return outs[1]
end

-- mpi.allgather(t, {name}): the ranks' tensors concatenated along the first
-- axis in rank order (their first dimensions may differ).
function M.allgather(t, opts)
  opts = opts_table(opts, "mpi.allgather", "name")
  t = tensor_arg(t, "mpi.allgather")
  check_init("mpi.allgather")
  if tf.is_indexed_slices(t) then G.raise("mpi.allgather: tensor must be a Tensor, got an IndexedSlices") end
  return collective("MPIAllgather", { t }, {}, opts.name or "MPIAllgather")[1]
end

local function check_root(root, what)
  root = root or 0
  if math.type(root) ~= "integer" or root < 0 then
    G.raise("%s: root_rank must be an integer >= 0, got %s", what, tostring(root))
  end
  return root
end

-- mpi.broadcast(t, root_rank, {name}): root's value on every rank.
function M.broadcast(t, root_rank, opts)
  opts = opts_table(opts, "mpi.broadcast", "name")
  t = tensor_arg(t, "mpi.broadcast")
  local root = check_root(root_rank, "mpi.broadcast")
  check_init("mpi.broadcast")
  if tf.is_indexed_slices(t) then G.raise("mpi.broadcast: tensor must be a Tensor, got an IndexedSlices") end
  return collective("MPIBroadcast", { t }, { "root", "int", root, "fusion_threshold", "int", fusion_threshold },
                    opts.name or "MPIBroadcast")[1]
end

-- mpi.broadcast_variables(vars, root_rank): an op assigning root's values
-- to vars on every rank (one fused broadcast per 32 variables).
function M.broadcast_variables(vars, root_rank)
  local root = check_root(root_rank, "mpi.broadcast_variables")
  if type(vars) ~= "table" then G.raise("mpi.broadcast_variables: variables must be a list of Variables") end
  check_init("mpi.broadcast_variables")
  for i, v in ipairs(vars) do
    if getmetatable(v) ~= tf.Variable_mt then G.raise("mpi.broadcast_variables: variables[%d] is not a Variable", i) end
  end
  if #vars == 0 then return tf.no_op({ name = "broadcast_variables" }) end
  return tf.name_scope("broadcast_variables", function()
    local values = {}
    for i, v in ipairs(vars) do values[i] = v:value() end
    local outs = collective("MPIBroadcast", values,
      { "root", "int", root, "fusion_threshold", "int", fusion_threshold }, "MPIBroadcast")
    local assigns = {}
    for i, v in ipairs(vars) do assigns[i] = v:assign(outs[i]).op end
    return tf.group(assigns)
  end)
end

-- mpi.broadcast_global_variables(root_rank): the op that gives every rank
-- root's values of tf.global_variables() (run it once after initializing,
-- or after restoring on root).
function M.broadcast_global_variables(root_rank)
  return M.broadcast_variables(tf.global_variables(), check_root(root_rank, "mpi.broadcast_global_variables"))
end

-- Horovod's BroadcastGlobalVariablesHook for a hand-written loop:
-- hook:begin() builds the op, hook:after_create_session(sess) runs it.
function M.BroadcastGlobalVariablesHook(root_rank)
  local root = check_root(root_rank, "mpi.BroadcastGlobalVariablesHook")
  local hook = {}
  function hook.begin() hook.bcast_op = M.broadcast_global_variables(root) end
  function hook.after_create_session(sess)
    if not hook.bcast_op then hook.begin() end
    sess:run(hook.bcast_op)
  end
  return hook
end

-- mpi.DistributedOptimizer(opt, {name, average = true, sparse_as_dense = false}): opt whose
-- compute_gradients (and so minimize) averages the gradients over the
-- ranks: the dense ones in fused allreduces (one per fusion_threshold bytes
-- of consecutive same-dtype gradients, at most 32 tensors each), the sparse
-- ones (IndexedSlices) gathered as Horovod does, then their duplicate rows
-- summed. The gathered rows grow with the number of ranks: sparse_as_dense
-- (Horovod's option) scatters them into a dense gradient first, reduced
-- with the others. Every rank must build the same graph.
function M.DistributedOptimizer(opt, opts)
  opts = opts_table(opts, "mpi.DistributedOptimizer", "name average sparse_as_dense")
  local mt = getmetatable(opt)
  if type(opt) ~= "table" or not mt or type(mt.compute_gradients) ~= "function" then
    G.raise("mpi.DistributedOptimizer: optimizer must be a tf.train optimizer, got %s", type(opt))
  end
  check_init("mpi.DistributedOptimizer")
  local average = opts.average ~= false
  local prefix = opts.name or ("Distributed" .. (opt._name or "Optimizer"))
  local d = setmetatable({}, mt)
  for k, v in pairs(opt) do d[k] = v end
  local inner = mt.compute_gradients
  d.compute_gradients = function(self, loss, ...)
    local gv = inner(self, loss, ...)
    if M.size() == 1 then return gv end
    return tf.name_scope(prefix .. "_Allreduce", function()
      if opts.sparse_as_dense then
        for i, p in ipairs(gv) do
          if tf.is_indexed_slices(p[1]) then
            local dense = G.make_op("GatherGrad", { p[1].values, p[1].indices, p[2]:value() }).outputs[1]
            gv[i] = { dense, p[2] }
          end
        end
      end
      local dense, at = {}, {}
      for i, p in ipairs(gv) do
        if p[1] ~= nil and not tf.is_indexed_slices(p[1]) then
          dense[#dense + 1] = p[1]
          at[#at + 1] = i
        end
      end
      local out, prev = {}, nil
      if #dense > 0 then
        local r
        r, prev = collective("MPIAllreduce", dense,
          { "average", "bool", average, "fusion_threshold", "int", fusion_threshold }, "MPIAllreduce", prev)
        for j, i in ipairs(at) do out[i] = { r[j], gv[i][2] } end
      end
      for i, p in ipairs(gv) do
        if tf.is_indexed_slices(p[1]) then
          local s = p[1]
          local vals, prev2 = collective("MPIAllgather", { s.values }, {}, "MPIAllgather_values", prev)
          local ids
          ids, prev = collective("MPIAllgather", { s.indices }, {}, "MPIAllgather_indices", prev2)
          local v = vals[1]
          if average then v = v / C.to_tensor(M.size() + 0.0, v.dtype) end
          local dd = G.make_op("DedupRows", { v, ids[1] }, nil, { name = "DedupRows" })
          out[i] = { tf.IndexedSlices(dd.outputs[2], dd.outputs[1], s.dense_shape), p[2] }
        elseif p[1] == nil then
          out[i] = { nil, p[2] }
        end
      end
      return out
    end)
  end
  return d
end

return M
