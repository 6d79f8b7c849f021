-- scripts/word2vec.lua: its vocabulary and skip-gram batches against
-- hand-worked examples, and the script run at a small size.
package.path = "scripts/?.lua;" .. package.path
local W = require("word2vec")
local sh = dofile("tests/spec/support/process.lua").sh

describe("word2vec data", function()
  it("tokenizes to lower-case words and numbers bar punctuation", function()
    assert.are.same({ "the", "king's", "men", "2", "tf", "nn", "nce", "loss" },
                    W.tokenize("The King's men, 2 (tf.nn.nce_loss)'"))
  end)

  it("numbers words from the most frequent after UNK (id 1), ties alphabetical", function()
    local data, vocab, id = W.build_vocab({ "b", "a", "b", "c", "a", "b", "d" }, 3)
    assert.are.same({ "UNK", "b", "a" }, vocab)
    assert.are.same({ b = 2, a = 3 }, id)
    assert.are.same({ 2, 3, 2, 1, 3, 2, 1 }, data)
  end)

  it("pairs each center with its whole window when skips = 2 window, wrapping around", function()
    local next_batch = W.batcher({ 10, 20, 30, 40, 50, 60 }, 8, 2, 1)
    local x, y = next_batch()
    assert.are.same({ 20, 20, 30, 30, 40, 40, 50, 50 }, x)
    assert.are.same({ { 10 }, { 30 }, { 20 }, { 40 }, { 30 }, { 50 }, { 40 }, { 60 } }, y)
    next_batch = W.batcher({ 1, 2, 3, 4, 5, 6 }, 4, 4, 2)
    x, y = next_batch()
    assert.are.same({ 3, 3, 3, 3 }, x)
    assert.are.same({ { 1 }, { 2 }, { 4 }, { 5 } }, y)
    x, y = next_batch()
    assert.are.same({ 4, 4, 4, 4 }, x)
    assert.are.same({ { 2 }, { 3 }, { 5 }, { 6 } }, y)
    x, y = next_batch() -- center 5 lacks a right window: back to the first center
    assert.are.same({ 3, 3, 3, 3 }, x)
    assert.are.same({ { 1 }, { 2 }, { 4 }, { 5 } }, y)
  end)

  it("takes num_skips distinct context words of the window when fewer than 2 window", function()
    math.randomseed(4)
    local data = {}
    for k = 1, 40 do data[k] = 100 + k end -- position k holds 100 + k
    local next_batch = W.batcher(data, 30, 3, 3)
    for _ = 1, 4 do
      local x, y = next_batch()
      for k = 1, #x, 3 do
        local seen = {}
        for j = k, k + 2 do
          assert.are.equal(x[k], x[j])
          local d = y[j][1] - x[j]
          assert.is_true(d ~= 0 and math.abs(d) <= 3, "context outside the window")
          assert.is_nil(seen[d])
          seen[d] = true
        end
      end
    end
  end)
end)

describe("scripts/word2vec.lua", function()
  it("trains on the README at a small size: the loss falls, neighbours are printed", function()
    local out, ok, how, code = sh("lua5.4 scripts/word2vec.lua --steps 400 --report 100 --vocab 300 --batch 64 "
                                  .. "--embedding 16 --sampled 16 --neighbours 4 --words the,tf --seed 3")
    assert(ok, string.format("exit %s %s:\n%s", tostring(how), tostring(code), out))
    assert.matches("vocabulary 300 %(UNK and the 299 most frequent%)", out)
    local steps = 0
    for _ in out:gmatch("step%s+%d+%s+average loss [%d.]+") do steps = steps + 1 end
    assert.are.equal(4, steps, out)
    for _, w in ipairs({ "the", "tf" }) do
      local list = out:match("nearest to " .. w .. ": ([^\n]+)")
      assert(list, "no neighbours of " .. w .. ":\n" .. out)
      local n = 0
      for name in list:gmatch("[^,%s]+") do
        n = n + 1
        assert.are_not.equal(w, name)
      end
      assert.are.equal(4, n, list)
    end
    local first, last = out:match("average loss first ([%d.]+) last ([%d.]+)")
    assert(first, out)
    assert.is_true(tonumber(last) < 0.5 * tonumber(first), out)
  end)

  it("refuses an unknown option or a word outside the vocabulary", function()
    local out, ok = sh("lua5.4 scripts/word2vec.lua --no-such-option 1")
    assert.is_false(ok)
    assert.matches("unknown option %-%-no%-such%-option", out)
    out, ok = sh("lua5.4 scripts/word2vec.lua --steps 1 --words zzzzqq")
    assert.is_false(ok)
    assert.matches("'zzzzqq' is not in the vocabulary", out)
  end)
end)
