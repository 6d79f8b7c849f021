-- Data for the character-level RNN scripts (scripts/char_rnn.lua,
-- scripts/sample.lua, scripts/bench/char_rnn.lua): reading a file as bytes,
-- the vocabulary (sorted byte values -> ids 1..V), the train/validation split,
-- and batching as `batch` contiguous streams read in consecutive windows of
-- `seq` characters (as the PyTorch peer's batches() does), so that the RNN
-- state can be carried from one window to the next.
local M = {}

-- The whole file as a Lua string (bytes; UTF-8 passes through as bytes).
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then error("cannot read " .. tostring(path) .. ": " .. tostring(err), 0) end
  local s = f:read("a")
  f:close()
  return s
end

-- The directory holding the calling script (from a path like arg[0]).
function M.script_dir(path)
  return (path or ""):match("^(.*)/[^/]*$") or "."
end

-- The corpus used when no --input is given: the project's own Lua module
-- sources (lua/moonflow/*.lua, found relative to the scripts directory), so
-- that a training run works offline on any checkout.
function M.default_corpus(scripts_dir)
  local dir = scripts_dir .. "/../lua/moonflow"
  local p = io.popen('ls "' .. dir .. '"/*.lua 2>/dev/null')
  local names = {}
  if p then
    for line in p:lines() do names[#names + 1] = line end
    p:close()
  end
  table.sort(names)
  if #names == 0 then error("no --input given and no sources found in " .. dir, 0) end
  local parts = {}
  for i, n in ipairs(names) do parts[i] = M.read_file(n) end
  return table.concat(parts), dir .. "/*.lua"
end

-- Vocabulary of a text: `vocab` a sorted list of byte values (id i is the
-- byte vocab[i]) and `index` byte value -> id.
function M.build_vocab(text)
  local seen = {}
  for i = 1, #text, 4096 do
    local chunk = { text:byte(i, math.min(i + 4095, #text)) }
    for _, b in ipairs(chunk) do seen[b] = true end
  end
  local vocab = {}
  for b = 0, 255 do if seen[b] then vocab[#vocab + 1] = b end end
  return M.vocab_index(vocab)
end

-- index (byte -> id) for a vocabulary list; returns vocab, index.
function M.vocab_index(vocab)
  local index = {}
  for i, b in ipairs(vocab) do index[b] = i end
  return vocab, index
end

-- The text as a list of ids (1-based). Bytes outside the vocabulary are an error.
function M.encode(text, index)
  local ids, n = {}, 0
  for i = 1, #text, 4096 do
    local chunk = { text:byte(i, math.min(i + 4095, #text)) }
    for _, b in ipairs(chunk) do
      n = n + 1
      local id = index[b]
      if not id then error(string.format("byte %d at offset %d is not in the vocabulary", b, n), 0) end
      ids[n] = id
    end
  end
  return ids
end

-- Ids back to a string of bytes.
function M.decode(ids, vocab)
  local out = {}
  for i, id in ipairs(ids) do out[i] = string.char(vocab[id]) end
  return table.concat(out)
end

-- Splits a list of ids: the first (1 - val_frac) for training, the rest for
-- validation. Returns train, val (lists).
function M.split(ids, val_frac)
  local n_val = math.floor(#ids * val_frac + 0.5)
  local n_train = #ids - n_val
  return table.move(ids, 1, n_train, 1, {}), table.move(ids, n_train + 1, #ids, 1, {})
end

-- Batching. The first n = floor((#ids - 1) / (batch * seq)) * batch * seq ids
-- are cut into `batch` contiguous streams of L = n / batch ids each; stream b
-- (1-based) is ids[(b-1)*L + 1 .. b*L] and its targets are the ids one
-- position later. Window w (1-based) of every stream covers positions
-- (w-1)*seq + 1 .. w*seq, so consecutive windows continue each stream and the
-- RNN state can be carried across them. Returns a batcher with
--   .num_batches (windows per epoch, L / seq), .batch, .seq, .tokens (n)
--   :get(w) -> x, y: tables {batch}{seq} of ids for window w.
-- Returns nil when the ids are too few for one window.
function M.batcher(ids, batch, seq)
  local n = (#ids - 1) // (batch * seq) * (batch * seq)
  if n == 0 then return nil end
  local L = n // batch
  local batcher = { num_batches = L // seq, batch = batch, seq = seq, tokens = n, stream_length = L }
  function batcher:get(w)
    assert(w >= 1 and w <= self.num_batches, "window out of range")
    local x, y = {}, {}
    for b = 1, batch do
      local base = (b - 1) * L + (w - 1) * seq
      local xr, yr = {}, {}
      for t = 1, seq do
        xr[t] = ids[base + t]
        yr[t] = ids[base + t + 1]
      end
      x[b], y[b] = xr, yr
    end
    return x, y
  end
  return batcher
end

return M
