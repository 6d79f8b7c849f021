-- tf.losses (TF 1.x's weighted losses, their reductions and the LOSSES
-- collection) and the regularizers of tf.contrib.layers, whose losses go to
-- REGULARIZATION_LOSSES through tf.get_variable's regularizer.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local losses = tf.losses or {}
  tf.losses = losses

  losses.Reduction = {
    NONE = "none", SUM = "weighted_sum", SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size",
    MEAN = "weighted_mean", SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights",
    SUM_OVER_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights",
  }
  local R = losses.Reduction
  local REDUCTIONS = {}
  for _, v in pairs(R) do REDUCTIONS[v] = true end
  losses.Reduction.all = A.def("tf.losses.Reduction.all", "", "The reduction names, as a list.", function()
    return { R.NONE, R.SUM, R.MEAN, R.SUM_OVER_BATCH_SIZE, R.SUM_OVER_NONZERO_WEIGHTS, R.SUM_BY_NONZERO_WEIGHTS }
  end)

  local LOSSES, REG = "losses", "regularization_losses" -- tf.GraphKeys.LOSSES, REGULARIZATION_LOSSES

  local function as_dtype(x, dtype)
    x = C.to_tensor(x, dtype)
    if x.dtype ~= dtype then x = tf.cast(x, dtype) end
    return x
  end

  local function float_tensor(x, what, param)
    x = C.to_tensor(x)
    if not x.dtype:match("^float") then G.raise("%s: %s must be a float tensor, got %s", what, param, x.dtype) end
    return x
  end

  local function same_shape(a, b, what, pa, pb)
    if not (a.shape and b.shape) then return end
    local ok = #a.shape == #b.shape
    for i = 1, ok and #a.shape or 0 do
      if a.shape[i] >= 0 and b.shape[i] >= 0 and a.shape[i] ~= b.shape[i] then ok = false end
    end
    if not ok then
      G.raise("%s: %s of shape {%s} and %s of shape {%s} must have the same shape", what, pa,
              table.concat(a.shape, ", "), pb, table.concat(b.shape, ", "))
    end
  end

  -- TF's assert_broadcastable: weights are a scalar or of the losses' rank,
  -- each dimension 1 or the losses' own.
  local function check_weights(w, l, what)
    if not (w.shape and l.shape) or #w.shape == 0 then return end
    local ok = #w.shape == #l.shape
    for i = 1, ok and #w.shape or 0 do
      if w.shape[i] ~= 1 and w.shape[i] >= 0 and l.shape[i] >= 0 and w.shape[i] ~= l.shape[i] then ok = false end
    end
    if not ok then
      G.raise("%s: weights of shape {%s} cannot be broadcast to the losses' shape {%s} (a scalar, or the same "
              .. "rank with dimensions 1 or equal)", what, table.concat(w.shape, ", "), table.concat(l.shape, ", "))
    end
  end

  -- num / den, 0 where den is 0 (TF's div_no_nan), with a finite gradient.
  local function safe_div(num, den)
    local zero = tf.equal(den, 0)
    return tf.where(zero, tf.zeros_like(num), num / tf.where(zero, tf.ones_like(den), den), "value")
  end

  local function loss_collection_arg(c, what)
    if c == nil then return LOSSES end
    if c == false or type(c) == "string" then return c end
    G.raise("%s: loss_collection must be a collection name or false (none), got %s", what, type(c))
  end

  -- TF's compute_weighted_loss (inside the caller's name scope).
  local function weighted(l, weights, reduction, collection, what)
    if not REDUCTIONS[reduction] then
      G.raise("%s: reduction must be one of tf.losses.Reduction's values, got '%s'", what, tostring(reduction))
    end
    collection = loss_collection_arg(collection, what)
    local w = as_dtype(weights, l.dtype)
    check_weights(w, l, what)
    local wl = l * w
    local loss
    if reduction == R.NONE then
      loss = wl
    else
      loss = tf.reduce_sum(wl)
      if reduction == R.MEAN then
        loss = safe_div(loss, tf.reduce_sum(tf.ones_like(l) * w))
      elseif reduction == R.SUM_BY_NONZERO_WEIGHTS then
        local count
        if type(weights) == "number" and weights ~= 0 then -- TF's shortcut for a Python float
          count = tf.cast(tf.size(l), l.dtype)
        else
          local present = tf.where(tf.equal(w, 0), tf.zeros_like(w), tf.ones_like(w))
          count = tf.reduce_sum(present * tf.ones_like(l), nil, false, "num_present")
        end
        loss = safe_div(loss, count)
      elseif reduction == R.SUM_OVER_BATCH_SIZE then
        loss = safe_div(loss, tf.cast(tf.size(l), l.dtype))
      end
    end
    if collection then tf.add_to_collection(collection, loss) end
    return loss
  end

  local TAIL = "scope/name:string=nil, loss_collection:any=nil, reduction:string='weighted_sum_by_nonzero_weights'"
  local TAIL_DOC = " (weights, and TF's reduction, by default the sum over the non-zero weights' count; "
                   .. "added to GraphKeys.LOSSES)."

  losses.compute_weighted_loss = A.def("tf.losses.compute_weighted_loss",
    "losses:tensor, weights:tensor=1.0, " .. TAIL,
    "losses times weights, reduced" .. TAIL_DOC, function(a)
    local l = float_tensor(a.losses, "tf.losses.compute_weighted_loss", "losses")
    return tf.name_scope(a.scope or "weighted_loss", function()
      return weighted(l, a.weights, a.reduction, a.loss_collection, "tf.losses.compute_weighted_loss")
    end)
  end)

  -- A loss of (labels, predictions) element-wise: fn(labels, predictions, a).
  local function pointwise(path, sig, line, default_scope, lparam, pparam, fn)
    return A.def(path, sig, line .. TAIL_DOC, function(a)
      local p = float_tensor(a[pparam], path, pparam)
      local y = as_dtype(a[lparam], p.dtype)
      same_shape(p, y, path, pparam, lparam)
      return tf.name_scope(a.scope or default_scope, function()
        return weighted(fn(y, p, a), a.weights, a.reduction, a.loss_collection, path)
      end)
    end)
  end

  losses.absolute_difference = pointwise("tf.losses.absolute_difference",
    "labels:tensor, predictions:tensor, weights:tensor=1.0, " .. TAIL, "|predictions - labels|",
    "absolute_difference", "labels", "predictions", function(y, p) return tf.abs(p - y) end)

  losses.mean_squared_error = pointwise("tf.losses.mean_squared_error",
    "labels:tensor, predictions:tensor, weights:tensor=1.0, " .. TAIL, "(predictions - labels)^2",
    "mean_squared_error", "labels", "predictions", function(y, p) return tf.square(p - y) end)

  losses.huber_loss = pointwise("tf.losses.huber_loss",
    "labels:tensor, predictions:tensor, weights:tensor=1.0, delta:number=1.0, " .. TAIL,
    "0.5 e^2 where |e| <= delta, else delta (|e| - 0.5 delta), e = predictions - labels",
    "huber_loss", "labels", "predictions", function(y, p, a)
    local abs_error = tf.abs(p - y)
    local quadratic = tf.minimum(abs_error, a.delta)
    local linear = abs_error - quadratic
    return quadratic * quadratic * 0.5 + linear * a.delta
  end)

  losses.log_loss = pointwise("tf.losses.log_loss",
    "labels:tensor, predictions:tensor, weights:tensor=1.0, epsilon:number=1e-7, " .. TAIL,
    "-labels log(predictions + epsilon) - (1 - labels) log(1 - predictions + epsilon)",
    "log_loss", "labels", "predictions", function(y, p, a)
    return -(y * tf.log(p + a.epsilon)) - (1 - y) * tf.log(1 - p + a.epsilon)
  end)

  losses.hinge_loss = pointwise("tf.losses.hinge_loss",
    "labels:tensor, logits:tensor, weights:tensor=1.0, " .. TAIL,
    "max(0, 1 - (2 labels - 1) logits), labels in {0, 1}",
    "hinge_loss", "labels", "logits", function(y, z)
    local ones = tf.ones_like(y)
    return tf.nn.relu(ones - (y * 2 - ones) * z)
  end)

  losses.sigmoid_cross_entropy = pointwise("tf.losses.sigmoid_cross_entropy",
    "multi_class_labels:tensor, logits:tensor, weights:tensor=1.0, label_smoothing:number=0, " .. TAIL,
    "sigmoid cross-entropy of logits against labels smoothed towards 1/2 by label_smoothing",
    "sigmoid_cross_entropy_loss", "multi_class_labels", "logits", function(y, z, a)
    if a.label_smoothing > 0 then y = y * (1 - a.label_smoothing) + 0.5 * a.label_smoothing end
    return tf.nn.sigmoid_cross_entropy_with_logits { labels = y, logits = z, name = "xentropy" }
  end)

  losses.softmax_cross_entropy = A.def("tf.losses.softmax_cross_entropy",
    "onehot_labels:tensor, logits:tensor, weights:tensor=1.0, label_smoothing:number=0, " .. TAIL,
    "softmax cross-entropy per row, labels smoothed towards 1/classes by label_smoothing" .. TAIL_DOC, function(a)
    local what = "tf.losses.softmax_cross_entropy"
    local z = float_tensor(a.logits, what, "logits")
    local y = as_dtype(a.onehot_labels, z.dtype)
    same_shape(z, y, what, "logits", "onehot_labels")
    return tf.name_scope(a.scope or "softmax_cross_entropy_loss", function()
      if a.label_smoothing > 0 then
        local classes = tf.cast(tf.shape(y)[-1], z.dtype)
        y = y * (1 - a.label_smoothing) + a.label_smoothing / classes
      end
      local l = tf.nn.softmax_cross_entropy_with_logits { labels = tf.stop_gradient(y), logits = z, name = "xentropy" }
      return weighted(l, a.weights, a.reduction, a.loss_collection, what)
    end)
  end)

  -- Labels are 1-based class ids (as tf.nn.sparse_softmax_cross_entropy_with_logits').
  losses.sparse_softmax_cross_entropy = A.def("tf.losses.sparse_softmax_cross_entropy",
    "labels:tensor, logits:tensor, weights:tensor=1.0, " .. TAIL,
    "softmax cross-entropy per row at the 1-based class ids labels" .. TAIL_DOC, function(a)
    local what = "tf.losses.sparse_softmax_cross_entropy"
    local z = float_tensor(a.logits, what, "logits")
    local y = as_dtype(a.labels, "int32")
    local weights = type(a.weights) == "number" and a.weights or C.to_tensor(a.weights)
    return tf.name_scope(a.scope or "sparse_softmax_cross_entropy_loss", function()
      -- TF's _remove_squeezable_dimensions: labels {batch, 1} and weights
      -- {batch, 1} lose their last axis
      if y.shape and z.shape and #y.shape == #z.shape and y.shape[#y.shape] == 1 then y = tf.squeeze(y, -1) end
      if type(weights) ~= "number" and weights.shape and y.shape and #weights.shape == #y.shape + 1
          and weights.shape[#weights.shape] == 1 then
        weights = tf.squeeze(weights, -1)
      end
      local l = tf.nn.sparse_softmax_cross_entropy_with_logits { labels = y, logits = z, name = "xentropy" }
      return weighted(l, weights, a.reduction, a.loss_collection, what)
    end)
  end)

  -- ---------------------------------------------------------------- collections

  losses.add_loss = A.def("tf.losses.add_loss", "loss:tensor, loss_collection:any=nil",
    "Adds loss to loss_collection (GraphKeys.LOSSES by default; false: none).", function(a)
    local c = loss_collection_arg(a.loss_collection, "tf.losses.add_loss")
    if c then tf.add_to_collection(c, C.to_tensor(a.loss)) end
  end)

  losses.get_losses = A.def("tf.losses.get_losses", "scope:string=nil, loss_collection:string='losses'",
    "The losses in loss_collection (those under scope, when given).", function(a)
    return tf.get_collection(a.loss_collection, a.scope)
  end)

  losses.get_regularization_losses = A.def("tf.losses.get_regularization_losses", "scope:string=nil",
    "The losses in GraphKeys.REGULARIZATION_LOSSES (those under scope, when given).", function(a)
    return tf.get_collection(REG, a.scope)
  end)

  losses.get_regularization_loss = A.def("tf.losses.get_regularization_loss",
    "scope:string=nil, name:string='total_regularization_loss'",
    "The sum of the regularization losses (0.0 when there are none).", function(a)
    local l = tf.get_collection(REG, a.scope)
    if #l == 0 then return C.constant(0.0) end
    return tf.add_n(l, a.name)
  end)

  losses.get_total_loss = A.def("tf.losses.get_total_loss",
    "add_regularization_losses:bool=true, name:string='total_loss', scope:string=nil",
    "The sum of the losses in GraphKeys.LOSSES and (by default) the regularization losses.", function(a)
    local l = tf.get_collection(LOSSES, a.scope)
    if a.add_regularization_losses then
      for _, r in ipairs(tf.get_collection(REG, a.scope)) do l[#l + 1] = r end
    end
    if #l == 0 then G.raise("tf.losses.get_total_loss: there are no losses (GraphKeys.LOSSES is empty)") end
    return tf.add_n(l, a.name)
  end)

  -- ---------------------------------------------------------------- regularizers

  tf.contrib = tf.contrib or {}
  tf.contrib.layers = tf.contrib.layers or {}
  local CL = tf.contrib.layers

  -- TF: a negative scale is an error, 0 disables the regularizer (it returns nil).
  local function regularizer(path, base, penalty)
    return A.def(path, "scale:number, scope:string=nil",
      "A function weights -> scale * " .. base .. " (nil when scale is 0), for get_variable's regularizer.",
      function(a)
      if a.scale < 0 then G.raise("%s: scale must be >= 0, got %g", path, a.scale) end
      if a.scale == 0 then return function() return nil end end
      return function(weights)
        weights = float_tensor(weights, path, "weights")
        return tf.name_scope(a.scope or path:match("[%w_]+$"), function()
          -- the product named as the scope ("<variable>/Regularizer/l2_regularizer"), as TF's
          local scale = C.constant(a.scale, { dtype = weights.dtype, name = "scale" })
          return G.make_op("Mul", { scale, penalty(weights) }, nil,
                           { abs_name = G.get_default_graph()._name_stack }).outputs[1]
        end)
      end
    end)
  end
  CL.l2_regularizer = regularizer("tf.contrib.layers.l2_regularizer", "sum(weights^2) / 2",
                                  function(w) return tf.nn.l2_loss(w) end)
  CL.l1_regularizer = regularizer("tf.contrib.layers.l1_regularizer", "sum(|weights|)",
                                  function(w) return tf.reduce_sum(tf.abs(w)) end)

  CL.sum_regularizer = A.def("tf.contrib.layers.sum_regularizer", "regularizer_list:table, scope:string=nil",
    "A regularizer summing those listed (nil ones skipped).", function(a)
    for i, r in ipairs(a.regularizer_list) do
      if type(r) ~= "function" then G.raise("tf.contrib.layers.sum_regularizer: regularizer_list[%d] is not a function", i) end
    end
    return function(weights)
      return tf.name_scope(a.scope or "sum_regularizer", function()
        local terms = {}
        for _, r in ipairs(a.regularizer_list) do
          local p = r(weights)
          if p ~= nil then terms[#terms + 1] = p end
        end
        if #terms == 0 then return nil end
        return tf.add_n(terms)
      end)
    end
  end)

  CL.l1_l2_regularizer = A.def("tf.contrib.layers.l1_l2_regularizer",
    "scale_l1:number=1.0, scale_l2:number=1.0, scope:string=nil",
    "The sum of l1_regularizer(scale_l1) and l2_regularizer(scale_l2).", function(a)
    return CL.sum_regularizer({ CL.l1_regularizer(a.scale_l1), CL.l2_regularizer(a.scale_l2) },
                              a.scope or "l1_l2_regularizer")
  end)

  CL.apply_regularization = A.def("tf.contrib.layers.apply_regularization",
    "regularizer:function, weights_list:table=nil",
    "The sum of regularizer over weights_list (default GraphKeys.WEIGHTS), added to REGULARIZATION_LOSSES.",
    function(a)
    local list = a.weights_list
    if list == nil or #list == 0 then list = tf.get_collection("weights") end
    if #list == 0 then G.raise("tf.contrib.layers.apply_regularization: no weights to regularize") end
    return tf.name_scope("get_regularization_penalty", function()
      local terms = {}
      for i, w in ipairs(list) do
        local p = a.regularizer(w)
        if p == nil then p = C.constant(0.0) end
        if not G.is_tensor(p) or (p.shape and #p.shape ~= 0) then
          G.raise("tf.contrib.layers.apply_regularization: the regularizer must return a scalar tensor "
                  .. "(weights_list[%d])", i)
        end
        terms[i] = p
      end
      local total = tf.add_n(terms)
      tf.add_to_collection(REG, total)
      return total
    end)
  end)
end
