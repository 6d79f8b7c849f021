#!/usr/bin/env python3
"""Checks moonflow's exported graphs with TensorFlow's own parsers (outside CI).

    /work/tfvenv/bin/python scripts/oracle/check_graphdef.py DIR

DIR holds graph.pb (tf.train.write_graph(g, DIR, "graph.pb", false)),
graph.pbtxt (as_text) and model.meta (tf.train.export_meta_graph); with no
DIR the script makes them first with lua5.4 (scripts/env.sh must have been
sourced). It checks that tf.compat.v1.GraphDef.ParseFromString parses the
binary GraphDef, that google.protobuf.text_format parses the .pbtxt into the
same message, and that MetaGraphDef.ParseFromString parses the .meta (and
its VariableDefs). Prints what it saw; exits non-zero on any failure.
"""
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from tensorflow.core.framework import variable_pb2  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE = os.path.join(HERE, "make_graphdef.lua")


def main():
    if len(sys.argv) > 1:
        d = sys.argv[1]
    else:
        d = tempfile.mkdtemp(prefix="mf_graphdef_")
        subprocess.run(["lua5.4", MAKE, d], check=True, cwd=os.path.join(HERE, "..", ".."))
    with open(os.path.join(d, "graph.pb"), "rb") as f:
        data = f.read()
    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString(data)
    ops = sorted({n.op for n in gd.node})
    print("GraphDef: %d bytes, %d nodes, %d functions, op types: %s"
          % (len(data), len(gd.node), len(gd.library.function), ", ".join(ops)))
    assert gd.SerializeToString() == data or len(gd.SerializeToString()) == len(data)
    for fn in gd.library.function:
        print("  function %s(%s) -> %s" % (fn.signature.name,
                                           ", ".join(a.name for a in fn.signature.input_arg),
                                           ", ".join("%s=%s" % kv for kv in sorted(fn.ret.items()))))
    with open(os.path.join(d, "graph.pbtxt")) as f:
        text = f.read()
    gt = text_format.Parse(text, tf.compat.v1.GraphDef())
    assert gt == gd, "the text format parses to a different GraphDef"
    print("text format: %d bytes, parses to the same GraphDef" % len(text))
    with open(os.path.join(d, "model.meta"), "rb") as f:
        meta = f.read()
    mg = tf.compat.v1.MetaGraphDef()
    mg.ParseFromString(meta)
    assert mg.graph_def == gd, "the MetaGraphDef's graph_def differs from graph.pb"
    print("MetaGraphDef: %d bytes, version %r, saver max_to_keep %d, collections %s"
          % (len(meta), mg.meta_info_def.meta_graph_version, mg.saver_def.max_to_keep,
             sorted(mg.collection_def.keys())))
    for key in ("variables", "trainable_variables"):
        for b in mg.collection_def[key].bytes_list.value:
            v = variable_pb2.VariableDef()
            v.ParseFromString(b)
            print("  %s: %s (initializer %s, trainable %s)" % (key, v.variable_name,
                                                               v.initializer_name, v.trainable))
    print("ok")


if __name__ == "__main__":
    main()
