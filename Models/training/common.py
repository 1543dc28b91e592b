"""Shared helpers for building, saving and timing Vigil's ONNX models.

Every shipped model is written by `save_model`, which stamps the Vigil model
contract metadata (see Models/README.md) and pins opset / IR version so that
ONNX Runtime 1.22 (the C library the daemon links) loads it.
"""
import os
import time
import json

import numpy as np
import onnx
from onnx import helper, TensorProto, numpy_helper

OPSET = 17          # STFT lives in opset 17; ORT 1.22 supports up to 22
IR_VERSION = 8      # ORT 1.22 reads IR <= 10; 8 is what opset 17 introduced
PRODUCER = "vigil-training"

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.abspath(os.path.join(HERE, ".."))
FIXTURES_DIR = os.path.join(MODELS_DIR, "fixtures")
RESULTS_DIR = os.path.join(HERE, "results")
DATA_DIR = os.environ.get("VIGIL_DATA", "/work/shared/data")
OPENCV_DATA = os.environ.get("VIGIL_OPENCV_DATA", "/usr/share/doc/opencv-doc/examples/data")


def const(name, arr, dtype=np.float32):
    """An initializer tensor from a numpy array."""
    return numpy_helper.from_array(np.asarray(arr, dtype=dtype), name)


def make_model(nodes, inputs, outputs, initializers, metadata, graph_name):
    graph = helper.make_graph(nodes, graph_name, inputs, outputs, initializers)
    model = helper.make_model(graph, producer_name=PRODUCER,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.producer_version = "1"
    for k, v in metadata.items():
        p = model.metadata_props.add()
        p.key = k
        p.value = str(v)
    onnx.checker.check_model(model, full_check=True)
    return model


def save_model(model, path):
    onnx.save(model, path)
    size = os.path.getsize(path)
    assert size < 2 * 1024 * 1024, f"{path} is {size} bytes (> 2 MB)"
    return size


def session(path_or_bytes, threads=1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    src = path_or_bytes if isinstance(path_or_bytes, str) else path_or_bytes.SerializeToString()
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def latency_ms(sess, feed, runs=200, warmup=20):
    """Median and p95 single-inference latency in ms (1 intra-op thread)."""
    for _ in range(warmup):
        sess.run(None, feed)
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        t.append((time.perf_counter() - t0) * 1000.0)
    t = np.array(t)
    return float(np.median(t)), float(np.percentile(t, 95))


def wilson(k, n, z=1.96):
    """Wilson score interval for k successes in n trials (nan, nan when n is 0)."""
    import math
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def table(rows, header):
    """A Markdown table on stdout (the evaluation scripts' output, pasted into model cards)."""
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))


def write_results(name, obj):
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, name), "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def read_results(name):
    with open(os.path.join(RESULTS_DIR, name)) as f:
        return json.load(f)


def write_fixture(name, arr):
    arr = np.ascontiguousarray(arr, dtype="<f4")
    os.makedirs(FIXTURES_DIR, exist_ok=True)
    arr.tofile(os.path.join(FIXTURES_DIR, name))
    return arr


def update_expected(entries):
    """Merge {fixture_file: {...}} into Models/fixtures/expected.json."""
    path = os.path.join(FIXTURES_DIR, "expected.json")
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    data.update(entries)
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
