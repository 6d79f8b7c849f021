-- scripts/examples/: TF 1.x tutorials ported to Lua, run as a user would (a
-- separate lua5.4 process) at a small size on the 8x8 digits that Debian's
-- python3-sklearn ships (scripts/deps.sh installs it).

local P = dofile("tests/spec/support/process.lua")
local sh = P.sh
local digits = dofile("scripts/examples/digits.lua")
local DATA = digits.default_path

local function need_data()
  assert(P.exists(DATA), DATA .. " is missing: apt-get install python3-sklearn (scripts/deps.sh installs it)")
end

local function lines(s)
  local t = {}
  for line in s:gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

-- The accuracy on the last line, which must be exactly "test accuracy A".
local function final_accuracy(out)
  local l = lines(out)
  local a = (l[#l] or ""):match("^test accuracy (%d%.%d%d%d%d)$")
  assert(a, "the last line is not 'test accuracy A':\n" .. out)
  return tonumber(a)
end

local function tmpname()
  local name = os.tmpname()
  finally(function() os.remove(name) end)
  return name
end

describe("scripts/examples/digits.lua", function()
  it("splits the 1797 digits into 1438 training and 359 held-out images, every 5th held out", function()
    need_data()
    local d = digits.read_data_sets(DATA)
    assert.are.equal(1438, d.train.num_examples)
    assert.are.equal(359, d.test.num_examples)
    local counts = {}
    for _, set in ipairs({ d.train, d.test }) do
      for k = 1, set.num_examples do
        local y = set.labels[k]
        assert(math.type(y) == "integer" and y >= 1 and y <= 10, "label " .. tostring(y))
        counts[y] = (counts[y] or 0) + 1
        assert.are.equal(64, #set.images[k])
        for _, v in ipairs(set.images[k]) do assert(v >= 0 and v <= 1, "pixel " .. v) end
      end
    end
    -- sklearn's documented class sizes (digits 0..9 as classes 1..10)
    assert.are.same({ 178, 182, 177, 183, 181, 182, 181, 179, 174, 180 }, counts)
  end)

  it("reads a plain CSV the same way, and next_batch covers an epoch once, reshuffling after", function()
    local path = tmpname()
    local f = assert(io.open(path, "w"))
    for i = 1, 10 do
      local v = {}
      for p = 1, 64 do v[p] = (i + p) % 17 end
      v[65] = i - 1
      f:write(table.concat(v, ","), "\n")
    end
    f:close()
    local d = digits.read_data_sets(path)
    assert.are.equal(8, d.train.num_examples)
    assert.are.same({ 5, 10 }, d.test.labels) -- lines 5 and 10: digits 4 and 9
    assert.are.equal(((5 + 1) % 17) / 16, d.test.images[1][1])
    math.randomseed(7)
    local seen = {}
    local xs, ys = d.train:next_batch(5)
    local xs2, ys2 = d.train:next_batch(3)
    assert.are.equal(5, #xs)
    assert.are.equal(3, #xs2)
    for _, y in ipairs(ys) do seen[y] = true end
    for _, y in ipairs(ys2) do
      assert.is_nil(seen[y], "an image repeats within an epoch")
      seen[y] = true
    end
    assert.are.equal(0, d.train.epochs_completed)
    d.train:next_batch(1)
    assert.are.equal(1, d.train.epochs_completed)
  end)

  it("says what is wrong with a missing file or a malformed line", function()
    local ok, err = pcall(digits.read_data_sets, "/nonexistent/digits.csv")
    assert.is_false(ok)
    assert.matches("python3%-sklearn", err)
    local path = tmpname()
    local f = assert(io.open(path, "w"))
    f:write("1,2,3\n")
    f:close()
    ok, err = pcall(digits.read_data_sets, path)
    assert.is_false(ok)
    assert.matches("line 1 .* has 3 fields, expected 65", err)
  end)
end)

describe("scripts/examples", function()
  it("mnist_softmax.lua: softmax regression clearly beats chance in 200 steps", function()
    need_data()
    local out, ok = sh("lua5.4 scripts/examples/mnist_softmax.lua --data " .. DATA .. " --steps 200 --seed 3")
    assert(ok, out)
    assert.are.equal(1, #lines(out), out)
    local acc = final_accuracy(out)
    assert(acc >= 0.85, string.format("accuracy %g (chance is 0.1):\n%s", acc, out))
  end)

  it("mnist_deep.lua: the CNN clearly beats chance in 150 steps and logs the training accuracy", function()
    need_data()
    local out, ok = sh("lua5.4 scripts/examples/mnist_deep.lua --data " .. DATA
      .. " --steps 150 --log_every 50 --seed 3")
    assert(ok, out)
    local l = lines(out)
    assert.are.equal(4, #l, out)
    for i = 1, 3 do
      local step, a = l[i]:match("^step (%d+), training accuracy ([%d.e-]+)$")
      assert(step, "not a progress line: " .. l[i])
      assert.are.equal((i - 1) * 50, tonumber(step))
      assert(tonumber(a) >= 0 and tonumber(a) <= 1, l[i])
    end
    local acc = final_accuracy(out)
    assert(acc >= 0.8, string.format("accuracy %g (chance is 0.1):\n%s", acc, out))
  end)

  it("a bad option or a missing data file fails with a message", function()
    local out, ok = sh("lua5.4 scripts/examples/mnist_softmax.lua --steps 0")
    assert.is_false(ok, out)
    assert.matches("steps", out)
    out, ok = sh("lua5.4 scripts/examples/mnist_deep.lua --data /nonexistent/digits.csv.gz --steps 1")
    assert.is_false(ok, out)
    assert.matches("cannot open '/nonexistent/digits.csv.gz'", out)
  end)
end)
