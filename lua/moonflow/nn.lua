-- tf.nn: activations, dropout, fused softmax / cross-entropy kernels, and
-- tf.losses.
local G = require("moonflow.graph")
local C = require("moonflow.convert")

return function(tf)
  local nn = tf.nn or {}
  tf.nn = nn
  local function out(op, i) return op.outputs[i or 1] end

  local function float_tensor(x, what)
    x = C.to_tensor(x)
    if not x.dtype:match("^float") then G.raise("%s: needs a float tensor, got %s", what, x.dtype) end
    return x
  end

  function nn.relu(x, name) return out(G.make_op("Relu", { float_tensor(x, "tf.nn.relu") }, nil, { name = name })) end
  nn.sigmoid, nn.tanh = tf.sigmoid, tf.tanh
  function nn.softmax(logits, name)
    return out(G.make_op("Softmax", { float_tensor(logits, "tf.nn.softmax") }, nil, { name = name }))
  end
  function nn.log_softmax(logits, name)
    return out(G.make_op("LogSoftmax", { float_tensor(logits, "tf.nn.log_softmax") }, nil, { name = name }))
  end

  -- tf.nn.dropout(x, keep_prob, {seed, name}): keeps each element with
  -- probability keep_prob and scales it by 1/keep_prob.
  -- keep_prob may be a number or a scalar tensor (checked when it runs).
  function nn.dropout(x, keep_prob, opts)
    opts = C.opts(opts, "tf.nn.dropout", "name seed")
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
  end

  local function labels_logits(args, what)
    if type(args) ~= "table" or args.logits == nil or args.labels == nil then
      G.raise("%s: call it with a table {labels = ..., logits = ...}", what)
    end
    return args.labels, float_tensor(args.logits, what)
  end

  function nn.softmax_cross_entropy_with_logits(args)
    local labels, logits = labels_logits(args, "tf.nn.softmax_cross_entropy_with_logits")
    labels = C.to_tensor(labels, logits.dtype)
    return out(G.make_op("SoftmaxCrossEntropyWithLogits", { logits, labels }, nil, { name = args.name }))
  end
  nn.softmax_cross_entropy_with_logits_v2 = nn.softmax_cross_entropy_with_logits

  -- Labels are 1-based class ids.
  function nn.sparse_softmax_cross_entropy_with_logits(args)
    local labels, logits = labels_logits(args, "tf.nn.sparse_softmax_cross_entropy_with_logits")
    labels = C.to_tensor(labels, "int32")
    return out(G.make_op("SparseSoftmaxCrossEntropyWithLogits", { logits, labels }, nil, { name = args.name }))
  end

  -- max(x, 0) - x z + log(1 + exp(-|x|)): stable for large |x|.
  function nn.sigmoid_cross_entropy_with_logits(args)
    local labels, logits = labels_logits(args, "tf.nn.sigmoid_cross_entropy_with_logits")
    labels = C.to_tensor(labels, logits.dtype)
    return tf.name_scope(args.name or "logistic_loss", function()
      return nn.relu(logits) - logits * labels + tf.log1p(tf.exp(-tf.abs(logits)))
    end)
  end

  function nn.l2_loss(t, name)
    t = float_tensor(t, "tf.nn.l2_loss")
    return tf.name_scope(name or "L2Loss", function() return tf.reduce_sum(tf.square(t)) * 0.5 end)
  end

  tf.losses = tf.losses or {}
  function tf.losses.mean_squared_error(labels, predictions, opts)
    opts = C.opts(opts, "tf.losses.mean_squared_error", "name")
    predictions = float_tensor(predictions, "tf.losses.mean_squared_error")
    labels = C.to_tensor(labels, predictions.dtype)
    return tf.name_scope(opts.name or "mean_squared_error", function()
      return tf.reduce_mean(tf.square(labels - predictions))
    end)
  end
end
