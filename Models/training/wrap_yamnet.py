#!/usr/bin/env python3
"""Wrap the YAMNet reference (yamnet_spectra_in.onnx, Apache-2.0, NOT shipped here) into
a model that follows the Vigil sound contract, to serve it with vigild as a
bring-your-own model:

  audio [1,15600] -> the same in-graph log-mel as sound.onnx (identical to YAMNet's
  features, checked in evaluate) -> YAMNet -> scores [1,4] normal,glass_breaking,
  smoke_alarm,door_bell  (glass = max(Glass, Shatter, Breaking), smoke = Smoke detector,
  door = max(Doorbell, Ding-dong), normal = 1 - max of those).

  python3 Models/training/wrap_yamnet.py [out.onnx]   (default build/yamnet_vigil.onnx, ~4 MB)
"""
import os
import sys

import numpy as np
import onnx
from onnx import helper, TensorProto, compose

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import const, DATA_DIR, PRODUCER  # noqa: E402
import sound_model as sm  # noqa: E402
from sound_data import N, SR, LABELS  # noqa: E402

SRC = os.path.join(DATA_DIR, "reference-models", "yamnet_spectra_in.onnx")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             "build", "yamnet_vigil.onnx")
    y = onnx.load(SRC)
    yin, yout = y.graph.input[0].name, y.graph.output[0].name
    nodes, inits = sm._frontend(1)
    inits.append(const("shape_patch", np.array([1, 96, 64]), np.int64))
    nodes.append(helper.make_node("Reshape", ["logmel", "shape_patch"], ["patch"]))
    front = helper.make_model(
        helper.make_graph(nodes, "front", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, N])],
                          [helper.make_tensor_value_info("patch", TensorProto.FLOAT, [1, 96, 64])], inits),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)])
    front.ir_version = y.ir_version
    n = helper.make_node
    head_inits = [const(f"i_{k}", np.array(v), np.int64) for k, v in
                  {"g": [435, 437, 464], "s": [393], "d": [349, 350]}.items()] + [const("one", np.array([[1.0]]))]
    head_nodes = []
    for k in "gsd":
        head_nodes += [n("Gather", ["yam", f"i_{k}"], [f"y_{k}"], axis=1),
                       n("ReduceMax", [f"y_{k}"], [f"m_{k}"], axes=[1], keepdims=1)]
    head_nodes += [n("Max", ["m_g", "m_s", "m_d"], ["m_any"]), n("Sub", ["one", "m_any"], ["m_n"]),
                   n("Concat", ["m_n", "m_g", "m_s", "m_d"], ["scores"], axis=1)]
    head = helper.make_model(
        helper.make_graph(head_nodes, "head", [helper.make_tensor_value_info("yam", TensorProto.FLOAT, [1, 521])],
                          [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4])], head_inits),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)])
    head.ir_version = y.ir_version
    m = compose.merge_models(front, y, io_map=[("patch", yin)], prefix2="yamnet/")
    m = compose.merge_models(m, head, io_map=[("yamnet/" + yout, "yam")])
    m.producer_name = PRODUCER
    for k, v in {"vigil.task": "sound", "vigil.labels": ",".join(LABELS), "vigil.threshold": "0.2",
                 "vigil.sample_rate": str(SR), "vigil.window": str(N), "vigil.version": "yamnet-ref-1",
                 "vigil.description": "YAMNet (Apache-2.0, AudioSet) behind Vigil's in-graph log-mel; "
                                      "4 columns mapped from its 521 classes. Reference, not shipped."}.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    onnx.save(m, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
