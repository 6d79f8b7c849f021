-- Sequence-to-sequence translation of numbers (1..9999) from English words to
-- French words with an encoder-decoder LSTM, as in TensorFlow's seq2seq
-- tutorial: source embeddings -> encoder LSTM (dynamic_rnn with
-- sequence_length) -> its final state initialises the decoder LSTM, trained
-- with teacher forcing (<go> + target in, target + <eos> out, padding masked
-- out of the loss); decoding runs a one-step decoder graph that shares the
-- trained variables (variable_scope reuse), greedily or with beam search.
-- Reports exact-match accuracy and token error rate on held-out numbers that
-- never appear in training.
--
-- --task dates: human-written dates of many formats ("Tuesday, March 3,
-- 1987", "3 mar 87", "03/03/1987", "the 3rd of March, 1987", ...) to ISO
-- dates ("1987-03-03"), character by character; held-out dates never appear
-- in training.
-- --attention: the decoder attends over the encoder's outputs, built from
-- tf.contrib.seq2seq (LuongAttention or BahdanauAttention, AttentionWrapper,
-- TrainingHelper + BasicDecoder + dynamic_decode for training, a
-- GreedyEmbeddingHelper and a BeamSearchDecoder for decoding, in-graph).
--
--   . scripts/env.sh build
--   lua5.4 scripts/seq2seq.lua [--task numbers|dates] [--attention [--attention_type luong|bahdanau]]
--     [--steps N] [--batch_size B] [--hidden H] [--embed E]
--     [--layers L] [--lr R] [--beam_width K] [--seed S] [--embeddings FILE] [--time_limit SEC]
--
-- `lua5.4 scripts/seq2seq.lua --help` lists every option. Required as a
-- module (require("seq2seq") with scripts/ on package.path) it returns its
-- pieces (data, vocabularies, embeddings loader, main) without running.
local script_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or "."
package.path = script_dir .. "/lib/?.lua;" .. package.path

local F = require("french_numbers")
local D = require("dates")
local tf = require("moonflow")

local M = { french_numbers = F, dates = D }

M.PAD, M.GO, M.EOS = 1, 2, 3 -- token ids in both vocabularies (1-based)
local PAD, GO, EOS = M.PAD, M.GO, M.EOS

-- ---------------------------------------------------------------- data

-- split_numbers(seed, val_frac, heldout_frac): a seeded shuffle of 1..9999
-- cut into training, validation and held-out lists (disjoint).
function M.split_numbers(seed, val_frac, heldout_frac)
  math.randomseed(seed)
  local order = {}
  for n = 1, 9999 do order[n] = n end
  for k = #order, 2, -1 do
    local j = math.random(k)
    order[k], order[j] = order[j], order[k]
  end
  local n_held = math.floor(9999 * heldout_frac + 0.5)
  local n_val = math.floor(9999 * val_frac + 0.5)
  local train, val, held = {}, {}, {}
  for k, n in ipairs(order) do
    if k <= n_held then held[#held + 1] = n
    elseif k <= n_held + n_val then val[#val + 1] = n
    else train[#train + 1] = n end
  end
  return train, val, held
end

-- A vocabulary: <pad>, <go>, <eos>, then the words of `numbers` rendered by
-- `render`, sorted. Fields: words (id -> word), ids (word -> id), size.
-- Built from every number 1..9999 so that decoding can name any word; the
-- held-out split is about unseen numbers, every single word still occurs in
-- training (the spec checks that).
function M.build_vocab(render, numbers, split_hyphens)
  local seen, words = {}, {}
  for _, n in ipairs(numbers) do
    for _, w in ipairs(F.tokenize(render(n), split_hyphens)) do
      if not seen[w] then seen[w] = true; words[#words + 1] = w end
    end
  end
  table.sort(words)
  local v = { words = { "<pad>", "<go>", "<eos>" }, ids = {} }
  for _, w in ipairs(words) do v.words[#v.words + 1] = w end
  for id, w in ipairs(v.words) do v.ids[w] = id end
  v.size = #v.words
  return v
end

function M.encode(vocab, sentence, split_hyphens)
  local ids = {}
  for i, w in ipairs(F.tokenize(sentence, split_hyphens)) do
    ids[i] = vocab.ids[w] or error("word not in the vocabulary: " .. w)
  end
  return ids
end

function M.decode_words(vocab, ids, join)
  local words = {}
  for _, id in ipairs(ids) do
    if id == EOS then break end
    words[#words + 1] = vocab.words[id]
  end
  if join then return table.concat(words, join) end
  return F.detokenize(words)
end

-- ---------------------------------------------------------------- tasks

-- A character vocabulary (<pad>, <go>, <eos>, then the characters sorted).
function M.char_vocab(strings)
  local seen, chars = {}, {}
  for _, str in ipairs(strings) do
    for _, c in ipairs(D.chars(str)) do
      if not seen[c] then seen[c] = true; chars[#chars + 1] = c end
    end
  end
  table.sort(chars)
  local v = { words = { "<pad>", "<go>", "<eos>" }, ids = {} }
  for _, c in ipairs(chars) do v.words[#v.words + 1] = c end
  for id, w in ipairs(v.words) do v.ids[w] = id end
  v.size = #v.words
  return v
end

-- The dates task: every day of 1950..2049 written in one of the formats
-- (chosen by the seed), split by day into training, validation and held-out
-- keys (indices into src / tgt).
function M.dates_task(seed, val_frac, heldout_frac)
  math.randomseed(seed)
  local days = D.all_days()
  local n = #days
  local src_text, tgt_text = {}, {}
  for i, day in ipairs(days) do
    src_text[i] = D.write(day[1], day[2], day[3], math.random(D.NFORMATS))
    tgt_text[i] = D.iso(day[1], day[2], day[3])
  end
  local order = {}
  for i = 1, n do order[i] = i end
  for k = n, 2, -1 do
    local j = math.random(k)
    order[k], order[j] = order[j], order[k]
  end
  local n_held, n_val = math.floor(n * heldout_frac + 0.5), math.floor(n * val_frac + 0.5)
  local train, val, held = {}, {}, {}
  for k, i in ipairs(order) do
    if k <= n_held then held[#held + 1] = i
    elseif k <= n_held + n_val then val[#val + 1] = i
    else train[#train + 1] = i end
  end
  local src_vocab, tgt_vocab = M.char_vocab(src_text), M.char_vocab(tgt_text)
  local data = { src = {}, tgt = {} }
  local S, T = 0, 0
  for i = 1, n do
    local a, b = {}, {}
    for k, c in ipairs(D.chars(src_text[i])) do a[k] = src_vocab.ids[c] end
    for k, c in ipairs(D.chars(tgt_text[i])) do b[k] = tgt_vocab.ids[c] end
    data.src[i], data.tgt[i] = a, b
    S, T = math.max(S, #a), math.max(T, #b + 1)
  end
  return { name = "dates", train = train, val = val, held = held, data = data, src_vocab = src_vocab,
           tgt_vocab = tgt_vocab, S = S, T = T, join = "", what = "dates",
           src_text = function(i) return src_text[i] end, tgt_text = function(i) return tgt_text[i] end }
end

-- The numbers task: 1..9999 from English words to French words.
function M.numbers_task(seed, val_frac, heldout_frac, split_hyphens)
  local train, val, held = M.split_numbers(seed, val_frac, heldout_frac)
  local all = {}
  for n = 1, 9999 do all[n] = n end
  local src_vocab = M.build_vocab(F.english, all, split_hyphens)
  local tgt_vocab = M.build_vocab(F.french, all, split_hyphens)
  local data = { src = {}, tgt = {} }
  local S, T = 0, 0
  for n = 1, 9999 do
    data.src[n] = M.encode(src_vocab, F.english(n), split_hyphens)
    data.tgt[n] = M.encode(tgt_vocab, F.french(n), split_hyphens)
    S, T = math.max(S, #data.src[n]), math.max(T, #data.tgt[n] + 1)
  end
  return { name = "numbers", train = train, val = val, held = held, data = data, src_vocab = src_vocab,
           tgt_vocab = tgt_vocab, S = S, T = T, what = "numbers", src_text = F.english, tgt_text = F.french }
end

-- ---------------------------------------------------------------- embeddings file

-- load_embeddings(path, vocabs, dim): reads a GloVe / word2vec text file
-- (`word v1 v2 ...` per line, optionally a word2vec header "count dim") and
-- returns, for each vocabulary in `vocabs`, a table id -> vector (a list of
-- numbers) for the words the file has, and the count of those words.
-- Raises an error naming the file, the line and both dimensions when a
-- vector (or the header) does not have `dim` values.
function M.load_embeddings(path, vocabs, dim)
  local f, err = io.open(path, "r")
  if not f then error("--embeddings: cannot open " .. tostring(err), 0) end
  local found, counts = {}, {}
  for i = 1, #vocabs do found[i], counts[i] = {}, 0 end
  local lineno = 0
  for line in f:lines() do
    lineno = lineno + 1
    local word, rest = line:match("^%s*(%S+)%s*(.-)%s*$")
    if word then
      local _, nvals = rest:gsub("%S+", "")
      if lineno == 1 and nvals == 1 and word:match("^%d+$") and rest:match("^%d+$") then
        local hdim = tonumber(rest)
        if hdim ~= dim then
          f:close()
          error(string.format("%s:1: the word2vec header declares %d dimensions, but the embeddings have %d (--embed %d)",
                              path, hdim, dim, dim), 0)
        end
      else
        if nvals ~= dim then
          f:close()
          error(string.format("%s:%d: the vector for '%s' has %d dimensions, but the embeddings have %d (--embed %d)",
                              path, lineno, word, nvals, dim, dim), 0)
        end
        local vec
        for i, v in ipairs(vocabs) do
          local id = v.ids[word]
          if id and not found[i][id] then
            if not vec then
              vec = {}
              for x in rest:gmatch("%S+") do
                local num = tonumber(x)
                if not num then
                  f:close()
                  error(string.format("%s:%d: '%s' is not a number", path, lineno, x), 0)
                end
                vec[#vec + 1] = num
              end
            end
            found[i][id] = vec
            counts[i] = counts[i] + 1
          end
        end
      end
    end
  end
  f:close()
  return found, counts
end

-- ---------------------------------------------------------------- model

-- Flattens an RNN state (an LSTM {c, h}, or a MultiRNNCell's list of them)
-- into a list of tensors, layer by layer, c before h.
local function flatten_state(state, out)
  out = out or {}
  if state.c then
    out[#out + 1] = state.c
    out[#out + 1] = state.h
  else
    for _, s in ipairs(state) do flatten_state(s, out) end
  end
  return out
end

local function make_cell(o)
  if o.layers == 1 then return tf.nn.rnn_cell.LSTMCell(o.hidden) end
  local cells = {}
  for i = 1, o.layers do cells[i] = tf.nn.rnn_cell.LSTMCell(o.hidden) end
  return tf.nn.rnn_cell.MultiRNNCell(cells)
end

-- Builds the training graph and the one-step decoder graph in the default
-- graph. S and T: padded source and decoder lengths.
function M.build_model(o, src_vocab, tgt_vocab, S, T)
  local m = { S = S, T = T }
  m.src = tf.placeholder("int32", { -1, S }, "src")
  m.src_len = tf.placeholder("int32", { -1 }, "src_len")
  m.dec_in = tf.placeholder("int32", { -1, T }, "dec_in")
  m.dec_out = tf.placeholder("int32", { -1, T }, "dec_out")
  m.tgt_len = tf.placeholder("int32", { -1 }, "tgt_len")

  local emb_init = tf.random_uniform_initializer { minval = -0.1, maxval = 0.1 }
  -- Encoder.
  tf.variable_scope("encoder", function()
    m.src_embedding = tf.get_variable("embedding", { src_vocab.size, o.embed }, { initializer = emb_init })
    local x = tf.nn.embedding_lookup(m.src_embedding, m.src)
    local _, state = tf.nn.dynamic_rnn(make_cell(o), x, { sequence_length = m.src_len })
    m.enc_state = state
  end)
  m.enc_state_flat = flatten_state(m.enc_state)

  -- Decoder, teacher forced.
  local logits
  tf.variable_scope("decoder", function()
    m.tgt_embedding = tf.get_variable("embedding", { tgt_vocab.size, o.embed }, { initializer = emb_init })
    local x = tf.nn.embedding_lookup(m.tgt_embedding, m.dec_in)
    local y = tf.nn.dynamic_rnn(make_cell(o), x, { initial_state = m.enc_state, sequence_length = m.tgt_len })
    logits = tf.layers.dense(y, tgt_vocab.size, { name = "projection" })  -- {B, T, V}
  end)
  -- Loss: cross-entropy per target token, weighted by 1 inside the target
  -- (its words and <eos>) and 0 on padding, averaged over real tokens.
  local V = tgt_vocab.size
  local ce = tf.nn.sparse_softmax_cross_entropy_with_logits {
    labels = tf.reshape(m.dec_out, { -1 }), logits = tf.reshape(logits, { -1, V }) }
  local weights = tf.cast(tf.less(tf.range(0, T), tf.expand_dims(m.tgt_len, 2)), "float32")  -- {B, T}
  weights = tf.reshape(weights, { -1 })
  m.loss = tf.reduce_sum(ce * weights) / tf.reduce_sum(weights)

  m.global_step = tf.train.get_or_create_global_step()
  m.lr = tf.placeholder_with_default(tf.constant(o.lr), {}, "learning_rate")
  local opt = tf.train.AdamOptimizer(m.lr)
  local gv = opt:compute_gradients(m.loss)
  local grads, vars = {}, {}
  for i, p in ipairs(gv) do grads[i], vars[i] = p[1], p[2] end
  local clipped, norm = tf.clip_by_global_norm(grads, o.clip)
  local pairs_ = {}
  for i = 1, #vars do pairs_[i] = { clipped[i], vars[i] } end
  m.grad_norm = norm
  m.train_op = opt:apply_gradients(pairs_, { global_step = m.global_step })

  -- One decoder step sharing the trained variables: the previous token and
  -- the state rows to continue from (`sel` picks rows of the fed state, so
  -- beam search reorders its hypotheses inside the graph).
  tf.variable_scope("decoder", { reuse = true }, function()
    m.step_prev = tf.placeholder("int32", { -1 }, "step_prev")
    m.step_sel = tf.placeholder("int32", { -1 }, "step_sel")
    m.step_state_in = {}
    local state = {}
    for l = 1, o.layers do
      local c = tf.placeholder("float32", { -1, o.hidden }, "step_c" .. l)
      local h = tf.placeholder("float32", { -1, o.hidden }, "step_h" .. l)
      m.step_state_in[#m.step_state_in + 1] = c
      m.step_state_in[#m.step_state_in + 1] = h
      state[l] = { c = tf.gather(c, m.step_sel), h = tf.gather(h, m.step_sel) }
    end
    if o.layers == 1 then state = state[1] end
    local emb = tf.get_variable("embedding", { tgt_vocab.size, o.embed })
    assert(emb == m.tgt_embedding, "the step graph must share the decoder's embedding")
    local x = tf.nn.embedding_lookup(emb, m.step_prev)
    local cell = make_cell(o)
    local out, new_state = tf.variable_scope("rnn", function() return cell(x, state) end)
    local step_logits = tf.layers.dense(out, V, { name = "projection" })
    -- <pad> and <go> are never produced.
    local ban = {}
    for id = 1, V do ban[id] = (id == PAD or id == GO) and -1e9 or 0.0 end
    m.step_logp = tf.nn.log_softmax(step_logits + tf.constant(ban))
    m.step_best = tf.argmax(m.step_logp, 2)
    m.step_state_out = flatten_state(new_state)
  end)

  -- Assigning pretrained embeddings.
  m.emb_feed, m.emb_assign = {}, {}
  for k, var in pairs({ src = m.src_embedding, tgt = m.tgt_embedding }) do
    m.emb_feed[k] = tf.placeholder("float32", var.shape, "emb_value_" .. k)
    m.emb_assign[k] = var:assign(m.emb_feed[k]).op
  end
  return m
end

-- The encoder-decoder with attention, from tf.contrib.seq2seq: the same
-- encoder; a decoder cell wrapped in an AttentionWrapper over the encoder's
-- outputs (masked past each source length), its state started from the
-- encoder's final state; trained through TrainingHelper + BasicDecoder +
-- dynamic_decode and sequence_loss; decoded in the graph by a
-- GreedyEmbeddingHelper and a BeamSearchDecoder over the tiled memory.
function M.build_attention_model(o, src_vocab, tgt_vocab, S, T)
  local s2s = tf.contrib.seq2seq
  local m = { S = S, T = T, attention = true }
  m.src = tf.placeholder("int32", { -1, S }, "src")
  m.src_len = tf.placeholder("int32", { -1 }, "src_len")
  m.dec_in = tf.placeholder("int32", { -1, T }, "dec_in")
  m.dec_out = tf.placeholder("int32", { -1, T }, "dec_out")
  m.tgt_len = tf.placeholder("int32", { -1 }, "tgt_len")
  local V = tgt_vocab.size
  local emb_init = tf.random_uniform_initializer { minval = -0.1, maxval = 0.1 }
  local B = tf.gather(tf.shape(m.src), 1)
  local mechanism = o.attention_type == "bahdanau" and s2s.BahdanauAttention or s2s.LuongAttention
  local dec_cell = make_cell(o)
  local proj = tf.layers.Dense(V, { name = "output_projection" })
  local memory, enc_state
  tf.variable_scope("nmt", function()
    tf.variable_scope("encoder", function()
      m.src_embedding = tf.get_variable("embedding", { src_vocab.size, o.embed }, { initializer = emb_init })
      local x = tf.nn.embedding_lookup(m.src_embedding, m.src)
      memory, enc_state = tf.nn.dynamic_rnn(make_cell(o), x, { sequence_length = m.src_len })
    end)
    m.tgt_embedding = tf.get_variable("decoder_embedding", { tgt_vocab.size, o.embed }, { initializer = emb_init })
    local cell = s2s.AttentionWrapper(dec_cell, mechanism(o.hidden, memory, m.src_len),
                                      { attention_layer_size = o.hidden })
    local init = cell:zero_state(B):clone { cell_state = enc_state }
    -- Teacher forcing over all T steps (padding is masked out of the loss).
    local full = tf.zeros_like(m.tgt_len) + T
    local helper = s2s.TrainingHelper(tf.nn.embedding_lookup(m.tgt_embedding, m.dec_in), full)
    local out = s2s.dynamic_decode(s2s.BasicDecoder(cell, helper, init, proj))
    m.loss = s2s.sequence_loss(out.rnn_output, m.dec_out, tf.sequence_mask(m.tgt_len, T, "float32"))
    local start = tf.zeros_like(m.src_len) + GO
    local greedy = s2s.dynamic_decode(s2s.BasicDecoder(cell, s2s.GreedyEmbeddingHelper(m.tgt_embedding, start, EOS),
                                                       init, proj), { maximum_iterations = T })
    m.greedy_ids = greedy.sample_id
  end)
  if o.beam_width > 1 then
    local K = o.beam_width
    tf.variable_scope("nmt", { reuse = true }, function()
      local cell = s2s.AttentionWrapper(dec_cell, mechanism(o.hidden, s2s.tile_batch(memory, K),
                                                            s2s.tile_batch(m.src_len, K)),
                                        { attention_layer_size = o.hidden })
      local init = cell:zero_state(B * K):clone { cell_state = s2s.tile_batch(enc_state, K) }
      local dec = s2s.BeamSearchDecoder(cell, m.tgt_embedding, tf.zeros_like(m.src_len) + GO, EOS, init, K, proj)
      m.beam_ids = s2s.dynamic_decode(dec, { maximum_iterations = T }).predicted_ids
    end)
  end

  m.global_step = tf.train.get_or_create_global_step()
  m.lr = tf.placeholder_with_default(tf.constant(o.lr), {}, "learning_rate")
  local opt = tf.train.AdamOptimizer(m.lr)
  local gv = opt:compute_gradients(m.loss)
  local grads, vars = {}, {}
  for i, p in ipairs(gv) do grads[i], vars[i] = p[1], p[2] end
  local clipped, norm = tf.clip_by_global_norm(grads, o.clip)
  local pairs_ = {}
  for i = 1, #vars do pairs_[i] = { clipped[i], vars[i] } end
  m.grad_norm = norm
  m.train_op = opt:apply_gradients(pairs_, { global_step = m.global_step })
  m.emb_feed, m.emb_assign = {}, {}
  for k, var in pairs({ src = m.src_embedding, tgt = m.tgt_embedding }) do
    m.emb_feed[k] = tf.placeholder("float32", var.shape, "emb_value_" .. k)
    m.emb_assign[k] = var:assign(m.emb_feed[k]).op
  end
  return m
end

-- Padded batch feeds for a list of numbers.
function M.make_feeds(m, data, numbers, with_targets)
  local src, src_len, dec_in, dec_out, tgt_len = {}, {}, {}, {}, {}
  for b, n in ipairs(numbers) do
    local s = data.src[n]
    local row = {}
    for t = 1, m.S do row[t] = s[t] or PAD end
    src[b], src_len[b] = row, #s
    if with_targets then
      local y = data.tgt[n]
      local di, dout = { GO }, {}
      for t = 1, m.T do
        di[t + 1] = t < m.T and (y[t] or PAD) or nil
        dout[t] = y[t] or (t == #y + 1 and EOS or PAD)
      end
      dec_in[b], dec_out[b], tgt_len[b] = di, dout, #y + 1
    end
  end
  local feeds = { [m.src] = src, [m.src_len] = src_len }
  if with_targets then
    feeds[m.dec_in], feeds[m.dec_out], feeds[m.tgt_len] = dec_in, dec_out, tgt_len
  end
  return feeds
end

-- Encodes `numbers` and returns the encoder's final state (a flat list of Arrays).
local function encode_batch(sess, m, data, numbers)
  return sess:run(m.enc_state_flat, M.make_feeds(m, data, numbers, false))
end

local function step_feeds(m, states, prev, sel)
  local feeds = { [m.step_prev] = prev, [m.step_sel] = sel }
  for i, ph in ipairs(m.step_state_in) do feeds[ph] = states[i] end
  return feeds
end

-- greedy_decode(sess, m, data, numbers, max_len): a list of token-id lists,
-- each ending with <eos> unless max_len tokens came without one.
-- In-graph decoding (the attention model): rows of ids, beam 1 of a beam search.
local function graph_decode(sess, m, data, numbers, fetch, beam)
  local out = {}
  local chunk = 500
  for first = 1, #numbers, chunk do
    local part = table.move(numbers, first, math.min(#numbers, first + chunk - 1), 1, {})
    local ids = sess:run(fetch, M.make_feeds(m, data, part, false)):totable()
    for i, row in ipairs(ids) do
      local r = {}
      for t, v in ipairs(row) do r[t] = beam and v[1] or v end
      out[first + i - 1] = r
    end
  end
  return out
end

function M.greedy_decode(sess, m, data, numbers, max_len)
  if m.attention then return graph_decode(sess, m, data, numbers, m.greedy_ids) end
  local N = #numbers
  local states = encode_batch(sess, m, data, numbers)
  local prev, sel, out, done = {}, {}, {}, {}
  for i = 1, N do prev[i], sel[i], out[i] = GO, i, {} end
  local left = N
  for _ = 1, max_len do
    local r = sess:run({ best = m.step_best, state = m.step_state_out }, step_feeds(m, states, prev, sel))
    states = r.state
    for i = 1, N do
      if not done[i] then
        local tok = r.best[i]
        out[i][#out[i] + 1] = tok
        if tok == EOS then done[i] = true; left = left - 1 end
        prev[i] = tok
      end
    end
    if left == 0 then break end
  end
  return out
end

-- beam_decode(sess, m, data, numbers, K, max_len): beam search of width K
-- over all `numbers` at once (N*K rows per step). Scores are sums of log
-- probabilities; a source stops once its best finished hypothesis scores at
-- least as well as its best live one (live scores only fall), and at max_len
-- only <eos> may follow, so every result ends with <eos>. Returns the best
-- hypothesis (token ids, <eos> included) per source and its score.
function M.beam_decode(sess, m, data, numbers, K, max_len)
  if m.attention then return graph_decode(sess, m, data, numbers, m.beam_ids, true) end
  local N = #numbers
  local states = encode_batch(sess, m, data, numbers)
  local V = m.V
  local prev, sel = {}, {}
  local beams, finished, done = {}, {}, {}
  for i = 1, N do
    beams[i], finished[i] = {}, {}
    for b = 1, K do
      local row = (i - 1) * K + b
      prev[row], sel[row] = GO, i
      -- only the first beam is live at the start
      beams[i][b] = { toks = {}, score = b == 1 and 0.0 or -math.huge }
    end
  end
  for t = 1, max_len do
    local r = sess:run({ logp = m.step_logp, state = m.step_state_out }, step_feeds(m, states, prev, sel))
    states = r.state
    local logp = r.logp
    local n_live = 0
    for i = 1, N do
      local base = (i - 1) * K
      if done[i] then
        for b = 1, K do prev[base + b], sel[base + b] = EOS, base + b end
      else
        -- the 2K best extensions (K of them at least do not end here)
        local cand = {}
        local function push(score, b, v)
          if #cand == 2 * K and score <= cand[#cand][1] then return end
          local c = { score, b, v }
          local j = #cand
          if j == 2 * K then cand[j] = nil; j = j - 1 end
          while j >= 1 and cand[j][1] < score do cand[j + 1] = cand[j]; j = j - 1 end
          cand[j + 1] = c
        end
        for b = 1, K do
          local beam = beams[i][b]
          if beam.score > -math.huge then
            local off = (base + b - 1) * V
            if t == max_len then
              push(beam.score + logp:flat(off + EOS), b, EOS)
            else
              for v = 1, V do
                if v ~= PAD and v ~= GO then push(beam.score + logp:flat(off + v), b, v) end
              end
            end
          end
        end
        local new = {}
        for _, c in ipairs(cand) do
          local score, b, v = c[1], c[2], c[3]
          local toks = table.move(beams[i][b].toks, 1, #beams[i][b].toks, 1, {})
          toks[#toks + 1] = v
          if v == EOS then
            finished[i][#finished[i] + 1] = { toks = toks, score = score }
          elseif #new < K then
            new[#new + 1] = { toks = toks, score = score, parent = b }
          end
        end
        local best_fin = -math.huge
        for _, h in ipairs(finished[i]) do best_fin = math.max(best_fin, h.score) end
        if #new == 0 or best_fin >= new[1].score then
          done[i] = true
          for b = 1, K do prev[base + b], sel[base + b] = EOS, base + b end
        else
          n_live = n_live + 1
          for b = 1, K do
            local h = new[b]
            if h then
              beams[i][b] = h
              prev[base + b], sel[base + b] = h.toks[#h.toks], base + h.parent
            else
              beams[i][b] = { toks = {}, score = -math.huge }
              prev[base + b], sel[base + b] = EOS, base + b
            end
          end
        end
      end
    end
    if n_live == 0 then break end
  end
  local out, scores = {}, {}
  for i = 1, N do
    local best
    for _, h in ipairs(finished[i]) do
      if not best or h.score > best.score then best = h end
    end
    out[i], scores[i] = best.toks, best.score
  end
  return out, scores
end

-- Levenshtein distance between two token lists.
function M.edit_distance(a, b)
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    for j = 1, #b do
      local cost = a[i] == b[j] and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

-- Exact-match accuracy and token error rate (total edit distance / total
-- reference length, <eos> excluded) of decoded outputs against the targets.
function M.score(data, numbers, outputs)
  local exact, dist, ref_len = 0, 0, 0
  for i, n in ipairs(numbers) do
    local hyp = {}
    for _, id in ipairs(outputs[i]) do
      if id == EOS then break end
      hyp[#hyp + 1] = id
    end
    local ref = data.tgt[n]
    local d = M.edit_distance(hyp, ref)
    if d == 0 and #hyp == #ref then exact = exact + 1 end
    dist, ref_len = dist + d, ref_len + #ref
  end
  return exact / #numbers, dist / ref_len, exact
end

-- ---------------------------------------------------------------- main

local function parser()
  local argparse = require("argparse")
  local p = argparse("seq2seq.lua",
    "Train an LSTM encoder-decoder to translate numbers (1..9999) from English words to French words, "
    .. "then report exact match and token error rate on held-out numbers never seen in training.")
  p:option("--steps", "Training steps (batches).", "1500", tonumber)
  p:option("--batch_size", "Sentence pairs per batch.", "64", tonumber)
  p:option("--hidden", "LSTM units (encoder and decoder).", "128", tonumber)
  p:option("--embed", "Word embedding size (source and target).", "64", tonumber)
  p:option("--layers", "LSTM layers (a MultiRNNCell when > 1).", "1", tonumber)
  p:option("--lr", "Adam learning rate.", "0.005", tonumber)
  p:option("--lr_decay", "Multiply the learning rate by this at 60% and again at 85% of --steps.", "0.3", tonumber)
  p:option("--clip", "Clip gradients to this global norm.", "5.0", tonumber)
  p:option("--beam_width", "Beam width for the held-out evaluation (1: greedy only).", "3", tonumber)
  p:option("--seed", "Seed for the data split, batches and initial weights.", "1", tonumber)
  p:option("--embeddings", "GloVe / word2vec text file to initialise the embedding matrices from "
    .. "(source and target words found in it); its dimension must equal --embed.")
  p:option("--time_limit", "Stop training after this many seconds (wall clock; 0: no limit).", "540", tonumber)
  p:option("--val_frac", "Fraction of 1..9999 used for validation.", "0.05", tonumber)
  p:option("--heldout_frac", "Fraction of 1..9999 held out for the final evaluation.", "0.1", tonumber)
  p:option("--eval_every", "Validate (greedy exact match) every this many steps.", "250", tonumber)
  p:option("--target_val_acc", "Stop once validation exact match reaches this (above 1: never).", "2", tonumber)
  p:option("--threads", "Intra-op threads (0: the runtime's default).", "0", tonumber)
  p:option("--show", "Print this many held-out translations.", "8", tonumber)
  p:flag("--split_hyphens", "Split hyphenated words into pieces (\"quatre-\" \"vingt-\" \"dix\") "
    .. "instead of keeping each as one token.")
  p:flag("--quiet", "Only print the final results.")
  p:option("--task", "numbers: English to French numbers (words); dates: human-written dates to ISO dates "
    .. "(characters).", "numbers"):choices({ "numbers", "dates" })
  p:flag("--attention", "Attend over the encoder's outputs (tf.contrib.seq2seq's AttentionWrapper).")
  p:option("--attention_type", "luong or bahdanau (with --attention).", "luong"):choices({ "luong", "bahdanau" })
  return p
end

local function now()
  local p = io.popen("date +%s.%N")
  local t = p and tonumber(p:read("l"))
  if p then p:close() end
  return t or os.time()
end

-- main(argv): parses options, trains, evaluates. Returns a table of results
-- (used by the spec): accuracies, TERs, steps, seconds, the vocabularies and
-- the beam outputs for the held-out numbers.
function M.main(argv)
  local o = parser():parse(argv)
  for _, k in ipairs({ "steps", "batch_size", "hidden", "embed", "layers", "beam_width", "seed", "threads" }) do
    if math.type(o[k]) ~= "integer" or o[k] < 0 or (o[k] == 0 and k ~= "threads" and k ~= "steps") then
      error(string.format("--%s must be a positive integer, got %s", k, tostring(o[k])), 0)
    end
  end
  if not (o.heldout_frac > 0 and o.val_frac > 0 and o.heldout_frac + o.val_frac < 1) then
    error("--heldout_frac and --val_frac must be positive and sum to less than 1", 0)
  end
  if o.eval_every < 1 then error("--eval_every must be at least 1", 0) end
  local function log(...) if not o.quiet then print(string.format(...)) end; io.stdout:flush() end
  local res_embeddings

  -- Data.
  local task = o.task == "dates" and M.dates_task(o.seed, o.val_frac, o.heldout_frac)
               or M.numbers_task(o.seed, o.val_frac, o.heldout_frac, o.split_hyphens)
  local train, val, held = task.train, task.val, task.held
  local src_vocab, tgt_vocab, data, S, T = task.src_vocab, task.tgt_vocab, task.data, task.S, task.T
  log("data (%s): %d training, %d validation, %d held-out %s; vocabularies %d source, %d target; "
      .. "max lengths %d source, %d target (+<eos>)%s", task.name, #train, #val, #held, task.what,
      src_vocab.size, tgt_vocab.size, S, T - 1, o.attention and "; attention " .. o.attention_type or "")

  -- Pretrained vectors, read (and checked) before anything is built.
  local found, counts
  if o.embeddings then
    found, counts = M.load_embeddings(o.embeddings, { src_vocab, tgt_vocab }, o.embed)
    print(string.format("embeddings: %d of %d English words and %d of %d French words found in %s",
      counts[1], src_vocab.size - 3, counts[2], tgt_vocab.size - 3, o.embeddings))
    res_embeddings = { src = counts[1], tgt = counts[2] }
  end

  local g = tf.Graph()
  local _ <close> = g:as_default()
  tf.set_random_seed(o.seed)
  local m = (o.attention and M.build_attention_model or M.build_model)(o, src_vocab, tgt_vocab, S, T)
  m.V = tgt_vocab.size
  local sess <close> = tf.Session { config = o.threads > 0 and { intra_op_threads = o.threads } or nil }
  sess:run(tf.global_variables_initializer())

  if found then
    for k, key in ipairs({ "src", "tgt" }) do
      if counts[k] > 0 then
        local var = key == "src" and m.src_embedding or m.tgt_embedding
        local mat = sess:run(var):totable()
        for id, vec in pairs(found[k]) do mat[id] = vec end
        sess:run(m.emb_assign[key], { [m.emb_feed[key]] = mat })
      end
    end
  end

  -- Training: shuffled epochs over the training numbers.
  local t0 = now()
  local order, pos = {}, math.huge
  local function next_batch()
    local b = {}
    for k = 1, o.batch_size do
      if pos > #order then
        order = table.move(train, 1, #train, 1, {})
        for i = #order, 2, -1 do local j = math.random(i); order[i], order[j] = order[j], order[i] end
        pos = 1
      end
      b[k] = order[pos]; pos = pos + 1
    end
    return b
  end
  local steps_done, loss_avg, stop_reason = 0, nil, "steps"
  for step = 1, o.steps do
    local frac = (step - 1) / o.steps
    local lr = o.lr * (frac >= 0.85 and o.lr_decay ^ 2 or frac >= 0.6 and o.lr_decay or 1)
    local feeds = M.make_feeds(m, data, next_batch(), true)
    feeds[m.lr] = lr
    local r = sess:run({ loss = m.loss, _ = m.train_op }, feeds)
    local l = r.loss:item()
    loss_avg = loss_avg and 0.95 * loss_avg + 0.05 * l or l
    steps_done = step
    local last = step == o.steps
    if step % o.eval_every == 0 or last then
      local acc = M.score(data, val, M.greedy_decode(sess, m, data, val, T))
      local el = now() - t0
      log("step %5d  loss %.4f  lr %.2g  validation exact %.4f  %.0f s  %.1f steps/s",
          step, loss_avg, lr, acc, el, step / el)
      if acc >= o.target_val_acc then stop_reason = "validation target"; break end
    end
    if o.time_limit > 0 and step % 10 == 0 and now() - t0 > o.time_limit then
      stop_reason = "time limit"
      log("stopping at step %d: --time_limit %g s reached", step, o.time_limit)
      break
    end
  end
  local train_s = now() - t0

  -- Held-out evaluation.
  local res = { steps = steps_done, train_seconds = train_s, stop = stop_reason, loss = loss_avg,
                src_vocab = src_vocab, tgt_vocab = tgt_vocab, heldout = held, train = train, val = val,
                embeddings_found = res_embeddings, max_target = T, task = task }
  local te = now()
  local greedy = M.greedy_decode(sess, m, data, held, T)
  res.greedy_acc, res.greedy_ter, res.greedy_exact = M.score(data, held, greedy)
  res.greedy_seconds = now() - te
  res.greedy_outputs = greedy
  if o.beam_width > 1 then
    te = now()
    local beam = M.beam_decode(sess, m, data, held, o.beam_width, T)
    res.beam_acc, res.beam_ter, res.beam_exact = M.score(data, held, beam)
    res.beam_seconds = now() - te
    res.beam_outputs = beam
  end
  if not o.quiet then
    local shown = 0
    for i, n in ipairs(held) do
      if shown >= o.show then break end
      shown = shown + 1
      local got = M.decode_words(tgt_vocab, res.beam_outputs and res.beam_outputs[i] or greedy[i], task.join)
      local want = task.tgt_text(n)
      log("  %-45s -> %-45s %s", task.src_text(n), got, got == want and "ok" or ("(want " .. want .. ")"))
    end
  end
  print(string.format("trained %d steps in %.1f s (%s); held-out %d %s: greedy exact %.4f (%d) TER %.4f",
    steps_done, train_s, stop_reason, #held, task.what, res.greedy_acc, res.greedy_exact, res.greedy_ter))
  if res.beam_acc then
    print(string.format("beam search (width %d): exact %.4f (%d) TER %.4f  (%.1f s; greedy %.1f s)",
      o.beam_width, res.beam_acc, res.beam_exact, res.beam_ter, res.beam_seconds, res.greedy_seconds))
  end
  return res
end

-- Run as a script (not when required as a module).
local is_script = arg and arg[0] and arg[0]:match("seq2seq%.lua$") and (...) ~= "seq2seq"
if is_script then
  local ok, err = pcall(M.main, arg)
  if not ok then
    io.stderr:write("seq2seq.lua: ", tostring(err), "\n")
    os.exit(1)
  end
end
return M
