-- The 8x8 handwritten digits (1797 images, UCI's optdigits test set) as the
-- examples' stand-in for MNIST: Debian's python3-sklearn ships them as
-- sklearn/datasets/data/digits.csv.gz (64 pixel values 0..16, then the digit,
-- one image a line). This is the examples' `input_data.read_data_sets`.
--
--   local digits = dofile(dir .. "digits.lua")
--   local data = digits.read_data_sets(path)  -- data.train, data.test
--   local xs, ys = data.train:next_batch(50)   -- xs: 50 rows of 64 floats in
--                                              -- [0, 1]; ys: 1-based classes
--
-- Classes are 1-based as everywhere in moonflow: digit d is class d + 1.
-- The split is fixed (not drawn): every 5th image (the 5th, 10th, ...) is
-- held out, 359 test images and 1438 training ones.
local M = {}

M.default_path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
M.pixels = 64
M.classes = 10

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The lines of the file, through zcat when it is gzipped.
local function read_lines(path)
  local f = io.open(path, "rb")
  if not f then
    error(string.format("digits: cannot open '%s' (Debian: apt-get install python3-sklearn, or pass --data FILE)",
      path), 0)
  end
  local magic = f:read(2)
  f:close()
  local text
  if magic == "\31\139" then
    local p = assert(io.popen("zcat " .. shell_quote(path), "r"))
    text = p:read("a")
    local ok, how, code = p:close()
    if not ok then error(string.format("digits: zcat '%s' failed (%s %s)", path, how, code), 0) end
  else
    f = assert(io.open(path, "rb"))
    text = f:read("a")
    f:close()
  end
  return text
end

-- A data set with MNIST's next_batch: consecutive batches of a shuffled
-- order, reshuffled at each epoch (math.random, so seeded by the caller).
local DataSet = {}
DataSet.__index = DataSet

function DataSet:next_batch(n)
  local xs, ys = {}, {}
  for i = 1, n do
    if self.pos > #self.order then
      for k = #self.order, 2, -1 do
        local j = math.random(k)
        self.order[k], self.order[j] = self.order[j], self.order[k]
      end
      self.pos = 1
      self.epochs_completed = self.epochs_completed + 1
    end
    local k = self.order[self.pos]
    self.pos = self.pos + 1
    xs[i], ys[i] = self.images[k], self.labels[k]
  end
  return xs, ys
end

local function dataset(images, labels)
  local order = {}
  for k = 1, #images do order[k] = k end
  -- pos past the end: the first next_batch shuffles
  return setmetatable({ images = images, labels = labels, num_examples = #images, order = order,
                        pos = #images + 1, epochs_completed = -1 }, DataSet)
end

function M.read_data_sets(path)
  path = path or M.default_path
  local text = read_lines(path)
  local train_x, train_y, test_x, test_y = {}, {}, {}, {}
  local n = 0
  for line in text:gmatch("[^\r\n]+") do
    local v = {}
    for field in line:gmatch("[^,]+") do v[#v + 1] = tonumber(field) end
    if #v ~= M.pixels + 1 then
      error(string.format("digits: line %d of '%s' has %d fields, expected %d", n + 1, path, #v, M.pixels + 1), 0)
    end
    n = n + 1
    local digit = math.tointeger(v[#v])
    if not digit or digit < 0 or digit > 9 then
      error(string.format("digits: line %d of '%s': label %s is not a digit", n, path, tostring(v[#v])), 0)
    end
    local img = {}
    for i = 1, M.pixels do img[i] = v[i] / 16 end
    if n % 5 == 0 then
      test_x[#test_x + 1], test_y[#test_y + 1] = img, digit + 1
    else
      train_x[#train_x + 1], train_y[#train_y + 1] = img, digit + 1
    end
  end
  if #train_x == 0 or #test_x == 0 then error(string.format("digits: '%s' has too few images (%d)", path, n), 0) end
  return { train = dataset(train_x, train_y), test = dataset(test_x, test_y) }
end

return M
