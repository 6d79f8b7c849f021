-- require("moonflow"): TensorFlow 1.x's graph API over the moonflow C core.
local core = require("moonflow.core")
local G = require("moonflow.graph")
local C = require("moonflow.convert")

local tf = {}

tf.version = core.version()
tf.__version__ = tf.version
for name in pairs(C.dtypes) do tf[name] = name end

tf.Graph = G.new_graph
tf.get_default_graph = G.get_default_graph
tf.reset_default_graph = G.reset_default_graph
tf.name_scope = G.name_scope
tf.device = G.device
tf.colocate_with = G.colocate_with
tf.control_dependencies = G.control_dependencies
tf.is_tensor = G.is_tensor
tf.Tensor, tf.Operation = G.Tensor, G.Operation
tf.constant = C.constant
tf.convert_to_tensor = function(x, dtype) return C.to_tensor(x, dtype) end

require("moonflow.math")(tf)
require("moonflow.array_ops")(tf)
require("moonflow.indexing")(tf)
require("moonflow.creation")(tf)
require("moonflow.variables")(tf)
require("moonflow.session")(tf)
require("moonflow.array")(tf)
require("moonflow.gradients")(tf)
require("moonflow.nn")(tf)
require("moonflow.math_ops")(tf)
require("moonflow.activations")(tf)
require("moonflow.masks")(tf)
require("moonflow.einsum")(tf)
require("moonflow.index_ops")(tf)
require("moonflow.variable_scope")(tf)
require("moonflow.conv")(tf)
require("moonflow.initializers")(tf)
require("moonflow.train")(tf)
require("moonflow.optimizers")(tf)
require("moonflow.control_flow")(tf)
require("moonflow.rnn")(tf)
require("moonflow.seq2seq")(tf)
require("moonflow.saver")(tf)
require("moonflow.graph_io")(tf)
require("moonflow.saved_model")(tf)
require("moonflow.debugging")(tf)
require("moonflow.summary")(tf)
require("moonflow.normalization")(tf)
require("moonflow.losses")(tf)
require("moonflow.metrics")(tf)
require("moonflow.sampled")(tf)

tf.test = {
  is_gpu_available = function()
    for _, d in ipairs(core.devices()) do if d.device_type == "GPU" then return true end end
    return false
  end,
  -- As TensorFlow's: the build has the CUDA backend (a GPU may still be absent).
  is_built_with_cuda = function() return core.cuda_built() end,
}
tf.sysconfig = {
  -- Which float32 GEMM runs on the CPU: "avx512", "avx2" (moonflow's own) or "openblas".
  cpu_gemm_kernel = function() return core.cpu_gemm_kernel() end,
  -- Per device name: bytes_in_use, peak_bytes_in_use, bytes_cached, num_allocs.
  memory_stats = function() return core.memory_stats() end,
  -- Gives every device's cached memory back (also done when the last session goes).
  allocator_trim = function() core.allocator_trim() end,
  -- Per op type, the kernel backends that run it: {MatMul = {"cpu", "cuda"}, ...}.
  op_kernels = function() return core.op_kernels() end,
  -- Whether this build has the CUDA backend (tf.test.is_gpu_available: a GPU too).
  cuda_built = function() return core.cuda_built() end,
  -- What an op type takes (from the registry), or nil for an unknown type:
  -- {type, doc, min_inputs, max_inputs, inputs = {{name, optional, list, ref, host}, ...},
  --  outputs = {...}, attrs = {{name, kind, default, required}, ...}}.
  op_def = function(op_type)
    if type(op_type) ~= "string" then
      error("tf.sysconfig.op_def: op_type must be a string, got " .. type(op_type), 2)
    end
    return core.op_def(op_type)
  end,
}

-- Methods called on the wrong thing are errors naming the method.
G.guard_methods(G.Graph, "Graph", function(x) return getmetatable(x) == G.Graph end)
G.guard_methods(G.Operation, "Operation", G.is_operation)
G.guard_methods(G.Tensor, "Tensor", G.is_tensor)
G.guard_methods(tf.Session_mt, "sess", function(x) return getmetatable(x) == tf.Session_mt end, "tf.Session")
G.guard_methods(tf.Variable_mt, "Variable", function(x) return getmetatable(x) == tf.Variable_mt end)
G.guard_methods(tf.train.Saver_mt, "Saver", function(x) return getmetatable(x) == tf.train.Saver_mt end)

-- docs/API.md entries for the functions not declared with args.def (after the guards wrap the methods).
require("moonflow.api_docs")(tf)

return tf
