-- lua5.4 scripts/gpu/nccl_check.lua            (one rank: a singleton MPI job)
-- mpirun -np N lua5.4 scripts/gpu/nccl_check.lua (N ranks, one GPU each)
--
-- The MPI collectives on GPU tensors (gpu/nccl.cu) in a CUDA build with MPI
-- and NCCL: each rank puts its tensors on /gpu:<local_rank % GPUs> and runs
-- a fused MPIAllreduce (three dtypes, an empty tensor; sums, then averages
-- with every tensor alone), a fused MPIBroadcast (bool too), an MPIAllgather
-- of unequal first dimensions and a DistributedOptimizer step, and checks
-- each against the values worked out on the host. Prints one line per check
-- and exits 0 when all pass, 1 on a failure, 2 when the build has no NCCL
-- kernels (nothing to check). scripts/gpu/check.sh runs it.
local tf = require("moonflow")
local G = require("moonflow.graph")
local mpi = require("moonflow.mpi")

-- NCCL_CHECK_DEVICE=/cpu:0 runs the same checks on another device (the
-- MPI kernels): how this script is checked on machines without a GPU.
local override = os.getenv("NCCL_CHECK_DEVICE")
local kernels = tf.sysconfig.op_kernels()
local function has_cuda(op_type)
  for _, b in ipairs(kernels[op_type] or {}) do
    if b == "cuda" then return true end
  end
  return false
end
if not override and not (has_cuda("MPIAllreduce") and has_cuda("MPIAllgather") and has_cuda("MPIBroadcast")) then
  print("nccl_check: this build has no CUDA kernels for the MPI collectives (needs CUDA, MPI and NCCL)")
  os.exit(2)
end
local ngpu = 0
for _, d in ipairs(require("moonflow.core").devices()) do
  if d.device_type == "GPU" then ngpu = ngpu + 1 end
end
if not override and ngpu < 1 then
  print("nccl_check: no GPU visible")
  os.exit(2)
end

mpi.init({ timeout = 60 })
local rank, size = mpi.rank(), mpi.size()
local gpu = override or "/gpu:" .. (mpi.local_rank() % ngpu)
local failed = 0
local function check(what, ok, detail)
  print(string.format("rank %d of %d: %s: %s%s", rank, size, what, ok and "ok" or "FAILED",
                      ok and "" or (" (" .. tostring(detail) .. ")")))
  if not ok then failed = failed + 1 end
end

-- Flat values of a (possibly nested) table.
local function flat(t, out)
  out = out or {}
  if type(t) == "userdata" then t = t:totable() end
  if type(t) ~= "table" then
    out[#out + 1] = t
  else
    for _, v in ipairs(t) do flat(v, out) end
  end
  return out
end
local function close(got, want, tol)
  got = flat(got)
  if #got ~= #want then return false, string.format("%d values, want %d", #got, #want) end
  for i = 1, #want do
    local g, w = got[i], want[i]
    if type(w) == "boolean" then
      if g ~= w then return false, string.format("value %d: %s, want %s", i, tostring(g), tostring(w)) end
    elseif math.abs(g - w) > tol * math.max(1, math.abs(w)) then
      return false, string.format("value %d: %.17g, want %.17g", i, g, w)
    end
  end
  return true
end

-- base(n, k): n values k, k+1, ... (small integers: exact in every dtype).
local function base(n, k)
  local v = {}
  for i = 1, n do v[i] = (i + k) % 7 - 3 end
  return v
end
local function scaled(v, s)
  local o = {}
  for i = 1, #v do o[i] = v[i] * s end
  return o
end
local function nest(v, rows, cols)
  local o = {}
  for r = 1, rows do
    o[r] = {}
    for c = 1, cols do o[r][c] = v[(r - 1) * cols + c] end
  end
  return o
end

local sess = tf.Session()
local ranks_sum = size * (size + 1) // 2 -- rank r contributes (r + 1) x its values

-- Fused allreduce: float32 a [3,4], b [5] and the empty e [0,3] in one
-- buffer, float64 c [7] and int32 d [2,3] each alone.
local a0, b0, c0, d0 = base(12, 1), base(5, 2), base(7, 3), base(6, 4)
local m = rank + 1
local outs = tf.device(gpu, function()
  local a = tf.constant(nest(scaled(a0, m), 3, 4), { dtype = "float32" })
  local b = tf.constant(scaled(b0, m), { dtype = "float32" })
  local c = tf.constant(scaled(c0, m), { dtype = "float64" })
  local d = tf.constant(nest(scaled(d0, m), 2, 3), { dtype = "int32" })
  local e = tf.zeros({ 0, 3 }, "float32")
  local sum = G.make_op("MPIAllreduce", { a, b, c, d, e }, { "average", "bool", false }, { name = "sum" })
  local avg = G.make_op("MPIAllreduce", { a, b, c },
                        { "average", "bool", true, "fusion_threshold", "int", 16 }, { name = "avg",
                          control_inputs = { sum } })
  return { sum = sum.outputs, avg = avg.outputs }
end)
local calls0 = mpi.collective_calls()
local r = sess:run({ outs.sum[1], outs.sum[2], outs.sum[3], outs.sum[4], outs.sum[5], outs.avg[1], outs.avg[2],
                     outs.avg[3] })
local calls = mpi.collective_calls() - calls0
check("fused allreduce float32", close(r[1], scaled(a0, ranks_sum), 0) and close(r[2], scaled(b0, ranks_sum), 0))
check("allreduce float64", close(r[3], scaled(c0, ranks_sum), 0))
check("allreduce int32", close(r[4], scaled(d0, ranks_sum), 0))
check("allreduce of an empty tensor", #flat(r[5]) == 0)
local mean = ranks_sum / size
check("averages", close(r[6], scaled(a0, mean), 1e-6) and close(r[7], scaled(b0, mean), 1e-6)
        and close(r[8], scaled(c0, mean), 1e-15))
-- sum: one float32 buffer, c, d; avg (16-byte threshold): a, b and c alone
check("fusion (collectives issued)", calls == 6, calls .. " calls, want 6")

-- Fused broadcast from root 0 (float32, int32 and bool in their groups).
local bo = tf.device(gpu, function()
  local a = tf.constant(nest(scaled(a0, m), 3, 4), { dtype = "float32" })
  local d = tf.constant(nest(scaled(d0, m), 2, 3), { dtype = "int32" })
  local f = tf.constant({ rank == 0, rank ~= 0, true }, { dtype = "bool" })
  return G.make_op("MPIBroadcast", { a, d, f }, { "root", "int", 0 }, { name = "bcast" }).outputs
end)
r = sess:run({ bo[1], bo[2], bo[3] })
check("fused broadcast", close(r[1], a0, 0) and close(r[2], d0, 0) and close(r[3], { true, false, true }, 0))

-- Allgather with unequal first dimensions: rank q gives q + 1 rows of q.
local rows = {}
for i = 1, rank + 1 do rows[i] = { rank, rank + 0.5 } end
local g = tf.device(gpu, function() return mpi.allgather(tf.constant(rows, { dtype = "float64" })) end)
local want = {}
for q = 0, size - 1 do
  for _ = 1, q + 1 do want[#want + 1] = q; want[#want + 1] = q + 0.5 end
end
check("allgather of unequal rows", close(sess:run(g), want, 0))

-- A training step: the averaged gradient of sum((w - x_r)^2) over the
-- ranks, applied once with SGD: w = w0 - lr * mean_r 2 (w0 - x_r).
local w, step = tf.device(gpu, function()
  local v = tf.Variable(tf.constant({ 1.0, 2.0, 3.0 }, { dtype = "float64" }), { name = "w" })
  local x = tf.constant({ rank, 2 * rank, -rank }, { dtype = "float64" })
  local loss = tf.reduce_sum(tf.square(tf.sub(v, x)))
  return v, mpi.DistributedOptimizer(tf.train.GradientDescentOptimizer(0.25)):minimize(loss)
end)
sess:run(tf.global_variables_initializer())
sess:run(mpi.broadcast_global_variables(0))
sess:run(step)
local mr = (size - 1) / 2 -- mean rank
check("DistributedOptimizer step",
      close(sess:run(w), { 1 - 0.5 * (1 - mr), 2 - 0.5 * (2 - 2 * mr), 3 - 0.5 * (3 + mr) }, 1e-12))

sess:close()
mpi.shutdown()
print(string.format("rank %d of %d: %d failed", rank, size, failed))
os.exit(failed > 0 and 1 or 0)
