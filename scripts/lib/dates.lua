-- Dates written by people in many formats, and their ISO form: the
-- `--task dates` data of scripts/seq2seq.lua (character level, 1950..2049).
--
--   D.iso(y, m, d)            "1987-03-03"
--   D.write(y, m, d, k)       the date in format k (1..D.NFORMATS):
--     "March 3, 1987", "3 March 1987", "mar 3 1987", "3 mar 87", "03/03/1987"
--     (month first), "3.3.1987" (day first), "1987/3/3", "Tuesday, March 3, 1987",
--     "the 3rd of March, 1987", "MARCH 3RD 1987", "tue 3 mar 1987", "3-MAR-1987"
--   D.all_days()              every {y, m, d} of 1950-01-01..2049-12-31, in order
-- Two-digit years are 1950..2049 (50 -> 1950, 49 -> 2049), so every string
-- names one date.
local M = {}

local MONTHS = { "january", "february", "march", "april", "may", "june", "july", "august", "september",
                 "october", "november", "december" }
local DAYS = { "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday" }

local function leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end
local function month_days(y, m)
  local n = ({ 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 })[m]
  return (m == 2 and leap(y)) and 29 or n
end
M.month_days = month_days

-- 1 = Monday .. 7 = Sunday (days since 1950-01-01, a Sunday).
function M.weekday(y, m, d)
  local n = 0
  for yy = 1950, y - 1 do n = n + (leap(yy) and 366 or 365) end
  for mm = 1, m - 1 do n = n + month_days(y, mm) end
  n = n + d - 1
  return (n + 6) % 7 + 1
end

local function cap(s) return s:sub(1, 1):upper() .. s:sub(2) end
local function ordinal(d)
  local suffix = "th"
  if d % 100 < 11 or d % 100 > 13 then suffix = ({ "st", "nd", "rd" })[d % 10] or "th" end
  return d .. suffix
end

function M.iso(y, m, d) return string.format("%04d-%02d-%02d", y, m, d) end

local FORMATS = {
  function(y, m, d) return string.format("%s %d, %d", cap(MONTHS[m]), d, y) end,
  function(y, m, d) return string.format("%d %s %d", d, cap(MONTHS[m]), y) end,
  function(y, m, d) return string.format("%s %d %d", MONTHS[m]:sub(1, 3), d, y) end,
  function(y, m, d) return string.format("%d %s %02d", d, MONTHS[m]:sub(1, 3), y % 100) end,
  function(y, m, d) return string.format("%02d/%02d/%d", m, d, y) end,
  function(y, m, d) return string.format("%d.%d.%d", d, m, y) end,
  function(y, m, d) return string.format("%d/%d/%d", y, m, d) end,
  function(y, m, d) return string.format("%s, %s %d, %d", cap(DAYS[M.weekday(y, m, d)]), cap(MONTHS[m]), d, y) end,
  function(y, m, d) return string.format("the %s of %s, %d", ordinal(d), cap(MONTHS[m]), y) end,
  function(y, m, d) return string.format("%s %s %d", MONTHS[m]:upper(), ordinal(d):upper(), y) end,
  function(y, m, d) return string.format("%s %d %s %d", DAYS[M.weekday(y, m, d)]:sub(1, 3), d, MONTHS[m]:sub(1, 3), y) end,
  function(y, m, d) return string.format("%d-%s-%d", d, MONTHS[m]:sub(1, 3):upper(), y) end,
}
M.NFORMATS = #FORMATS

function M.write(y, m, d, k)
  local f = FORMATS[k]
  if not f then error("dates.write: format must be 1.." .. #FORMATS, 2) end
  return f(y, m, d)
end

function M.all_days()
  local out = {}
  for y = 1950, 2049 do
    for m = 1, 12 do
      for d = 1, month_days(y, m) do out[#out + 1] = { y, m, d } end
    end
  end
  return out
end

-- Characters as tokens.
function M.chars(s)
  local t = {}
  for c in s:gmatch(".") do t[#t + 1] = c end
  return t
end

return M
