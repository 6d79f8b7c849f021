#!/usr/bin/env python3
"""TensorFlow 1.x as the oracle of tests/spec/norm_losses_metrics_spec.lua:
prints the tf.losses values, loss names, metric values after two update
steps, and tf.layers.batch_normalization's variable and update-op names that
the spec holds as constants. Outside CI: needs PyPI's tensorflow-cpu, and
tf_keras with TF_USE_LEGACY_KERAS=1 for tf.compat.v1.layers.

    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python scripts/oracle/tf_losses_metrics.py
"""
import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_v2_behavior()

# ---------------------------------------------------------------- losses
y = tf.constant([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
z = tf.constant([[0.5, 1.5, -0.3], [2.0, -1.0, 0.1]])
L = tf.losses
losses = [
    L.softmax_cross_entropy(y, z, label_smoothing=0.1),
    L.sparse_softmax_cross_entropy([1, 0], z, [[1.0], [0.0]]),  # moonflow's labels are 1-based: {2, 1}
    L.sigmoid_cross_entropy(y, z, 1.0, 0.2),
    L.mean_squared_error(y, z, [[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]]),
    L.huber_loss(y, z, delta=0.5, reduction=L.Reduction.SUM),
    L.hinge_loss(y, z),
    L.log_loss(y, tf.sigmoid(z), reduction="weighted_mean", weights=0.5),
]
with tf.Session() as s:
    for t, v in zip(losses, s.run(losses)):
        print("loss", t.name, "%.8g" % v)
print("LOSSES", [t.name for t in L.get_losses()])

# ---------------------------------------------------------------- metrics
lab = tf.placeholder(tf.int32, [None])
pred = tf.placeholder(tf.float32, [None])
w = tf.placeholder(tf.float32, [None])
M = tf.metrics
ms = [M.accuracy(lab, tf.cast(pred > 0.5, tf.int32)), M.mean(pred, w), M.precision(lab, pred > 0.5),
      M.recall(lab, pred > 0.5, w), M.auc(lab, pred),
      M.auc(lab, pred, w, curve="PR", num_thresholds=50, summation_method="minoring")]
print("LOCAL_VARIABLES", [v.name for v in tf.local_variables()])
with tf.Session() as s:
    s.run(tf.local_variables_initializer())
    for b in [([1, 0, 1, 1, 0], [0.9, 0.2, 0.4, 0.7, 0.6], [1, 1, 0.5, 2, 1]),
              ([0, 0, 1, 0], [0.1, 0.8, 0.95, 0.3], [1, 0, 1, 1])]:
        s.run([m[1] for m in ms], {lab: b[0], pred: b[1], w: b[2]})
    for m in ms:
        print("metric", m[0].name, "%.8g" % s.run(m[0]))

# ---------------------------------------------------------------- batch normalization
g = tf.Graph()
with g.as_default():
    x = tf.placeholder(tf.float32, [None, 3])
    tf.layers.batch_normalization(x, training=True)
    tf.layers.batch_normalization(x)
    print("variables", [v.name for v in tf.global_variables()])
    print("UPDATE_OPS", [o.name for o in tf.get_collection(tf.GraphKeys.UPDATE_OPS)])
    x4 = np.random.default_rng(1).normal(size=(2, 3, 3, 4)).astype(np.float32)
    _, _, var = tf.nn.fused_batch_norm(x4, np.ones(4, np.float32), np.zeros(4, np.float32))
    with tf.Session() as s:
        print("fused variance / biased variance", s.run(var) / x4.reshape(-1, 4).var(0), "(18/17 expected)")
