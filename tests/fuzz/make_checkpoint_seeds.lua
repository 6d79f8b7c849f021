-- Writes the seed corpus of fuzz_checkpoint_restore with moonflow's own
-- Saver: checkpoints of the variables that target declares (w float32
-- {2, 3}, layer/d float64 {4}, k int32 scalar, step int64 scalar, bytes
-- uint8 {5}, mask bool {3}, u float32 {-1, 2}), whole and partial, with
-- and without the checksums.
--   (. scripts/env.sh build; lua5.4 tests/fuzz/make_checkpoint_seeds.lua)
local tf = require("moonflow")
local out = "tests/fuzz/corpus/checkpoint_restore/"

-- The same file without moonflow's checksums (as other safetensors writers
-- leave it), so mutations get past the checksum to the checks behind it.
local function strip_checksums(bytes)
  local n = string.unpack("<I8", bytes)
  local header = bytes:sub(9, 8 + n):gsub('"__metadata__":%b{},', "")
  return string.pack("<I8", #header) .. header .. bytes:sub(9 + n)
end

local function write(file, vars)
  local g = tf.Graph()
  g:as_default(function()
    local list = {}
    for _, v in ipairs(vars) do
      local scope, name = v[1]:match("^(.-)/?([^/]+)$")
      local function make()
        list[#list + 1] = tf.Variable(tf.constant(v[3], { dtype = v[2] }), { name = name })
      end
      if scope ~= "" then tf.variable_scope(scope, make) else make() end
    end
    local sess = tf.Session()
    sess:run(tf.global_variables_initializer())
    local saver = tf.train.Saver(list)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir '" .. dir .. "'"))
    local path = saver:save(sess, dir .. "/model")
    local f = assert(io.open(path, "rb"))
    local bytes = f:read("a")
    f:close()
    os.execute("rm -rf '" .. dir .. "'")
    for name, b in pairs({ [file] = bytes, [file .. "_no_checksum"] = strip_checksums(bytes) }) do
      local o = assert(io.open(out .. name, "wb"))
      o:write(b)
      o:close()
    end
    sess:close()
  end)
end

local all = {
  { "w", "float32", { { 1, -2, 3.5 }, { 0, 1e-20, -7 } } },
  { "layer/d", "float64", { 1, 2, 3, 4 } },
  { "k", "int32", 42 },
  { "step", "int64", 1000 },
  { "bytes", "uint8", { 0, 1, 2, 254, 255 } },
  { "mask", "bool", { true, false, true } },
  { "u", "float32", { { 1, 2 }, { 3, 4 }, { 5, 6 } } },
}
write("all", all)
local other = {}
for i, v in ipairs(all) do other[i] = v end
other[7] = { "u", "float32", { { -1, -2 } } }
write("all_u_one_row", other)
write("w_and_k", { all[1], all[3] })
local extra = { { "extra", "int64", { 1, 2 } } }
for _, v in ipairs(all) do extra[#extra + 1] = v end
write("all_and_extra", extra)
