-- Faults: a process saving checkpoints (max_to_keep = 3) is killed with SIGKILL at random
-- points, many times, and restarted each time. After every kill the latest checkpoint (per
-- the "checkpoint" index) loads in a fresh process; after the next successful save no
-- temporary files remain and at most max_to_keep checkpoints exist; temporary files of live
-- processes are never removed. Bounded: at most KILLS kills and about BUDGET seconds.
local P = dofile("tests/spec/support/process.lua")

local KILLS, BUDGET, KEEP = 30, 20, 3
local CHILD = "lua5.4 tests/spec/support/checkpoint_child.lua "

local function touch(path)
  local f = assert(io.open(path, "wb"))
  f:write("partial")
  f:close()
end

describe("checkpoints under kill -9", function()
  it("always leave a loadable latest checkpoint, pruned files and no temporary files", function()
    local seed = os.time()
    math.randomseed(seed)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    finally(function() os.execute("rm -rf '" .. dir .. "'") end)
    local function why(what) return string.format("%s (seed %d, dir %s: %s)", what, seed, dir,
                                                  table.concat(P.list_dir(dir), " ")) end

    -- A dead process's pid (a shell that has exited and been reaped) and a live one (ours:
    -- the shell's parent), for planted temporary files.
    local dead = assert(tonumber((P.sh("sh -c 'echo $$'"))))
    local live = assert(tonumber((P.sh("echo $PPID"))))
    assert.are_not.equal(dead, live)
    local live_tmp = dir .. "/model-1000.tmp." .. live -- "a concurrent writer": must survive
    touch(live_tmp)
    touch(dir .. "/model-5.tmp." .. dead)
    touch(dir .. "/checkpoint.tmp." .. dead)

    local start, kills, last_step, torn_seen = os.time(), 0, 0, 0
    while kills < KILLS and os.time() - start < BUDGET do
      -- run the saver and kill it at a random point (the shell reaps it)
      local delay = 0.02 + math.random() * 0.3
      local _, ok = P.sh(string.format("%s'%s' forever >/dev/null 2>&1 & p=$!; sleep %.3f; kill -9 $p; wait $p",
                                       CHILD, dir, delay))
      assert.is_false(ok, why("the saver was not killed"))
      kills = kills + 1
      for _, name in ipairs(P.list_dir(dir)) do
        if name:find(".tmp.", 1, true) and dir .. "/" .. name ~= live_tmp then torn_seen = torn_seen + 1 end
      end

      -- the latest checkpoint loads, in a fresh process, and is consistent
      local out, loaded = P.sh(CHILD .. "'" .. dir .. "' check")
      assert(loaded, why("the latest checkpoint does not load after kill " .. kills .. ": " .. out))
      local step = tonumber(out:match("^(%d+)\n$"))
      -- Killed before its first save (a slow start on a loaded machine): nothing yet, which is
      -- right only while no save has ever completed.
      if not step and last_step == 0 and out:match("^none\n?$") then step = 0 end
      assert(step and step >= last_step, why("no consistent latest checkpoint after kill " .. kills .. ": " .. out))

      -- the next successful save (a restarted saver) prunes and cleans up
      local sout, saved = P.sh(CHILD .. "'" .. dir .. "' once")
      assert(saved, why("the save after kill " .. kills .. " failed: " .. sout))
      last_step = step + 1
      local ckpts = {}
      for _, name in ipairs(P.list_dir(dir)) do
        if name:match("^model%-%d+$") then ckpts[#ckpts + 1] = name end
        if name:find(".tmp.", 1, true) then
          assert.are.equal(live_tmp, dir .. "/" .. name, why("a temporary file remains after a save"))
        end
      end
      assert(#ckpts <= KEEP, why(#ckpts .. " checkpoints after kill " .. kills .. " and a save"))
      local out2 = P.sh(CHILD .. "'" .. dir .. "' check")
      assert.are.equal(last_step .. "\n", out2, why("the new save is not the latest"))
    end
    assert(kills >= 10, why("only " .. kills .. " kills in the time budget"))
    assert(P.exists(live_tmp), why("a live process's temporary file was removed"))
    print(string.format("\n  checkpoint faults: %d kills, %d torn temporary files seen, last step %d, %ds",
                        kills, torn_seen, last_step, os.time() - start))
  end)
end)
