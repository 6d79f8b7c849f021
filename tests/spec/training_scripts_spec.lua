-- The training scripts, run as a user would (a separate lua5.4 process with
-- the environment inherited from the test run), on small settings.

local sh = dofile("tests/spec/support/process.lua").sh

local function last_line(s)
  local last
  for line in s:gmatch("[^\n]+") do last = line end
  return last or ""
end

describe("training scripts", function()
  it("linear_regression.lua recovers the generating weights within 1e-3", function()
    local out, ok, how, code = sh("lua5.4 scripts/linear_regression.lua --steps 300")
    assert(ok, string.format("exit %s %s:\n%s", tostring(how), tostring(code), out))
    local err = tonumber(last_line(out):match("max error%s+([%d%.eE+-]+)"))
    assert(err, "no 'max error' in the output:\n" .. out)
    assert(err < 1e-3, string.format("max error %g:\n%s", err, out))
  end)

  it("mlp.lua fits the two spirals (>= 0.99 train, >= 0.97 held out)", function()
    local out, ok, how, code = sh("lua5.4 scripts/mlp.lua --points 200 --steps 600 --quiet")
    assert(ok, string.format("exit %s %s:\n%s", tostring(how), tostring(code), out))
    local line = last_line(out)
    local tr = tonumber(line:match("train accuracy%s+([%d%.]+)"))
    local te = tonumber(line:match("held%-out accuracy%s+([%d%.]+)"))
    assert(tr and te, "cannot parse the accuracies from:\n" .. out)
    assert(tr >= 0.99, string.format("training accuracy %g:\n%s", tr, out))
    assert(te >= 0.97, string.format("held-out accuracy %g:\n%s", te, out))
  end)

  it("a failing script exits non-zero (the exit status is really checked)", function()
    local out, ok = sh("lua5.4 scripts/mlp.lua --no-such-option")
    assert.is_false(ok, out)
  end)
end)
