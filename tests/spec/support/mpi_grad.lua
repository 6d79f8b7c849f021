-- Gradients through the collectives, for tests/spec/mpi_spec.lua:
--   mpirun -np N lua5.4 mpi_grad.lua
-- Rank r holds x_r and weights w_r (fresh random float64 values from a
-- generator every rank can run for every rank, so each rank knows all the
-- ranks' values). The job's loss is L = sum over r of sum(w_r * y^2), y the
-- collective of the x's; each rank's gradient of its own term, as
-- tf.gradients builds it, must be dL/dx_r, computed here in plain Lua from
-- every rank's values:
--   allreduce (sum):     dL/dx_r = sum_q 2 w_q y
--   allreduce (average): dL/dx_r = (1/N) sum_q 2 w_q y
--   broadcast (root 1):  dL/dx_1 = sum_q 2 w_q y, zeros on the other ranks
-- Then the same through fused ops (several tensors: an unused output, an
-- int32 tensor beside a float one). Also checks rank_op/size_op/
-- local_rank_op/local_size_op against the Lua values (on one host local
-- rank and size equal rank and size, so a swap between them would pass). Each rank prints "rank R ok" or fails with the difference.
local tf = require("moonflow")
local mpi = require("moonflow.mpi")
mpi.init()
local rank, size = mpi.rank(), mpi.size()
local N = 5

-- every rank's x and w: uniform in [-1, 1), seeded by the run's seed and rank
local seed = tonumber(os.getenv("MPI_GRAD_SEED") or "1")
local function values(r)
  local s = seed * 7919 + r * 104729 + 1
  local function rnd()
    s = (s * 1103515245 + 12345) % 2147483648
    return s / 1073741824 - 1
  end
  local x, w = {}, {}
  for i = 1, N do x[i], w[i] = rnd(), rnd() end
  return x, w
end
local xs, ws = {}, {}
for r = 0, size - 1 do xs[r], ws[r] = values(r) end

local sess = tf.Session()
local function check(what, got, want)
  for i = 1, N do
    local d = math.abs(got[i] - want[i])
    if d > 1e-13 * (1 + math.abs(want[i])) then
      error(string.format("rank %d: %s: element %d is %.17g, want %.17g", rank, what, i, got[i], want[i]), 0)
    end
  end
end

local function case(what, build, want_y, want_dx)
  local x = tf.constant(xs[rank], "float64")
  local y = build(x)
  local loss = tf.reduce_sum(tf.constant(ws[rank], "float64") * y * y)
  local r = sess:run({ y = y, dx = tf.gradients(loss, { x })[1] })
  check(what .. ": value", r.y:totable(), want_y)
  check(what .. ": gradient", r.dx:totable(), want_dx)
end

local sum_y, sum_w = {}, {}
for i = 1, N do
  sum_y[i], sum_w[i] = 0, 0
  for q = 0, size - 1 do sum_y[i], sum_w[i] = sum_y[i] + xs[q][i], sum_w[i] + ws[q][i] end
end
local function grad_of(y, scale)
  local g = {}
  for i = 1, N do g[i] = 2 * sum_w[i] * y[i] * scale end
  return g
end
local mean_y = {}
for i = 1, N do mean_y[i] = sum_y[i] / size end

case("allreduce (sum)", function(x) return mpi.allreduce(x, { average = false }) end, sum_y, grad_of(sum_y, 1))
case("allreduce (average)", function(x) return mpi.allreduce(x, { average = true }) end, mean_y,
     grad_of(mean_y, 1 / size))
local root = size - 1
case("broadcast", function(x) return mpi.broadcast(x, root) end, xs[root], grad_of(xs[root], rank == root and 1 or 0))

-- fused ops (several tensors, as DistributedOptimizer builds them): an
-- output with no gradient gives zeros through an allreduce; an int32 tensor
-- beside a float one gets none; root (here 0) takes the sum, others zeros
local G = require("moonflow.graph")
local FUSION = 64 * 1024 * 1024
do
  local x = tf.constant(xs[rank], "float64")
  local x2 = tf.constant({ 1.5, -2.5 }, "float64")
  local op = G.make_op("MPIAllreduce", { x, x2 }, { "average", "bool", false, "fusion_threshold", "int", FUSION },
                       { name = "fused_allreduce" })
  local y = op.outputs[1]
  local loss = tf.reduce_sum(tf.constant(ws[rank], "float64") * y * y)
  local g = tf.gradients(loss, { x, x2 })
  local r = sess:run({ dx = g[1], dx2 = g[2] })
  check("fused allreduce: gradient", r.dx:totable(), grad_of(sum_y, 1))
  local z = r.dx2:totable()
  assert(#z == 2 and z[1] == 0 and z[2] == 0, "rank " .. rank .. ": an unused output's gradient is not zeros")

  local ids = tf.constant({ 3, 4, 5 }, "int32")
  local b = G.make_op("MPIBroadcast", { x, ids }, { "root", "int", 0, "fusion_threshold", "int", FUSION },
                      { name = "fused_broadcast" })
  local by = b.outputs[1]
  local bl = tf.reduce_sum(tf.constant(ws[rank], "float64") * by * by) + tf.reduce_sum(tf.cast(b.outputs[2], "float64"))
  local bg = tf.gradients(bl, { x, ids })
  assert(bg[2] == nil, "rank " .. rank .. ": an int32 input got a gradient")
  check("fused broadcast: gradient", sess:run(bg[1]):totable(), grad_of(xs[0], rank == 0 and 1 or 0))
end

local ids = sess:run({ mpi.rank_op(), mpi.size_op(), mpi.local_rank_op(), mpi.local_size_op() })
local want = { rank, size, mpi.local_rank(), mpi.local_size() }
for i = 1, 4 do
  assert(ids[i]:item() == want[i], string.format("rank %d: rank/size op %d gave %d, want %d", rank, i, ids[i]:item(),
                                                  want[i]))
  assert(ids[i].dtype == "int32")
end
sess:close()
mpi.shutdown()
print(string.format("rank %d ok", rank))
