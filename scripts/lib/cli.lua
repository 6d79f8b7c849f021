-- argparse converters shared by the programs in scripts/: option values
-- checked as they are parsed, with an error saying what was expected.
local M = {}

-- An integer >= min.
function M.integer(min)
  return function(s)
    local n = math.tointeger(tonumber(s))
    if not n or n < min then return nil, string.format("expected an integer >= %d, got '%s'", min, s) end
    return n
  end
end

-- A number in [min, max] (max nil: no bound), as a float.
function M.number(min, max)
  return function(s)
    local n = tonumber(s)
    if not n or n < min or (max and n > max) then
      return nil, string.format("expected a number in [%g, %s], got '%s'", min, max and string.format("%g", max) or "inf", s)
    end
    return n + 0.0
  end
end

return M
