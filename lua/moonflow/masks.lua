-- Masks built from index comparisons: tf.sequence_mask and
-- tf.matrix_band_part (tf.linalg.band_part).
local G = require("moonflow.graph")
local C = require("moonflow.convert")
local A = require("moonflow.args")

return function(tf)
  -- 0, 1, ..., n-1 (int32) for a run-time scalar n: the Range op takes its
  -- bounds as attributes only. One-hot [1, 0, ..., 0] of length n + 1
  -- tiled n times and cut to n * n elements is the identity matrix (entry
  -- (i, j) is the tiled vector at (j - i) mod (n + 1)); each row's argmax
  -- is its index. O(n^2) memory, fine for the sequence lengths it serves.
  local function run_time_range(n)
    n = tf.cast(tf.reshape(n, {}), "int32")
    local first = tf.one_hot({ 1 }, n + 1, { dtype = "int32" }) -- [1, n + 1]
    local tiled = tf.tile(first, tf.stack({ 1, n }))
    local eye = tf.reshape(tf.slice(tiled, { 1, 1 }, tf.stack({ 1, n * n })), tf.stack({ n, n }))
    return tf.cast(tf.argmax(eye, 2), "int32") - 1
  end

  local function range_of(n)
    if G.is_tensor(n) then return run_time_range(n) end
    return tf.range(n)
  end

  local function is_int_dtype(dt) return dt == "int32" or dt == "int64" end

  -- TF 1.x: sequence_mask(lengths, maxlen=None, dtype=tf.bool, name=None):
  -- mask[..., j] = j < lengths[...] (j counted from 0, so the first
  -- lengths entries are true); maxlen defaults to the largest length.
  tf.sequence_mask = A.def("tf.sequence_mask", "lengths:tensor, maxlen:any=nil, dtype:dtype=\"bool\", name:string=nil",
    "A mask of shape lengths.shape + {maxlen}: the first lengths[...] entries of each row true.", function(a)
    local maxlen = a.maxlen
    if math.type(maxlen) == "float" then maxlen = math.tointeger(maxlen) or maxlen end -- 5.0 is 5
    if maxlen ~= nil and not G.is_tensor(maxlen) and math.type(maxlen) ~= "integer" then
      G.raise("tf.sequence_mask: maxlen must be an integer or a scalar integer tensor, got %s", type(maxlen))
    end
    if math.type(maxlen) == "integer" and maxlen < 0 then
      G.raise("tf.sequence_mask: maxlen must be >= 0, got %d", maxlen)
    end
    if G.is_tensor(maxlen) and not is_int_dtype(maxlen.dtype) then
      G.raise("tf.sequence_mask: maxlen must be an integer tensor, got %s", maxlen.dtype)
    end
    if a.dtype == "string" then G.raise("tf.sequence_mask: dtype must not be string") end
    local given = a.lengths
    local lengths = C.to_tensor(given, "int32")
    if not is_int_dtype(lengths.dtype) then
      G.raise("tf.sequence_mask: lengths must be an integer tensor, got %s", lengths.dtype)
    end
    return tf.name_scope(a.name or "SequenceMask", function()
      if maxlen == nil then
        if not G.is_tensor(given) then -- constant lengths: the largest is known now
          local arr = C.to_array(given, "int32", "tf.sequence_mask")
          local m = 0
          for i = 1, arr:numel() do m = math.max(m, arr:flat(i)) end
          maxlen = m
        else
          maxlen = tf.maximum(tf.reduce_max(lengths), 0) -- an empty lengths gives 0 columns
        end
      end
      local r = range_of(maxlen)
      if r.dtype ~= lengths.dtype then r = tf.cast(r, lengths.dtype) end
      local mask = tf.less(r, tf.expand_dims(lengths, -1))
      if a.dtype ~= "bool" then mask = tf.cast(mask, a.dtype) end
      return mask
    end)
  end)

  -- A band size: a Lua integer or a scalar integer tensor; negative keeps
  -- that whole triangle.
  local function band(v, what)
    if math.type(v) == "integer" then return v end
    if G.is_tensor(v) and is_int_dtype(v.dtype) then return tf.cast(v, "int32") end
    G.raise("tf.matrix_band_part: %s must be an integer or a scalar integer tensor, got %s", what,
            G.is_tensor(v) and v.dtype or type(v))
  end

  -- TF 1.x: matrix_band_part(input, num_lower, num_upper, name=None): the
  -- entries (i, j) of each innermost matrix with i - j <= num_lower and
  -- j - i <= num_upper kept (a negative bound: no limit), the others 0.
  tf.matrix_band_part = A.def("tf.matrix_band_part", "input:tensor, num_lower:any, num_upper:any, name:string=nil",
    "Each innermost matrix with the entries outside the band (num_lower below, num_upper above the diagonal) zeroed.",
    function(a)
    local x = C.to_tensor(a.input)
    local lower, upper = band(a.num_lower, "num_lower"), band(a.num_upper, "num_upper")
    local rank = x.shape and #x.shape
    if not rank then G.raise("tf.matrix_band_part: input needs a known rank") end
    if rank < 2 then G.raise("tf.matrix_band_part: input must have rank 2 or more, got rank %d", rank) end
    return tf.name_scope(a.name or "MatrixBandPart", function()
      local function dim(d)
        local n = x.shape[d]
        if n >= 0 then return n end
        return tf.gather(tf.shape(x), { d })
      end
      local i = tf.reshape(range_of(dim(rank - 1)), { -1, 1 })
      local j = tf.reshape(range_of(dim(rank)), { 1, -1 })
      local keep
      local function limit(diff, b)
        if type(b) == "number" then
          if b < 0 then return nil end
          return tf.less_equal(diff, b)
        end
        return tf.logical_or(tf.less(b, 0), tf.less_equal(diff, b))
      end
      local below, above = limit(i - j, lower), limit(j - i, upper)
      if below and above then keep = tf.logical_and(below, above) else keep = below or above end
      if not keep then return tf.identity(x) end
      return tf.where(keep, x, tf.zeros_like(x))
    end)
  end)
  tf.linalg = tf.linalg or {}
  tf.linalg.band_part = tf.matrix_band_part
end
