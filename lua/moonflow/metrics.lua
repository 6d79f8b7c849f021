-- tf.metrics: streaming metrics as TF 1.x builds them. Each returns
-- (value, update_op): local float32 variables (LOCAL_VARIABLES and
-- METRIC_VARIABLES, set to zero by tf.local_variables_initializer())
-- accumulate counts on each run of update_op; value reads them.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local metrics = tf.metrics or {}
  tf.metrics = metrics
  tf.GraphKeys.METRIC_VARIABLES = tf.GraphKeys.METRIC_VARIABLES or "metric_variables"

  local F = "float32" -- TF's metrics count in float32 whatever the inputs

  local function metric_variable(shape, name)
    return tf.Variable(function() return tf.zeros(shape, F) end,
                       { name = name, trainable = false, collections = { "local_variables", "metric_variables" } })
  end

  local function cast(x, dtype)
    x = C.to_tensor(x)
    if x.dtype ~= dtype then x = tf.cast(x, dtype) end
    return x
  end

  -- TF's _remove_squeezable_dimensions: a trailing axis of size 1 on one
  -- side of a rank difference of one goes.
  local function squeeze_to(a, b)
    if a.shape and b.shape and #a.shape == #b.shape + 1 and a.shape[#a.shape] == 1 then return tf.squeeze(a, -1) end
    return a
  end
  local function align(predictions, labels, weights)
    if labels ~= nil then
      predictions, labels = squeeze_to(predictions, labels), squeeze_to(labels, predictions)
    end
    if weights ~= nil then weights = squeeze_to(cast(weights, F), predictions) end
    return predictions, labels, weights
  end

  local function broadcast_weights(w, values) return cast(w, F) * tf.ones_like(values) end

  local function collections_arg(c, what, param)
    if c == nil then return {} end
    if type(c) == "string" then return { c } end
    if type(c) ~= "table" then G.raise("%s: %s must be a list of collection names", what, param) end
    for i, n in ipairs(c) do
      if type(n) ~= "string" then G.raise("%s: %s[%d] must be a collection name", what, param, i) end
    end
    return c
  end

  local function finish(a, what, value, update)
    for _, c in ipairs(collections_arg(a.metrics_collections, what, "metrics_collections")) do
      tf.add_to_collection(c, value)
    end
    for _, c in ipairs(collections_arg(a.updates_collections, what, "updates_collections")) do
      tf.add_to_collection(c, update)
    end
    return value, update
  end

  -- num / den where den > 0, else 0 (TF's div_no_nan and its where(...) forms).
  local function ratio(num, den, name)
    local pos = tf.greater(den, 0)
    return tf.where(pos, num / tf.where(pos, den, tf.ones_like(den)), tf.zeros_like(num), name)
  end

  local TAIL = "metrics_collections:any=nil, updates_collections:any=nil, name:string=nil"

  local function mean(values, weights, a, what, default_name)
    return tf.name_scope(a.name or default_name, function()
      values = cast(values, F)
      local total, count = metric_variable({}, "total"), metric_variable({}, "count")
      local num_values
      if weights == nil then
        num_values = tf.cast(tf.size(values), F)
      else
        local _
        values, _, weights = align(values, nil, weights)
        weights = broadcast_weights(weights, values)
        values = values * weights
        num_values = tf.reduce_sum(weights)
      end
      local update_total = total:assign_add(tf.reduce_sum(values))
      local update_count = tf.control_dependencies({ values }, function() return count:assign_add(num_values) end)
      local value = ratio(total:read_value(), tf.maximum(count:read_value(), 0), "value")
      local update = ratio(update_total, tf.maximum(update_count, 0), "update_op")
      return finish(a, what, value, update)
    end)
  end

  metrics.mean = A.def("tf.metrics.mean", "values:tensor, weights:tensor=nil, " .. TAIL,
    "Two results: the (weighted) mean of all values seen, and the op that adds a batch's.", function(a)
    return mean(a.values, a.weights, a, "tf.metrics.mean", "mean")
  end)

  metrics.accuracy = A.def("tf.metrics.accuracy", "labels:tensor, predictions:tensor, weights:tensor=nil, " .. TAIL,
    "Two results: the (weighted) fraction of predictions equal to labels so far, and the update op.", function(a)
    local labels = C.to_tensor(a.labels)
    local predictions, weights
    predictions, labels, weights = align(C.to_tensor(a.predictions), labels, a.weights)
    predictions = cast(predictions, labels.dtype)
    local correct = tf.cast(tf.equal(predictions, labels), F)
    return mean(correct, weights, a, "tf.metrics.accuracy", "accuracy")
  end)

  -- TF's _count_condition: the (weighted) count of true values, in scope `name`.
  local function count_condition(name, condition, weights)
    return tf.name_scope(name, function()
      local count = metric_variable({}, "count")
      local values = tf.cast(condition, F)
      if weights ~= nil then values = values * broadcast_weights(weights, values) end
      return count:read_value(), count:assign_add(tf.reduce_sum(values))
    end)
  end

  local function bool_pair(a)
    local predictions, labels, weights = align(cast(a.predictions, "bool"), cast(a.labels, "bool"), a.weights)
    return labels, predictions, weights
  end

  local function fraction(path, default_name, first, second, line)
    return A.def(path, "labels:tensor, predictions:tensor, weights:tensor=nil, " .. TAIL, line, function(a)
      return tf.name_scope(a.name or default_name, function()
        local labels, predictions, weights = bool_pair(a)
        local tp, tp_update = count_condition("true_positives", tf.logical_and(labels, predictions), weights)
        local other, other_update = count_condition(second, first(labels, predictions), weights)
        local value = ratio(tp, tp + other, "value")
        local update = ratio(tp_update, tp_update + other_update, "update_op")
        return finish(a, path, value, update)
      end)
    end)
  end

  metrics.precision = fraction("tf.metrics.precision", "precision",
    function(labels, predictions) return tf.logical_and(tf.logical_not(labels), predictions) end, "false_positives",
    "Two results: true positives / (true + false positives) so far (0 when none), and the update op.")
  metrics.recall = fraction("tf.metrics.recall", "recall",
    function(labels, predictions) return tf.logical_and(labels, tf.logical_not(predictions)) end, "false_negatives",
    "Two results: true positives / (true positives + false negatives) so far (0 when none), and the update op.")

  local SUMMATION = { trapezoidal = true, careful_interpolation = true, minoring = true, majoring = true }

  metrics.auc = A.def("tf.metrics.auc",
    "labels:tensor, predictions:tensor, weights:tensor=nil, num_thresholds:int=200, metrics_collections:any=nil, "
    .. "updates_collections:any=nil, curve:string='ROC', name:string=nil, summation_method:string='trapezoidal', "
    .. "thresholds:table=nil",
    "Two results: the area under the ROC (or PR) curve at num_thresholds thresholds, Riemann-summed "
    .. "(trapezoidal by default), and the update op; predictions in [0, 1].", function(a)
    local what = "tf.metrics.auc"
    if a.curve ~= "ROC" and a.curve ~= "PR" then G.raise("%s: curve must be 'ROC' or 'PR', got '%s'", what, a.curve) end
    if not SUMMATION[a.summation_method] then
      G.raise("%s: summation_method must be trapezoidal, careful_interpolation, minoring or majoring, got '%s'",
              what, a.summation_method)
    end
    if a.curve == "PR" and a.summation_method == "careful_interpolation" then
      G.raise("%s: careful_interpolation of the PR curve is not supported", what)
    end
    local kepsilon = 1e-7 -- TF's margin around 0 and 1
    local thresholds = { 0.0 - kepsilon }
    if a.thresholds ~= nil then
      for i, t in ipairs(a.thresholds) do
        if type(t) ~= "number" then G.raise("%s: thresholds[%d] must be a number", what, i) end
        thresholds[#thresholds + 1] = t
      end
    else
      if a.num_thresholds < 2 then G.raise("%s: num_thresholds must be > 1, got %d", what, a.num_thresholds) end
      for i = 1, a.num_thresholds - 2 do thresholds[#thresholds + 1] = i * 1.0 / (a.num_thresholds - 1) end
    end
    thresholds[#thresholds + 1] = 1.0 + kepsilon
    local T = #thresholds
    return tf.name_scope(a.name or "auc", function()
      local p = cast(a.predictions, F)
      local checks = { tf.debugging.assert_greater_equal(p, 0, { message = "predictions must be in [0, 1]" }),
                       tf.debugging.assert_less_equal(p, 1, { message = "predictions must be in [0, 1]" }) }
      local predictions, labels, weights = tf.control_dependencies(checks, function()
        return align(tf.identity(p), cast(a.labels, "bool"), a.weights)
      end)
      -- {T, N} tables by broadcasting: thresholds down, examples across
      local pred_row = tf.reshape(predictions, { 1, -1 })
      local pred_is_pos = tf.greater(pred_row, tf.constant(thresholds, { dtype = F, shape = { T, 1 } }))
      local pred_is_neg = tf.logical_not(pred_is_pos)
      local label_is_pos = tf.logical_and(tf.reshape(labels, { 1, -1 }), tf.ones_like(pred_is_pos))
      local label_is_neg = tf.logical_not(label_is_pos)
      local w = weights and tf.reshape(broadcast_weights(weights, predictions), { 1, -1 }) or nil
      local vals, ups = {}, {}
      local function counter(key, vname, l, pr)
        local v = metric_variable({ T }, vname)
        local hit = tf.cast(tf.logical_and(l, pr), F)
        if w then hit = hit * w end
        vals[key], ups[key] = v:read_value(), v:assign_add(tf.reduce_sum(hit, 2))
      end
      counter("tp", "true_positives", label_is_pos, pred_is_pos)
      counter("fn", "false_negatives", label_is_pos, pred_is_neg)
      counter("tn", "true_negatives", label_is_neg, pred_is_neg)
      counter("fp", "false_positives", label_is_neg, pred_is_pos)
      local epsilon = 1.0e-6
      local function compute(c, name)
        local rec = (c.tp + epsilon) / (c.tp + c.fn + epsilon)
        local x, y
        if a.curve == "ROC" then
          x, y = c.fp / (c.fp + c.tn + epsilon), rec
        else
          x, y = rec, (c.tp + epsilon) / (c.tp + c.fp + epsilon)
        end
        local x0, x1 = tf.slice(x, { 1 }, { T - 1 }), tf.slice(x, { 2 }, { T - 1 })
        local y0, y1 = tf.slice(y, { 1 }, { T - 1 }), tf.slice(y, { 2 }, { T - 1 })
        local height
        if a.summation_method == "minoring" then height = tf.minimum(y0, y1)
        elseif a.summation_method == "majoring" then height = tf.maximum(y0, y1)
        else height = (y0 + y1) / 2 end
        return tf.reduce_sum((x0 - x1) * height, nil, false, name)
      end
      return finish(a, what, compute(vals, "value"), compute(ups, "update_op"))
    end)
  end)
end
