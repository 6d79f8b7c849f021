-- Running commands from specs, as a user would (the environment inherited).
local M = {}

-- Runs `cmd` (stderr merged) from the repository root; returns its output,
-- whether it exited 0, and how it ended (as io.popen's close reports it).
function M.sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok, how, code = p:close()
  return out, ok == true and how == "exit" and code == 0, how, code
end

-- The names in directory d (hidden ones too), sorted.
function M.list_dir(d)
  local names = {}
  local p = assert(io.popen("ls -A '" .. d .. "'"))
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

-- A new empty directory under the system's temporary directory.
function M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

-- A whole file's bytes (an error if it cannot be read).
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Writes bytes to a file (an error if it cannot be written).
function M.write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- Whether a file can be opened for reading.
function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

return M
