#!/usr/bin/env python3
"""Issue 18, a ceiling (exploration; its figures are in Models/sound.md, "How far a better
embedding goes"): enrollment as a device lives it (enroll_lived_eval.py, unchanged: same draws,
placements, streams, grid and choice rule) with sound.onnx's 64-value `embedding` replaced by
YAMNet's pooled 1024 values (AudioSet, 2 M clips), centred and unit length. YAMNet is the
offline reference in ../shared/data/reference-models (Apache-2.0, 4 MB, not ours to ship): if
even its embedding leaves the target out of reach on these classes, no student of it will reach
it, and the gap is what 5 clips of a class from other sources can teach, not our 64 values.

  python3 Models/training/exp_enroll_yamnet_ceiling.py
  (needs nonevent_data.py fetch; ~15 min on one core the first time, the stream embeddings are
  cached in /tmp/vigil-enroll-online/<model hash>; output results/enroll_lived_eval_yamnet.txt)

The model (build/enroll_yamnet/, not in git): sound.onnx's graph, its `logmel` fed to YAMNet
(batch dimension freed by distill_embedding.batched_teacher), the pooled embedding minus a
mean taken on tune-side windows only (ESC-50's 44 categories that are not held out, and the
shipped background set's windows), unit length, as the `embedding` output; the scores are
sound.onnx's. The background set is the shipped one's windows through that model, int8 like
Models/sound-background.i8. No test window chooses anything: the grid's choice reads tune.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import add_embedding as ae  # noqa: E402
import distill_embedding as de  # noqa: E402
import enroll_eval as ee  # noqa: E402
import sound_data as sd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "build", "enroll_yamnet")
MODEL = os.path.join(BUILD, "sound_yamnet.onnx")
BACKGROUND = os.path.join(BUILD, "background.i8")
OUT = os.path.join(HERE, "results", "enroll_lived_eval_yamnet.txt")


def build():
    m = onnx.load(ee.MODEL)
    for n in m.graph.node:
        n.output[:] = ["embedding_v13" if o == "embedding" else o for o in n.output]
    y = compose.add_prefix(de.batched_teacher(), "y/")
    pooled = "y/" + de.TEACHER_EMB
    m.graph.initializer.extend(y.graph.initializer)
    m.graph.initializer.append(numpy_helper.from_array(np.array([-1, 96, 64], np.int64), "yq_shape"))
    m.graph.node.append(helper.make_node("Reshape", ["logmel", "yq_shape"], [y.graph.input[0].name]))
    m.graph.node.extend(y.graph.node)

    # The mean, from tune-side windows only.
    ws = [sd.windows(sd.read_wav(p)) for p, c, _, _ in sorted(sd.esc_clips()) if c not in ae.HELD_OUT_CLASSES]
    W = np.concatenate(ws + [ae.background_windows()]).astype(np.float32)
    s = ae.outputs_session(m, [pooled])
    T = np.concatenate([s.run(None, {"audio": W[i:i + 256]})[0].reshape(-1, 1024) for i in range(0, len(W), 256)])
    print(f"YAMNet mean over {len(W)} tune-side windows", file=sys.stderr)
    m.graph.initializer.extend([
        numpy_helper.from_array(T.mean(0).astype(np.float32).reshape(1, 1024), "yq_mu"),
        numpy_helper.from_array(np.array([-1, 1024], np.int64), "yq_flat"),
        numpy_helper.from_array(np.array([1e-9], np.float32), "yq_eps")])
    m.graph.node.extend([
        helper.make_node("Reshape", [pooled, "yq_flat"], ["yq_e"]),
        helper.make_node("Sub", ["yq_e", "yq_mu"], ["yq_c"]),
        helper.make_node("ReduceL2", ["yq_c"], ["yq_n"], axes=[1], keepdims=1),
        helper.make_node("Add", ["yq_n", "yq_eps"], ["yq_n1"]),
        helper.make_node("Div", ["yq_c", "yq_n1"], ["embedding"])])
    for o in m.graph.output:
        if o.name == "embedding":
            o.CopyFrom(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 1024]))
    os.makedirs(BUILD, exist_ok=True)
    onnx.save(m, MODEL)
    s = ae.outputs_session(m, ["embedding"])
    BW = ae.background_windows()
    B = np.concatenate([s.run(None, {"audio": BW[i:i + 256]})[0] for i in range(0, len(BW), 256)])
    np.clip(np.round(B * 127), -127, 127).astype(np.int8).tofile(BACKGROUND)
    print(f"wrote {MODEL} ({os.path.getsize(MODEL)} bytes) and its background set ({B.shape[0]} x {B.shape[1]})",
          file=sys.stderr)


def main():
    if not (os.path.exists(MODEL) and os.path.exists(BACKGROUND)):
        build()
    ee.MODEL, ee.BACKGROUND = MODEL, BACKGROUND
    import enroll_lived_eval as le
    sys.argv = [sys.argv[0], "--out", OUT] + sys.argv[1:]
    le.main()


if __name__ == "__main__":
    main()
