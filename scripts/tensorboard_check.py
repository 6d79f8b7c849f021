#!/usr/bin/env python3
"""Loads an event directory with TensorBoard's own reader (EventAccumulator,
from PyPI's `tensorboard`) and prints, as JSON, what it found: scalars,
histograms (bucket limits and counts as stored), text, images and the graph.
tests/spec/summary_spec.lua runs it on files moonflow wrote and checks the
result. Python only reads here: the files are moonflow's.

Usage: scripts/tensorboard_check.py LOGDIR
       scripts/tensorboard_check.py --protos DESCRIPTOR_SET
The second form compares our proto/*.proto (a descriptor set from
`protoc --include_imports -o`) with the copies of TensorFlow's protos that
tensorboard ships: every message and field of ours must exist there with the
same number and type, every DataType value with the same number. It prints
the mismatches (JSON list; empty when all agree).
Exit status 2 (with a message) when tensorboard cannot be imported.
"""
import json
import sys

try:
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.compat.proto import graph_pb2
except ImportError as e:  # the spec fails loudly on this, never skips
    print("tensorboard_check: cannot import tensorboard (%s); "
          "install it with `python3 -m pip install --user tensorboard`" % e, file=sys.stderr)
    sys.exit(2)


def decode_png(data):
    """The image's mode and pixels (PIL, which tensorboard depends on)."""
    import io
    from PIL import Image
    im = Image.open(io.BytesIO(data))
    im.load()
    return {"mode": im.mode, "size": list(im.size), "data": list(im.tobytes())}


def tensor(t):
    """A TensorProto attribute: dtype number, shape, strings, content bytes."""
    return {"dtype": t.dtype, "shape": [d.size for d in t.tensor_shape.dim],
            "strings": [v.decode("utf-8", "replace") for v in t.string_val],
            "content_bytes": len(t.tensor_content)}


def main(logdir):
    acc = ea.EventAccumulator(logdir, size_guidance={
        ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.IMAGES: 0, ea.TENSORS: 0, ea.GRAPH: 1})
    acc.Reload()
    tags = acc.Tags()
    out = {"tags": {k: v for k, v in tags.items() if isinstance(v, list)},
           "scalars": {}, "histograms": {}, "text": {}, "images": {}, "graph": None}
    for tag in tags.get(ea.SCALARS, []):
        out["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags.get(ea.HISTOGRAMS, []):
        out["histograms"][tag] = [{
            "step": e.step, "min": e.histogram_value.min, "max": e.histogram_value.max,
            "num": e.histogram_value.num, "sum": e.histogram_value.sum,
            "sum_squares": e.histogram_value.sum_squares,
            "bucket_limit": list(e.histogram_value.bucket_limit),
            "bucket": list(e.histogram_value.bucket)} for e in acc.Histograms(tag)]
    for tag in tags.get(ea.TENSORS, []):
        events = acc.Tensors(tag)
        meta = acc.SummaryMetadata(tag)
        out["text"][tag] = {
            "plugin": meta.plugin_data.plugin_name,
            "values": [[e.step, [s.decode("utf-8", "replace") for s in e.tensor_proto.string_val],
                        [d.size for d in e.tensor_proto.tensor_shape.dim]] for e in events]}
    for tag in tags.get(ea.IMAGES, []):
        out["images"][tag] = [{"step": e.step, "width": e.width, "height": e.height,
                               "pixels": decode_png(e.encoded_image_string)} for e in acc.Images(tag)]
    if tags.get(ea.GRAPH):
        g = acc.Graph()
        assert isinstance(g, graph_pb2.GraphDef)
        out["graph"] = [{"name": n.name, "op": n.op, "input": list(n.input), "device": n.device,
                         "attr": sorted(n.attr.keys()),
                         "value": tensor(n.attr["value"].tensor) if "value" in n.attr else None}
                        for n in g.node]
    json.dump(out, sys.stdout)


def check_protos(path):
    from google.protobuf import descriptor_pb2
    from tensorboard.compat.proto import (attr_value_pb2, event_pb2, function_pb2, graph_pb2,
                                          meta_graph_pb2, node_def_pb2, op_def_pb2, saver_pb2,
                                          summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2,
                                          variable_pb2, versions_pb2)
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    theirs = {}

    def index(d):  # by name without the package (tensorboard renames it)
        theirs[d.full_name.split(".", 1)[1]] = d
        for n in d.nested_types:
            index(n)
    for m in (event_pb2.Event, summary_pb2.Summary, summary_pb2.HistogramProto,
              summary_pb2.SummaryMetadata, graph_pb2.GraphDef, node_def_pb2.NodeDef,
              attr_value_pb2.AttrValue, tensor_pb2.TensorProto, tensor_shape_pb2.TensorShapeProto,
              versions_pb2.VersionDef, function_pb2.FunctionDefLibrary, function_pb2.FunctionDef,
              op_def_pb2.OpDef, saver_pb2.SaverDef, meta_graph_pb2.MetaGraphDef,
              meta_graph_pb2.CollectionDef, meta_graph_pb2.TensorInfo, meta_graph_pb2.SignatureDef,
              variable_pb2.VariableDef):
        index(m.DESCRIPTOR)
    # tensorboard ships no saved_model.proto: TF's SavedModel fields (name: number, type)
    known = {"SavedModel": {"saved_model_schema_version": (1, descriptor_pb2.FieldDescriptorProto.TYPE_INT64),
                            "meta_graphs": (2, descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE)}}
    bad = []

    def walk(prefix, m):
        full = prefix + m.name
        t = theirs.get(full)
        if t is None and full in known:
            for f in m.field:
                if known[full].get(f.name) != (f.number, f.type):
                    bad.append("field %s.%s = %d" % (full, f.name, f.number))
            return
        if t is None:
            bad.append("no message " + full)
            return
        for f in m.field:
            tf = t.fields_by_name.get(f.name)
            if tf is None or tf.number != f.number or tf.type != f.type:
                bad.append("field %s.%s = %d" % (full, f.name, f.number))
        for n in m.nested_type:
            if not n.options.map_entry:
                walk(full + ".", n)
    for fd in fds.file:
        for m in fd.message_type:
            walk("", m)
        for e in fd.enum_type:
            for v in e.value:
                tv = types_pb2.DataType.DESCRIPTOR.values_by_name.get(v.name)
                if tv is None or tv.number != v.number:
                    bad.append("enum value %s = %d" % (v.name, v.number))
    json.dump(bad, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "--protos":
        check_protos(sys.argv[2])
    else:
        main(sys.argv[1])
