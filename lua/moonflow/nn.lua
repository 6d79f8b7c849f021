-- tf.nn: activations, dropout, fused softmax / cross-entropy kernels (tf.losses
-- is in losses.lua).
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local nn = tf.nn or {}
  tf.nn = nn
  local function out(op, i) return op.outputs[i or 1] end

  local function float_tensor(x, what)
    x = C.to_tensor(x)
    if not x.dtype:match("^float") then G.raise("%s: needs a float tensor, got %s", what, x.dtype) end
    return x
  end

  nn.relu = A.def("tf.nn.relu", "features:tensor, name:string=nil", "max(features, 0).", function(a)
    return out(G.make_op("Relu", { float_tensor(a.features, "tf.nn.relu") }, nil, { name = a.name }))
  end)
  nn.sigmoid, nn.tanh = tf.sigmoid, tf.tanh

  -- Softmax along any axis: the fused kernel works on the last one, so
  -- another axis is moved last and back (the gradient comes with it).
  local function softmax_along(op_type, what, logits, axis, name)
    logits = float_tensor(logits, what)
    local rank = logits.shape and #logits.shape
    if axis == -1 or (rank and axis == rank) then
      return out(G.make_op(op_type, { logits }, nil, { name = name }))
    end
    if not rank then G.raise("%s: axis %d needs a tensor of known rank (or axis = -1)", what, axis) end
    local ax = axis < 0 and rank + axis + 1 or axis
    if ax < 1 or ax > rank then G.raise("%s: axis %d is out of range for rank %d", what, axis, rank) end
    local perm = {}
    for d = 1, rank do perm[d] = d end
    perm[ax], perm[rank] = rank, ax
    return tf.name_scope(name or op_type, function()
      local y = out(G.make_op(op_type, { tf.transpose(logits, perm) }, nil, {}))
      return tf.transpose(y, perm)
    end)
  end
  nn.softmax = A.def("tf.nn.softmax", "logits:tensor, axis/dim:int=-1, name:string=nil",
                     "exp(logits) / sum(exp(logits)) along axis (the last by default).", function(a)
    return softmax_along("Softmax", "tf.nn.softmax", a.logits, a.axis, a.name)
  end)
  nn.log_softmax = A.def("tf.nn.log_softmax", "logits:tensor, axis/dim:int=-1, name:string=nil",
                         "logits - log(sum(exp(logits))) along axis (the last by default).", function(a)
    return softmax_along("LogSoftmax", "tf.nn.log_softmax", a.logits, a.axis, a.name)
  end)

  -- tf.nn.dropout(x, keep_prob, {seed, name}): keeps each element with
  -- probability keep_prob and scales it by 1/keep_prob.
  -- keep_prob may be a number or a scalar tensor (checked when it runs).
  nn.dropout = A.def("tf.nn.dropout", "x:tensor, keep_prob:any, noise_shape:any=nil, seed:int=nil, name:string=nil",
                     "Keeps each element with probability keep_prob, scaled by 1/keep_prob.", function(a)
    local x, keep_prob, opts = a.x, a.keep_prob, a
    if a.noise_shape ~= nil then G.raise("tf.nn.dropout: noise_shape is not supported") end
    x = float_tensor(x, "tf.nn.dropout")
    local s1, s2 = tf._seeds(opts.seed)
    local attrs, inputs = { "seed", "int", s1, "seed2", "int", s2 }, { x }
    if G.is_tensor(keep_prob) then
      inputs[2] = keep_prob.dtype == x.dtype and keep_prob or tf.cast(keep_prob, x.dtype)
    elseif type(keep_prob) == "number" then
      if keep_prob <= 0 or keep_prob > 1 then G.raise("tf.nn.dropout: keep_prob must be in (0, 1], got %g", keep_prob) end
      attrs[#attrs + 1], attrs[#attrs + 2], attrs[#attrs + 3] = "keep_prob", "float", keep_prob
    else
      G.raise("tf.nn.dropout: keep_prob must be a number or a scalar tensor")
    end
    return out(G.make_op("Dropout", inputs, attrs, { name = opts.name or "dropout" }))
  end)

  local LL = "*, labels:tensor, logits:tensor, dim/axis:int=-1, name:string=nil"
  local function labels_logits(a, what)
    if a.dim ~= -1 then
      local r = a.logits and G.is_tensor(a.logits) and a.logits.shape and #a.logits.shape
      if not r or a.dim ~= r then G.raise("%s: only the last axis (dim = -1) is supported", what) end
    end
    return a.labels, float_tensor(a.logits, what)
  end

  nn.softmax_cross_entropy_with_logits = A.def("tf.nn.softmax_cross_entropy_with_logits", LL,
    "Cross-entropy between labels (probabilities) and softmax(logits), per row.", function(a)
    local labels, logits = labels_logits(a, "tf.nn.softmax_cross_entropy_with_logits")
    labels = C.to_tensor(labels, logits.dtype)
    return out(G.make_op("SoftmaxCrossEntropyWithLogits", { logits, labels }, nil, { name = a.name }))
  end)
  nn.softmax_cross_entropy_with_logits_v2 = nn.softmax_cross_entropy_with_logits

  -- Labels are 1-based class ids.
  nn.sparse_softmax_cross_entropy_with_logits = A.def("tf.nn.sparse_softmax_cross_entropy_with_logits",
    "*, labels:tensor, logits:tensor, name:string=nil",
    "Cross-entropy of softmax(logits) at the 1-based class ids labels, per row.", function(a)
    local labels, logits = a.labels, float_tensor(a.logits, "tf.nn.sparse_softmax_cross_entropy_with_logits")
    labels = C.to_tensor(labels, "int32")
    return out(G.make_op("SparseSoftmaxCrossEntropyWithLogits", { logits, labels }, nil, { name = a.name }))
  end)

  -- max(x, 0) - x z + log(1 + exp(-|x|)): stable for large |x|.
  nn.sigmoid_cross_entropy_with_logits = A.def("tf.nn.sigmoid_cross_entropy_with_logits",
    "*, labels:tensor, logits:tensor, name:string=nil",
    "Element-wise logistic loss of logits against labels in [0, 1], stable for large |logits|.", function(a)
    local labels, logits = a.labels, float_tensor(a.logits, "tf.nn.sigmoid_cross_entropy_with_logits")
    labels = C.to_tensor(labels, logits.dtype)
    return tf.name_scope(a.name or "logistic_loss", function()
      return nn.relu(logits) - logits * labels + tf.log1p(tf.exp(-tf.abs(logits)))
    end)
  end)

  nn.l2_loss = A.def("tf.nn.l2_loss", "t:tensor, name:string=nil", "sum(t^2) / 2.", function(a)
    local t = float_tensor(a.t, "tf.nn.l2_loss")
    return tf.name_scope(a.name or "L2Loss", function() return tf.reduce_sum(tf.square(t)) * 0.5 end)
  end)
end
