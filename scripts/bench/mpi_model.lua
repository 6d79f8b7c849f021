-- The scaling model of data-parallel char-RNN training (docs/MPI.md): each
-- rank keeps the per-rank batch (weak scaling) and a step is its compute
-- followed by one ring allreduce of the gradients (no overlap: moonflow
-- reduces after the backward pass),
--   t_comm(N) = 2(N-1)/N * G / bw + 2(N-1) * alpha,   efficiency = t_c / (t_c + t_comm),
-- with G the float32 gradient bytes of the config (the embedding dense:
-- sparse_as_dense), bw the link's bandwidth and alpha its per-message latency.
--   lua5.4 scripts/bench/mpi_model.lua [--bw 1.17e9] [--alpha 25e-6] [--ta 0.056] [--tb 1.3] [--ranks 2,8,64,512]
-- One JSON line per config and rank count.
local argparse = require("argparse")
local cjson = require("cjson")
local p = argparse("bench/mpi_model.lua", "Scaling model of data-parallel char-RNN training.")
p:option("--bw", "Link bandwidth, bytes/s (10 GbE's TCP goodput by default)."):default("1.17e9"):convert(tonumber)
p:option("--alpha", "Per-message latency, s."):default("25e-6"):convert(tonumber)
p:option("--ta", "Config a's measured compute per step and rank, s."):default("0.056"):convert(tonumber)
p:option("--tb", "Config b's measured compute per step and rank, s."):default("1.3"):convert(tonumber)
p:option("--ranks", "Rank counts."):default("2,8,64,512")
local o = p:parse(arg)

-- float32 parameters of an LSTM char-RNN (vocabulary 65)
local function params(embed, hidden, layers)
  local n, vocab = 65 * embed, 65
  for l = 1, layers do
    local inp = l == 1 and embed or hidden
    n = n + (inp + hidden) * 4 * hidden + 4 * hidden
  end
  return n + hidden * vocab + vocab
end
local configs = {
  { name = "a", embed = 64, hidden = 128, layers = 2, t_c = o.ta },
  { name = "b", embed = 128, hidden = 512, layers = 2, t_c = o.tb },
}
for _, c in ipairs(configs) do
  local g = 4 * params(c.embed, c.hidden, c.layers)
  for n in o.ranks:gmatch("%d+") do
    n = tonumber(n)
    local t = 2 * (n - 1) / n * g / o.bw + 2 * (n - 1) * o.alpha
    print(cjson.encode({ model = "ring_allreduce", config = c.name, ranks = n, gradient_bytes = g,
                         compute_ms = c.t_c * 1e3, comm_ms = t * 1e3, step_ms = (c.t_c + t) * 1e3,
                         efficiency = c.t_c / (c.t_c + t), bw = o.bw, alpha_us = o.alpha * 1e6 }))
  end
end
