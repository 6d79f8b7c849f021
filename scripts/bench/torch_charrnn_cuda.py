#!/usr/bin/env python3
"""GPU peer for scripts/bench/char_rnn.lua: the char-RNN of
../shared/bench/torch_charrnn.py (embedding -> stacked LSTM/GRU/RNN ->
linear, mean cross-entropy, Adam, gradient-norm clipping, truncated BPTT with
the state carried) trained on a CUDA GPU, where nn.LSTM/GRU/RNN run cuDNN's
fused sequence kernels. Same flags and JSON fields as the CPU peer; each
timed step ends with loss.item(), which waits for the GPU.

scripts/gpu/check.sh runs it beside moonflow on the borrowed GPU machine.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True)
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--seq", type=int, default=50)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", type=int, default=0, metavar="N")
    return p.parse_args()


class CharRNN(nn.Module):
    def __init__(self, vocab, cell, embed, hidden, layers):
        super().__init__()
        self.emb = nn.Embedding(vocab, embed)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        self.rnn = rnn(embed, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x, state):
        h, state = self.rnn(self.emb(x), state)
        return self.out(h), state


def detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def main():
    a = parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(a.seed)
    # float32 as moonflow computes it: no TF32 in cuDNN or cuBLAS.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    text = open(a.input, "rb").read()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    data = torch.tensor([index[c] for c in text], dtype=torch.long)
    V = len(vocab)
    n = (len(data) - 1) // (a.batch * a.seq) * (a.batch * a.seq)
    xs = data[:n].view(a.batch, -1).to(dev)
    ys = data[1:n + 1].view(a.batch, -1).to(dev)

    model = CharRNN(V, a.cell, a.embed, a.hidden, a.layers).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss()
    state, times, loss, pos = None, [], float("nan"), 0
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        if pos + a.seq > xs.size(1):
            pos = 0
        x, y = xs[:, pos:pos + a.seq], ys[:, pos:pos + a.seq]
        pos += a.seq
        state = detach(state)
        logits, state = model(x, state)
        l = loss_fn(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        l.backward()
        nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        loss = l.item()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
        if step % 10 == 0:
            print(f"step {step:4d}  loss {loss:.4f}  {dt * 1e3:8.2f} ms", file=sys.stderr)
    med = statistics.median(times)
    out = {
        "framework": "pytorch-cuda", "version": torch.__version__,
        "cudnn": torch.backends.cudnn.version(), "gpu": torch.cuda.get_device_name(0),
        "cell": a.cell, "embed": a.embed, "hidden": a.hidden, "layers": a.layers,
        "batch": a.batch, "seq": a.seq, "steps": a.steps,
        "step_ms_median": round(med * 1e3, 3),
        "tokens_per_s": round(a.batch * a.seq / med, 1),
        "final_loss": round(loss, 4),
    }
    if a.sample > 0:
        model.eval()
        gen = torch.Generator(device=dev).manual_seed(a.seed)
        with torch.no_grad():
            x = torch.tensor([[index[text[0]]]], device=dev)
            st = None
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(a.sample):
                logits, st = model(x, st)
                probs = torch.softmax(logits[0, -1], dim=0)
                x = torch.multinomial(probs, 1, generator=gen).view(1, 1)
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
        out["sample_chars"] = a.sample
        out["chars_per_s"] = round(a.sample / dt, 1)
    out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
