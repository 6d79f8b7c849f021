-- Sampled losses: the candidate samplers against their distributions
-- (chi-square over the drawn frequencies) and TF's expected-count
-- formulas, and nce_loss / sampled_softmax_loss against a float64 Lua
-- reference of TF's _compute_sampled_logits and float64 central
-- differences, with fixed sampled_values.
local tf = require("moonflow")
local N = require("tests.spec.support.numeric")

math.randomseed(20261202)

-- P(c) of the 1-based log-uniform distribution over 1..range.
local function log_uniform_p(c, range) return math.log((c + 1) / c) / math.log(range + 1) end

-- Pearson's chi-square of observed counts against expected ones, pooling
-- the bins expected below 5 into one; returns the statistic and its
-- degrees of freedom.
local function chi_square(observed, expected)
  local chi, bins, po, pe = 0, 0, 0, 0
  for c = 1, #expected do
    if expected[c] >= 5 then
      chi, bins = chi + (observed[c] - expected[c]) ^ 2 / expected[c], bins + 1
    else
      po, pe = po + observed[c], pe + expected[c]
    end
  end
  if pe > 0 then chi, bins = chi + (po - pe) ^ 2 / pe, bins + 1 end
  return chi, bins - 1
end

-- A bound the statistic exceeds with probability far below 1e-4.
local function chi_bound(df) return df + 6 * math.sqrt(2 * df) end

local function run(fetches, feeds)
  local sess <close> = tf.Session()
  return sess:run(fetches, feeds)
end

local function totable(a) return a:totable() end

describe("tf.nn.log_uniform_candidate_sampler / uniform_candidate_sampler", function()
  it("returns int64 classes [num_sampled] and float32 expected counts of TF's shapes", function()
    local s, te, se = tf.nn.log_uniform_candidate_sampler({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, 2, 7, false, 10)
    assert.are.same({ "int64", "float32", "float32" }, { s.dtype, te.dtype, se.dtype })
    assert.are.same({ { 7 }, { 3, 2 }, { 7 } }, { s.shape, te.shape, se.shape })
    local r = run({ s, te, se })
    for _, c in ipairs(totable(r[1])) do assert.is_true(c >= 1 and c <= 10) end
    assert.is_table(tf.random.log_uniform_candidate_sampler and tf.random.uniform_candidate_sampler and {})
  end)

  for _, kind in ipairs({ "log_uniform", "uniform" }) do
    local fn = tf.nn[kind .. "_candidate_sampler"]
    local function p(c, range) return kind == "uniform" and 1 / range or log_uniform_p(c, range) end

    it(kind .. ": draws with replacement follow P(c) (chi-square) and expect p num_sampled", function()
      local range, n = 40, 40000
      local s, te, se = fn({ { 1 }, { 17 }, { 40 } }, 1, n, false, range, 11)
      local r = run({ s, te, se })
      local counts, expected = {}, {}
      for c = 1, range do counts[c], expected[c] = 0, n * p(c, range) end
      local sv, sev = totable(r[1]), totable(r[3])
      for i, c in ipairs(sv) do
        assert.is_true(math.type(c) == "integer" and c >= 1 and c <= range, tostring(c))
        counts[c] = counts[c] + 1
        assert.is_true(math.abs(sev[i] - n * p(c, range)) <= 1e-6 * n * p(c, range))
      end
      local chi, df = chi_square(counts, expected)
      assert.is_true(chi < chi_bound(df), string.format("chi-square %.1f with %d degrees of freedom", chi, df))
      N.assert_close({ n * p(1, range), n * p(17, range), n * p(40, range) }, N.flatten(totable(r[2])), 1e-6, "te")
    end)

    it(kind .. ": unique draws are distinct; the first follows P, the second P without the first", function()
      -- over many runs (each run draws afresh): chi-square of the first
      -- and of the second class against their exact distributions
      local range, runs = 12, 3000
      local s = fn({ { 2 } }, 1, 6, true, range, 5)
      local sess <close> = tf.Session()
      local first, second, e1, e2 = {}, {}, {}, {}
      for c = 1, range do first[c], second[c], e1[c], e2[c] = 0, 0, runs * p(c, range), 0 end
      for c = 1, range do
        for i = 1, range do
          if i ~= c then e2[c] = e2[c] + runs * p(i, range) * p(c, range) / (1 - p(i, range)) end
        end
      end
      for _ = 1, runs do
        local v = totable(sess:run(s))
        local seen = {}
        for _, c in ipairs(v) do
          assert.is_nil(seen[c], "a repeated class")
          seen[c] = true
        end
        first[v[1]], second[v[2]] = first[v[1]] + 1, second[v[2]] + 1
      end
      for _, t in ipairs({ { first, e1, "first" }, { second, e2, "second" } }) do
        local chi, df = chi_square(t[1], t[2])
        assert.is_true(chi < chi_bound(df), string.format("%s: chi-square %.1f with %d degrees of freedom", t[3], chi, df))
      end
    end)

    it(kind .. ": unique expected counts are -expm1(num_tries log1p(-p)) with one num_tries", function()
      local range, n = 30, 20 -- many rejections
      local tc = { { 1, 30 }, { 7, 7 } }
      local s, te, se = fn(tc, 2, n, true, range, 3)
      local sess <close> = tf.Session()
      for _ = 1, 5 do
        local r = sess:run({ s, te, se })
        local sv, sev, tev = totable(r[1]), totable(r[3]), N.flatten(totable(r[2]))
        -- num_tries from the first class's count, then every count from it
        local tries = math.log(1 - sev[1]) / math.log(1 - p(sv[1], range))
        local t = math.floor(tries + 0.5)
        assert.is_true(t >= n and math.abs(tries - t) < 1e-2 * t, string.format("num_tries %.4f", tries))
        local function ec(c) return t == n and p(c, range) * n or 1 - (1 - p(c, range)) ^ t end
        local want = {}
        for i, c in ipairs(sv) do want[i] = ec(c) end
        N.assert_close(want, sev, 1e-5, "sampled_expected_count")
        N.assert_close({ ec(1), ec(30), ec(7), ec(7) }, tev, 1e-5, "true_expected_count")
      end
    end)
  end

  it("unique without a rejection expects p num_sampled (TF's shortcut)", function()
    local s, te, se = tf.nn.uniform_candidate_sampler({ { 3 } }, 1, 4, true, 1000000, 9)
    local r = run({ s, te, se })
    N.assert_close({ 4e-6 }, N.flatten(totable(r[2])), 1e-6, "te")
    N.assert_close({ 4e-6, 4e-6, 4e-6, 4e-6 }, totable(r[3]), 1e-6, "se")
  end)

  it("draws the same classes for the same seed in fresh sessions, new ones on each run", function()
    local function draws()
      tf.reset_default_graph()
      local s = tf.nn.log_uniform_candidate_sampler({ { 1 } }, 1, 50, true, 1000, 42)
      local sess <close> = tf.Session()
      return totable(sess:run(s)), totable(sess:run(s))
    end
    local a1, a2 = draws()
    local b1, b2 = draws()
    assert.are.same(a1, b1)
    assert.are.same(a2, b2)
    assert.are_not.same(a1, a2)
  end)

  it("refuses classes outside 1..range_max, too many unique classes, and a wrong num_true", function()
    local x = tf.placeholder("int64", { -1, 1 })
    local s = tf.nn.log_uniform_candidate_sampler(x, 1, 3, false, 10)
    assert.has_error(function() run(s, { [x] = tf.array({ { 0 } }, "int64") }) end)
    local ok, err = pcall(run, s, { [x] = tf.array({ { 11 } }, "int64") })
    assert.is_false(ok)
    assert.matches("outside 1..range_max", tostring(err))
    assert.has_error(function() tf.nn.uniform_candidate_sampler({ { 1 } }, 1, 11, true, 10) end,
      "tf.nn.uniform_candidate_sampler: cannot draw num_sampled = 11 unique classes out of range_max = 10")
    assert.has_error(function() tf.nn.uniform_candidate_sampler({ { 1, 2 } }, 1, 2, true, 10) end)
    assert.has_error(function() tf.nn.uniform_candidate_sampler({ { 1.5 } }, 1, 2, true, 10) end)
    assert.has_error(function() tf.nn.uniform_candidate_sampler({ { 1 } }, 1, 0, true, 10) end)
  end)
end)

-- ---------------------------------------------------------------- the losses

-- TF's _compute_sampled_logits and the two losses in float64 Lua loops:
-- w [V][D], b [V], x [B][D], labels [B][T], s [S], te [B][T], se [S].
local FLT_MAX = 3.4028234663852886e38
local function reference(kind, w, b, x, labels, s, te, se, remove_hits)
  local out = {}
  for i = 1, #x do
    local T, logits, targets = #labels[i], {}, {}
    local function dot(c)
      local v = b[c]
      for d = 1, #x[i] do v = v + x[i][d] * w[c][d] end
      return v
    end
    for t = 1, T do logits[t], targets[t] = dot(labels[i][t]) - math.log(te[i][t]), 1 / T end
    for j = 1, #s do
      local l = dot(s[j])
      local last = true -- TF masks only the last copy of a class sampled twice
      for k = j + 1, #s do if s[k] == s[j] then last = false end end
      if remove_hits and last then
        for t = 1, T do if labels[i][t] == s[j] then l = l - FLT_MAX; break end end
      end
      logits[T + j], targets[T + j] = l - math.log(se[j]), 0
    end
    local loss = 0
    if kind == "nce" then
      for k, z in ipairs(logits) do -- max(z, 0) - z y + log(1 + exp(-|z|))
        loss = loss + math.max(z, 0) - z * targets[k] + math.log(1 + math.exp(-math.abs(z)))
      end
    else
      local m = -math.huge
      for _, z in ipairs(logits) do m = math.max(m, z) end
      local sum = 0
      for _, z in ipairs(logits) do sum = sum + math.exp(z - m) end
      for k, z in ipairs(logits) do loss = loss - targets[k] * (z - m - math.log(sum)) end
    end
    out[i] = loss
  end
  return out
end

local function rand_matrix(r, c, lo, hi)
  local m = {}
  for i = 1, r do m[i] = N.rand_list(c, lo or -1, hi or 1) end
  return m
end

-- A case: V classes, D dims, labels [B][T] and sampled classes s with
-- accidental hits (s holds some labels, one of them twice).
local function make_case(T)
  local V, D = 9, 3
  local labels = T == 1 and { { 2 }, { 5 }, { 9 } } or { { 2, 4 }, { 5, 5 }, { 9, 1 } }
  return {
    V = V, T = T, w = rand_matrix(V, D), b = N.rand_list(V, -1, 1), x = rand_matrix(3, D),
    labels = labels, s = { 5, 1, 2, 5, 7 }, te = rand_matrix(3, T, 0.05, 1.5), se = N.rand_list(5, 0.05, 1.5),
  }
end

local losses = { nce = tf.nn.nce_loss, ssm = tf.nn.sampled_softmax_loss }

-- The loss graph on float64 placeholders for w, b, x.
local function build(kind, case, hits, w, b, x)
  w = w or tf.placeholder("float64", { case.V, 3 })
  b = b or tf.placeholder("float64", { case.V })
  x = x or tf.placeholder("float64", { 3, 3 })
  local sv = { tf.constant(case.s, { dtype = "int64" }), tf.constant(case.te, { dtype = "float64" }),
               tf.constant(case.se, { dtype = "float64" }) }
  local loss = losses[kind](w, b, case.labels, x, #case.s, case.V,
                            { num_true = case.T, sampled_values = sv, remove_accidental_hits = hits })
  return w, b, x, loss
end

describe("tf.nn.nce_loss / tf.nn.sampled_softmax_loss", function()
  for _, kind in ipairs({ "nce", "ssm" }) do
    for _, T in ipairs({ 1, 2 }) do
      for _, hits in ipairs({ false, true }) do
        local what = string.format("%s, num_true %d, remove_accidental_hits %s", kind, T, tostring(hits))
        it(what .. ": matches a float64 reference of TF's formula; gradients match central differences", function()
          tf.reset_default_graph()
          local case = make_case(T)
          local w, b, x, loss = build(kind, case, hits)
          local total = tf.reduce_sum(tf.sin(loss)) -- a non-uniform weight per row
          local grads = tf.gradients(total, { w, b, x })
          local sess <close> = tf.Session()
          local function feeds(cw, cb, cx)
            return { [w] = tf.array(cw, "float64"), [b] = tf.array(cb, "float64"), [x] = tf.array(cx, "float64") }
          end
          local r = sess:run({ loss, grads[1], grads[2], grads[3] }, feeds(case.w, case.b, case.x))
          local ref = reference(kind, case.w, case.b, case.x, case.labels, case.s, case.te, case.se, hits)
          N.assert_close(ref, totable(r[1]), 1e-12, "loss")
          local function f(cw, cb, cx)
            local s = 0
            for _, v in ipairs(reference(kind, cw, cb, cx, case.labels, case.s, case.te, case.se, hits)) do
              s = s + math.sin(v)
            end
            return s
          end
          local h = 1e-6
          local function numeric(which)
            local m = case[which]
            local g = {}
            local flat = type(m[1]) == "table"
            for i = 1, #m do
              if flat then
                g[i] = {}
                for j = 1, #m[i] do
                  local keep = m[i][j]
                  m[i][j] = keep + h
                  local up = f(case.w, case.b, case.x)
                  m[i][j] = keep - h
                  local down = f(case.w, case.b, case.x)
                  m[i][j] = keep
                  g[i][j] = (up - down) / (2 * h)
                end
              else
                local keep = m[i]
                m[i] = keep + h
                local up = f(case.w, case.b, case.x)
                m[i] = keep - h
                local down = f(case.w, case.b, case.x)
                m[i] = keep
                g[i] = (up - down) / (2 * h)
              end
            end
            return g
          end
          N.assert_close(numeric("w"), totable(r[2]), 1e-6, "d weights")
          N.assert_close(numeric("b"), totable(r[3]), 1e-6, "d biases")
          N.assert_close(numeric("x"), totable(r[4]), 1e-6, "d inputs")
        end)
      end
    end
  end

  it("masks accidental hits: a sampled class equal to a label adds nothing to the loss", function()
    tf.reset_default_graph()
    local case = make_case(1)
    case.s, case.se = { 2, 5, 9, 1 }, N.rand_list(4, 0.05, 1.5) -- each row's label is sampled
    local w, b, x, with = build("ssm", case, true)
    local _, _, _, without = build("ssm", case, false, w, b, x)
    local r = run({ with, without }, { [w] = tf.array(case.w, "float64"), [b] = tf.array(case.b, "float64"),
                                       [x] = tf.array(case.x, "float64") })
    local hit, nohit = totable(r[1]), totable(r[2])
    for i = 1, 3 do assert.is_true(hit[i] < nohit[i]) end
  end)

  it("compute_accidental_hits: per row and true class, the last position of that class among the sampled", function()
    local indices, ids, weights = tf.nn.compute_accidental_hits({ { 2, 4 }, { 3, 3 }, { 6, 1 } }, { 4, 3, 9, 3, 2 }, 2)
    local r = run({ indices, ids, weights })
    assert.are.same({ "int32", "int64", "float32" }, { indices.dtype, ids.dtype, weights.dtype })
    assert.are.same({ 1, 1, 2, 2 }, totable(r[1]))
    assert.are.same({ 5, 1, 4, 4 }, totable(r[2]))
    for _, v in ipairs(totable(r[3])) do assert.are.equal(-FLT_MAX, v) end
  end)

  it("samples log-uniform unique classes by default and trains embeddings with a sparse gradient", function()
    tf.reset_default_graph()
    tf.set_random_seed(7)
    local V, D, B = 50, 8, 16
    local w = tf.Variable(tf.truncated_normal({ V, D }, { stddev = 0.3 }))
    local b = tf.Variable(tf.zeros({ V }))
    local emb = tf.Variable(tf.random_uniform({ V, D }, { minval = -1, maxval = 1 }))
    local ids = tf.placeholder("int32", { B })
    local labels = tf.placeholder("int32", { B, 1 })
    local x = tf.nn.embedding_lookup(emb, ids)
    for _, fn in ipairs({ tf.nn.nce_loss, tf.nn.sampled_softmax_loss }) do
      local loss = tf.reduce_mean(fn(w, b, labels, x, 6, V))
      assert.are.same({}, loss.shape)
      local train = tf.train.GradientDescentOptimizer(0.5):minimize(loss)
      local sess <close> = tf.Session()
      sess:run(tf.global_variables_initializer())
      local idv, lv = {}, {}
      for i = 1, B do idv[i] = (i - 1) % 10 + 1; lv[i] = { (idv[i] * 3) % V + 1 } end -- a fixed mapping
      local feeds = { [ids] = idv, [labels] = lv }
      local first = sess:run(loss, feeds):item()
      for _ = 1, 150 do sess:run(train, feeds) end
      local last = sess:run(loss, feeds):item()
      assert.is_true(last < first * 0.5, string.format("loss %.4f -> %.4f", first, last))
    end
  end)

  it("refuses bad arguments with errors naming the function and parameter", function()
    local w, b, x = tf.zeros({ 5, 2 }), tf.zeros({ 5 }), tf.zeros({ 3, 2 })
    assert.has_error(function() tf.nn.nce_loss(w, b, { { 1 }, { 2 }, { 3 } }, x, 0, 5) end,
      "tf.nn.nce_loss: num_sampled must be an integer >= 1, got 0")
    assert.has_error(function() tf.nn.nce_loss(w, b, { { 1, 2 }, { 2, 2 }, { 3, 3 } }, x, 2, 5) end,
      "tf.nn.nce_loss: labels must be [batch, num_true = 1], got 2 columns")
    assert.has_error(function() tf.nn.sampled_softmax_loss(w, b, { { 1.5 } }, x, 2, 5) end)
    assert.has_error(function() tf.nn.sampled_softmax_loss(w, b, { { 1 } }, x, 2, 5, { sampled_values = 3 }) end)
    assert.has_error(function() tf.nn.sampled_softmax_loss({ w, w }, b, { { 1 } }, x, 2, 5) end)
    assert.has_error(function() tf.nn.nce_loss(w, b, { { 1 } }, x, 2, 5, { partition_strategy = "x" }) end)
  end)
end)
