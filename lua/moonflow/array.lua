-- Arrays (values) on the Lua side: construction helpers and a Torch-style
-- tostring.
local core = require("moonflow.core")
local C = require("moonflow.convert")

return function(tf)
  local mt = core.array_metatable
  local methods = mt.methods

  function tf.array(value, dtype)
    C.check_dtype(dtype, "tf.array")
    return C.to_array(value, dtype, "tf.array")
  end
  function tf.array_from_bytes(s)
    if type(s) ~= "string" then error("tf.array_from_bytes: expected a string, got " .. type(s), 2) end
    return core.array_from_bytes(s)
  end
  tf.is_array = C.is_array

  local function fmt_number(x, dtype)
    if dtype == "string" then return string.format("%q", x) end
    if dtype == "bool" then return tostring(x) end
    if dtype:match("int") then return string.format("%d", x) end
    if x ~= x then return "nan" end
    if x == math.huge then return "inf" elseif x == -math.huge then return "-inf" end
    return string.format("%.4f", x)
  end

  -- Torch-style: the values (a 2-D grid per trailing matrix), then
  -- "[moonflow.Array of dimension 2x3, float32]".
  local MAX_ELEMS = 1000
  mt.__tostring = function(a)
    local shape, dtype, n = a:shape(), a.dtype, a:numel()
    local dims = {}
    for i, d in ipairs(shape) do dims[i] = tostring(d) end
    local footer = #shape == 0 and string.format("[moonflow.Array scalar, %s]", dtype)
                   or string.format("[moonflow.Array of dimension %s, %s]", table.concat(dims, "x"), dtype)
    if n == 0 then return "[empty]\n" .. footer end
    if n > MAX_ELEMS then return string.format("[%d elements]\n%s", n, footer) end
    local strs, width = {}, 0
    for i = 1, n do
      strs[i] = fmt_number(a:flat(i), dtype)
      width = math.max(width, #strs[i])
    end
    local lines = {}
    local rank = #shape
    if rank == 0 then
      lines[1] = strs[1]
    else
      local cols = shape[rank]
      local rows = rank >= 2 and shape[rank - 1] or 1
      local block = rows * cols
      for b = 0, n // block - 1 do
        if rank > 2 then
          local idx, rem = {}, b
          for d = rank - 2, 1, -1 do idx[d] = rem % shape[d] + 1; rem = rem // shape[d] end
          lines[#lines + 1] = "(" .. table.concat(idx, ",") .. ",.,.) ="
        end
        for r = 0, rows - 1 do
          local row = {}
          for c = 1, cols do row[c] = string.format("%" .. width .. "s", strs[b * block + r * cols + c]) end
          lines[#lines + 1] = " " .. table.concat(row, "  ")
        end
        if rank > 2 then lines[#lines + 1] = "" end
      end
    end
    lines[#lines + 1] = footer
    return table.concat(lines, "\n")
  end

  methods.size = methods.shape
end
