-- Sampled losses: the candidate samplers (tf.nn.log_uniform_candidate_sampler,
-- tf.nn.uniform_candidate_sampler; ops in csrc/ops/random.c) and
-- tf.nn.nce_loss / tf.nn.sampled_softmax_loss, composed as TF 1.x's
-- _compute_sampled_logits composes them: one embedding lookup of the true
-- and sampled classes' rows, logits minus log(expected count), accidental
-- hits pushed to -FLT_MAX, then a sigmoid or softmax cross-entropy.
-- Classes count from 1 (TF's class k is class k + 1 here): the log-uniform
-- distribution is P(c) = log((c + 1) / c) / log(range_max + 1), c = 1..range_max.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

local FLT_MAX = 3.4028234663852886e38

return function(tf)
  local nn = tf.nn

  local function positive(v, what, name)
    if math.type(v) ~= "integer" or v < 1 then G.raise("%s: %s must be an integer >= 1, got %s", what, name, tostring(v)) end
    if v > 0x7fffffff then G.raise("%s: %s must be at most 2^31 - 1, got %d", what, name, v) end
  end

  local function class_tensor(v, what, name)
    local t = C.to_tensor(v, "int64")
    if t.dtype ~= "int32" and t.dtype ~= "int64" then
      G.raise("%s: %s must be an int32 or int64 tensor of 1-based class ids, got %s", what, name, t.dtype)
    end
    return t
  end

  local function rank_check(t, rank, what, name)
    if t.shape and #t.shape ~= rank then G.raise("%s: %s must have rank %d, got %d", what, name, rank, #t.shape) end
  end

  -- true_classes [batch, num_true] -> sampled_candidates [num_sampled]
  -- (int64), true_expected_count [batch, num_true], sampled_expected_count
  -- [num_sampled] (float32): TF's three results, as three values.
  local function sampler(op_type, path, doc)
    return A.def(path, "true_classes:tensor, num_true:int, num_sampled:int, unique:bool, range_max:int, "
                 .. "seed:int=nil, name:string=nil", doc, function(a)
      local tc = class_tensor(a.true_classes, path, "true_classes")
      positive(a.num_true, path, "num_true")
      positive(a.num_sampled, path, "num_sampled")
      positive(a.range_max, path, "range_max")
      if a.unique and a.num_sampled > a.range_max then
        G.raise("%s: cannot draw num_sampled = %d unique classes out of range_max = %d", path, a.num_sampled, a.range_max)
      end
      local sh = tc.shape
      if sh and (#sh ~= 2 or (sh[2] >= 0 and sh[2] ~= a.num_true)) then
        G.raise("%s: true_classes must be [batch, num_true = %d], got shape {%s}", path, a.num_true, table.concat(sh, ", "))
      end
      local s1, s2 = tf._seeds(a.seed)
      local op = G.make_op(op_type, { tc }, { "num_true", "int", a.num_true, "num_sampled", "int", a.num_sampled,
        "unique", "bool", a.unique, "range_max", "int", a.range_max, "seed", "int", s1, "seed2", "int", s2 },
        { name = a.name or op_type })
      return op.outputs[1], op.outputs[2], op.outputs[3]
    end)
  end

  nn.log_uniform_candidate_sampler = sampler("LogUniformCandidateSampler", "tf.nn.log_uniform_candidate_sampler",
    "sampled_candidates, true_expected_count, sampled_expected_count: num_sampled 1-based classes drawn "
    .. "from P(c) = log((c + 1) / c) / log(range_max + 1) (distinct with unique), and the expected counts.")
  nn.uniform_candidate_sampler = sampler("UniformCandidateSampler", "tf.nn.uniform_candidate_sampler",
    "sampled_candidates, true_expected_count, sampled_expected_count: num_sampled 1-based classes drawn "
    .. "uniformly from 1..range_max (distinct with unique), and the expected counts.")
  tf.random = tf.random or {}
  tf.random.log_uniform_candidate_sampler = nn.log_uniform_candidate_sampler
  tf.random.uniform_candidate_sampler = nn.uniform_candidate_sampler

  -- TF's compute_accidental_hits: for each row, for each of its true
  -- classes in order, the last position in sampled_candidates holding that
  -- class (TF maps each class to its last position), both 1-based here
  -- (TF's 0-based), with a weight of -FLT_MAX. hits_mask gives those pairs
  -- as a [batch, num_true, num_sampled] mask, whose row-major order is TF's.
  local function hits_mask(tc, s)
    s = tf.cast(s, "int64")
    local n = tf.size(s)
    local same = tf.equal(tf.expand_dims(s, 2), tf.expand_dims(s, 1)) -- [S, S]
    local after = tf.logical_not(tf.cast(tf.matrix_band_part(tf.ones(tf.stack({ n, n }), "int32"), -1, 0), "bool"))
    local last = tf.logical_not(tf.reduce_any(tf.logical_and(same, after), 2)) -- no later copy
    local eq = tf.equal(tf.expand_dims(tf.cast(tc, "int64"), 3), tf.reshape(s, { 1, 1, -1 }))
    return tf.logical_and(eq, tf.reshape(last, { 1, 1, -1 }))
  end
  nn.compute_accidental_hits = A.def("tf.nn.compute_accidental_hits",
    "true_classes:tensor, sampled_candidates:tensor, num_true:int, seed:int=nil, name:string=nil",
    "indices (int32 rows), ids (int64 positions in sampled_candidates), weights (-FLT_MAX): each sampled class "
    .. "equal to a true class of its row, 1-based, in row-major order.", function(a)
    local what = "tf.nn.compute_accidental_hits"
    local tc = class_tensor(a.true_classes, what, "true_classes")
    local s = class_tensor(a.sampled_candidates, what, "sampled_candidates")
    positive(a.num_true, what, "num_true")
    rank_check(tc, 2, what, "true_classes")
    rank_check(s, 1, what, "sampled_candidates")
    if tc.shape and tc.shape[2] >= 0 and tc.shape[2] ~= a.num_true then
      G.raise("%s: true_classes must be [batch, num_true = %d], got %d columns", what, a.num_true, tc.shape[2])
    end
    return tf.name_scope(a.name or "ComputeAccidentalHits", function()
      local where = tf.where(hits_mask(tc, s)) -- [hits, 3] int64, 1-based
      local indices = tf.cast(tf.reshape(tf.slice(where, { 1, 1 }, { -1, 1 }), { -1 }), "int32")
      local ids = tf.reshape(tf.slice(where, { 1, 3 }, { -1, 1 }), { -1 })
      return indices, ids, tf.fill(tf.shape(ids), -FLT_MAX)
    end)
  end)

  -- sampled_values: TF's triple, as a list {sampled, true_expected,
  -- sampled_expected} or a table with those field names.
  local function triple(v, what)
    if type(v) ~= "table" or G.is_tensor(v) then
      G.raise("%s: sampled_values must be a list {sampled_candidates, true_expected_count, sampled_expected_count}", what)
    end
    local s = v.sampled_candidates or v[1]
    local te = v.true_expected_count or v[2]
    local se = v.sampled_expected_count or v[3]
    if s == nil or te == nil or se == nil then
      G.raise("%s: sampled_values must hold sampled_candidates, true_expected_count and sampled_expected_count", what)
    end
    return class_tensor(s, what, "sampled_values' sampled_candidates"), C.to_tensor(te, "float32"),
      C.to_tensor(se, "float32")
  end

  -- TF's _compute_sampled_logits: logits [batch, num_true + num_sampled] and
  -- their labels (1 / num_true for the true columns, 0 for the sampled).
  local function sampled_logits(a, what, remove_hits, seed)
    local weights, biases = a.weights, a.biases
    if type(weights) == "table" and not G.is_tensor(weights) and getmetatable(weights) == nil then
      if #weights ~= 1 then G.raise("%s: weights must be one tensor (partitioned weights are not supported)", what) end
      weights = weights[1]
    end
    if not G.is_tensor(weights) and not (type(weights) == "table" and weights._tensor) then weights = C.to_tensor(weights) end
    if not G.is_tensor(biases) and not (type(biases) == "table" and biases._tensor) then biases = C.to_tensor(biases) end
    local inputs = C.to_tensor(a.inputs)
    if inputs.dtype ~= "float32" and inputs.dtype ~= "float64" then
      G.raise("%s: inputs must be a float tensor, got %s", what, inputs.dtype)
    end
    local wt, bt = weights._tensor or weights, biases._tensor or biases
    rank_check(wt, 2, what, "weights")
    rank_check(bt, 1, what, "biases")
    rank_check(inputs, 2, what, "inputs")
    positive(a.num_sampled, what, "num_sampled")
    positive(a.num_classes, what, "num_classes")
    positive(a.num_true, what, "num_true")
    if a.partition_strategy ~= "mod" and a.partition_strategy ~= "div" then
      G.raise("%s: partition_strategy must be 'mod' or 'div', got '%s'", what, a.partition_strategy)
    end
    local num_true = a.num_true
    local labels = class_tensor(a.labels, what, "labels")
    rank_check(labels, 2, what, "labels")
    if labels.shape and labels.shape[2] >= 0 and labels.shape[2] ~= num_true then
      G.raise("%s: labels must be [batch, num_true = %d], got %d columns", what, num_true, labels.shape[2])
    end
    local s, te, se
    if a.sampled_values == nil then
      s, te, se = nn.log_uniform_candidate_sampler(labels, num_true, a.num_sampled, true, a.num_classes, seed)
    else
      s, te, se = triple(a.sampled_values, what)
    end
    s, te, se = tf.stop_gradient(s), tf.stop_gradient(te), tf.stop_gradient(se)
    labels = tf.cast(labels, "int64")
    s = tf.cast(s, "int64")
    local dt = inputs.dtype
    local labels_flat = tf.reshape(labels, { -1 })
    local n_true = tf.size(labels_flat)
    local all_ids = tf.concat({ labels_flat, s }, 1)
    local all_w = nn.embedding_lookup(weights, all_ids)
    if all_w.dtype ~= dt then all_w = tf.cast(all_w, dt) end
    local true_w = tf.slice(all_w, { 1, 1 }, tf.stack({ n_true, -1 }))
    local sampled_w = tf.slice(all_w, tf.stack({ n_true + 1, 1 }), { -1, -1 })
    local logits_s = tf.matmul(inputs, sampled_w, { transpose_b = true })
    local all_b = nn.embedding_lookup(biases, all_ids)
    if all_b.dtype ~= dt then all_b = tf.cast(all_b, dt) end
    local true_b = tf.slice(all_b, { 1 }, tf.reshape(n_true, { 1 }))
    local sampled_b = tf.slice(all_b, tf.reshape(n_true + 1, { 1 }), { -1 })
    local dim = wt.shape and wt.shape[2] or -1
    local dim_t = dim >= 0 and dim or tf.slice(tf.shape(true_w), { 2 }, { 1 })
    local true_w3 = dim >= 0 and tf.reshape(true_w, { -1, num_true, dim })
      or tf.reshape(true_w, tf.concat({ tf.constant({ -1, num_true }), dim_t }, 1))
    local logits_t = tf.reduce_sum(tf.expand_dims(inputs, 2) * true_w3, 3) -- [batch, num_true]
    logits_t = logits_t + tf.reshape(true_b, { -1, num_true })
    logits_s = logits_s + sampled_b
    if remove_hits then
      -- a sampled class equal to one of the row's labels (its last copy
      -- in s): -FLT_MAX, as TF's compute_accidental_hits + sparse_to_dense give
      local hit = tf.reduce_any(hits_mask(labels, s), 2)
      logits_s = logits_s + tf.cast(hit, dt) * tf.constant(-FLT_MAX, { dtype = dt })
    end
    if te.dtype ~= dt then te, se = tf.cast(te, dt), tf.cast(se, dt) end
    logits_t = logits_t - tf.log(te)
    logits_s = logits_s - tf.log(se)
    local logits = tf.concat({ logits_t, logits_s }, 2)
    local out_labels = tf.concat({ tf.ones_like(logits_t) / num_true, tf.zeros_like(logits_s) }, 2)
    return logits, out_labels
  end

  local SIG = "weights:any, biases:any, labels:tensor, inputs:tensor, num_sampled:int, num_classes:int, "
    .. "num_true:int=1, sampled_values:any=nil, remove_accidental_hits:bool=%s, partition_strategy:string=\"mod\", "
    .. "name:string=%s"

  nn.nce_loss = A.def("tf.nn.nce_loss", string.format(SIG, "false", "\"nce_loss\""),
    "Noise-contrastive estimation loss [batch]: sigmoid cross-entropy of the true and sampled classes' logits "
    .. "minus log(expected count); classes from the log-uniform sampler (unique) unless sampled_values.",
    function(a)
      return tf.name_scope(a.name, function()
        local logits, labels = sampled_logits(a, "tf.nn.nce_loss", a.remove_accidental_hits, nil)
        local losses = nn.sigmoid_cross_entropy_with_logits { labels = labels, logits = logits, name = "sampled_losses" }
        return tf.reduce_sum(losses, 2)
      end)
    end)

  nn.sampled_softmax_loss = A.def("tf.nn.sampled_softmax_loss",
    string.format(SIG, "true", "\"sampled_softmax_loss\"") .. ", seed:int=nil",
    "Sampled softmax loss [batch]: softmax cross-entropy over the true and sampled classes' logits minus "
    .. "log(expected count); classes from the log-uniform sampler (unique) unless sampled_values.",
    function(a)
      return tf.name_scope(a.name, function()
        local logits, labels = sampled_logits(a, "tf.nn.sampled_softmax_loss", a.remove_accidental_hits, a.seed)
        labels = tf.stop_gradient(labels, { name = "labels_stop_gradient" })
        return nn.softmax_cross_entropy_with_logits { labels = labels, logits = logits }
      end)
    end)
end
