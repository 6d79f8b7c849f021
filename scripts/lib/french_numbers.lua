-- Numbers 1..9999 written out in English and in French, and the tokenizer
-- the seq2seq script uses.
--
-- French follows the traditional (pre-1990) spelling:
--   * hyphens join the parts of a number below one hundred ("dix-sept",
--     "soixante-dix-sept", "quatre-vingt-dix-neuf"), never around "cent" or
--     "mille" ("deux cent un", "deux mille trois");
--   * "et" (without hyphens) joins un/onze to vingt..soixante: "vingt et un",
--     "trente et un", ..., "soixante et un", "soixante et onze"; there is no
--     "et" in "quatre-vingt-un" or "quatre-vingt-onze";
--   * 70..79 are soixante-dix..soixante-dix-neuf, 80..99 quatre-vingt(s)...;
--   * "vingt" of quatre-vingts and "cent" take an s only when multiplied and
--     final: "quatre-vingts", "deux cents", "deux cent quatre-vingts", but
--     "quatre-vingt-un", "deux cent un", "cent" (not multiplied);
--   * "mille" is invariable and takes no "un": "mille", "deux mille".
-- English is American style without "and": "four hundred twenty-one",
-- "nine thousand nine hundred ninety-nine".
--
-- Tokens: by default words are split on spaces only, so a hyphenated word is
-- one token ("quatre-vingt-dix-neuf", "twenty-one"). This keeps sequences
-- short (at most 5 English and 7 French tokens) and makes every compound a
-- vocabulary entry that occurs many times in any training split.
-- tokenize(s, true) also splits after each hyphen, keeping the hyphen on the
-- left piece ("quatre-", "vingt-", "dix-", "neuf"; "twenty-", "one"), so the
-- model has to compose compounds (at most 8 English and 8 French tokens);
-- detokenize joins either form back.
local M = {}

local fr_units = { "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf",
                   "dix", "onze", "douze", "treize", "quatorze", "quinze", "seize",
                   "dix-sept", "dix-huit", "dix-neuf" }
local fr_tens = { [2] = "vingt", [3] = "trente", [4] = "quarante", [5] = "cinquante", [6] = "soixante" }

-- 1..99 in French; `final` says whether nothing follows (for "quatre-vingts").
local function fr_below_100(n, final)
  if n < 20 then return fr_units[n] end
  local t, u = n // 10, n % 10
  if t <= 6 then
    if u == 0 then return fr_tens[t] end
    if u == 1 then return fr_tens[t] .. " et un" end
    return fr_tens[t] .. "-" .. fr_units[u]
  elseif t == 7 then -- soixante + 10..19
    if u == 1 then return "soixante et onze" end
    return "soixante-" .. fr_units[10 + u]
  else -- quatre-vingt + 0..19
    local r = n - 80
    if r == 0 then return final and "quatre-vingts" or "quatre-vingt" end
    return "quatre-vingt-" .. fr_units[r]
  end
end

-- 1..999 in French; `final` as above (a number followed by "mille" is not final).
local function fr_below_1000(n, final)
  local h, r = n // 100, n % 100
  local parts = {}
  if h == 1 then
    parts[1] = "cent"
  elseif h > 1 then
    parts[1] = fr_units[h] .. (r == 0 and final and " cents" or " cent")
  end
  if r > 0 then parts[#parts + 1] = fr_below_100(r, final) end
  return table.concat(parts, " ")
end

local function check(n, what)
  if math.type(n) ~= "integer" or n < 1 or n > 9999 then
    error(string.format("%s: expected an integer in 1..9999, got %s", what, tostring(n)), 3)
  end
end

-- french(n): n (1..9999) in French words.
function M.french(n)
  check(n, "french_numbers.french")
  local th, r = n // 1000, n % 1000
  local parts = {}
  if th == 1 then
    parts[1] = "mille"
  elseif th > 1 then
    parts[1] = fr_units[th] .. " mille"
  end
  if r > 0 then parts[#parts + 1] = fr_below_1000(r, true) end
  return table.concat(parts, " ")
end

local en_units = { "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                   "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                   "seventeen", "eighteen", "nineteen" }
local en_tens = { [2] = "twenty", [3] = "thirty", [4] = "forty", [5] = "fifty", [6] = "sixty",
                  [7] = "seventy", [8] = "eighty", [9] = "ninety" }

local function en_below_100(n)
  if n < 20 then return en_units[n] end
  local t, u = n // 10, n % 10
  if u == 0 then return en_tens[t] end
  return en_tens[t] .. "-" .. en_units[u]
end

-- english(n): n (1..9999) in English words.
function M.english(n)
  check(n, "french_numbers.english")
  local th, h, r = n // 1000, n // 100 % 10, n % 100
  local parts = {}
  if th > 0 then parts[#parts + 1] = en_units[th] .. " thousand" end
  if h > 0 then parts[#parts + 1] = en_units[h] .. " hundred" end
  if r > 0 then parts[#parts + 1] = en_below_100(r) end
  return table.concat(parts, " ")
end

-- tokenize(s [, split_hyphens]): the space-separated words of s; hyphenated
-- words stay whole unless split_hyphens, which cuts after every hyphen.
function M.tokenize(s, split_hyphens)
  local t = {}
  for w in s:gmatch("%S+") do
    if split_hyphens then
      for piece in w:gmatch("[^-]+%-?") do t[#t + 1] = piece end
    else
      t[#t + 1] = w
    end
  end
  return t
end

-- detokenize(tokens): the sentence back (a token ending in "-" is joined to the next).
function M.detokenize(tokens)
  local parts = {}
  for i, w in ipairs(tokens) do
    parts[#parts + 1] = w
    if i < #tokens and w:sub(-1) ~= "-" then parts[#parts + 1] = " " end
  end
  return table.concat(parts)
end

return M
