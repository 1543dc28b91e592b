#!/usr/bin/env python3
"""Generates the tiny ONNX models the Swift tests load. Run by hand; outputs are committed.

    pip install onnx==1.17.0 numpy && python3 Tests/TestSupport/Fixtures/make_fixtures.py

tiny_classifier.onnx: input x float[1,4] -> scores float[1,3] = softmax(x @ W + b),
    labels low,mid,high. Deterministic weights so tests can compute the expected scores.
free_dims.onnx: input window float[1,8,fields] -> score float[1,1] = sigmoid(mean(x)),
    a model with a free dimension (task anomaly).
two_inputs.onnx: a model vigil must refuse (two inputs).
tiny_classifier_v2.onnx: tiny_classifier's interface (float[1,4] -> float[1,3]) with other weights
    and labels cold,warm,hot: a "new version" of a model file (reload tests).
motion_small.onnx: input frames float[1,2,12,16] (previous, current) -> scores float[1,2], labels
    still,motion; motion = sigmoid(40 * (mean|current - previous| - 0.05)). vigil.frame 12x16.
brightness.onnx: input image float[1,1,12,16] -> scores float[1,2] = [1 - mean, mean], labels
    dark,bright; no vigil.frame (the size comes from the input), task classifier.
sound_small.onnx: input audio float[1,800] at 8000 Hz -> scores float[1,2], labels quiet,loud;
    loud = sigmoid(40 * (rms - 0.1)). vigil.window 800, vigil.sample_rate 8000.
wide_passthrough.onnx: input x float[1,521] -> scores float[1,521] = clip(x, 0, 1), no labels:
    a stand-in for AudioSet-sized classifiers (labels come from a labels file in tests).
"""
import os
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def meta(model, **kv):
    for k, v in kv.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v


def save(model, name):
    model.producer_name = "vigil-tests"
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, name))


def finish(g, filename, metadata=None):
    """Opset 17, IR 8 (what the ORT build we link reads), the vigil.* metadata, saved."""
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    if metadata:
        meta(m, **metadata)
    save(m, filename)


def linear_softmax(name, W, b, labels):
    """A [1,4] -> [1,3] softmax classifier: the daemon's tests only need its numbers known."""
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("Add", ["xw", "b"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["scores"], axis=1)],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(np.array(W, dtype=np.float32), "W"), numpy_helper.from_array(np.array(b, dtype=np.float32), "b")])
    finish(g, name + ".onnx", {"vigil.task": "classifier", "vigil.labels": labels, "vigil.threshold": "0.5"})


def tiny_classifier():
    linear_softmax("tiny_classifier", [[0.5, -0.2, 0.1], [0.3, 0.8, -0.5], [-0.7, 0.1, 0.9], [0.2, 0.2, 0.2]],
                   [0.1, -0.1, 0.0], "low,mid,high")


def tiny_classifier_v2():
    # The same shape with other weights and labels: a model swapped in by a reload.
    linear_softmax("tiny_classifier_v2", [[-0.4, 0.6, 0.2], [0.1, -0.3, 0.7], [0.9, 0.0, -0.6], [0.0, 0.3, 0.1]],
                   [0.0, 0.2, -0.2], "cold,warm,hot")


def free_dims():
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["window"], ["m"], keepdims=0),
         helper.make_node("Reshape", ["m", "shape"], ["m2"]),
         helper.make_node("Sigmoid", ["m2"], ["score"])],
        "free_dims",
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, [1, 8, "fields"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(np.array([1, 1], dtype=np.int64), "shape")])
    finish(g, "free_dims.onnx", {"vigil.task": "anomaly", "vigil.labels": "anomaly", "vigil.window": "8"})


def two_inputs():
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])], "two_inputs",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 2]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 2])])
    finish(g, "two_inputs.onnx")


def const(name, values, dtype=np.float32):
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


def two_class_head(score_in, g_nodes, inits):
    """[s] -> [1, 2] = [1 - s, s]."""
    g_nodes += [helper.make_node("Sub", ["one", score_in], ["inv"]),
                helper.make_node("Concat", ["inv", score_in], ["pair"], axis=0),
                helper.make_node("Reshape", ["pair", "shape12"], ["scores"])]
    inits += [const("one", [1.0]), const("shape12", [1, 2], np.int64)]


def motion_small():
    nodes = [helper.make_node("Split", ["frames", "split"], ["prev", "cur"], axis=1),
             helper.make_node("Sub", ["cur", "prev"], ["d"]),
             helper.make_node("Abs", ["d"], ["ad"]),
             helper.make_node("ReduceMean", ["ad"], ["m"], keepdims=0),
             helper.make_node("Reshape", ["m", "shape1"], ["m1"]),
             helper.make_node("Sub", ["m1", "bias"], ["c"]),
             helper.make_node("Mul", ["c", "gain"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["s"])]
    inits = [const("split", [1, 1], np.int64), const("shape1", [1], np.int64), const("bias", [0.05]), const("gain", [40.0])]
    two_class_head("s", nodes, inits)
    g = helper.make_graph(nodes, "motion_small",
                          [helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1, 2, 12, 16])],
                          [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])], inits)
    finish(g, "motion_small.onnx", {"vigil.task": "motion", "vigil.labels": "still,motion", "vigil.frame": "12x16", "vigil.threshold": "0.5"})


def brightness():
    nodes = [helper.make_node("ReduceMean", ["image"], ["m"], keepdims=0),
             helper.make_node("Reshape", ["m", "shape1"], ["s"])]
    inits = [const("shape1", [1], np.int64)]
    two_class_head("s", nodes, inits)
    g = helper.make_graph(nodes, "brightness",
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 12, 16])],
                          [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])], inits)
    finish(g, "brightness.onnx", {"vigil.task": "classifier", "vigil.labels": "dark,bright"})


def sound_small():
    nodes = [helper.make_node("Mul", ["audio", "audio"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"], ["ms"], keepdims=0),
             helper.make_node("Sqrt", ["ms"], ["rms"]),
             helper.make_node("Reshape", ["rms", "shape1"], ["r1"]),
             helper.make_node("Sub", ["r1", "bias"], ["c"]),
             helper.make_node("Mul", ["c", "gain"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["s"])]
    inits = [const("shape1", [1], np.int64), const("bias", [0.1]), const("gain", [40.0])]
    two_class_head("s", nodes, inits)
    g = helper.make_graph(nodes, "sound_small",
                          [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, 800])],
                          [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])], inits)
    finish(g, "sound_small.onnx", {"vigil.task": "sound", "vigil.labels": "quiet,loud", "vigil.window": "800", "vigil.sample_rate": "8000"})


def wide_passthrough():
    g = helper.make_graph(
        [helper.make_node("Clip", ["x", "lo", "hi"], ["scores"])], "wide_passthrough",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 521])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 521])],
        [numpy_helper.from_array(np.array(0, dtype=np.float32), "lo"), numpy_helper.from_array(np.array(1, dtype=np.float32), "hi")])
    finish(g, "wide_passthrough.onnx")


if __name__ == "__main__":
    tiny_classifier()
    free_dims()
    two_inputs()
    tiny_classifier_v2()
    motion_small()
    brightness()
    sound_small()
    wide_passthrough()
    print("wrote fixtures to", HERE)
