-- scripts/char_rnn.lua and scripts/sample.lua, run as a user would (separate
-- lua5.4 processes, small sizes), and their batching module against a
-- hand-worked example.
package.path = "scripts/lib/?.lua;" .. package.path
local D = require("char_data")

local P = dofile("tests/spec/support/process.lua")
local sh, tmpdir = P.sh, P.tmpdir

describe("char_data batching", function()
  it("builds a sorted byte vocabulary with ids from 1 and encodes/decodes", function()
    local vocab, index = D.build_vocab("hello")
    assert.are.same({ 101, 104, 108, 111 }, vocab) -- e h l o
    assert.are.same({ 2, 1, 3, 3, 4 }, D.encode("hello", index))
    assert.are.equal("hello", D.decode({ 2, 1, 3, 3, 4 }, vocab))
  end)

  it("splits off the last val_frac for validation", function()
    local train, val = D.split({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, 0.2)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8 }, train)
    assert.are.same({ 9, 10 }, val)
  end)

  it("cuts contiguous streams read in consecutive windows, targets one ahead (as the peer's batches())", function()
    -- 23 ids, batch 2, seq 3: n = (23 - 1) // 6 * 6 = 18, two streams of 9
    -- (ids 1..9 and 10..18), three windows of 3 per stream.
    local ids = {}
    for i = 1, 23 do ids[i] = 100 + i end
    local b = D.batcher(ids, 2, 3)
    assert.are.equal(3, b.num_batches)
    assert.are.equal(18, b.tokens)
    local x, y = b:get(1)
    assert.are.same({ { 101, 102, 103 }, { 110, 111, 112 } }, x)
    assert.are.same({ { 102, 103, 104 }, { 111, 112, 113 } }, y)
    x, y = b:get(2)
    assert.are.same({ { 104, 105, 106 }, { 113, 114, 115 } }, x)
    assert.are.same({ { 105, 106, 107 }, { 114, 115, 116 } }, y)
    x, y = b:get(3)
    assert.are.same({ { 107, 108, 109 }, { 116, 117, 118 } }, x)
    assert.are.same({ { 108, 109, 110 }, { 117, 118, 119 } }, y) -- stream 1's last target is stream 2's first id
    assert.is_nil(D.batcher({ 1, 2, 3, 4, 5, 6 }, 2, 3)) -- needs batch*seq + 1 ids
  end)
end)

describe("char_rnn.lua", function()
  local options = { "input", "model", "rnn_size", "num_layers", "wordvec_size", "seq_length", "batch_size",
                    "learning_rate", "lr_decay_every", "lr_decay_factor", "grad_clip", "dropout", "max_epochs",
                    "max_steps", "val_frac", "print_every", "eval_val_every", "checkpoint_every",
                    "checkpoint_dir", "init_from", "seed", "threads", "logdir", "summary_every",
                    "log_sample_length" }

  it("--help documents every option", function()
    local out, ok = sh("lua5.4 scripts/char_rnn.lua --help")
    assert(ok, out)
    for _, o in ipairs(options) do assert(out:find("--" .. o .. " ", 1, true), "--help lacks --" .. o .. ":\n" .. out) end
    out, ok = sh("lua5.4 scripts/sample.lua --help")
    assert(ok, out)
    for _, o in ipairs({ "checkpoint", "length", "temperature", "start_text", "sample", "seed" }) do
      assert(out:find("--" .. o .. " ", 1, true), "sample.lua --help lacks --" .. o .. ":\n" .. out)
    end
    local _, bad = sh("lua5.4 scripts/char_rnn.lua --model transformer")
    assert.is_false(bad)
  end)

  it("trains (the loss falls), checkpoints, resumes, and sample.lua generates from the checkpoint", function()
    local dir = tmpdir()
    -- a small seeded corpus with structure to learn
    local rng, words = 7, { "the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "his", "bed" }
    local lines = {}
    for i = 1, 600 do
      local w = {}
      for k = 1, 5 do
        rng = (rng * 1103515245 + 12345) % 2147483648
        w[k] = words[rng % #words + 1]
      end
      lines[i] = (i % 3 == 0 and "BOB: " or "ANN: ") .. table.concat(w, " ") .. "."
    end
    local text = table.concat(lines, "\n") .. "\n"
    local f = assert(io.open(dir .. "/input.txt", "wb"))
    f:write(text)
    f:close()
    local common = " --input " .. dir .. "/input.txt --rnn_size 32 --wordvec_size 16 --num_layers 2"
                   .. " --batch_size 10 --seq_length 20 --learning_rate 1e-2 --checkpoint_dir " .. dir .. "/ck"
    local out, ok = sh("lua5.4 scripts/char_rnn.lua" .. common
                       .. " --max_steps 40 --print_every 1 --eval_val_every 20 --checkpoint_every 0 --seed 3"
                       .. " --export_dir " .. dir .. "/model")
    assert(ok, out)
    local first_out = out
    local losses, vals = {}, {}
    for s, l in out:gmatch("step (%d+)/%d+%s+epoch %S+%s+loss (%S+)") do losses[tonumber(s)] = tonumber(l) end
    for s, v in out:gmatch("step (%d+)%s+epoch %S+%s+train loss %S+%s+val loss (%S+)") do vals[tonumber(s)] = tonumber(v) end
    assert(losses[1] and losses[40], "no progress lines:\n" .. out)
    local function mean(a, b) local s = 0; for i = a, b do s = s + losses[i] end; return s / (b - a + 1) end
    assert(mean(36, 40) < mean(1, 5) - 0.8, "the loss did not fall:\n" .. out)
    assert(vals[20] and vals[40] and vals[40] < vals[20], "validation loss did not fall:\n" .. out)
    assert(io.open(dir .. "/ck/model-40", "rb"), "no checkpoint file:\n" .. out)
    assert(io.open(dir .. "/ck/model-40.json", "rb"), "no checkpoint sidecar")

    -- resume for 5 more steps
    out, ok = sh("lua5.4 scripts/char_rnn.lua" .. common .. " --max_steps 45 --print_every 1 --init_from " .. dir .. "/ck")
    assert(ok, out)
    assert(out:find("resumed from", 1, true) and out:find("step 45/45", 1, true), out)
    assert(not out:find("step 40/45", 1, true), "the resumed run restarted its step count:\n" .. out)

    local vocab = {}
    for i = 1, #text do vocab[text:byte(i)] = true end
    local function check_sample(args, n, prefix)
      local s, sok = sh("lua5.4 scripts/sample.lua --checkpoint " .. args)
      assert(sok, s)
      assert.are.equal("\n", s:sub(-1))
      s = s:sub(1, -2)
      assert.are.equal(#prefix + n, #s, "wrong length:\n" .. s)
      assert.are.equal(prefix, s:sub(1, #prefix))
      for i = 1, #s do assert(vocab[s:byte(i)], "byte " .. s:byte(i) .. " is not in the vocabulary") end
      return s
    end
    check_sample(dir .. "/ck --length 120 --seed 1", 120, "")
    check_sample(dir .. "/ck/model-45 --length 50 --sample 0 --start_text 'ANN: the'", 50, "ANN: the")
    local a = check_sample(dir .. "/ck --length 60 --temperature 0.5 --seed 9", 60, "")
    local b = check_sample(dir .. "/ck --length 60 --temperature 0.5 --seed 9", 60, "")
    assert.are.equal(a, b) -- seeded
    local _, bad = sh("lua5.4 scripts/sample.lua --checkpoint " .. dir .. "/ck --start_text '~' --length 5")
    assert.is_false(bad) -- '~' is not in the vocabulary

    -- the exported sampling graph, run by a C program with no Lua (examples/sample),
    -- prints exactly what sample.lua prints from the same checkpoint and seed
    assert(first_out:find("exported " .. dir .. "/model/saved_model.pb", 1, true), first_out)
    local host = os.getenv("LUA_CPATH"):match("^(.-)/lua/%?%.so") .. "/examples/sample"
    for _, args in ipairs({ { "--length 150", "--length 150" },
                            { "--length 80 --start_text 'BOB: '", "--length 80 --start_text 'BOB: '" },
                            { "--length 60 --temperature 0.7", "--length 60 --temperature 0.7" } }) do
      local want, wok = sh("lua5.4 scripts/sample.lua --checkpoint " .. dir .. "/ck/model-40 --seed 3 " .. args[1])
      assert(wok, want)
      local got, gok = sh(host .. " " .. dir .. "/model " .. args[2])
      assert(gok, got)
      assert.are.equal(want, got)
    end
    local _, cbad = sh(host .. " " .. dir .. "/model --start_text '~' --length 5")
    assert.is_false(cbad)
    os.execute("rm -rf " .. dir)
  end)

  it("trains a GRU with dropout (validation on a separate, dropout-free path) and a vanilla RNN", function()
    local dir = tmpdir()
    for _, args in ipairs({ "--model gru --dropout 0.3", "--model rnn" }) do
      local out, ok = sh("lua5.4 scripts/char_rnn.lua " .. args .. " --rnn_size 16 --wordvec_size 8 --batch_size 4"
                         .. " --seq_length 10 --max_steps 6 --checkpoint_dir " .. dir .. " --logdir " .. dir)
      assert(ok, out)
      assert(out:find("val loss [%d.]+"), out)
      assert(sh("ls " .. dir .. "/events.out.tfevents.*"), "no event file in --logdir:\n" .. out)
    end
    os.execute("rm -rf " .. dir)
  end)
end)
