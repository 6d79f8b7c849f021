-- A small model trained K steps, for tests/spec/mpi_spec.lua:
--   lua5.4 mpi_train.lua single DTYPE K OUT [THRESHOLD]   (one process, the whole batch)
--   mpirun -np N lua5.4 mpi_train.lua dist DTYPE K OUT [THRESHOLD]
-- Each step's batch (2 * 4 rows) comes from a fixed generator; rank r of N
-- takes its N-th share of the rows. The model has dense weights and an
-- embedding (sparse gradient, ids repeated within and across ranks), Adam.
-- Rank 0 (or the single process) writes the final weights to OUT, one
-- "name i value" per line (%.17g), and the collective count.
-- Faults (environment MPI_TRAIN_FAULT, in dist mode): "error" (rank 1
-- raises before its first step), "shape" (rank 1 builds another graph),
-- "exit" (rank 1 exits at once, without a word).
local tf = require("moonflow")
local mode, dtype, K, out, threshold = arg[1], arg[2], tonumber(arg[3]), arg[4], tonumber(arg[5] or "")
local fault = os.getenv("MPI_TRAIN_FAULT")
local mpi, rank, size = nil, 0, 1
if mode == "dist" then
  mpi = require("moonflow.mpi")
  mpi.init({ fusion_threshold = threshold and math.tointeger(threshold) or nil })
  rank, size = mpi.rank(), mpi.size()
end

local ROWS, FEAT, VOCAB, EMB, HID = 8, 3, 5, 2, 4
-- A deterministic generator (LCG) for the data, the same on every rank.
local state = 12345
local function rnd()
  state = (state * 1103515245 + 12345) % 2147483648
  return state / 2147483648
end

tf.set_random_seed(mode == "dist" and 7 + rank or 7) -- ranks start apart: the broadcast must fix that
local per = ROWS // size
local x = tf.placeholder(dtype, { per, FEAT }, "x")
local ids = tf.placeholder("int32", { per }, "ids")
local y = tf.placeholder(dtype, { per, 1 }, "y")
local emb = tf.Variable(tf.random_normal({ VOCAB, EMB }, { dtype = dtype }), { name = "emb" })
local w1 = tf.Variable(tf.random_normal({ FEAT + EMB, HID }, { dtype = dtype }), { name = "w1" })
local b1 = tf.Variable(tf.zeros({ HID }, { dtype = dtype }), { name = "b1" })
local w2 = tf.Variable(tf.random_normal({ HID, 1 }, { dtype = dtype }), { name = "w2" })
if fault == "shape" and rank == 1 then
  w2 = tf.Variable(tf.random_normal({ HID, 2 }, { dtype = dtype }), { name = "w2" })
end
local e = tf.nn.embedding_lookup(emb, ids)
local h = tf.tanh(tf.matmul(tf.concat({ x, e }, 2), w1) + b1)
local pred = tf.reduce_sum(tf.matmul(h, w2), 2, { keepdims = true })
local loss = tf.reduce_mean(tf.square(pred - y))
local opt = tf.train.AdamOptimizer(0.05)
if mpi then opt = mpi.DistributedOptimizer(opt, { sparse_as_dense = os.getenv("MPI_TRAIN_SPARSE_AS_DENSE") == "1" }) end
local train = opt:minimize(loss)
local bcast = mpi and mpi.broadcast_global_variables(0)

local sess = tf.Session()
sess:run(tf.global_variables_initializer())
if fault == "error" and rank == 1 then error("rank 1 fails on purpose") end
if fault == "exit" and rank == 1 then os.exit(3, false) end
if bcast then sess:run(bcast) end
for _ = 1, K do
  local xs, is, ys = {}, {}, {}
  for r = 1, ROWS do
    local row = {}
    for f = 1, FEAT do row[f] = rnd() * 2 - 1 end
    local id = math.floor(rnd() * VOCAB) + 1 -- 1-based ids, repeated
    local target = rnd()
    if (r - 1) // per == rank then
      xs[#xs + 1], is[#is + 1], ys[#ys + 1] = row, id, { target }
    end
  end
  sess:run(train, { [x] = xs, [ids] = is, [y] = ys })
end
if rank == 0 then
  local f = assert(io.open(out, "w"))
  local function flat(t, acc)
    for _, v in ipairs(t) do
      if type(v) == "table" then flat(v, acc) else acc[#acc + 1] = v end
    end
    return acc
  end
  for _, v in ipairs({ emb, w1, b1, w2 }) do
    for i, val in ipairs(flat(sess:run(v):totable(), {})) do
      f:write(string.format("%s %d %.17g\n", v.op.name, i, val))
    end
  end
  f:write(string.format("calls %d\n", mpi and mpi.collective_calls() or 0))
  f:close()
end
if mpi then mpi.shutdown() end
