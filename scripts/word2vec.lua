-- word2vec: skip-gram with negative sampling (tf.nn.nce_loss) on a text
-- file, as TensorFlow's word2vec_basic tutorial: a vocabulary of the most
-- frequent words (the rest become UNK), (center, context) pairs within a
-- window as training examples, embeddings trained with plain gradient
-- descent; then the nearest neighbours of a few words by cosine similarity,
-- computed in the graph (l2-normalized embeddings, matmul, top_k).
--
--   . scripts/env.sh build
--   lua5.4 scripts/word2vec.lua [--input FILE] [--vocab V] [--window W] [--skips K] [--batch B]
--     [--embedding E] [--sampled S] [--steps N] [--lr R] [--report N] [--words a,b,c]
--     [--neighbours K] [--seed S] [--quiet]
--
-- The default input is the project's README.md. Word ids count from 1; UNK
-- is id 1, then the words from the most frequent. Required as a module
-- (require("word2vec") with scripts/ on package.path) it returns its pieces
-- (tokenize, build_vocab, batcher, main) without running.
local script_dir = (debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or "."

local M = {}

M.OPTIONS = {
  input = script_dir .. "/../README.md", vocab = 1000, window = 1, skips = 2, batch = 128, embedding = 64,
  sampled = 32, steps = 3000, lr = 1.0, report = 500, words = "", neighbours = 6, seed = 1, quiet = false,
}

-- ---------------------------------------------------------------- data

-- The words of a text, lower-cased (letters, digits, inner apostrophes).
function M.tokenize(text)
  local words = {}
  for w in text:lower():gmatch("[%a%d][%a%d']*") do words[#words + 1] = w:gsub("'+$", "") end
  return words
end

-- ids (1 = UNK, then by falling count, ties in alphabetical order), the
-- vocabulary (id -> word), and the data as ids: TF's build_dataset.
function M.build_vocab(words, size)
  local count = {}
  for _, w in ipairs(words) do count[w] = (count[w] or 0) + 1 end
  local sorted = {}
  for w in pairs(count) do sorted[#sorted + 1] = w end
  table.sort(sorted, function(a, b) if count[a] ~= count[b] then return count[a] > count[b] end return a < b end)
  local vocab, id = { "UNK" }, {}
  for k = 1, math.min(size - 1, #sorted) do
    vocab[k + 1], id[sorted[k]] = sorted[k], k + 1
  end
  local data = {}
  for k, w in ipairs(words) do data[k] = id[w] or 1 end
  return data, vocab, id
end

-- Skip-gram batches, as TF's generate_batch: each center word data[c]
-- (skip_window <= c - 1 and c + skip_window <= #data, in order, wrapping
-- around) gives num_skips pairs (center, context) with its context words
-- data[c - skip_window .. c + skip_window] (not itself): all of them, in
-- order, when num_skips = 2 skip_window; else num_skips of them chosen at
-- random (math.random), in order. Returns next(): inputs {batch_size} and
-- labels {batch_size x {1}}.
function M.batcher(data, batch_size, num_skips, skip_window)
  assert(batch_size % num_skips == 0, "batch must be a multiple of skips")
  assert(num_skips <= 2 * skip_window, "skips must be at most 2 window")
  assert(#data >= 2 * skip_window + 1, "the text is shorter than one window")
  local center = skip_window + 1
  return function()
    local inputs, labels = {}, {}
    while #inputs < batch_size do
      local ctx = {}
      for j = center - skip_window, center + skip_window do if j ~= center then ctx[#ctx + 1] = j end end
      while #ctx > num_skips do table.remove(ctx, math.random(#ctx)) end
      for _, j in ipairs(ctx) do
        inputs[#inputs + 1], labels[#labels + 1] = data[center], { data[j] }
      end
      center = center + 1
      if center + skip_window > #data then center = skip_window + 1 end
    end
    return inputs, labels
  end
end

-- ---------------------------------------------------------------- the model and its training

function M.main(args)
  local tf = require("moonflow")
  local o = {}
  for k, v in pairs(M.OPTIONS) do o[k] = v end
  local i = 1
  while i <= #args do
    local k = args[i]:match("^%-%-(.+)$")
    if k == "help" then
      print("options (defaults): " .. (function()
        local t = {}
        for name, v in pairs(M.OPTIONS) do t[#t + 1] = string.format("--%s (%s)", name, tostring(v)) end
        table.sort(t)
        return table.concat(t, " ")
      end)())
      return
    end
    if not k or o[k] == nil then error("unknown option " .. tostring(args[i]) .. " (--help lists them)") end
    if type(o[k]) == "boolean" then
      o[k], i = true, i + 1
    else
      local v = args[i + 1]
      if v == nil then error("--" .. k .. " needs a value") end
      if type(M.OPTIONS[k]) == "number" then
        v = tonumber(v)
        if not v then error("--" .. k .. " needs a number") end
      end
      o[k], i = v, i + 2
    end
  end
  local function log(...) if not o.quiet then print(string.format(...)) end end
  local f = assert(io.open(o.input, "r"))
  local text = f:read("a")
  f:close()
  math.randomseed(o.seed)
  tf.set_random_seed(o.seed)

  local words = M.tokenize(text)
  local data, vocab, id = M.build_vocab(words, o.vocab)
  local V, E = #vocab, o.embedding
  local S = math.min(o.sampled, V) -- unique sampled classes: at most the vocabulary
  log("%d words, vocabulary %d (UNK and the %d most frequent)", #words, V, V - 1)

  local valid = {}
  if o.words ~= "" then
    for w in o.words:gmatch("[^,]+") do
      if not id[w] then error("--words: '" .. w .. "' is not in the vocabulary") end
      valid[#valid + 1] = id[w]
    end
  else
    for k = 2, math.min(V, 7) do valid[#valid + 1] = k end -- the most frequent words
  end
  local K = math.min(o.neighbours, V - 1)

  local train_inputs = tf.placeholder("int32", { o.batch }, "train_inputs")
  local train_labels = tf.placeholder("int32", { o.batch, 1 }, "train_labels")
  local embeddings = tf.Variable(tf.random_uniform({ V, E }, { minval = -1.0, maxval = 1.0 }), { name = "embeddings" })
  local embed = tf.nn.embedding_lookup(embeddings, train_inputs)
  local nce_weights = tf.Variable(tf.truncated_normal({ V, E }, { stddev = 1.0 / math.sqrt(E) }), { name = "nce_weights" })
  local nce_biases = tf.Variable(tf.zeros({ V }), { name = "nce_biases" })
  local loss = tf.reduce_mean(tf.nn.nce_loss(nce_weights, nce_biases, train_labels, embed, S, V))
  local train = tf.train.GradientDescentOptimizer(o.lr):minimize(loss)

  -- cosine similarity of the valid words to every word; the top K + 1
  -- (the word itself first)
  local normalized = tf.nn.l2_normalize(embeddings, 2)
  local valid_embeddings = tf.nn.embedding_lookup(normalized, tf.constant(valid, { dtype = "int32" }))
  local similarity = tf.matmul(valid_embeddings, normalized, { transpose_b = true })
  local _, nearest = tf.nn.top_k(similarity, K + 1)

  local sess <close> = tf.Session()
  sess:run(tf.global_variables_initializer())
  local next_batch = M.batcher(data, o.batch, o.skips, o.window)
  local sum, n, first, last = 0, 0, nil, nil
  for step = 1, o.steps do
    local x, y = next_batch()
    local r = sess:run({ loss = loss, _ = train }, { [train_inputs] = x, [train_labels] = y })
    sum, n = sum + r.loss:item(), n + 1
    if step % o.report == 0 or step == o.steps then
      local avg = sum / n
      first, last = first or avg, avg
      log("step %5d  average loss %.4f", step, avg)
      sum, n = 0, 0
    end
  end
  local near = sess:run(nearest):totable()
  for r, w in ipairs(valid) do
    local names = {}
    for _, j in ipairs(near[r]) do if j ~= w and #names < K then names[#names + 1] = vocab[j] end end
    print(string.format("nearest to %s: %s", vocab[w], table.concat(names, ", ")))
  end
  print(string.format("average loss first %.4f last %.4f (%d steps)", first, last, o.steps))
  return { first = first, last = last }
end

-- Run as a script (not when required as a module).
local is_script = arg and arg[0] and arg[0]:match("word2vec%.lua$") and (...) ~= "word2vec"
if is_script then
  local ok, err = pcall(M.main, arg)
  if not ok then
    io.stderr:write("word2vec.lua: ", tostring(err), "\n")
    os.exit(1)
  end
end
return M
