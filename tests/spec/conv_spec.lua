-- Convolutions and pooling (NHWC) against plain float64 Lua loops written
-- from TF's definitions, gradients against central differences, and the
-- layers' variables and training flag.
local tf = require("moonflow")
local N = require("tests.spec.support.numeric")

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

local function nest(flat, shape)
  if #shape == 0 then return flat[1] end
  local pos = 0
  local function build(d)
    local t = {}
    for i = 1, shape[d] do
      if d == #shape then pos = pos + 1; t[i] = flat[pos] else t[i] = build(d + 1) end
    end
    return t
  end
  return build(1)
end

local function rand(shape) return N.rand_list(numel(shape), -1.5, 1.5) end

local function array(flat, shape, dtype)
  return tf.array(nest(flat, shape), dtype or "float64"):reshape(shape)
end

local function run(t, feeds)
  local sess <close> = tf.Session()
  return sess:run(t, feeds)
end

local function values(a) return N.flatten(a:totable()) end

-- TF's output size and leading padding of one spatial dimension.
local function geometry(n, k, s, d, padding)
  local ek = (k - 1) * d + 1
  if padding == "VALID" then return (n - ek) // s + 1, 0 end
  local o = (n + s - 1) // s
  return o, math.max((o - 1) * s + ek - n, 0) // 2
end

-- x [n, h, w, c] (flat, row-major) with f [kh, kw, c, o].
local function ref_conv(x, xs, f, fs, st, pad, dil)
  local n, h, w, c = table.unpack(xs)
  local kh, kw, _, o = table.unpack(fs)
  local oh, pt = geometry(h, kh, st[1], dil[1], pad)
  local ow, pl = geometry(w, kw, st[2], dil[2], pad)
  local y = {}
  for b = 0, n - 1 do
    for i = 0, oh - 1 do
      for j = 0, ow - 1 do
        for q = 0, o - 1 do
          local s = 0
          for u = 0, kh - 1 do
            for v = 0, kw - 1 do
              local yy, xx = i * st[1] - pt + u * dil[1], j * st[2] - pl + v * dil[2]
              if yy >= 0 and yy < h and xx >= 0 and xx < w then
                for p = 0, c - 1 do
                  s = s + x[((b * h + yy) * w + xx) * c + p + 1] * f[((u * kw + v) * c + p) * o + q + 1]
                end
              end
            end
          end
          y[#y + 1] = s
        end
      end
    end
  end
  return y, { n, oh, ow, o }
end

local function ref_pool(x, xs, k, st, pad, max)
  local n, h, w, c = table.unpack(xs)
  local oh, pt = geometry(h, k[1], st[1], 1, pad)
  local ow, pl = geometry(w, k[2], st[2], 1, pad)
  local y = {}
  for b = 0, n - 1 do
    for i = 0, oh - 1 do
      for j = 0, ow - 1 do
        for p = 0, c - 1 do
          local m, s, cnt = -math.huge, 0, 0
          for u = 0, k[1] - 1 do
            for v = 0, k[2] - 1 do
              local yy, xx = i * st[1] - pt + u, j * st[2] - pl + v
              if yy >= 0 and yy < h and xx >= 0 and xx < w then
                local e = x[((b * h + yy) * w + xx) * c + p + 1]
                m, s, cnt = math.max(m, e), s + e, cnt + 1
              end
            end
          end
          y[#y + 1] = max and m or s / cnt
        end
      end
    end
  end
  return y, { n, oh, ow, c }
end

-- The gradient of sum(build(x...) * W) against float64 central differences.
local function check_gradients(shapes, build, tol)
  local xs = {}
  for i, s in ipairs(shapes) do xs[i] = rand(s) end
  local phs, feeds = {}, {}
  for i, s in ipairs(shapes) do phs[i] = tf.placeholder("float64", s) end
  local y = build(table.unpack(phs))
  local W = tf.constant(nest(rand(y.shape), y.shape), { dtype = "float64" })
  local loss = tf.reduce_sum(y * W)
  local grads = tf.gradients(loss, phs)
  local sess <close> = tf.Session()
  local function feed()
    for i, s in ipairs(shapes) do feeds[phs[i]] = array(xs[i], s) end
    return feeds
  end
  local sym = sess:run(grads, feed())
  for i = 1, #shapes do
    local num = {}
    for k = 1, #xs[i] do
      local saved, eps = xs[i][k], 1e-6
      xs[i][k] = saved + eps
      local up = sess:run(loss, feed()):item()
      xs[i][k] = saved - eps
      local down = sess:run(loss, feed()):item()
      xs[i][k] = saved
      num[k] = (up - down) / (2 * eps)
    end
    N.assert_close(num, values(sym[i]), tol or 1e-6, "gradient of input " .. i)
  end
end

describe("tf.nn.conv2d", function()
  before_each(function() tf.reset_default_graph() end)

  -- {input shape, filter shape, strides, padding, dilations}
  local shapes = {
    { { 2, 5, 7, 3 }, { 3, 3, 3, 4 }, { 1, 1 }, "SAME", { 1, 1 } },
    { { 1, 7, 6, 2 }, { 3, 2, 2, 5 }, { 2, 2 }, "VALID", { 1, 1 } },
    { { 2, 8, 9, 3 }, { 3, 3, 3, 2 }, { 2, 1 }, "SAME", { 1, 1 } },
    { { 1, 9, 9, 2 }, { 3, 3, 2, 3 }, { 1, 1 }, "SAME", { 2, 2 } },
    { { 2, 9, 8, 1 }, { 2, 3, 1, 2 }, { 1, 1 }, "VALID", { 2, 2 } },
    { { 3, 4, 5, 6 }, { 1, 1, 6, 4 }, { 1, 1 }, "VALID", { 1, 1 } },
    { { 1, 6, 6, 2 }, { 4, 4, 2, 3 }, { 2, 2 }, "SAME", { 1, 1 } },
    -- windows wider than the input (padding on both sides of one row)
    { { 2, 2, 3, 2 }, { 5, 5, 2, 3 }, { 1, 1 }, "SAME", { 1, 1 } },
    { { 2, 4, 4, 3 }, { 5, 5, 3, 2 }, { 2, 2 }, "SAME", { 1, 1 } },
    -- dilated along one axis only
    { { 1, 5, 7, 2 }, { 2, 3, 2, 2 }, { 1, 2 }, "SAME", { 1, 2 } },
    { { 1, 7, 5, 2 }, { 3, 2, 2, 2 }, { 1, 1 }, "SAME", { 2, 1 } },
  }
  for _, dtype in ipairs({ "float64", "float32" }) do
    it("matches a float64 reference in " .. dtype .. " (odd sizes, strides, paddings, dilations, 1x1)", function()
      for _, c in ipairs(shapes) do
        local xs, fs, st, pad, dil = table.unpack(c)
        local x, f = rand(xs), rand(fs)
        local want, ys = ref_conv(x, xs, f, fs, st, pad, dil)
        local y = tf.nn.conv2d(array(x, xs, dtype), array(f, fs, dtype), { 1, st[1], st[2], 1 }, pad,
                               { dilations = { 1, dil[1], dil[2], 1 } })
        assert.are.same(ys, y.shape)
        local got = run(y)
        assert.are.same(ys, got:shape())
        N.assert_close(want, values(got), dtype == "float64" and 1e-12 or 1e-4, pad .. " " .. table.concat(xs, "x"))
      end
    end)
  end

  -- Large enough (> 1 MFLOP) that the kernels split the images across
  -- threads, with an odd batch so the parts differ in size.
  it("a batch split across threads: output and both gradients match float64 loops", function()
    local xs, fs, st, pad = { 5, 13, 18, 6 }, { 3, 4, 6, 16 }, { 1, 2 }, "SAME"
    local n, h, w, c = table.unpack(xs)
    local kh, kw, _, o = table.unpack(fs)
    local x, f = rand(xs), rand(fs)
    local want, ys = ref_conv(x, xs, f, fs, st, pad, { 1, 1 })
    local W = rand(ys)
    -- d sum(y * W) / dx and / df, by the same loops as ref_conv
    local oh, pt = geometry(h, kh, st[1], 1, pad)
    local ow, pl = geometry(w, kw, st[2], 1, pad)
    local dx, df = {}, {}
    for i = 1, #x do dx[i] = 0 end
    for i = 1, #f do df[i] = 0 end
    for b = 0, n - 1 do
      for i = 0, oh - 1 do
        for j = 0, ow - 1 do
          for q = 0, o - 1 do
            local wv = W[((b * oh + i) * ow + j) * o + q + 1]
            for u = 0, kh - 1 do
              for v = 0, kw - 1 do
                local yy, xx = i * st[1] - pt + u, j * st[2] - pl + v
                if yy >= 0 and yy < h and xx >= 0 and xx < w then
                  for p = 0, c - 1 do
                    local xi, fi = ((b * h + yy) * w + xx) * c + p + 1, ((u * kw + v) * c + p) * o + q + 1
                    dx[xi] = dx[xi] + f[fi] * wv
                    df[fi] = df[fi] + x[xi] * wv
                  end
                end
              end
            end
          end
        end
      end
    end
    for _, dtype in ipairs({ "float64", "float32" }) do
      tf.reset_default_graph()
      local xt, ft = tf.constant(array(x, xs, dtype)), tf.constant(array(f, fs, dtype))
      local y = tf.nn.conv2d(xt, ft, { 1, st[1], st[2], 1 }, pad)
      local loss = tf.reduce_sum(y * tf.constant(array(W, ys, dtype)))
      local g = tf.gradients(loss, { xt, ft })
      local sess <close> = tf.Session{ config = { intra_op_threads = 2 } }
      local r = sess:run({ y, g[1], g[2] })
      local tol = dtype == "float64" and 1e-10 or 1e-3
      N.assert_close(want, values(r[1]), tol, dtype .. " output")
      N.assert_close(dx, values(r[2]), tol, dtype .. " input gradient")
      N.assert_close(df, values(r[3]), tol, dtype .. " filter gradient")
    end
  end)

  it("infers the output shape with an unknown batch", function()
    local x = tf.placeholder("float32", { -1, 7, 7, 3 })
    local y = tf.nn.conv2d(x, tf.zeros({ 3, 3, 3, 8 }), { 1, 2, 2, 1 }, "SAME")
    assert.are.same({ -1, 4, 4, 8 }, y.shape)
    assert.are.same({ -1, 3, 3, 8 }, tf.nn.conv2d(x, tf.zeros({ 3, 3, 3, 8 }), { 1, 2, 2, 1 }, "VALID").shape)
  end)

  it("gradients with respect to input and filter match central differences", function()
    check_gradients({ { 2, 5, 4, 2 }, { 3, 2, 2, 3 } },
                    function(x, f) return tf.nn.conv2d(x, f, { 1, 2, 1, 1 }, "SAME") end)
    check_gradients({ { 1, 7, 6, 2 }, { 2, 2, 2, 2 } },
                    function(x, f) return tf.nn.conv2d(x, f, { 1, 1, 1, 1 }, "VALID", { dilations = { 1, 2, 2, 1 } }) end)
    check_gradients({ { 1, 6, 5, 2 }, { 3, 3, 2, 2 } },
                    function(x, f) return tf.nn.conv2d(x, f, { 1, 2, 2, 1 }, "VALID") end)
  end)

  it("refuses bad arguments naming them", function()
    local x, f = tf.zeros({ 1, 4, 4, 2 }), tf.zeros({ 3, 3, 2, 1 })
    assert.has_error(function() tf.nn.conv2d(x, f, { 1, 1, 1, 1 }, "same") end, "tf.nn.conv2d: padding must be \"SAME\" or \"VALID\", got same")
    assert.has_error(function() tf.nn.conv2d(x, f, { 2, 1, 1, 1 }, "SAME") end)
    assert.has_error(function() tf.nn.conv2d(x, f, { 1, 1, 1, 1 }, "SAME", { data_format = "NCHW" }) end)
    assert.has_error(function() tf.nn.conv2d(x, tf.zeros({ 3, 3, 3, 1 }), { 1, 1, 1, 1 }, "SAME") end)
    assert.has_error(function() tf.nn.conv2d(x, tf.zeros({ 5, 5, 2, 1 }), { 1, 1, 1, 1 }, "VALID") end)
  end)
end)

describe("tf.nn.conv2d_transpose", function()
  before_each(function() tf.reset_default_graph() end)

  -- conv2d_transpose is the adjoint of conv2d: <conv(x), y> = <x, convT(y)>.
  it("is conv2d's adjoint", function()
    for _, c in ipairs({ { { 2, 6, 5, 2 }, { 3, 3, 2, 3 }, 2, "SAME" }, { { 1, 7, 7, 3 }, { 2, 3, 3, 2 }, 2, "VALID" } }) do
      local xs, fs, s, pad = table.unpack(c)
      local x, f = rand(xs), rand(fs)
      local _, ys = ref_conv(x, xs, f, fs, { s, s }, pad, { 1, 1 })
      local y = rand(ys)
      local cx = run(tf.nn.conv2d(array(x, xs), array(f, fs), { 1, s, s, 1 }, pad))
      local ty = run(tf.nn.conv2d_transpose(array(y, ys), array(f, fs), xs, { 1, s, s, 1 }, pad))
      assert.are.same(xs, ty:shape())
      local a, b = 0, 0
      for i, v in ipairs(values(cx)) do a = a + v * y[i] end
      for i, v in ipairs(values(ty)) do b = b + v * x[i] end
      assert.is_true(math.abs(a - b) < 1e-10 * math.max(1, math.abs(a)), a .. " vs " .. b)
    end
  end)

  it("gradients match central differences", function()
    check_gradients({ { 1, 3, 3, 2 }, { 3, 3, 2, 2 } },
                    function(y, f) return tf.nn.conv2d_transpose(y, f, { 1, 5, 6, 2 }, { 1, 2, 2, 1 }, "SAME") end)
  end)
end)

describe("tf.nn.depthwise_conv2d and tf.nn.conv1d", function()
  before_each(function() tf.reset_default_graph() end)

  it("depthwise: channel c's multiplier m at output channel c * M + m", function()
    local xs, fs = { 2, 5, 6, 3 }, { 3, 2, 3, 2 }
    local x, f = rand(xs), rand(fs)
    local got = values(run(tf.nn.depthwise_conv2d(array(x, xs), array(f, fs), { 1, 1, 1, 1 }, "SAME", { rate = { 2, 1 } })))
    -- reference: each channel alone through ref_conv
    local n, h, w, c = table.unpack(xs)
    local M = fs[4]
    for ch = 0, c - 1 do
      local xc, fc = {}, {}
      for i = 0, n * h * w - 1 do xc[#xc + 1] = x[i * c + ch + 1] end
      for i = 0, fs[1] * fs[2] - 1 do
        for m = 0, M - 1 do fc[#fc + 1] = f[(i * c + ch) * M + m + 1] end
      end
      local want = ref_conv(xc, { n, h, w, 1 }, fc, { fs[1], fs[2], 1, M }, { 1, 1 }, "SAME", { 2, 1 })
      for pos = 0, #want // M - 1 do
        for m = 0, M - 1 do
          local e, g = want[pos * M + m + 1], got[pos * c * M + ch * M + m + 1]
          assert.is_true(math.abs(e - g) < 1e-12, string.format("channel %d multiplier %d: %g vs %g", ch, m, e, g))
        end
      end
    end
    check_gradients({ { 1, 4, 5, 2 }, { 2, 2, 2, 2 } },
                    function(a, b) return tf.nn.depthwise_conv2d(a, b, { 1, 2, 2, 1 }, "SAME") end)
  end)

  it("conv1d is conv2d over a height of 1", function()
    local xs, fs = { 2, 9, 3 }, { 3, 3, 4 }
    local x, f = rand(xs), rand(fs)
    local y = tf.nn.conv1d(array(x, xs), array(f, fs), 2, "SAME")
    local want, ys = ref_conv(x, { 2, 1, 9, 3 }, f, { 1, 3, 3, 4 }, { 1, 2 }, "SAME", { 1, 1 })
    assert.are.same({ ys[1], ys[3], ys[4] }, y.shape)
    N.assert_close(want, values(run(y)), 1e-12, "conv1d")
    check_gradients({ { 1, 7, 2 }, { 3, 2, 2 } }, function(a, b) return tf.nn.conv1d(a, b, 1, "VALID") end)
  end)
end)

describe("tf.nn.max_pool and tf.nn.avg_pool", function()
  before_each(function() tf.reset_default_graph() end)

  local cases = {
    { { 2, 5, 5, 3 }, { 2, 2 }, { 2, 2 }, "SAME" },
    { { 1, 7, 6, 2 }, { 3, 2 }, { 2, 1 }, "VALID" },
    { { 2, 6, 7, 2 }, { 3, 3 }, { 1, 2 }, "SAME" },
    { { 1, 4, 4, 1 }, { 4, 4 }, { 1, 1 }, "SAME" }, -- windows mostly padding
    { { 1, 3, 3, 2 }, { 1, 1 }, { 2, 2 }, "VALID" },
  }
  for _, max in ipairs({ true, false }) do
    local fn = max and "max_pool" or "avg_pool"
    it(fn .. " matches a float64 reference (SAME averages over the valid elements only)", function()
      for _, c in ipairs(cases) do
        local xs, k, st, pad = table.unpack(c)
        local x = rand(xs)
        local want, ys = ref_pool(x, xs, k, st, pad, max)
        local y = tf.nn[fn](array(x, xs), { 1, k[1], k[2], 1 }, { 1, st[1], st[2], 1 }, pad)
        assert.are.same(ys, y.shape)
        N.assert_close(want, values(run(y)), 1e-12, fn .. " " .. pad)
        check_gradients({ xs }, function(a) return tf.nn[fn](a, { 1, k[1], k[2], 1 }, { 1, st[1], st[2], 1 }, pad) end)
      end
    end)
  end

  it("avg_pool's gradient over SAME padding shares by the valid count", function()
    local x = tf.placeholder("float64", { 1, 3, 3, 1 })
    local y = tf.nn.avg_pool(x, { 1, 2, 2, 1 }, { 1, 2, 2, 1 }, "SAME") -- windows of 4, 2, 2, 1
    local g = run(tf.gradients(tf.reduce_sum(y), x)[1], { [x] = array(rand({ 1, 3, 3, 1 }), { 1, 3, 3, 1 }) })
    assert.are.same({ 0.25, 0.25, 0.5, 0.25, 0.25, 0.5, 0.5, 0.5, 1 }, values(g))
  end)

  it("max_pool's gradient goes to the first max of a tie", function()
    local x = tf.placeholder("float64", { 1, 2, 2, 1 })
    local y = tf.nn.max_pool(x, { 1, 2, 2, 1 }, { 1, 2, 2, 1 }, "VALID")
    local g = run(tf.gradients(tf.reduce_sum(y), x)[1], { [x] = array({ 1, 3, 3, 2 }, { 1, 2, 2, 1 }) })
    assert.are.same({ 0, 1, 0, 0 }, values(g))
  end)

  -- The gradient routed by a plain loop: each output's dy to its window's
  -- first max in row-major order (strict >; a leading NaN stays the max).
  local function ref_max_pool_grad(x, xs, k, st, pad, dy)
    local n, h, w, c = table.unpack(xs)
    local oh, pt = geometry(h, k[1], st[1], 1, pad)
    local ow, pl = geometry(w, k[2], st[2], 1, pad)
    local dx, o = {}, 0
    for i = 1, #x do dx[i] = 0 end
    for b = 0, n - 1 do
      for i = 0, oh - 1 do
        for j = 0, ow - 1 do
          for p = 0, c - 1 do
            local best, m
            for u = 0, k[1] - 1 do
              for v = 0, k[2] - 1 do
                local yy, xx = i * st[1] - pt + u, j * st[2] - pl + v
                if yy >= 0 and yy < h and xx >= 0 and xx < w then
                  local at = ((b * h + yy) * w + xx) * c + p + 1
                  if not best or x[at] > m then best, m = at, x[at] end
                end
              end
            end
            o = o + 1
            dx[best] = dx[best] + dy[o]
          end
        end
      end
    end
    return dx
  end

  for _, dtype in ipairs({ "float32", "float64" }) do
    it("max_pool's gradient in " .. dtype .. ": ties, overlapping windows and NaN per channel", function()
      local nan = 0 / 0
      for _, c in ipairs({ { { 2, 5, 6, 3 }, { 3, 3 }, { 2, 2 }, "SAME" }, { { 1, 4, 5, 5 }, { 2, 3 }, { 1, 1 }, "VALID" },
                           { { 1, 4, 4, 17 }, { 2, 2 }, { 2, 2 }, "SAME" } }) do
        local xs, k, st, pad = table.unpack(c)
        local x = {}
        -- few distinct values: many ties within windows, different per channel
        for i = 1, numel(xs) do x[i] = math.random(0, 3) / 2 end
        x[1] = nan -- a leading NaN in channel 1 of the first window
        local y = tf.nn.max_pool(array(x, xs, dtype), { 1, k[1], k[2], 1 }, { 1, st[1], st[2], 1 }, pad)
        local dy = rand(y.shape)
        local dxt = tf.gradients(y, { y.op.inputs[1] }, { array(dy, y.shape, dtype) })[1]
        local got = values(run(dxt))
        local want = ref_max_pool_grad(x, xs, k, st, pad, dy)
        -- float32 rounds dy; sums of a few of them stay within 1e-6
        N.assert_close(want, got, dtype == "float64" and 1e-12 or 1e-5, "max_pool grad " .. pad)
        local m = values(run(y))
        assert.is_true(m[1] ~= m[1], "the leading NaN is the first window's max")
      end
    end)
  end
end)

describe("tf.layers convolution layers", function()
  before_each(function() tf.reset_default_graph() end)

  it("conv2d makes kernel and bias under the layer's scope, named as TF names them", function()
    local x = tf.placeholder("float32", { -1, 8, 8, 1 })
    local y = tf.layers.conv2d(x, 6, 3, { padding = "same", activation = tf.nn.relu })
    local y2 = tf.layers.conv2d(y, 4, { 3, 2 }, { strides = 2 })
    local y3 = tf.variable_scope("net", function() return tf.layers.conv2d(y2, 2, 1, { name = "c", use_bias = false }) end)
    assert.are.same({ -1, 8, 8, 6 }, y.shape)
    assert.are.same({ -1, 3, 4, 4 }, y2.shape)
    assert.are.same({ -1, 3, 4, 2 }, y3.shape)
    local names = {}
    for _, v in ipairs(tf.trainable_variables()) do names[#names + 1] = v.name .. " " .. table.concat(v.shape, ",") end
    assert.are.same({ "conv2d/kernel:0 3,3,1,6", "conv2d/bias:0 6", "conv2d_1/kernel:0 3,2,6,4", "conv2d_1/bias:0 4",
                      "net/c/kernel:0 1,1,4,2" }, names)
  end)

  it("conv2d computes activation(conv2d(x, kernel) + bias) and reuses its variables", function()
    local x = tf.placeholder("float64", { 2, 5, 5, 2 })
    local y = tf.layers.conv2d(x, 3, 3, { name = "c", bias_initializer = tf.constant_initializer(0.5),
                                           activation = tf.tanh })
    local y2 = tf.layers.conv2d(x, 3, 3, { name = "c", reuse = true })
    assert.are.equal(2, #tf.trainable_variables())
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local xv = rand({ 2, 5, 5, 2 })
    local r = sess:run({ y, y2, tf.trainable_variables()[1] }, { [x] = array(xv, { 2, 5, 5, 2 }) })
    local want = ref_conv(xv, { 2, 5, 5, 2 }, values(r[3]), { 3, 3, 2, 3 }, { 1, 1 }, "VALID", { 1, 1 })
    local t = {}
    for i, v in ipairs(want) do t[i] = 1 - 2 / (math.exp(2 * (v + 0.5)) + 1) end -- tanh
    N.assert_close(t, values(r[1]), 1e-12, "conv2d layer")
    N.assert_close(want, (function()
      local u = {}
      for i, v in ipairs(values(r[2])) do u[i] = v - 0.5 end
      return u
    end)(), 1e-12, "reused layer")
  end)

  it("max_pooling2d, average_pooling2d and flatten", function()
    local x = tf.placeholder("float64", { -1, 5, 5, 2 })
    local p = tf.layers.max_pooling2d(x, 2, 2)
    local a = tf.layers.average_pooling2d(x, { 3, 3 }, 2, { padding = "same" })
    assert.are.same({ -1, 2, 2, 2 }, p.shape)
    assert.are.same({ -1, 3, 3, 2 }, a.shape)
    local f = tf.layers.flatten(p)
    assert.are.same({ -1, 8 }, f.shape)
    local xv = rand({ 2, 5, 5, 2 })
    local r = run({ p, a, f }, { [x] = array(xv, { 2, 5, 5, 2 }) })
    N.assert_close((ref_pool(xv, { 2, 5, 5, 2 }, { 2, 2 }, { 2, 2 }, "VALID", true)), values(r[1]), 1e-12, "max")
    N.assert_close((ref_pool(xv, { 2, 5, 5, 2 }, { 3, 3 }, { 2, 2 }, "SAME", false)), values(r[2]), 1e-12, "avg")
    assert.are.same({ 2, 8 }, r[3]:shape())
    assert.are.same(values(r[1]), values(r[3]))
  end)

  it("dropout drops only when training (a boolean or a bool tensor)", function()
    local x = tf.ones({ 50, 40 }, "float64")
    local off = run(tf.layers.dropout(x, 0.5))
    assert.are.same(values(run(x)), values(off))
    local on = values(run(tf.layers.dropout(x, 0.25, { training = true, seed = 3 })))
    local zeros = 0
    for _, v in ipairs(on) do
      assert.is_true(v == 0 or math.abs(v - 1 / 0.75) < 1e-12)
      if v == 0 then zeros = zeros + 1 end
    end
    assert.is_true(zeros > 300 and zeros < 700, "about a quarter dropped: " .. zeros)
    local training = tf.placeholder("bool", {})
    local y = tf.layers.dropout(x, 0.5, { training = training })
    local sess <close> = tf.Session()
    assert.are.same(values(run(x)), values(sess:run(y, { [training] = false })))
    local t = values(sess:run(y, { [training] = true }))
    local dropped = 0
    for _, v in ipairs(t) do if v == 0 then dropped = dropped + 1 end end
    assert.is_true(dropped > 800 and dropped < 1200, "about half dropped: " .. dropped)
    assert.has_error(function() tf.layers.dropout(x, 0.5, { training = 1 }) end,
                     "tf.layers.dropout: training must be a boolean or a bool tensor")
    assert.has_error(function() tf.layers.dropout(x, 1.0) end)
  end)
end)
