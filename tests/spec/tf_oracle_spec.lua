-- TensorFlow 1.x as the oracle: the graphs of scripts/oracle/tf_fixtures.py
-- (cond / while gradients, run-time shapes, TF's argument order) rebuilt in
-- moonflow, fed TF's inputs, and compared with TF's outputs and gradients
-- (tests/spec/fixtures/tf_oracle.lua, written by TensorFlow itself).
local tf = require("moonflow")
local N = require("tests.spec.support.numeric")

local fixtures = dofile("tests/spec/fixtures/tf_oracle.lua")

-- The moonflow graph of each case: placeholders in, named outputs out.
local builders = {}

local function cond_case(p)
  local x = p.x
  local y = tf.cond(tf.greater(tf.reduce_sum(x), 0), function() return tf.sin(x) * 2 end,
                    function() return x * x * x end)
  return { y = y, dx = tf.gradients(tf.reduce_sum(y * y), x)[1] }
end
builders.cond_0, builders.cond_1 = cond_case, cond_case

local function while_case(p)
  local x, w, n = p.x, p.w, p.n
  local r = tf.while_loop(function(i) return tf.less(i, n) end,
                          function(i, h) return i + 1, tf.tanh(h * w + x) end, { 0, x })
  local loss = tf.reduce_sum(r[2] * r[2])
  local g = tf.gradients(loss, { x, w })
  return { h = r[2], dx = g[1], dw = g[2] }
end
builders.while_0, builders.while_1, builders.while_4 = while_case, while_case, while_case

function builders.while_maximum_iterations(p)
  local x = p.x
  local r = tf.while_loop(function(_, y) return tf.less(tf.reduce_sum(y), 100) end,
                          function(i, y) return i + 1, y * 1.5 + 1 end, { 0, x }, { maximum_iterations = 3 })
  return { y = r[2], dx = tf.gradients(tf.reduce_sum(r[2]), x)[1] }
end

function builders.nested_loops_and_cond(p)
  local x = p.x
  local r = tf.while_loop(function(i) return tf.less(i, 3) end, function(i, h)
    local inner = tf.while_loop(function(j) return tf.less(j, 2) end,
                                function(j, u) return j + 1, tf.sin(u) + x end, { 0, h })
    local u = inner[2]
    return i + 1, tf.cond(tf.greater(tf.reduce_sum(u), 0), function() return u * 0.5 end, function() return u - 1 end)
  end, { 0, x })
  return { h = r[2], dx = tf.gradients(tf.reduce_sum(r[2] * r[2]), x)[1] }
end

function builders.map_scan_fold(p)
  local e = p.e
  local m = tf.map_fn(function(r) return tf.reduce_sum(r * r) * r end, e)
  local s = tf.scan(function(a, r) return a * tf.cos(r) + r end, e)
  local sr = tf.scan(function(a, r) return a * 0.5 + r end, e, nil, { reverse = true })
  local fl = tf.foldl(function(a, r) return a * r + 1 end, e)
  local fr = tf.foldr(function(a, r) return a * r + 1 end, e)
  local total = tf.reduce_sum(m) + tf.reduce_sum(s * s) + tf.reduce_sum(sr) + tf.reduce_sum(fl) + tf.reduce_sum(fr)
  return { map = m, scan = s, scan_reverse = sr, foldl = fl, foldr = fr, de = tf.gradients(total, e)[1] }
end

local function case_case(p)
  local x = p.x
  local s = tf.reduce_sum(x)
  local y = tf.case({ { tf.less(s, -1), function() return x * -1 end }, { tf.less(s, 1), function() return x * 2 end } },
                    function() return tf.exp(x) end)
  return { y = y, dx = tf.gradients(tf.reduce_sum(y), x)[1] }
end
builders.case_0, builders.case_1, builders.case_2 = case_case, case_case, case_case

function builders.run_time_shapes(p)
  local x, y = p.x, p.y
  local r = tf.reshape(x, tf.shape(y))
  local z = tf.zeros(tf.shape(x), "float64") + 2
  local t = tf.tile(y, tf.stack({ tf.div(tf.shape(x)[1], 3), 1 }))
  local sl = tf.slice(x, { 2, 1 }, tf.stack({ 1, tf.shape(x)[2] }))
  local oh = tf.one_hot({ 1, 3 }, tf.shape(y)[1], { dtype = "float64" })
  local loss = tf.reduce_sum(r * y) + tf.reduce_sum(t * t) + tf.reduce_sum(sl)
  local g = tf.gradients(loss, { x, y })
  return { reshape = r, zeros = z, tile = t, slice = sl, one_hot = oh, dx = g[1], dy = g[2] }
end

-- TF's positional order with 1-based axes (TF's axis 0 is moonflow's 1).
function builders.argument_order(p)
  local x = p.x
  return {
    softmax_axis0 = tf.nn.softmax(x, 1),
    log_softmax_axis0 = tf.nn.log_softmax(x, { axis = 1 }),
    argmax_axis1 = tf.argmax(x, 2),
    reduce_sum_1_keep = tf.reduce_sum(x, 2, true),
    reduce_mean_ri = tf.reduce_mean(x, { reduction_indices = { 1 } }),
    concat_axis1 = tf.concat({ x, x * 2 }, 2),
    x_1 = x[2],
    x_m1 = x[-1],
    strided = tf.strided_slice(x, { 1, 2 }, { 4, 5 }, { 2, 2 }),
  }
end

-- Convolutions and pooling (NHWC), as scripts/oracle/tf_fixtures.py's conv_case.
function builders.conv_pool(p)
  local x, f, fd, x1, f1 = p.x, p.f, p.fd, p.x1, p.f1
  local y = tf.nn.conv2d(x, f, { 1, 2, 1, 1 }, "SAME")
  local yd = tf.nn.conv2d(x, f, { 1, 1, 1, 1 }, "VALID", { dilations = { 1, 2, 2, 1 } })
  local mp = tf.nn.max_pool(y, { 1, 2, 2, 1 }, { 1, 2, 2, 1 }, "SAME")
  local ap = tf.nn.avg_pool(y, { 1, 3, 3, 1 }, { 1, 2, 2, 1 }, "SAME")
  local tr = tf.nn.conv2d_transpose(y, f, tf.shape(x), { 1, 2, 1, 1 }, "SAME")
  local dw = tf.nn.depthwise_conv2d(x, fd, { 1, 2, 2, 1 }, "SAME")
  local c1 = tf.nn.conv1d(x1, f1, 2, "SAME")
  local loss = tf.reduce_sum(mp * mp) + tf.reduce_sum(ap) + tf.reduce_sum(yd * yd) + tf.reduce_sum(tr * x)
               + tf.reduce_sum(dw * dw) + tf.reduce_sum(c1 * c1)
  local g = tf.gradients(loss, { x, f, fd, x1, f1 })
  return { conv = y, dilated = yd, max_pool = mp, avg_pool = ap, transpose = tr, depthwise = dw, conv1d = c1,
           dx = g[1], df = g[2], dfd = g[3], dx1 = g[4], df1 = g[5] }
end

-- Selection and rearrangement (TF's indices 0-based; the fixture adds 1).
function builders.index_ops(p)
  local x, m = p.x, p.m
  local v, i = tf.nn.top_k(x, 3)
  local outs = {
    top_k_values = v,
    top_k_indices = i,
    in_top_k = tf.cast(tf.nn.in_top_k(tf.cast(x, "float32"), { 1, 5, 3, 2 }, 2), "float64"),
    pad_constant = tf.pad(x, { { 1, 0 }, { 2, 1 } }, { constant_values = 1.5 }),
    pad_reflect = tf.pad(x, { { 2, 1 }, { 4, 3 } }, "REFLECT"),
    pad_symmetric = tf.pad(x, { { 3, 4 }, { 1, 5 } }, "SYMMETRIC"),
    reverse = tf.reverse(x, { 2 }),
    reverse_sequence = tf.reverse_sequence(x, { 5, 0, 3, 2 }, { seq_axis = 2, batch_axis = 1 }),
    gather_nd = tf.gather_nd(x, { { 4, 5 }, { 1, 2 }, { 4, 5 } }),
    scatter_nd = tf.scatter_nd({ { 3 }, { 1 }, { 3 } }, tf.slice(x, { 1, 1 }, { 3, -1 }), { 4, 5 }),
    boolean_mask = tf.boolean_mask(x, m),
    where = tf.where(m),
    cumsum = tf.cumsum(x, 2, true, true),
    cumprod = tf.cumprod(x, 1),
  }
  local terms = {}
  for _, k in ipairs({ "top_k_values", "pad_constant", "pad_reflect", "pad_symmetric", "reverse", "reverse_sequence",
                       "gather_nd", "scatter_nd", "boolean_mask", "cumsum", "cumprod" }) do
    terms[#terms + 1] = tf.reduce_sum(tf.sin(outs[k]))
  end
  outs.dx = tf.gradients(tf.add_n(terms), x)[1]
  return outs
end

-- Sampled losses with fixed sampled_values (TF's classes 0-based; 1 added here).
function builders.sampled_losses(p)
  local w, b, x = p.w, p.b, p.x
  local labels = p.labels + 1
  local sv = { p.sampled + 1, p.te, p.se }
  local outs = {}
  for _, hits in ipairs({ false, true }) do
    local tag = hits and "_hits" or ""
    local o = { num_true = 2, sampled_values = sv, remove_accidental_hits = hits }
    outs["nce" .. tag] = tf.nn.nce_loss(w, b, labels, x, 6, 10, o)
    outs["ssm" .. tag] = tf.nn.sampled_softmax_loss(w, b, labels, x, 6, 10, o)
  end
  local terms = {}
  for _, k in ipairs({ "nce", "ssm", "nce_hits", "ssm_hits" }) do terms[#terms + 1] = tf.reduce_sum(tf.sin(outs[k])) end
  local g = tf.gradients(tf.add_n(terms), { w, b, x })
  outs.dw, outs.db, outs.dx = g[1], g[2], g[3]
  return outs
end

-- The candidate samplers' expected counts without unique (TF's class k is k + 1 here).
function builders.sampler_counts(p)
  local outs = {}
  for _, kind in ipairs({ "log_uniform", "uniform" }) do
    for _, range in ipairs({ 10, 1000 }) do
      local _, te = tf.nn[kind .. "_candidate_sampler"](p.tc + 1, 2, 7, false, range, 1)
      outs[kind .. "_" .. range] = tf.cast(te, "float64")
    end
  end
  return outs
end

-- compute_accidental_hits (1-based rows and positions here).
function builders.accidental_hits(p)
  local indices, ids, weights = tf.nn.compute_accidental_hits(p.tc + 1, p.sampled + 1, 2)
  return { indices = indices, ids = ids, weights = tf.cast(weights, "float64") }
end

-- Nested tables from a fixture's flat-by-rows value.
local function array(spec)
  return tf.array(spec.value, spec.dtype)
end

describe("TensorFlow 1.x oracle (tests/spec/fixtures/tf_oracle.lua)", function()
  it("has a moonflow builder for every fixture", function()
    local missing = {}
    for name in pairs(fixtures) do if not builders[name] then missing[#missing + 1] = name end end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  local names = {}
  for name in pairs(fixtures) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    it(name .. ": outputs and gradients match TensorFlow's", function()
      local fx = fixtures[name]
      local g = tf.Graph()
      g:as_default(function()
        local phs, feeds = {}, {}
        for k, spec in pairs(fx.inputs) do
          phs[k] = tf.placeholder(spec.dtype, spec.shape, k)
          feeds[phs[k]] = array(spec)
        end
        local outs = builders[name](phs)
        local keys = {}
        for k in pairs(fx.outputs) do
          assert(outs[k], name .. ": the builder has no output " .. k)
          keys[#keys + 1] = k
        end
        table.sort(keys)
        local fetch = {}
        for i, k in ipairs(keys) do fetch[i] = outs[k] end
        local got = tf.Session{ graph = g }:run(fetch, feeds)
        for i, k in ipairs(keys) do
          local want = fx.outputs[k]
          assert.are.same(want.shape, got[i]:shape(), name .. "." .. k .. " shape")
          local v = got[i]:totable()
          if type(want.value) ~= "table" then v = got[i]:item() end
          -- argmax is 0-based in TF, 1-based here
          if k == "argmax_axis1" then for j = 1, #v do v[j] = v[j] - 1 end end
          N.assert_close(want.value, v, 1e-10, name .. "." .. k)
        end
      end)
    end)
  end
end)
