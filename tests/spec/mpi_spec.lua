-- Data-parallel training over MPI (issue 13): two ranks under mpirun train
-- to the weights of one process on the whole batch; collectives are fused;
-- ranks that disagree, fail or leave end the job with a clear error within
-- a bounded time, never a hang. Skips nothing silently: without mpirun or
-- without MPI in the build the specs fail saying what to do.
local core = require("moonflow.core")
local P = dofile("tests/spec/support/process.lua")

-- Commands run without the environment Open MPI puts into a process that
-- initialised MPI as a singleton (conformance_spec does, in this busted
-- process): a child mpirun or rank would take it for its own job's. Where
-- Open MPI lives is kept (scripts/gpu/check.sh carries it to another prefix).
local sh = function(cmd)
  return P.sh("unset $(env | awk -F= '/^(OMPI|PMIX|ORTE|OPAL)_/ && "
              .. "!/^(OPAL_PREFIX|PMIX_MCA_mca_base_component_path)=/ { print $1 }'); " .. cmd)
end

local SCRIPT = "tests/spec/support/mpi_train.lua"
local MPIRUN = "mpirun --allow-run-as-root --oversubscribe -np 2"
local have_mpirun = select(2, sh("command -v mpirun"))

local function need_mpi()
  assert(have_mpirun, "mpirun not found: run scripts/deps.sh (it installs openmpi-bin and libopenmpi-dev)")
  assert(core.mpi_built(), "this build has no MPI: run scripts/deps.sh, then rebuild (CMake finds Open MPI)")
end

local function tmpname()
  local n = os.tmpname()
  os.remove(n)
  return n
end

-- {name = {values}}, calls from a weights file.
local function read_weights(path)
  local f = assert(io.open(path))
  local w, calls = {}, nil
  for line in f:lines() do
    local name, i, v = line:match("^(%S+) (%d+) (%S+)$")
    if name then
      w[name] = w[name] or {}
      w[name][tonumber(i)] = tonumber(v)
    else
      calls = tonumber(line:match("^calls (%d+)$"))
    end
  end
  f:close()
  return w, calls
end

local function run_single(dtype, k)
  local out = tmpname()
  local text, ok = sh(string.format("lua5.4 %s single %s %d %s", SCRIPT, dtype, k, out))
  assert(ok, text)
  return out
end

local function run_dist(dtype, k, threshold, env)
  local out = tmpname()
  local t0 = os.time()
  local text, ok = sh(string.format("%s timeout 120 %s lua5.4 %s dist %s %d %s %s", env or "", MPIRUN, SCRIPT,
                                      dtype, k, out, threshold or ""))
  return out, text, ok, os.time() - t0
end

local function max_diff(a, b)
  local m, n = 0, 0
  for name, va in pairs(a) do
    assert(b[name], "missing " .. name)
    assert(#va == #b[name], name .. ": sizes differ")
    for i = 1, #va do
      m = math.max(m, math.abs(va[i] - b[name][i]))
      n = n + 1
    end
  end
  assert(n > 0, "no weights compared")
  return m
end

describe("moonflow.mpi", function()
  it("has mpirun and a build with MPI (scripts/deps.sh installs Open MPI)", function()
    need_mpi()
  end)

  it("loads, or says what is missing", function()
    local ok, err = pcall(require, "moonflow.mpi")
    if core.mpi_built() then
      assert(ok, err)
    else
      assert(not ok and err:match("built without MPI") and err:match("openmpi"), err)
    end
  end)

  it("refuses collectives before init, and bad arguments by name", function()
    need_mpi()
    local text, ok = sh([[lua5.4 -e '
      local tf = require("moonflow"); local mpi = require("moonflow.mpi")
      print(pcall(mpi.rank))
      print(pcall(mpi.allreduce, tf.constant({1.0})))
      mpi.init()
      print(pcall(mpi.broadcast, tf.constant({1.0}), -1))
      print(pcall(mpi.allreduce, tf.constant({1, 2}), { average = true }))
      print(pcall(mpi.allgather, tf.constant(1.0)))
      print(pcall(mpi.init, { timeout = -1 }))
      print(pcall(mpi.DistributedOptimizer, 3))
      print(mpi.rank(), mpi.size(), mpi.local_rank(), mpi.local_size())
      mpi.shutdown()']])
    assert(ok, text)
    assert(text:match("mpi.rank: call mpi.init%(%) first"), text)
    assert(text:match("mpi.allreduce: call mpi.init%(%) first"), text)
    assert(text:match("mpi.broadcast: root_rank must be an integer >= 0"), text)
    assert(text:match("averages float tensors only"), text)
    assert(text:match("needs rank >= 1"), text)
    assert(text:match("mpi.init: timeout must be a positive number"), text)
    assert(text:match("mpi.DistributedOptimizer: optimizer must be a tf.train optimizer"), text)
    assert(text:match("\n0\t1\t0\t1\n"), text)
  end)

  for _, case in ipairs({ { "float64", 1e-10 }, { "float32", 1e-5 } }) do
    local dtype, tol = case[1], case[2]
    it(string.format("two ranks train to one process's %s weights (within %g)", dtype, tol), function()
      need_mpi()
      local k = 6
      local single = read_weights(run_single(dtype, k))
      local out, text, ok = run_dist(dtype, k)
      assert(ok, text)
      local dist, calls = read_weights(out)
      local d = max_diff(single, dist)
      assert(d <= tol, string.format("max difference %g > %g", d, tol))
      -- Fusion: one broadcast per dtype, then per step one allreduce of all
      -- dense gradients and two allgathers (the embedding's rows and ids).
      local bcasts = dtype == "float32" and 1 or 2 -- Adam's beta powers are float32
      assert.are.equal(bcasts + 3 * k, calls)
    end)
  end

  it("trains to the same weights with sparse_as_dense, the embedding's gradient fused with the others", function()
    need_mpi()
    local single = read_weights(run_single("float64", 4))
    local out, text, ok = run_dist("float64", 4, nil, "MPI_TRAIN_SPARSE_AS_DENSE=1")
    assert(ok, text)
    local dist, calls = read_weights(out)
    local d = max_diff(single, dist)
    assert(d <= 1e-10, string.format("max difference %g", d))
    assert.are.equal(2 + 4, calls) -- one allreduce a step
  end)

  it("issues one collective per tensor with fusion_threshold 0", function()
    need_mpi()
    local out, text, ok = run_dist("float64", 2, 0)
    assert(ok, text)
    local _, calls = read_weights(out)
    -- 14 variables (4 weights, 8 Adam slots, 2 beta powers); 3 dense gradients + 2 allgathers a step
    assert.are.equal(14 + 2 * 5, calls)
  end)

  -- scripts/char_rnn.lua --distributed: checkpoints' tensors (safetensors) compared.
  local function read_safetensors(path)
    local cjson = require("cjson")
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    local n = string.unpack("<I8", s)
    local out = {}
    for name, t in pairs(cjson.decode(s:sub(9, 8 + n))) do
      if name ~= "__metadata__" then
        local fmt = ({ F32 = "<f", F64 = "<d", I64 = "<i8", I32 = "<i4" })[t.dtype]
        local sz, v = string.packsize(fmt), {}
        for o = t.data_offsets[1], t.data_offsets[2] - sz, sz do v[#v + 1] = string.unpack(fmt, s, 9 + n + o) end
        out[name] = v
      end
    end
    return out
  end
  local CHAR = "lua5.4 scripts/char_rnn.lua --rnn_size 16 --num_layers 1 --wordvec_size 8 --seq_length 10 "
               .. "--batch_size 4 --eval_val_every 0 --quiet --val_frac 0.01"
  local function char_rnn(np, steps, dir, extra)
    local cmd = np == 1 and CHAR or string.format("timeout 120 %s %s --distributed", MPIRUN:gsub("-np 2", "-np " .. np), CHAR)
    local text, ok = sh(string.format("%s --max_steps %d --checkpoint_dir %s %s", cmd, steps, dir, extra or ""))
    assert(ok, text)
    return text
  end

  it("char_rnn --distributed on 2 ranks trains to one process's weights; only rank 0 writes", function()
    need_mpi()
    local a, b = tmpname(), tmpname()
    local t1 = char_rnn(1, 5, a)
    local t2 = char_rnn(2, 5, b)
    -- the loss reported is the whole batch's, once
    assert.are.equal(t1:match("train loss (%S+),"), t2:match("train loss (%S+),"))
    local _, n = t2:gsub("done:", "")
    assert.are.equal(1, n, t2)
    local d = max_diff(read_safetensors(a .. "/model-5"), read_safetensors(b .. "/model-5"))
    assert(d <= 1e-5, string.format("max difference %g", d))
    assert.are.same({ "checkpoint", "model-5", "model-5.json", "model-5.meta" }, P.list_dir(b))
    os.execute("rm -rf '" .. a .. "' '" .. b .. "'")
  end)

  it("char_rnn resumes a 2-rank checkpoint on 1 rank as on 2", function()
    need_mpi()
    local a, b = tmpname(), tmpname()
    char_rnn(2, 3, a)
    os.execute(string.format("cp -r '%s' '%s'", a, b))
    char_rnn(1, 6, a, "--init_from " .. a)
    char_rnn(2, 6, b, "--init_from " .. b)
    local d = max_diff(read_safetensors(a .. "/model-6"), read_safetensors(b .. "/model-6"))
    assert(d <= 1e-5, string.format("max difference %g", d))
    os.execute("rm -rf '" .. a .. "' '" .. b .. "'")
  end)

  it("differentiates through allreduce and broadcast as Horovod; rank_op and the rest give this rank's place", function()
    need_mpi()
    for seed = 1, 2 do -- fresh values each seed
      local text, ok = sh(string.format("MPI_GRAD_SEED=%d timeout 120 %s lua5.4 tests/spec/support/mpi_grad.lua",
                                        seed, MPIRUN))
      assert(ok, text)
      assert(text:find("rank 0 ok", 1, true) and text:find("rank 1 ok", 1, true), text)
    end
  end)

  local faults = {
    -- which of the two waiting sides gives up first is a race: either says so
    { "error", "rank 1 fails on purpose", "timed out after 3 s" },
    { "shape", "of 2 runs MPIBroadcast 'broadcast_variables/MPIBroadcast' while rank ", "'broadcast_variables/MPIBroadcast' "
               .. "with other dtypes, shapes or attributes, or on another kind of device: every rank must run "
               .. "the same graph" },
    { "exit", "rank 1 of 2 exits, but the other ranks do not", "timed out after 3 s" },
  }
  for _, f in ipairs(faults) do
    it(string.format("ends the job with a clear error when a rank %s", f[1] == "shape" and "runs another graph"
                     or f[1] == "error" and "raises an error" or "exits early"), function()
      need_mpi()
      local _, text, ok, secs = run_dist("float64", 3, nil, "MPI_TRAIN_FAULT=" .. f[1] .. " MOONFLOW_MPI_TIMEOUT=3")
      assert(not ok, text)
      assert(secs < 60, "took " .. secs .. " s")
      assert(not text:match("Terminated"), "timed out (a hang): " .. text)
      assert(text:find(f[2], 1, true), text)
      assert(text:find(f[3], 1, true), text)
    end)
  end
end)
