-- Numeric helpers shared by the training specs: float32 rounding, random
-- lists, flattening, and element-wise closeness against a float64 reference.
local M = {}

function M.f32(x) return (string.unpack("<f", string.pack("<f", x))) end

-- n values in [lo, hi), rounded to float32 when `round`.
function M.rand_list(n, lo, hi, round)
  local t = {}
  for i = 1, n do
    local x = lo + (hi - lo) * math.random()
    t[i] = round and M.f32(x) or x
  end
  return t
end

function M.flatten(t)
  local out = {}
  local function walk(x)
    if type(x) == "table" then for i = 1, #x do walk(x[i]) end else out[#out + 1] = x end
  end
  walk(t)
  return out
end

-- The element count of a shape.
function M.numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- A nested table of `shape` from a flat list.
function M.nest(flat, shape, pos, depth)
  pos, depth = pos or { 1 }, depth or 1
  if depth > #shape then
    local v = flat[pos[1]]
    pos[1] = pos[1] + 1
    return v
  end
  local t = {}
  for i = 1, shape[depth] do t[i] = M.nest(flat, shape, pos, depth + 1) end
  return t
end

-- An Array's elements as a flat list (row-major).
function M.flat_of(a)
  local out = {}
  for i = 1, a:numel() do out[i] = a:flat(i) end
  return out
end

-- A flat list as rows of ncol.
function M.rows_of(flat, ncol)
  local t = {}
  for i = 1, #flat // ncol do
    local r = {}
    for j = 1, ncol do r[j] = flat[(i - 1) * ncol + j] end
    t[i] = r
  end
  return t
end

-- Element-wise closeness: relative tolerance with an absolute floor of rtol.
function M.assert_close(expected, got, rtol, what)
  expected, got = M.flatten(expected), M.flatten(got)
  assert(#expected == #got, string.format("%s: %d elements expected, got %d", what or "value", #expected, #got))
  for i = 1, #expected do
    local e, g = expected[i], got[i]
    local tol = rtol * math.max(1.0, math.abs(e))
    assert(math.abs(e - g) <= tol, string.format("%s: element %d: expected %.17g, got %.17g (tol %.3g)",
      what or "value", i, e, g, tol))
  end
end

return M
