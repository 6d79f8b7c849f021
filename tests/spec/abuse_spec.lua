-- API abuse (issue 15): every public Lua function and method (tf.* walked
-- recursively, and the methods of Graph, Tensor, Operation, Variable,
-- Session, Array, Saver, the optimizers and RNN cells) called with bad values
-- (nil, wrong types, NaN, huge and negative sizes, a deep table, a closed
-- session, a finalized graph). Each must succeed or raise a Lua error from
-- moonflow's checks -- never an "attempt to index ..." or "bad argument #"
-- from inside moonflow's own Lua, a crash or a hang. The calls run in a
-- child process (tests/spec/support/abuse.lua) under a time limit, so a
-- crash is a failure that names the last call.
local sh = require("tests.spec.support.process").sh

describe("API abuse", function()
  it("every public function and method fails cleanly on bad arguments", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local root = io.popen("pwd"):read("l")
    -- Sanitizer builds run slower.
    local limit = os.getenv("MF_SPEC_ASAN") and 600 or 120
    local out, ok, how, code = sh(string.format("cd %s && timeout %d lua5.4 %s/tests/spec/support/abuse.lua",
                                                dir, limit, root))
    os.execute("rm -rf " .. dir)
    local last = out:match(".*\n(@ [^\n]*)") or "(none)"
    local done = out:match("DONE (%d+) (%d+) (%d+)")
    assert(done, string.format("the abuse run ended by %s %s (124: timed out) at the call\n  %s\n%s",
                               tostring(how), tostring(code), last, out:sub(-2000)))
    local bad = {}
    for line in out:gmatch("BAD [^\n]*") do bad[#bad + 1] = line end
    assert(ok and #bad == 0, string.format("%d calls failed from inside moonflow:\n%s", #bad,
                                           table.concat(bad, "\n", 1, math.min(#bad, 40))))
    local nfun, ncalls = out:match("DONE (%d+) (%d+)")
    assert(tonumber(nfun) > 150 and tonumber(ncalls) > 10000, "too few functions or calls: " .. nfun .. " " .. ncalls)
  end)
end)
