-- Convolutions and pooling over NHWC data (tf.nn.conv2d, conv2d_transpose,
-- depthwise_conv2d, conv1d, max_pool, avg_pool) and the layers built on
-- them (tf.layers.conv2d, max_pooling2d, average_pooling2d, flatten,
-- dropout). The ops are the C core's Conv2D, Conv2DBackpropInput, MaxPool
-- and AvgPool; depthwise and 1-D convolutions are composed from Conv2D.
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  local nn = tf.nn or {}
  tf.nn = nn
  tf.layers = tf.layers or {}
  local function out(op) return op.outputs[1] end

  local function float_tensor(x, what, param, dtype)
    x = C.to_tensor(x, dtype)
    if not x.dtype:match("^float") then
      G.raise("%s: %s must be a float tensor, got %s", what, param, x.dtype)
    end
    return x
  end

  local function positive_int(v)
    return math.type(v) == "integer" and v >= 1
  end

  -- TF's window arguments over NHWC: an integer, or a list of 1, 2 or 4
  -- positive integers (4: batch and channels must be 1), as {1, h, w, 1}.
  local function window4(v, what, param)
    local list = type(v) == "table" and v or { v }
    for i = 1, #list do
      if not positive_int(list[i]) then
        G.raise("%s: %s must be a positive integer or a list of 1, 2 or 4 of them", what, param)
      end
    end
    if #list == 1 then return { 1, list[1], list[1], 1 } end
    if #list == 2 then return { 1, list[1], list[2], 1 } end
    if #list == 4 then
      if list[1] ~= 1 or list[4] ~= 1 then
        G.raise("%s: %s must be 1 along the batch and channel dimensions", what, param)
      end
      return { list[1], list[2], list[3], list[4] }
    end
    G.raise("%s: %s must be a positive integer or a list of 1, 2 or 4 of them, got %d entries", what, param, #list)
  end

  local function padding_of(p, what)
    if p ~= "SAME" and p ~= "VALID" then G.raise("%s: padding must be \"SAME\" or \"VALID\", got %s", what, tostring(p)) end
    return p
  end

  local function nhwc(fmt, what, want)
    want = want or "NHWC"
    if fmt ~= nil and fmt ~= want then G.raise("%s: data_format must be %s (the only layout here), got %s", what, want, fmt) end
  end

  local function conv_attrs(strides, padding, dilations)
    return { "strides", "ints", strides, "padding", "string", padding, "dilations", "ints", dilations,
             "data_format", "string", "NHWC" }
  end

  -- The attributes of a call's strides, padding and dilations (default 1).
  local function conv_attrs_of(a, what)
    return conv_attrs(window4(a.strides, what, "strides"), padding_of(a.padding, what),
                      window4(a.dilations or 1, what, "dilations"))
  end

  nn.conv2d = A.def("tf.nn.conv2d",
    "input:tensor, filter/filters:tensor, strides:any, padding:string, use_cudnn_on_gpu:bool=true, "
    .. "data_format:string=\"NHWC\", dilations:any=nil, name:string=nil",
    "2-D convolution of NHWC input with an HWIO filter (strides, SAME or VALID padding, dilations).", function(a)
    local what = "tf.nn.conv2d"
    local x = float_tensor(a.input, what, "input")
    local f = float_tensor(a.filter, what, "filter", x.dtype)
    nhwc(a.data_format, what)
    return out(G.make_op("Conv2D", { x, f }, conv_attrs_of(a, what), { name = a.name }))
  end)

  -- The gradient of conv2d with respect to its input, given output_shape:
  -- filter is [h, w, output channels, input channels].
  nn.conv2d_transpose = A.def("tf.nn.conv2d_transpose",
    "value/input:tensor, filter/filters:tensor, output_shape:any, strides:any, padding:string=\"SAME\", "
    .. "data_format:string=\"NHWC\", name:string=nil, dilations:any=nil",
    "The transpose (gradient) of conv2d: NHWC value to output_shape, filter [h, w, out, in].", function(a)
    local what = "tf.nn.conv2d_transpose"
    local x = float_tensor(a.value, what, "value")
    local f = float_tensor(a.filter, what, "filter", x.dtype)
    nhwc(a.data_format, what)
    local shape = a.output_shape
    if type(shape) == "table" and not G.is_tensor(shape) then
      if #shape ~= 4 then G.raise("%s: output_shape must have 4 entries", what) end
      for i = 1, 4 do
        if math.type(shape[i]) ~= "integer" or shape[i] < 0 then
          G.raise("%s: output_shape must hold non-negative integers", what)
        end
      end
      shape = C.to_tensor(shape, "int32")
    elseif not G.is_tensor(shape) then
      G.raise("%s: output_shape must be a list of 4 integers or an int32 Tensor", what)
    elseif shape.dtype ~= "int32" and shape.dtype ~= "int64" then
      G.raise("%s: output_shape must be an integer tensor, got %s", what, shape.dtype)
    end
    return out(G.make_op("Conv2DBackpropInput", { shape, f, x }, conv_attrs_of(a, what),
                         { name = a.name or "conv2d_transpose" }))
  end)

  -- One Conv2D per input channel, outputs concatenated: channel c's
  -- multiplier m lands at c * M + m, as TF's.
  nn.depthwise_conv2d = A.def("tf.nn.depthwise_conv2d",
    "input:tensor, filter:tensor, strides:any, padding:string, rate:any=nil, name:string=nil, "
    .. "data_format:string=nil, dilations:any=nil",
    "Each input channel convolved with its own filters [h, w, in, multiplier]; in * multiplier outputs.", function(a)
    local what = "tf.nn.depthwise_conv2d"
    local x = float_tensor(a.input, what, "input")
    local f = float_tensor(a.filter, what, "filter", x.dtype)
    nhwc(a.data_format, what)
    local strides = window4(a.strides, what, "strides")
    local padding = padding_of(a.padding, what)
    local dil = window4(a.rate or a.dilations or 1, what, a.rate and "rate" or "dilations")
    if (dil[2] > 1 or dil[3] > 1) and (strides[2] > 1 or strides[3] > 1) then
      G.raise("%s: strides must be 1 when rate (dilation) is above 1", what)
    end
    if #x.shape ~= 4 or #f.shape ~= 4 then G.raise("%s: input and filter must have rank 4", what) end
    local cin = x.shape[4]
    if cin < 0 then G.raise("%s: the input's channels must be known", what) end
    if f.shape[3] >= 0 and f.shape[3] ~= cin then
      G.raise("%s: the filter's input channels (%d) differ from the input's (%d)", what, f.shape[3], cin)
    end
    return tf.name_scope(a.name or "depthwise", function()
      local attrs = conv_attrs(strides, padding, dil)
      if cin == 1 then return out(G.make_op("Conv2D", { x, f }, attrs, {})) end
      local xs, fs, ys = tf.split(x, cin, 4), tf.split(f, cin, 3), {}
      for c = 1, cin do ys[c] = out(G.make_op("Conv2D", { xs[c], fs[c] }, attrs, {})) end
      return tf.concat(ys, 4)
    end)
  end)

  -- Conv2D over [batch, 1, width, channels], as TF's.
  nn.conv1d = A.def("tf.nn.conv1d",
    "value/input:tensor, filters/filter:tensor, stride:any, padding:string, use_cudnn_on_gpu:bool=nil, "
    .. "data_format:string=nil, name:string=nil, dilations:any=nil",
    "1-D convolution of NWC value with filters [width, in, out].", function(a)
    local what = "tf.nn.conv1d"
    local x = float_tensor(a.value, what, "value")
    local f = float_tensor(a.filters, what, "filters", x.dtype)
    nhwc(a.data_format, what, "NWC")
    local function one(v, param)
      if type(v) == "table" then
        if #v == 1 then v = v[1] elseif #v == 3 and v[1] == 1 and v[3] == 1 then v = v[2] else v = nil end
      end
      if not positive_int(v) then G.raise("%s: %s must be a positive integer (or a list of 1 or 3)", what, param) end
      return v
    end
    local s, d = one(a.stride, "stride"), one(a.dilations or 1, "dilations")
    local padding = padding_of(a.padding, what)
    return tf.name_scope(a.name or "conv1d", function()
      local y = out(G.make_op("Conv2D", { tf.expand_dims(x, 2), tf.expand_dims(f, 1) },
                              conv_attrs({ 1, 1, s, 1 }, padding, { 1, 1, d, 1 }), {}))
      return tf.squeeze(y, { 2 })
    end)
  end)

  local function pool(op_type, path, default_name)
    return A.def(path,
      "value/input:tensor, ksize:any, strides:any, padding:string, data_format:string=\"NHWC\", name:string=nil",
      op_type == "MaxPool" and "The max of each ksize window of NHWC value (padding ignored)."
        or "The mean of each ksize window of NHWC value (of the valid elements under SAME).", function(a)
      local x = float_tensor(a.value, path, "value")
      nhwc(a.data_format, path)
      local attrs = { "ksize", "ints", window4(a.ksize, path, "ksize"), "strides", "ints",
                      window4(a.strides, path, "strides"), "padding", "string", padding_of(a.padding, path),
                      "data_format", "string", "NHWC" }
      return out(G.make_op(op_type, { x }, attrs, { name = a.name or default_name }))
    end)
  end
  nn.max_pool = pool("MaxPool", "tf.nn.max_pool", "MaxPool")
  nn.avg_pool = pool("AvgPool", "tf.nn.avg_pool", "AvgPool")

  -- ---------------------------------------------------------------- layers

  -- Keras's default layer names: conv2d, conv2d_1, ... per graph and base name.
  local function layer_name(name, base)
    if name then return name end
    local g = G.get_default_graph()
    g._conv_layer_names = g._conv_layer_names or {}
    local n = (g._conv_layer_names[base] or 0) + 1
    g._conv_layer_names[base] = n
    return n == 1 and base or base .. "_" .. (n - 1)
  end

  local function pair(v, what, param)
    local list = type(v) == "table" and v or { v }
    if (#list ~= 1 and #list ~= 2) or not positive_int(list[1]) or not positive_int(list[#list]) then
      G.raise("%s: %s must be a positive integer or a pair of them", what, param)
    end
    return { list[1], list[#list] }
  end

  local function layer_padding(p, what)
    local u = type(p) == "string" and p:upper()
    if u ~= "SAME" and u ~= "VALID" then G.raise("%s: padding must be \"valid\" or \"same\", got %s", what, tostring(p)) end
    return u
  end

  local function channels_last(fmt, what)
    if fmt ~= "channels_last" then G.raise("%s: data_format must be \"channels_last\" (the only layout here)", what) end
  end

  tf.layers.conv2d = A.def("tf.layers.conv2d",
    "inputs:tensor, filters:any, kernel_size:any, strides:any=1, padding:string=\"valid\", "
    .. "data_format:string=\"channels_last\", dilation_rate:any=1, activation:function=nil, "
    .. "use_bias:bool=true, kernel_initializer:any=nil, bias_initializer:any=nil, kernel_regularizer:any=nil, "
    .. "bias_regularizer:any=nil, activity_regularizer:any=nil, kernel_constraint:any=nil, "
    .. "bias_constraint:any=nil, trainable:bool=true, name:string=nil, reuse:any=nil",
    "A 2-D convolution layer over NHWC inputs: activation(conv2d(inputs, kernel) + bias).", function(o)
    local what = "tf.layers.conv2d"
    for _, k in ipairs({ "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                         "bias_constraint" }) do
      if o[k] ~= nil then G.raise("%s: %s is not supported", what, k) end
    end
    local x = float_tensor(o.inputs, what, "inputs")
    if not positive_int(o.filters) then G.raise("%s: filters must be a positive integer", what) end
    local ks = pair(o.kernel_size, what, "kernel_size")
    local st = pair(o.strides, what, "strides")
    local dl = pair(o.dilation_rate, what, "dilation_rate")
    local padding = layer_padding(o.padding, what)
    channels_last(o.data_format, what)
    if not x.shape or #x.shape ~= 4 then G.raise("%s: inputs must have rank 4 (NHWC)", what) end
    local cin = x.shape[4]
    if cin < 0 then G.raise("%s: the inputs' channels (last dimension) must be known", what) end
    return tf.variable_scope(layer_name(o.name, "conv2d"), { reuse = o.reuse }, function()
      local kernel = tf.get_variable("kernel", { ks[1], ks[2], cin, o.filters },
        { initializer = o.kernel_initializer, dtype = x.dtype, trainable = o.trainable })
      local y = nn.conv2d(x, kernel, { 1, st[1], st[2], 1 }, padding, { dilations = { 1, dl[1], dl[2], 1 },
                          name = "Conv2D" })
      if o.use_bias then
        local bias = tf.get_variable("bias", { o.filters },
          { initializer = o.bias_initializer or tf.zeros_initializer(), dtype = x.dtype, trainable = o.trainable })
        y = y + bias
      end
      if o.activation then y = o.activation(y) end
      return y
    end)
  end)

  local function pool_layer(fn, path, base)
    return A.def(path,
      "inputs:tensor, pool_size:any, strides:any, padding:string=\"valid\", data_format:string=\"channels_last\", "
      .. "name:string=nil",
      base == "max_pooling2d" and "Max pooling over NHWC inputs (pool_size and strides: an integer or a pair)."
        or "Average pooling over NHWC inputs (pool_size and strides: an integer or a pair).", function(o)
      local x = float_tensor(o.inputs, path, "inputs")
      local ps, st = pair(o.pool_size, path, "pool_size"), pair(o.strides, path, "strides")
      local padding = layer_padding(o.padding, path)
      channels_last(o.data_format, path)
      return tf.name_scope(layer_name(o.name, base), function()
        return fn(x, { 1, ps[1], ps[2], 1 }, { 1, st[1], st[2], 1 }, padding)
      end)
    end)
  end
  tf.layers.max_pooling2d = pool_layer(nn.max_pool, "tf.layers.max_pooling2d", "max_pooling2d")
  tf.layers.average_pooling2d = pool_layer(nn.avg_pool, "tf.layers.average_pooling2d", "average_pooling2d")

  tf.layers.flatten = A.def("tf.layers.flatten", "inputs:tensor, name:string=nil, data_format:string=\"channels_last\"",
    "The inputs as [batch, everything else].", function(o)
    local x = C.to_tensor(o.inputs)
    channels_last(o.data_format, "tf.layers.flatten")
    if not x.shape or #x.shape < 1 then G.raise("tf.layers.flatten: inputs must have rank 1 or more") end
    return tf.name_scope(layer_name(o.name, "flatten"), function()
      local n = 1
      for i = 2, #x.shape do
        if x.shape[i] < 0 then
          -- unknown trailing dims: the batch from the run-time shape
          return tf.reshape(x, tf.stack({ tf.slice(tf.shape(x), { 1 }, { 1 })[1], -1 }))
        end
        n = n * x.shape[i]
      end
      return tf.reshape(x, { -1, n })
    end)
  end)

  -- training: a boolean, or a bool tensor (then keep_prob is 1 when false,
  -- which Dropout passes through with a mask of ones).
  tf.layers.dropout = A.def("tf.layers.dropout",
    "inputs:tensor, rate:number=0.5, noise_shape:any=nil, seed:int=nil, training:any=false, name:string=nil",
    "Drops each element with probability rate (scaling the rest by 1 / (1 - rate)) when training.", function(o)
    local what = "tf.layers.dropout"
    local x = float_tensor(o.inputs, what, "inputs")
    if o.rate < 0 or o.rate >= 1 then G.raise("%s: rate must be in [0, 1), got %g", what, o.rate) end
    if o.noise_shape ~= nil then G.raise("%s: noise_shape is not supported", what) end
    local training = o.training
    if not (type(training) == "boolean" or (G.is_tensor(training) and training.dtype == "bool")) then
      G.raise("%s: training must be a boolean or a bool tensor", what)
    end
    return tf.name_scope(layer_name(o.name, "dropout"), function()
      if training == false or o.rate == 0 then return tf.identity(x) end
      local keep = 1 - o.rate
      if training ~= true then
        keep = 1 - o.rate * tf.cast(training, x.dtype)
      end
      return nn.dropout(x, keep, nil, o.seed)
    end)
  end)
end
