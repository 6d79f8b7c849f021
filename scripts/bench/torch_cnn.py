#!/usr/bin/env python3
"""Peer benchmark: LeNet-style CNN training throughput of PyTorch on CPU.

The PyTorch side of scripts/bench/cnn.lua, with the same flags, model, data
sizes, optimizer, batch and JSON fields:
  conv 5x5 SAME (16) + relu, max pool 2, conv 5x5 SAME (32) + relu, max pool 2,
  dense 64 + relu, dense 10; mean softmax cross-entropy; plain SGD.
Glorot-uniform weights and zero biases (tf.layers' defaults). The inputs are
the same kind of synthetic task (10 fixed random templates plus noise), 8
batches made up front and cycled. One training step = forward + backward +
update + reading the loss. PyTorch's own layout (NCHW) is used.

Prints the loss every 10 steps on stderr and one JSON line on stdout.
  python3 torch_cnn.py [--size 8] [--batch 64] [--steps 30] [--warmup 5]
      [--threads 0] [--lr 0.05] [--seed 0]
--threads 0 keeps torch's default intra-op thread count.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def positive_int(s):
    n = int(s)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{s}'")
    return n


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=positive_int, default=8, help="input height and width (a multiple of 4)")
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--steps", type=positive_int, default=30, help="timed steps")
    p.add_argument("--warmup", type=positive_int, default=5, help="untimed steps first")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 = torch's default")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.size % 4 != 0:
        p.error("--size must be a multiple of 4")
    return a


class LeNet(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
        self.fc1 = nn.Linear(32 * (size // 4) ** 2, 64)
        self.fc2 = nn.Linear(64, 10)
        for m in (self.conv1, self.conv2, self.fc1, self.fc2):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2, 2)
        h = F.relu(self.fc1(torch.flatten(h, 1)))
        return self.fc2(h)


def gemm_kernel():
    cfg = torch.__config__.show()
    for part in cfg.replace("\n", ",").split(","):
        part = part.strip()
        if part.startswith("BLAS_INFO="):
            blas = part.split("=", 1)[1]
            return f"{blas}+onednn" if torch.backends.mkldnn.is_available() else blas
    return "onednn" if torch.backends.mkldnn.is_available() else "unknown"


def main():
    a = parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    model = LeNet(a.size)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)

    templates = torch.rand(10, 1, a.size, a.size, generator=g)
    batches = []
    for _ in range(8):
        ys = torch.randint(0, 10, (a.batch,), generator=g)
        xs = templates[ys] + 0.3 * (torch.rand(a.batch, 1, a.size, a.size, generator=g) - 0.5)
        batches.append((xs.contiguous(), ys))

    times, last = [], float("nan")
    for step in range(a.warmup + a.steps):
        x, y = batches[step % len(batches)]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        last = loss.item()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
        if step % 10 == 0:
            print(f"step {step} loss {last:.4f} {dt * 1000:.2f} ms", file=sys.stderr)

    med = statistics.median(times)
    out = {"framework": "pytorch", "version": torch.__version__, "size": a.size, "batch": a.batch,
           "threads": a.threads if a.threads > 0 else torch.get_num_threads(),
           "step_ms_median": round(med * 1000, 3), "examples_per_s": round(a.batch / med, 1),
           "final_loss": round(last, 4), "gemm_kernel": gemm_kernel()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
