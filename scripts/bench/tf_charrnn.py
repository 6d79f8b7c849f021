#!/usr/bin/env python3
"""Peer benchmark: char-RNN training (and sampling) throughput of TensorFlow on CPU.

TensorFlow's side of ../shared/bench/torch_charrnn.py and
scripts/bench/char_rnn.lua: the same model (embedding -> stacked LSTM/GRU/RNN
-> linear to the vocabulary), data (the corpus cut into `batch` contiguous
streams read in consecutive windows of `seq` symbols), loss (mean
cross-entropy over every position), optimizer (Adam, global-norm clipping),
truncated BPTT (the final state fed back as the next window's initial
state), flags and JSON fields, built TF 1.x style through tf.compat.v1
(placeholders, a graph, a Session) in one of two ways:

  --impl dynamic_rnn  tf.compat.v1.nn.dynamic_rnn over a MultiRNNCell of
                      LSTMCell / GRUCell / BasicRNNCell (TF 1.x's own cells)
  --impl keras        Keras' LSTM / GRU / SimpleRNN layers (each one fused
                      layer; Keras 2 through tf_keras, as Keras 3 has no
                      graph mode)

The embedding and output layer are the same variables and ops in both, so
the two differ only in the recurrent part. Prints the loss every 10 steps on
stderr and one JSON line on stdout.
Install: python3 -m venv V && V/bin/pip install tensorflow-cpu tf_keras
(scripts/bench/compare.sh --setup does it).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="training text (bytes are the symbols)")
    p.add_argument("--impl", default="dynamic_rnn", choices=["dynamic_rnn", "keras"])
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--seq", type=int, default=50)
    p.add_argument("--steps", type=int, default=30, help="timed training steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed training steps first")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (ConfigProto)")
    p.add_argument("--inter-threads", "--inter_threads", dest="inter_threads", type=int, default=0,
                   help="inter-op threads (ConfigProto); 0 = the same as --threads")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", type=int, default=0, metavar="N",
                   help="after training, time generating N characters one at a time")
    return p.parse_args()


args = parse_args()
# Keras 2 (tf_keras): Keras 3's layers do not build into a tf.compat.v1 graph,
# and TF's own rnn_cell classes live there too. Must precede the import.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1
v1.disable_eager_execution()
v1.logging.set_verbosity(v1.logging.ERROR)


def windows(data, batch, seq):
    """Cut the corpus into `batch` contiguous streams; yield consecutive (x, y)
    windows of `seq` symbols, wrapping around at the end (char-rnn's loader)."""
    n = (len(data) - 1) // (batch * seq) * (batch * seq)
    x = data[:n].reshape(batch, -1)
    y = data[1:n + 1].reshape(batch, -1)
    while True:
        for i in range(0, x.shape[1], seq):
            yield x[:, i:i + seq], y[:, i:i + seq]


class CharRNN:
    """The graph for one (batch, seq) shape: ids in, logits and the final
    state out, the initial state fed through placeholders (one per state
    tensor, zeros at the start). Built under one variable scope so that a
    second instance (sampling) shares the weights."""

    def __init__(self, impl, cell, V, embed, hidden, layers, batch, seq, reuse):
        self.cell, self.hidden, self.layers = cell, hidden, layers
        n_state = 2 if cell == "lstm" else 1  # LSTM: (c, h); GRU/RNN: h
        self.x = v1.placeholder(tf.int32, [batch, seq], name="x")
        self.init = [[v1.placeholder(tf.float32, [batch, hidden], name=f"s{l}_{k}") for k in range(n_state)]
                     for l in range(layers)]
        with v1.variable_scope("charrnn", reuse=reuse):
            emb = v1.get_variable("embedding", [V, embed])
            h = tf.nn.embedding_lookup(emb, self.x)  # [batch, seq, embed]
            if impl == "dynamic_rnn":
                h, self.final = self._dynamic_rnn(h, reuse)
            else:
                h, self.final = self._keras(h, reuse)
            w = v1.get_variable("softmax_w", [hidden, V])
            b = v1.get_variable("softmax_b", [V], initializer=v1.zeros_initializer())
            self.logits = tf.reshape(tf.matmul(tf.reshape(h, [-1, hidden]), w) + b, [batch, seq, V])

    def _dynamic_rnn(self, h, reuse):
        rc = v1.nn.rnn_cell
        make = {"lstm": lambda: rc.LSTMCell(self.hidden, state_is_tuple=True),
                "gru": lambda: rc.GRUCell(self.hidden),
                "rnn": lambda: rc.BasicRNNCell(self.hidden)}[self.cell]
        cells = rc.MultiRNNCell([make() for _ in range(self.layers)], state_is_tuple=True)
        if self.cell == "lstm":
            init = tuple(rc.LSTMStateTuple(c, hh) for c, hh in self.init)
        else:
            init = tuple(s[0] for s in self.init)
        out, final = v1.nn.dynamic_rnn(cells, h, initial_state=init, dtype=tf.float32, scope="rnn")
        if self.cell == "lstm":
            final = [[s.c, s.h] for s in final]
        else:
            final = [[s] for s in final]
        return out, final

    def _keras(self, h, reuse):
        if not reuse:  # the layers are Python objects; a second graph reuses them
            make = {"lstm": tf.keras.layers.LSTM, "gru": tf.keras.layers.GRU,
                    "rnn": tf.keras.layers.SimpleRNN}[self.cell]
            CharRNN.keras_layers = [make(self.hidden, return_sequences=True, return_state=True,
                                         name=f"{self.cell}_{l}") for l in range(self.layers)]
        final = []
        for layer, s in zip(CharRNN.keras_layers, self.init):
            if self.cell == "lstm":
                h, hh, c = layer(h, initial_state=[s[1], s[0]])  # Keras' order is [h, c]
                final.append([c, hh])
            else:
                h, hh = layer(h, initial_state=[s[0]])
                final.append([hh])
        return h, final

    def zero_state(self, batch):
        return [[np.zeros((batch, self.hidden), np.float32) for _ in ps] for ps in self.init]


def main():
    a = args
    np.random.seed(a.seed)
    v1.set_random_seed(a.seed)

    text = open(a.input, "rb").read()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    data = np.array([index[c] for c in text], dtype=np.int32)
    V = len(vocab)

    model = CharRNN(a.impl, a.cell, V, a.embed, a.hidden, a.layers, a.batch, a.seq, reuse=False)
    y = v1.placeholder(tf.int32, [a.batch, a.seq], name="y")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=model.logits))
    params = v1.trainable_variables()
    grads, _ = tf.clip_by_global_norm(tf.gradients(loss, params), a.clip)
    train_op = v1.train.AdamOptimizer(a.lr).apply_gradients(zip(grads, params))
    sampler = None
    if a.sample > 0:
        sampler = CharRNN(a.impl, a.cell, V, a.embed, a.hidden, a.layers, 1, 1, reuse=True)
        probs = tf.nn.softmax(sampler.logits[0, 0])  # temperature 1

    inter = a.inter_threads or a.threads
    config = v1.ConfigProto(intra_op_parallelism_threads=a.threads, inter_op_parallelism_threads=inter)
    sess = v1.Session(config=config)
    sess.run(v1.global_variables_initializer())
    print("trainable: " + ", ".join(f"{v.name}{v.shape.as_list()}" for v in params), file=sys.stderr)
    # make_callable: TF 1.x's fast path for one fixed feed/fetch signature
    feeds = [model.x, y] + [p for ps in model.init for p in ps]
    train = sess.make_callable([loss, model.final, train_op], feeds)

    stream = windows(data, a.batch, a.seq)
    state = model.zero_state(a.batch)
    times, lv = [], float("nan")
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        xb, yb = next(stream)
        lv, state, _ = train(xb, yb, *[v for vs in state for v in vs])
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
        if step % 10 == 0 or step == a.warmup + a.steps - 1:
            print(f"step {step:4d}  loss {lv:.4f}  {dt * 1e3:8.2f} ms", file=sys.stderr)

    med = statistics.median(times)
    out = {
        "framework": "tensorflow-" + a.impl, "version": tf.__version__, "cell": a.cell,
        "embed": a.embed, "hidden": a.hidden, "layers": a.layers,
        "batch": a.batch, "seq": a.seq, "threads": a.threads, "inter_threads": inter,
        "steps": a.steps,
        "step_ms_median": round(med * 1e3, 3),
        "step_ms_mean": round(statistics.mean(times) * 1e3, 3),
        "tokens_per_s": round(a.batch * a.seq / med, 1),
        "final_loss": round(float(lv), 4),
    }

    if sampler is not None:
        rng = np.random.default_rng(a.seed)
        st = sampler.zero_state(1)
        x = np.array([[index[text[0]]]], np.int32)
        step = sess.make_callable([probs, sampler.final], [sampler.x] + [p for ps in sampler.init for p in ps])
        step(x, *[v for vs in st for v in vs])  # untimed: the first call sets the graph up
        t0 = time.perf_counter()
        for _ in range(a.sample):
            p, st = step(x, *[v for vs in st for v in vs])
            p = p.astype(np.float64)
            x[0, 0] = rng.choice(V, p=p / p.sum())
        dt = time.perf_counter() - t0
        out["sample_chars"] = a.sample
        out["chars_per_s"] = round(a.sample / dt, 1)

    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
