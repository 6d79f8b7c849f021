-- Entries in docs/API.md for the public functions that parse their own
-- arguments (those declared with A.def in their module are documented
-- there). One line per function: A.doc(fn, path, signature, what it does).
-- A public tf.* function with neither fails tests/spec/api_doc_spec.lua.
local A = require("moonflow.args")

return function(tf)
  local d = A.doc
  local S, V, Sv = tf.Session_mt, tf.Variable_mt, tf.train.Saver_mt
  -- graphs, scopes, tensors
  d(tf.Graph, "tf.Graph", "", "A new, empty graph (g:as_default() makes it the default).")
  d(tf.get_default_graph, "tf.get_default_graph", "", "The graph new ops go into.")
  d(tf.reset_default_graph, "tf.reset_default_graph", "", "Replaces the default graph with a new, empty one.")
  d(tf.name_scope, "tf.name_scope", "name, [fn]", "Prefixes the names of ops created in fn (or until the returned handle is closed).")
  d(tf.device, "tf.device", "device_name, [fn]", "Ops created in fn ask for that device (\"/cpu:0\", \"/gpu:0\").")
  d(tf.colocate_with, "tf.colocate_with", "op, [fn]", "Ops created in fn go on the device of op.")
  d(tf.control_dependencies, "tf.control_dependencies", "control_inputs, [fn]",
    "Ops created in fn run after control_inputs (nil clears the outer ones).")
  d(tf.is_tensor, "tf.is_tensor", "x", "Whether x is a Tensor (or a Variable).")
  d(tf.constant, "tf.constant", "value, [dtype], [shape], [name], [verify_shape] | value, {dtype, shape, name} | value, name",
    "A constant tensor from a number, nested table or Array.")
  d(tf.convert_to_tensor, "tf.convert_to_tensor", "value, [dtype]", "value as a Tensor (a constant unless it is one).")
  d(tf.Tensor.eval, "tf.Tensor.eval", "t, [feeds], [sess]", "t:eval(): runs t in sess or the default session.")
  d(tf.Tensor.slice, "tf.Tensor.slice", "x, spec...",
    "x:slice(2, {1, 3}, {}): Python's x[1, 0:2, :] (an integer drops the dimension; {b, e[, s]} a range, "
    .. "end exclusive; {} all; \"...\"; tf.newaxis).")
  d(tf.TensorShape, "tf.TensorShape", "dims",
    "A static shape (nil dims: unknown rank; -1 or nil entries: unknown dims) with as_list, ndims, merge_with, ...")
  d(tf.Tensor.get_shape, "tf.Tensor.get_shape", "t", "t's static shape as a TensorShape.")
  d(tf.Tensor.set_shape, "tf.Tensor.set_shape", "t, shape",
    "Merges shape into t's static shape (Lua side only); an incompatible one is an error.")
  -- collections
  d(tf.add_to_collection, "tf.add_to_collection", "name, value", "Appends value to the graph's collection name.")
  d(tf.add_to_collections, "tf.add_to_collections", "names, value", "Appends value to each listed collection.")
  d(tf.get_collection, "tf.get_collection", "key, [scope]",
    "A copy of the collection's items (those whose name matches scope at its start, when given).")
  d(tf.get_collection_ref, "tf.get_collection_ref", "key", "The collection's live list.")
  d(tf.local_variables, "tf.local_variables", "[scope]", "The variables in GraphKeys.LOCAL_VARIABLES.")
  d(tf.local_variables_initializer, "tf.local_variables_initializer", "",
    "An Operation that initializes the local variables.")
  d(tf.model_variables, "tf.model_variables", "[scope]", "The variables in GraphKeys.MODEL_VARIABLES.")
  d(tf.is_variable_initialized, "tf.is_variable_initialized", "variable, [name]",
    "A bool scalar: whether the variable has a value in the session.")
  d(tf.report_uninitialized_variables, "tf.report_uninitialized_variables", "[var_list], [{name}]",
    "Evaluates to the list of the names of uninitialized variables (a Lua list, not a string tensor).")
  -- debugging
  d(tf.Print, "tf.Print", "input, data, [message], [first_n], [summarize], [name]",
    "input, passed on; prints message and the data tensors to stderr when it runs (TF 1's).")
  d(tf.print, "tf.print", "inputs..., [{output_stream, summarize, sep, end, name}]",
    "An Operation printing strings and tensors (TF 2's); output_stream: \"stderr\", \"stdout\" or a function.")
  d(tf.Assert, "tf.Assert", "condition, data, [summarize], [name]",
    "An Operation that fails the run, showing data, unless every element of condition holds.")
  local cmp = {
    assert_equal = "x == y", assert_none_equal = "x ~= y", assert_less = "x < y", assert_less_equal = "x <= y",
    assert_greater = "x > y", assert_greater_equal = "x >= y",
  }
  for n, rel in pairs(cmp) do
    d(tf.debugging[n], "tf.debugging." .. n, "x, y, [data], [summarize], [message], [name] | x, y, {data, summarize, message, name}",
      "An Operation that fails the run unless " .. rel .. " element-wise (broadcasting).")
  end
  local sign = { assert_positive = "x > 0", assert_non_negative = "x >= 0", assert_negative = "x < 0",
                 assert_non_positive = "x <= 0" }
  for n, rel in pairs(sign) do
    d(tf.debugging[n], "tf.debugging." .. n, "x, [data], [summarize], [message], [name] | x, {data, summarize, message, name}",
      "An Operation that fails the run unless " .. rel .. " everywhere.")
  end
  d(tf.debugging.assert_rank, "tf.debugging.assert_rank", "x, rank, [message], [name]",
    "Checks x's rank: when built if known, else an Operation checking it when run.")
  d(tf.debugging.assert_type, "tf.debugging.assert_type", "tensor, tf_type, [message], [name]",
    "Raises unless the tensor has that dtype.")
  d(tf.debugging.assert_shapes, "tf.debugging.assert_shapes", "shapes, [{data, summarize, message, name}]",
    "Checks {tensor, {dim names or sizes}} pairs agree on sizes (symbolic names must match).")
  d(tf.check_numerics, "tf.check_numerics", "tensor, message, [name]",
    "tensor, passed on; a NaN or an Inf in it fails the run with message, naming the op.")
  d(tf.add_check_numerics_ops, "tf.add_check_numerics_ops", "",
    "An Operation checking every float tensor of the graph (not for graphs with control flow, as TF).")
  d(tf.lua_func, "tf.lua_func", "func, inp, Tout, [{stateful, name}]",
    "Runs a Lua function on the inputs' values as an op (TF's py_func); a C host cannot run it.",
    { tf_name = "tf.py_func" })
  d(tf.Operation.run, "tf.Operation.run", "op, [feeds], [sess]", "op:run(): runs op in sess or the default session.")
  -- sessions
  d(tf.get_default_session, "tf.get_default_session", "", "The innermost default session, or nil.")
  d(S.run, "tf.Session_mt.run", "sess, fetches, [feeds]",
    "sess:run(): the values of fetches (any nesting of tensors, ops, names and lists), feeds keyed by tensor or name.")
  d(S.close, "tf.Session_mt.close", "sess", "sess:close(): frees the session (also <close>).")
  d(S.as_default, "tf.Session_mt.as_default", "sess, [fn]", "sess:as_default(): makes sess the default session in fn.")
  d(S.set_tracing, "tf.Session_mt.set_tracing", "sess, on", "sess:set_tracing(true): records per-op timings.")
  d(S.last_trace, "tf.Session_mt.last_trace", "sess", "sess:last_trace(): the per-op timings of the last run.")
  d(S.list_devices, "tf.Session_mt.list_devices", "sess", "sess:list_devices(): the devices the session can use.")
  -- arrays
  d(tf.array, "tf.array", "value, [dtype]", "An Array (a value) from a number or nested table.")
  d(tf.array_from_bytes, "tf.array_from_bytes", "s", "A uint8 Array of the bytes of string s.")
  d(tf.is_array, "tf.is_array", "x", "Whether x is an Array.")
  -- variables
  d(tf.Variable, "tf.Variable", "initial_value, [trainable], [collections], [validate_shape], [caching_device], [name], [variable_def], [dtype] | initial_value, {name, dtype, trainable, validate_shape, collections} | initial_value, name",
    "A variable: a tensor whose value lives in each session.")
  d(V.assign, "tf.Variable_mt.assign", "v, value, [name]", "v:assign(value): sets v when run; returns the new value.")
  d(V.assign_add, "tf.Variable_mt.assign_add", "v, delta, [name]", "v:assign_add(delta): adds to v when run.")
  d(V.assign_sub, "tf.Variable_mt.assign_sub", "v, delta, [name]", "v:assign_sub(delta): subtracts from v when run.")
  d(V.read_value, "tf.Variable_mt.read_value", "v, [name]", "v:read_value(): v's value, read on v's device.")
  d(V.value, "tf.Variable_mt.value", "v", "v:value(): the variable's tensor.")
  d(V.initialized_value, "tf.Variable_mt.initialized_value", "v", "v:initialized_value(): v's value after its initializer.")
  d(tf.global_variables, "tf.global_variables", "", "The variables of the default graph (also tf.all_variables).")
  d(tf.trainable_variables, "tf.trainable_variables", "", "The trainable variables of the default graph.")
  d(tf.variables_initializer, "tf.variables_initializer", "var_list, [name]", "An op that initializes the variables.")
  d(tf.global_variables_initializer, "tf.global_variables_initializer", "",
    "An op that initializes every variable (also tf.initialize_all_variables).")
  d(tf.variable_scope, "tf.variable_scope", "name_or_scope, [{reuse, initializer}], [fn]",
    "A scope for tf.get_variable names and reuse (fn, or until the handle is closed).")
  d(tf.get_variable_scope, "tf.get_variable_scope", "", "The current variable scope.")
  -- gradients and training
  d(tf.IndexedSlices, "tf.IndexedSlices", "values, indices, [dense_shape]", "A sparse gradient: rows at 1-based indices.")
  d(tf.is_indexed_slices, "tf.is_indexed_slices", "x", "Whether x is an IndexedSlices.")
  local tr = tf.train
  d(tr.get_global_step, "tf.train.get_global_step", "[graph]", "The global step variable, or nil.")
  d(tr.get_or_create_global_step, "tf.train.get_or_create_global_step", "[graph]", "The global step variable, created if needed.")
  if tr.create_global_step then
    d(tr.create_global_step, "tf.train.create_global_step", "[graph]", "Creates the global step variable.")
  end
  d(tr.Saver, "tf.train.Saver", "[var_list], [{max_to_keep = 5}]", "Saves and restores variables as checkpoints.")
  d(tr.latest_checkpoint, "tf.train.latest_checkpoint", "checkpoint_dir", "The path of the newest checkpoint in a directory, or nil.")
  d(tr.list_variables, "tf.train.list_variables", "ckpt_dir_or_file",
    "A checkpoint's tensors as {name, shape, dtype}, sorted by name, without a session.")
  d(Sv.save, "tf.train.Saver_mt.save", "saver, sess, save_path, [{global_step}]", "saver:save(): writes a checkpoint; returns its path.")
  d(Sv.restore, "tf.train.Saver_mt.restore", "saver, sess, save_path", "saver:restore(): loads a checkpoint into the variables.")
  d(Sv.last_checkpoints, "tf.train.Saver_mt.last_checkpoints", "saver", "saver:last_checkpoints(): the kept checkpoint paths.")
  d(Sv.set_last_checkpoints, "tf.train.Saver_mt.set_last_checkpoints", "saver, paths", "Sets the kept checkpoint paths.")
  d(Sv.recover_last_checkpoints, "tf.train.Saver_mt.recover_last_checkpoints", "saver, paths",
    "Takes over the existing checkpoints among paths.")
  -- RNNs
  local rc = tf.contrib.rnn
  d(rc.BasicRNNCell, "tf.contrib.rnn.BasicRNNCell", "num_units, [{name, initializer}]", "tanh(W [x, h] + b) (also tf.nn.rnn_cell).")
  d(rc.LSTMCell, "tf.contrib.rnn.LSTMCell", "num_units, [{forget_bias = 1, name, initializer}]", "An LSTM cell; state {c, h}.")
  d(rc.BasicLSTMCell, "tf.contrib.rnn.BasicLSTMCell", "num_units, [{forget_bias = 1, name, initializer}]", "As LSTMCell.")
  d(rc.GRUCell, "tf.contrib.rnn.GRUCell", "num_units, [{name, initializer}]", "A GRU cell.")
  d(rc.MultiRNNCell, "tf.contrib.rnn.MultiRNNCell", "cells", "Cells stacked; the state is a list of theirs.")
  d(tf.nn.static_rnn, "tf.nn.static_rnn", "cell, inputs, [{initial_state, dtype, sequence_length, scope}]",
    "The cell unrolled over a list of [batch, features] inputs; returns outputs and the final state.")
  d(tf.nn.dynamic_rnn, "tf.nn.dynamic_rnn", "cell, inputs, [{initial_state, dtype, sequence_length, time_major, scope}]",
    "The cell run over [batch, time, features] inputs; returns outputs and the final state.")
  -- build and devices
  d(tf.test.is_gpu_available, "tf.test.is_gpu_available", "", "Whether a GPU can be used.")
  d(tf.test.is_built_with_cuda, "tf.test.is_built_with_cuda", "", "Whether this build has the CUDA backend.")
  local sc = tf.sysconfig
  d(sc.cpu_gemm_kernel, "tf.sysconfig.cpu_gemm_kernel", "", "Which float32 GEMM runs on the CPU.")
  d(sc.memory_stats, "tf.sysconfig.memory_stats", "", "Per device: bytes in use, peak, cached, allocations.")
  d(sc.allocator_trim, "tf.sysconfig.allocator_trim", "", "Gives every device's cached memory back.")
  d(sc.op_kernels, "tf.sysconfig.op_kernels", "", "Per op type, the backends that run it.")
  d(sc.cuda_built, "tf.sysconfig.cuda_built", "", "Whether this build has the CUDA backend.")
  d(sc.op_def, "tf.sysconfig.op_def", "op_type",
    "What an op type takes: doc, inputs, outputs, attrs with kinds and defaults (nil: unknown).")
end
