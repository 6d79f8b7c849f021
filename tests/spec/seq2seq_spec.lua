-- scripts/seq2seq.lua and scripts/lib/french_numbers.lua: the number
-- spellings against hand-checked examples, the data split, the embeddings
-- loader, and a very short end-to-end training run with greedy and beam
-- decoding.
package.path = "scripts/?.lua;scripts/lib/?.lua;" .. package.path
local F = require("french_numbers")
local S2S = require("seq2seq")
local tf = require("moonflow")

local sh = dofile("tests/spec/support/process.lua").sh

describe("french_numbers", function()
  -- Checked by hand against the traditional spelling rules.
  local french = {
    [1] = "un", [2] = "deux", [10] = "dix", [11] = "onze", [16] = "seize", [17] = "dix-sept",
    [19] = "dix-neuf", [20] = "vingt", [21] = "vingt et un", [22] = "vingt-deux", [30] = "trente",
    [31] = "trente et un", [41] = "quarante et un", [51] = "cinquante et un", [60] = "soixante",
    [61] = "soixante et un", [69] = "soixante-neuf", [70] = "soixante-dix", [71] = "soixante et onze",
    [72] = "soixante-douze", [77] = "soixante-dix-sept", [79] = "soixante-dix-neuf",
    [80] = "quatre-vingts", [81] = "quatre-vingt-un", [82] = "quatre-vingt-deux",
    [90] = "quatre-vingt-dix", [91] = "quatre-vingt-onze", [99] = "quatre-vingt-dix-neuf",
    [100] = "cent", [101] = "cent un", [121] = "cent vingt et un", [180] = "cent quatre-vingts",
    [200] = "deux cents", [201] = "deux cent un", [280] = "deux cent quatre-vingts",
    [281] = "deux cent quatre-vingt-un", [421] = "quatre cent vingt et un", [900] = "neuf cents",
    [971] = "neuf cent soixante et onze", [1000] = "mille", [1001] = "mille un", [1080] = "mille quatre-vingts",
    [1100] = "mille cent", [1200] = "mille deux cents", [1981] = "mille neuf cent quatre-vingt-un",
    [2000] = "deux mille", [2001] = "deux mille un", [2200] = "deux mille deux cents",
    [2280] = "deux mille deux cent quatre-vingts", [3071] = "trois mille soixante et onze",
    [4000] = "quatre mille", [8080] = "huit mille quatre-vingts",
    [9999] = "neuf mille neuf cent quatre-vingt-dix-neuf",
  }
  local english = {
    [1] = "one", [13] = "thirteen", [17] = "seventeen", [20] = "twenty", [21] = "twenty-one",
    [40] = "forty", [71] = "seventy-one", [80] = "eighty", [99] = "ninety-nine", [100] = "one hundred",
    [101] = "one hundred one", [200] = "two hundred", [280] = "two hundred eighty",
    [421] = "four hundred twenty-one", [1000] = "one thousand", [1001] = "one thousand one",
    [1981] = "one thousand nine hundred eighty-one", [2000] = "two thousand",
    [2200] = "two thousand two hundred", [9999] = "nine thousand nine hundred ninety-nine",
  }

  it("writes French with its real rules (hand-checked table)", function()
    for n, want in pairs(french) do assert.are.equal(want, F.french(n), "n = " .. n) end
  end)

  it("writes English (hand-checked table)", function()
    for n, want in pairs(english) do assert.are.equal(want, F.english(n), "n = " .. n) end
  end)

  it("gives every number in 1..9999 a distinct, well-formed spelling in both languages", function()
    local seen_fr, seen_en = {}, {}
    for n = 1, 9999 do
      local fr, en = F.french(n), F.english(n)
      assert(fr:match("^[a-z]+[a-z %-]*[a-z]$") and not fr:find("  ") and not fr:find("%- ") and not fr:find(" %-"), fr)
      assert(en:match("^[a-z]+[a-z %-]*[a-z]$") and not en:find("  "), en)
      assert(not fr:find("et un%-") and not fr:find("quatre%-vingt et"), fr)        -- no "et" after quatre-vingt
      assert(not fr:find("quatre%-vingts ") and not fr:find("cents "), fr)         -- plural only when final
      assert(not fr:find("un mille") and not fr:find("milles") and not fr:find("un cent"), fr)
      assert.is_nil(seen_fr[fr]); assert.is_nil(seen_en[en])
      seen_fr[fr], seen_en[en] = true, true
    end
  end)

  it("rejects numbers outside 1..9999", function()
    assert.has_error(function() F.french(0) end)
    assert.has_error(function() F.english(10000) end)
    assert.has_error(function() F.french(1.5) end)
  end)

  it("tokenizes on spaces (hyphenated words whole, or split after hyphens) and joins back", function()
    assert.are.same({ "quatre", "cent", "vingt", "et", "un" }, F.tokenize("quatre cent vingt et un"))
    assert.are.same({ "mille", "quatre-vingt-dix-neuf" }, F.tokenize("mille quatre-vingt-dix-neuf"))
    assert.are.same({ "mille", "quatre-", "vingt-", "dix-", "neuf" }, F.tokenize("mille quatre-vingt-dix-neuf", true))
    for n = 1, 9999, 7 do
      for _, s in ipairs({ F.french(n), F.english(n) }) do
        assert.are.equal(s, F.detokenize(F.tokenize(s)))
        assert.are.equal(s, F.detokenize(F.tokenize(s, true)))
      end
    end
  end)
end)

describe("seq2seq data", function()
  it("splits 1..9999 so that held-out and validation numbers never appear in training", function()
    local train, val, held = S2S.split_numbers(7, 0.05, 0.1)
    assert.are.equal(9999, #train + #val + #held)
    assert.are.equal(1000, #held)
    local where = {}
    for name, list in pairs({ train = train, val = val, held = held }) do
      for _, n in ipairs(list) do
        assert.is_nil(where[n], string.format("%d is in both %s and %s", n, tostring(where[n]), name))
        where[n] = name
      end
    end
    for n = 1, 9999 do assert.is_not_nil(where[n], n) end
    -- seeded: the same seed gives the same split, another seed another one
    local _, _, held2 = S2S.split_numbers(7, 0.05, 0.1)
    assert.are.same(held, held2)
    local _, _, held3 = S2S.split_numbers(8, 0.05, 0.1)
    assert.are_not.same(held, held3)
    -- every word of a held-out sentence occurs in some training sentence
    local tv = S2S.build_vocab(F.french, train)
    local sv = S2S.build_vocab(F.english, train)
    for _, n in ipairs(held) do
      for _, w in ipairs(F.tokenize(F.french(n))) do assert.is_not_nil(tv.ids[w], w) end
      for _, w in ipairs(F.tokenize(F.english(n))) do assert.is_not_nil(sv.ids[w], w) end
    end
  end)

  it("builds vocabularies with <pad>, <go>, <eos> first (1-based ids)", function()
    local v = S2S.build_vocab(F.french, { 1, 21, 80 })
    assert.are.same({ "<pad>", "<go>", "<eos>", "et", "quatre-vingts", "un", "vingt" }, v.words)
    assert.are.equal(S2S.PAD, v.ids["<pad>"]); assert.are.equal(S2S.GO, v.ids["<go>"])
    assert.are.equal(S2S.EOS, v.ids["<eos>"])
    assert.are.same({ 7, 4, 6 }, S2S.encode(v, "vingt et un"))
    assert.are.equal("vingt et un", S2S.decode_words(v, { 7, 4, 6, S2S.EOS, 5 }))
  end)

  it("computes edit distances", function()
    assert.are.equal(0, S2S.edit_distance({ 1, 2, 3 }, { 1, 2, 3 }))
    assert.are.equal(1, S2S.edit_distance({ 1, 2, 3 }, { 1, 3 }))
    assert.are.equal(2, S2S.edit_distance({}, { 4, 5 }))
    assert.are.equal(3, S2S.edit_distance({ 1, 2, 3 }, { 4, 5, 6 }))
  end)
end)

describe("seq2seq embeddings loader", function()
  local src = S2S.build_vocab(F.english, { 21, 100, 1000 }) -- twenty-one one hundred thousand
  local tgt = S2S.build_vocab(F.french, { 21, 100, 1000 })  -- vingt et un cent mille
  local function write(lines)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    return path
  end

  it("reads GloVe lines and a word2vec header, counting the vocabulary words found", function()
    local glove = write({ "one 0.1 0.2 0.3 0.4", "zebra 1 2 3 4", "mille -1 -2 -3 -4",
                          "hundred 0 0 0 1e-3", "cent 5 6 7 8", "one 9 9 9 9" })
    local found, counts = S2S.load_embeddings(glove, { src, tgt }, 4)
    os.remove(glove)
    assert.are.same({ 2, 2 }, counts)                        -- one, hundred / mille, cent; "zebra" unused
    assert.are.same({ 0.1, 0.2, 0.3, 0.4 }, found[1][src.ids["one"]]) -- the first occurrence wins
    assert.are.same({ -1, -2, -3, -4 }, found[2][tgt.ids["mille"]])
    local w2v = write({ "3 4", "thousand 1 2 3 4", "un 4 3 2 1", "vingt 1 1 1 1" })
    local _, counts2 = S2S.load_embeddings(w2v, { src, tgt }, 4)
    os.remove(w2v)
    assert.are.same({ 1, 2 }, counts2)
  end)

  it("names the line and both dimensions on a mismatch", function()
    local bad = write({ "one 1 2 3 4", "two 1 2 3 4", "hundred 1 2 3" })
    local ok, err = pcall(S2S.load_embeddings, bad, { src, tgt }, 4)
    assert.is_false(ok)
    assert.matches(":3:", err, 1, true)
    assert.matches("'hundred' has 3 dimensions, but the embeddings have 4", err, 1, true)
    ok, err = pcall(S2S.load_embeddings, bad, { src, tgt }, 5)
    assert.is_false(ok)
    assert.matches(":1: the vector for 'one' has 4 dimensions, but the embeddings have 5", err, 1, true)
    os.remove(bad)
    local hdr = write({ "2 300", "one 1 2 3 4" })
    ok, err = pcall(S2S.load_embeddings, hdr, { src, tgt }, 4)
    os.remove(hdr)
    assert.is_false(ok)
    assert.matches(":1: the word2vec header declares 300 dimensions, but the embeddings have 4", err, 1, true)
  end)
end)

describe("seq2seq model", function()
  it("shares every trained variable with the one-step decoder (variable_scope reuse)", function()
    local all = {}
    for n = 1, 9999 do all[n] = n end
    local sv, tv = S2S.build_vocab(F.english, all), S2S.build_vocab(F.french, all)
    local g = tf.Graph()
    g:as_default(function()
      S2S.build_model({ layers = 1, hidden = 8, embed = 4, lr = 0.01, clip = 5 }, sv, tv, 5, 8)
    end)
    local names = {}
    for _, v in ipairs(g:get_collection("trainable_variables")) do names[#names + 1] = v.op.name end
    table.sort(names)
    assert.are.same({ "decoder/embedding", "decoder/projection/bias", "decoder/projection/kernel",
                      "decoder/rnn/lstm_cell/bias", "decoder/rnn/lstm_cell/kernel",
                      "encoder/embedding", "encoder/rnn/lstm_cell/bias", "encoder/rnn/lstm_cell/kernel" }, names)
  end)

  it("trains end to end in a few seconds; greedy and beam (width 3) outputs are well formed", function()
    local glove = os.tmpname()
    local f = assert(io.open(glove, "w"))
    f:write("2 8\nseven 1 0 0 0 0 0 0 0\nsept 0 1 0 0 0 0 0 0\n")
    f:close()
    local res = S2S.main({ "--steps", "800", "--batch_size", "32", "--hidden", "32", "--embed", "8",
                           "--lr", "0.01", "--beam_width", "3", "--seed", "3", "--eval_every", "1000",
                           "--heldout_frac", "0.03", "--embeddings", glove, "--quiet" })
    os.remove(glove)
    assert.are.same({ src = 1, tgt = 1 }, res.embeddings_found)
    assert.are.equal(800, res.steps)
    assert(res.loss < 1.0, "the training loss did not fall: " .. tostring(res.loss))
    assert(res.greedy_ter < 0.6, "greedy TER " .. tostring(res.greedy_ter))
    assert.are.equal(#res.heldout, #res.beam_outputs)
    local V = res.tgt_vocab.size
    for _, outputs in ipairs({ res.beam_outputs, res.greedy_outputs }) do
      for i, toks in ipairs(outputs) do
        assert(#toks >= 1 and #toks <= res.max_target, "length " .. #toks)
        for k, id in ipairs(toks) do
          assert(math.type(id) == "integer" and id >= 1 and id <= V, "bad id " .. tostring(id))
          assert(id ~= S2S.PAD and id ~= S2S.GO, "pad/go in output " .. i)
          if k < #toks then assert(id ~= S2S.EOS, "<eos> before the end in output " .. i) end
        end
      end
    end
    for i, toks in ipairs(res.beam_outputs) do
      assert.are.equal(S2S.EOS, toks[#toks], "beam output " .. i .. " does not end with <eos>")
    end
  end)

  it("runs as a command: options, results line, and a clear embeddings error", function()
    local out, ok = sh("lua5.4 scripts/seq2seq.lua --steps 30 --hidden 16 --embed 8 --beam_width 2 "
                       .. "--heldout_frac 0.02 --quiet")
    assert(ok, out)
    assert.matches("trained 30 steps", out, 1, true)
    assert.matches("held%-out 200 numbers: greedy exact [%d.]+ %(%d+%) TER [%d.]+", out)
    assert.matches("beam search %(width 2%)", out)
    local bad = os.tmpname()
    local fh = assert(io.open(bad, "w"))
    fh:write("one 1 2 3\n")
    fh:close()
    out, ok = sh("lua5.4 scripts/seq2seq.lua --embed 8 --embeddings " .. bad)
    os.remove(bad)
    assert.is_false(ok, out)
    assert.matches(":1: the vector for 'one' has 3 dimensions, but the embeddings have 8", out, 1, true)
  end)
end)

describe("seq2seq dates task", function()
  local D = S2S.dates

  it("writes dates in every format with the right weekday, and ISO targets", function()
    assert.are.equal("1987-03-03", D.iso(1987, 3, 3))
    assert.are.same({ "March 3, 1987", "3 March 1987", "mar 3 1987", "3 mar 87", "03/03/1987", "3.3.1987",
                      "1987/3/3", "Tuesday, March 3, 1987", "the 3rd of March, 1987", "MARCH 3RD 1987",
                      "tue 3 mar 1987", "3-MAR-1987" },
                    (function() local t = {} for k = 1, D.NFORMATS do t[k] = D.write(1987, 3, 3, k) end return t end)())
    assert.are.equal("the 22nd of November, 2001", D.write(2001, 11, 22, 9))
    assert.are.equal("the 11th of May, 2011", D.write(2011, 5, 11, 9))
    -- weekdays against the C library's calendar (1 = Sunday there)
    for _, day in ipairs({ { 1971, 1, 1 }, { 1987, 3, 3 }, { 2000, 2, 29 }, { 2024, 12, 31 }, { 2037, 6, 15 } }) do
      local wday = os.date("*t", os.time { year = day[1], month = day[2], day = day[3], hour = 12 }).wday
      assert.are.equal((wday + 5) % 7 + 1, D.weekday(day[1], day[2], day[3]))
    end
    assert.are.equal(36525, #D.all_days())
  end)

  it("splits by day: held-out dates never appear in training", function()
    local task = S2S.dates_task(5, 0.01, 0.02)
    local seen = {}
    for _, i in ipairs(task.train) do seen[task.tgt_text(i)] = true end
    for _, i in ipairs(task.held) do assert.is_nil(seen[task.tgt_text(i)]) end
    assert.are.equal(36525, #task.train + #task.val + #task.held)
    assert.are.equal(11, task.T)
    local i = 1
    while task.tgt_text(i) ~= "1987-03-03" do i = i + 1 end
    assert.are.equal("1987-03-03", S2S.decode_words(task.tgt_vocab, task.data.tgt[i], ""))
    local src = {}
    for k, id in ipairs(task.data.src[i]) do src[k] = task.src_vocab.words[id] end
    assert.are.equal(task.src_text(i), table.concat(src))
  end)

  it("builds one set of variables (TF's names) for training, greedy and beam decoding with attention", function()
    local task = S2S.dates_task(1, 0.01, 0.01)
    local g = tf.Graph()
    g:as_default(function()
      S2S.build_attention_model({ layers = 1, hidden = 8, embed = 4, lr = 0.01, clip = 5, beam_width = 2,
                                  attention_type = "bahdanau" }, task.src_vocab, task.tgt_vocab, task.S, task.T)
    end)
    local names = {}
    for _, v in ipairs(g:get_collection("trainable_variables")) do names[#names + 1] = v.op.name end
    table.sort(names)
    assert.are.same({ "nmt/decoder/attention_wrapper/attention_layer/kernel",
                      "nmt/decoder/attention_wrapper/bahdanau_attention/attention_v",
                      "nmt/decoder/attention_wrapper/bahdanau_attention/query_layer/kernel",
                      "nmt/decoder/attention_wrapper/lstm_cell/bias", "nmt/decoder/attention_wrapper/lstm_cell/kernel",
                      "nmt/decoder/output_projection/bias", "nmt/decoder/output_projection/kernel",
                      "nmt/decoder_embedding", "nmt/encoder/embedding", "nmt/encoder/rnn/lstm_cell/bias",
                      "nmt/encoder/rnn/lstm_cell/kernel", "nmt/memory_layer/kernel" }, names)
  end)

  it("trains an attention model for a few seconds and decodes in the graph (greedy and beam)", function()
    local res = S2S.main({ "--task", "dates", "--attention", "--steps", "150", "--batch_size", "32", "--hidden", "32",
                           "--embed", "16", "--lr", "0.01", "--beam_width", "2", "--seed", "3", "--eval_every", "1000",
                           "--heldout_frac", "0.005", "--val_frac", "0.002", "--quiet" })
    assert.are.equal(150, res.steps)
    assert(res.loss < 1.2, "the training loss did not fall: " .. tostring(res.loss))
    assert(res.greedy_ter < 0.5, "greedy TER " .. tostring(res.greedy_ter))
    local V = res.tgt_vocab.size
    for _, outputs in ipairs({ res.greedy_outputs, res.beam_outputs }) do
      assert.are.equal(#res.heldout, #outputs)
      for _, toks in ipairs(outputs) do
        assert(#toks >= 1 and #toks <= res.max_target, "length " .. #toks)
        for _, id in ipairs(toks) do assert(math.type(id) == "integer" and id >= 1 and id <= V, "bad id " .. id) end
      end
    end
  end)
end)
