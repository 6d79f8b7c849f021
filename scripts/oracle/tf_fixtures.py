#!/usr/bin/env python3
"""TensorFlow 1.x as an oracle: builds small graphs with tf.compat.v1 and
writes their outputs and gradients, with the random inputs they were given,
to tests/spec/fixtures/tf_oracle.lua, which tests/spec/tf_oracle_spec.lua
compares moonflow against (cond / while gradients, run-time shapes, TF's
argument order). Outside CI: it needs PyPI's tensorflow-cpu.

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python scripts/oracle/tf_fixtures.py
"""
import os
import sys

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_v2_behavior()
rng = np.random.default_rng(20261202)
cases = []


def case(name, inputs, build):
    """inputs: {name: array}; build(placeholders) -> {name: tensor} (outputs
    and gradients); the values go to the fixture in float64."""
    g = tf.Graph()
    with g.as_default():
        phs = {k: tf.placeholder(tf.as_dtype(v.dtype), v.shape, name=k) for k, v in inputs.items()}
        outs = build(phs)
        with tf.Session(graph=g) as sess:
            vals = sess.run(outs, {phs[k]: v for k, v in inputs.items()})
    cases.append((name, inputs, vals))


def f64(*shape):
    return rng.uniform(-1.5, 1.5, size=shape).astype(np.float64)


# ---------------------------------------------------------------- control flow

def cond_case(p):
    x = p["x"]
    y = tf.cond(tf.reduce_sum(x) > 0, lambda: tf.sin(x) * 2.0, lambda: x * x * x)
    return {"y": y, "dx": tf.gradients(tf.reduce_sum(y * y), x)[0]}


for k in range(2):
    x = f64(5)
    x *= np.sign(x.sum()) * (1 if k == 0 else -1)  # one input per branch
    case("cond_%d" % k, {"x": x}, cond_case)


def while_case(p):
    x, w, n = p["x"], p["w"], p["n"]
    _, h = tf.while_loop(lambda i, h: i < n, lambda i, h: [i + 1, tf.tanh(h * w + x)], [tf.constant(0), x])
    loss = tf.reduce_sum(h * h)
    dx, dw = tf.gradients(loss, [x, w])
    return {"h": h, "dx": dx, "dw": dw}


for n in (0, 1, 4):
    case("while_%d" % n, {"x": f64(3), "w": f64(3), "n": np.array(n, np.int32)}, while_case)


def max_iter_case(p):
    x = p["x"]
    _, y = tf.while_loop(lambda i, y: tf.reduce_sum(y) < 100.0, lambda i, y: [i + 1, y * 1.5 + 1.0],
                         [tf.constant(0), x], maximum_iterations=3)
    return {"y": y, "dx": tf.gradients(tf.reduce_sum(y), x)[0]}


case("while_maximum_iterations", {"x": f64(4)}, max_iter_case)


def nested_case(p):
    x = p["x"]

    def body(i, h):
        _, u = tf.while_loop(lambda j, u: j < 2, lambda j, u: [j + 1, tf.sin(u) + x], [tf.constant(0), h])
        return [i + 1, tf.cond(tf.reduce_sum(u) > 0, lambda: u * 0.5, lambda: u - 1.0)]

    _, h = tf.while_loop(lambda i, h: i < 3, body, [tf.constant(0), x])
    return {"h": h, "dx": tf.gradients(tf.reduce_sum(h * h), x)[0]}


case("nested_loops_and_cond", {"x": f64(4)}, nested_case)


def map_scan_case(p):
    e = p["e"]
    m = tf.map_fn(lambda r: tf.reduce_sum(r * r) * r, e)
    s = tf.scan(lambda a, r: a * tf.cos(r) + r, e)
    sr = tf.scan(lambda a, r: a * 0.5 + r, e, reverse=True)
    fl = tf.foldl(lambda a, r: a * r + 1.0, e)
    fr = tf.foldr(lambda a, r: a * r + 1.0, e)
    total = tf.reduce_sum(m) + tf.reduce_sum(s * s) + tf.reduce_sum(sr) + tf.reduce_sum(fl) + tf.reduce_sum(fr)
    return {"map": m, "scan": s, "scan_reverse": sr, "foldl": fl, "foldr": fr,
            "de": tf.gradients(total, e)[0]}


case("map_scan_fold", {"e": f64(4, 3)}, map_scan_case)


def case_case(p):
    x = p["x"]
    s = tf.reduce_sum(x)
    y = tf.case([(s < -1.0, lambda: x * -1.0), (s < 1.0, lambda: x * 2.0)], default=lambda: tf.exp(x))
    return {"y": y, "dx": tf.gradients(tf.reduce_sum(y), x)[0]}


for k, scale in enumerate((-3.0, 0.0, 3.0)):
    x = f64(3) * 0.1 + scale / 3.0
    case("case_%d" % k, {"x": x}, case_case)

# ---------------------------------------------------------------- run-time shapes


def shapes_case(p):
    x, y = p["x"], p["y"]
    r = tf.reshape(x, tf.shape(y))
    z = tf.zeros(tf.shape(x), dtype=tf.float64) + 2.0
    t = tf.tile(y, tf.stack([tf.shape(x)[0] // 3, 1]))
    sl = tf.slice(x, [1, 0], tf.stack([1, tf.shape(x)[1]]))
    oh = tf.one_hot([0, 2], tf.shape(y)[0], dtype=tf.float64)
    loss = tf.reduce_sum(r * y) + tf.reduce_sum(t * t) + tf.reduce_sum(sl)
    dx, dy = tf.gradients(loss, [x, y])
    return {"reshape": r, "zeros": z, "tile": t, "slice": sl, "one_hot": oh, "dx": dx, "dy": dy}


case("run_time_shapes", {"x": f64(3, 4), "y": f64(6, 2)}, shapes_case)

# ---------------------------------------------------------------- argument order


def args_case(p):
    x = p["x"]
    return {
        "softmax_axis0": tf.nn.softmax(x, 0),
        "log_softmax_axis0": tf.nn.log_softmax(x, axis=0),
        "argmax_axis1": tf.argmax(x, 1),
        "reduce_sum_1_keep": tf.reduce_sum(x, 1, keepdims=True),
        "reduce_mean_ri": tf.reduce_mean(x, reduction_indices=[0]),
        "concat_axis1": tf.concat([x, x * 2.0], 1),
        "x_1": x[1],
        "x_m1": x[-1],
        "strided": tf.strided_slice(x, [0, 1], [3, 4], [2, 2]),
    }


case("argument_order", {"x": f64(3, 4)}, args_case)

# ---------------------------------------------------------------- convolutions and pooling (NHWC)


def conv_case(p):
    x, f, fd, x1, f1 = p["x"], p["f"], p["fd"], p["x1"], p["f1"]
    y = tf.nn.conv2d(x, f, [1, 2, 1, 1], "SAME")
    yd = tf.nn.convolution(x, f, "VALID", dilation_rate=[2, 2])  # TF's CPU Conv2D lacks dilations
    mp = tf.nn.max_pool(y, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
    ap = tf.nn.avg_pool(y, [1, 3, 3, 1], [1, 2, 2, 1], "SAME")
    tr = tf.nn.conv2d_transpose(y, f, tf.shape(x), [1, 2, 1, 1], "SAME")
    dw = tf.nn.depthwise_conv2d(x, fd, [1, 2, 2, 1], "SAME")
    c1 = tf.nn.conv1d(x1, f1, 2, "SAME")
    loss = (tf.reduce_sum(mp * mp) + tf.reduce_sum(ap) + tf.reduce_sum(yd * yd) + tf.reduce_sum(tr * x)
            + tf.reduce_sum(dw * dw) + tf.reduce_sum(c1 * c1))
    dx, df, dfd, dx1, df1 = tf.gradients(loss, [x, f, fd, x1, f1])
    return {"conv": y, "dilated": yd, "max_pool": mp, "avg_pool": ap, "transpose": tr, "depthwise": dw,
            "conv1d": c1, "dx": dx, "df": df, "dfd": dfd, "dx1": dx1, "df1": df1}


case("conv_pool", {"x": f64(2, 7, 6, 3), "f": f64(3, 3, 3, 4), "fd": f64(2, 3, 3, 2), "x1": f64(2, 9, 3),
                   "f1": f64(3, 3, 2)}, conv_case)

# ---------------------------------------------------------------- selection and rearrangement


def index_ops_case(p):
    """top_k, in_top_k, pad, reverse, reverse_sequence, gather_nd,
    scatter_nd, boolean_mask, where, cumsum, cumprod (1-based indices on
    moonflow's side: TF's indices get 1 added here)."""
    x, m = p["x"], p["m"]
    v, i = tf.nn.top_k(x, 3)
    outs = {
        "top_k_values": v,
        "top_k_indices": i + 1,
        "in_top_k": tf.cast(tf.nn.in_top_k(tf.cast(x, tf.float32), [0, 4, 2, 1], 2), tf.float64),
        "pad_constant": tf.pad(x, [[1, 0], [2, 1]], constant_values=1.5),
        "pad_reflect": tf.pad(x, [[2, 1], [4, 3]], "REFLECT"),
        "pad_symmetric": tf.pad(x, [[3, 4], [1, 5]], "SYMMETRIC"),
        "reverse": tf.reverse(x, [1]),
        "reverse_sequence": tf.reverse_sequence(x, [5, 0, 3, 2], seq_axis=1, batch_axis=0),
        "gather_nd": tf.gather_nd(x, [[3, 4], [0, 1], [3, 4]]),
        "scatter_nd": tf.scatter_nd([[2], [0], [2]], x[:3], [4, 5]),
        "boolean_mask": tf.boolean_mask(x, m),
        "where": tf.where(m) + 1,
        "cumsum": tf.cumsum(x, 1, exclusive=True, reverse=True),
        "cumprod": tf.cumprod(x, 0),
    }
    loss = tf.add_n([tf.reduce_sum(tf.sin(outs[k])) for k in (
        "top_k_values", "pad_constant", "pad_reflect", "pad_symmetric", "reverse", "reverse_sequence",
        "gather_nd", "scatter_nd", "boolean_mask", "cumsum", "cumprod")])
    outs["dx"] = tf.gradients(loss, x)[0]
    return outs


x = np.round(f64(4, 5) * 2) / 2 + 0.1 * f64(4, 5) * (f64(4, 5) > 0)  # some ties
case("index_ops", {"x": x, "m": np.array([True, False, True, True])}, index_ops_case)

# ---------------------------------------------------------------- sampled losses


def sampled_case(p):
    """nce_loss and sampled_softmax_loss with fixed sampled_values (labels
    and sampled classes count from 0 here, from 1 in moonflow), with and
    without accidental-hit removal, and their gradients."""
    w, b, x, labels = p["w"], p["b"], p["x"], p["labels"]
    sv = (p["sampled"], p["te"], p["se"])
    outs = {}
    for hits in (False, True):
        tag = "_hits" if hits else ""
        outs["nce" + tag] = tf.nn.nce_loss(w, b, labels, x, 6, 10, num_true=2, sampled_values=sv,
                                           remove_accidental_hits=hits)
        outs["ssm" + tag] = tf.nn.sampled_softmax_loss(w, b, labels, x, 6, 10, num_true=2, sampled_values=sv,
                                                       remove_accidental_hits=hits)
    loss = tf.add_n([tf.reduce_sum(tf.sin(v)) for v in outs.values()])
    dw, db, dx = tf.gradients(loss, [w, b, x])
    outs.update({"dw": tf.convert_to_tensor(dw), "db": tf.convert_to_tensor(db), "dx": dx})
    return outs


case("sampled_losses", {"w": f64(10, 3), "b": f64(10), "x": f64(4, 3),
                        "labels": np.array([[1, 4], [0, 0], [7, 2], [9, 3]], np.int64),
                        "sampled": np.array([4, 0, 5, 9, 4, 8], np.int64),  # 4 twice: TF masks its last copy
                        "te": rng.uniform(0.1, 1.5, size=(4, 2)), "se": rng.uniform(0.1, 1.5, size=6)},
     sampled_case)


def sampler_counts_case(p):
    """The candidate samplers' expected counts of the true classes without
    unique (p num_sampled, whatever was drawn): TF's class k is moonflow's
    k + 1, so these pin the distributions' mapping."""
    tc = p["tc"]
    outs = {}
    for kind, fn in (("log_uniform", tf.nn.log_uniform_candidate_sampler),
                     ("uniform", tf.nn.uniform_candidate_sampler)):
        for rng_max in (10, 1000):
            _, te, _ = fn(tc, 2, 7, False, rng_max, seed=1)
            outs["%s_%d" % (kind, rng_max)] = tf.cast(te, tf.float64)
    return outs


case("sampler_counts", {"tc": np.array([[0, 1], [2, 5], [8, 9]], np.int64)}, sampler_counts_case)


def accidental_hits_case(p):
    """compute_accidental_hits (rows and positions 1-based in moonflow:
    1 added here)."""
    indices, ids, weights = tf.nn.compute_accidental_hits(p["tc"], p["sampled"], num_true=2)
    return {"indices": indices + 1, "ids": ids + 1, "weights": tf.cast(weights, tf.float64)}


case("accidental_hits", {"tc": np.array([[1, 4], [0, 0], [7, 2], [9, 3]], np.int64),
                         "sampled": np.array([4, 0, 5, 9, 8, 0], np.int64)}, accidental_hits_case)

# ---------------------------------------------------------------- writing


def lua(v):
    v = np.asarray(v)
    if v.ndim == 0:
        x = v.item()
        if isinstance(x, bool):
            return "true" if x else "false"
        return repr(int(x)) if np.issubdtype(v.dtype, np.integer) else "%.17g" % float(x)
    return "{" + ", ".join(lua(e) for e in v) + "}"


out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "spec", "fixtures", "tf_oracle.lua")
with open(out, "w") as f:
    f.write("-- Generated by scripts/oracle/tf_fixtures.py with TensorFlow %s (tf.compat.v1): inputs, outputs\n"
            "-- and gradients of small graphs; tests/spec/tf_oracle_spec.lua rebuilds them in moonflow.\n"
            "return {\n" % tf.__version__)
    for name, inputs, vals in cases:
        f.write("  %s = {\n    inputs = {\n" % name)
        for k, v in inputs.items():
            f.write("      %s = { dtype = \"%s\", shape = %s, value = %s },\n" % (k, v.dtype, lua(list(v.shape)) if v.ndim else "{}", lua(v)))
        f.write("    },\n    outputs = {\n")
        for k, v in vals.items():
            v = np.asarray(v)
            f.write("      %s = { shape = %s, value = %s },\n" % (k, lua(list(v.shape)) if v.ndim else "{}", lua(v)))
        f.write("    },\n  },\n")
    f.write("}\n")
print("wrote %d cases to %s" % (len(cases), os.path.normpath(out)), file=sys.stderr)
