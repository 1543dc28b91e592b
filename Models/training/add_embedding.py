#!/usr/bin/env python3
"""Gives Models/sound.onnx its second output, `embedding` (issue 18 item 4), by ONNX graph
surgery on the shipped file: the scores and every weight stay as they are (the trained JAX
weights are not committed, so retraining would change the model; surgery does not).

  pip install -r Models/training/requirements.txt
  python3 Models/training/nonevent_data.py fetch   # once: the non-event audio (not in git)
  python3 Models/training/add_embedding.py         # rewrites Models/sound.onnx (same bytes when rerun)
                                                   # and Models/sound-background.i8 (needs ../shared/data)

The embedding: the layer before the three CNNs' dense heads, i.e. each CNN's global max and
mean pooled last-conv activations (3 x 64) plus the 262 pooled log-mel / tonality features
they all read (454 values; enroll_eval.py's preview: this "both" variant did at least as well
as the CNN pools alone on 4 of 5 classes). In the graph it is standardised per column with the
mean / std of the ESC-50 clips that are not glass breaking (the model's `normal` training
data: an enrolled sound should stand out from household sounds, not from silence) and
L2-normalised, so a cosine similarity is a dot product.

Declared in metadata as `vigil.embedding=embedding`; `vigil.embedding_background` names the
background set beside the model that vigilctl calibrates an enrollment's threshold against
(Sources/VigilCore/Enrollment/Enroller.swift): int8 rows (embedding x 127) of 2048 windows
drawn at random (seed 18) from the `tune` non-event packages licensed CC-BY-SA-3.0
(BACKGROUND_PACKAGES: Asterisk's Spanish, French and Italian prompts and its music on hold;
attribution in Models/sound-background-CREDITS.txt). Not ESC-50: its 50 categories hold the
household sounds people enroll (a first version calibrated on them set every threshold of an
ESC-50 class at the cap, 0.995, since the class's own clips were in the background), and not
the `test` packages, on which enroll_eval.py reports false alarms.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sound_data as sd  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.abspath(os.path.join(HERE, ".."))
MODEL = os.path.join(MODELS, "sound.onnx")
BACKGROUND = "sound-background.i8"
POOLS = [f"cnn{k}_{t}" for k in range(3) for t in ("gmx_f", "gav_f")]
N, HOP = 15600, 7800
BACKGROUND_PACKAGES = ["asterisk-core-sounds-es-wav", "asterisk-core-sounds-fr-wav", "asterisk-core-sounds-it-wav",
                       "asterisk-moh-opsound-wav"]
BACKGROUND_ROWS = 2048


def strip(m):
    """The model as shipped before this script: only the `scores` output, no embedding nodes."""
    keep = [n for n in m.graph.node if not n.name.startswith("emb_")]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    outs = [o for o in m.graph.output if o.name == "scores"]
    del m.graph.output[:]
    m.graph.output.extend(outs)
    inits = [i for i in m.graph.initializer if not i.name.startswith("emb_")]
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits)
    props = [p for p in m.metadata_props if not p.key.startswith("vigil.embedding")]
    del m.metadata_props[:]
    m.metadata_props.extend(props)
    return m


def raw_features(m, windows):
    """The 454 unnormalised embedding columns of each window."""
    import onnxruntime as ort
    g = onnx.ModelProto()
    g.CopyFrom(m)
    for t in POOLS + ["feat"]:
        g.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(g.SerializeToString(), so, providers=["CPUExecutionProvider"])
    out = []
    for i in range(0, len(windows), 256):
        r = s.run(None, {"audio": windows[i:i + 256]})
        out.append(np.concatenate(r[1:], axis=1))
    return np.concatenate(out)


def esc_windows():
    """One non-overlapping window after another of every non-glass ESC-50 clip, sorted by path."""
    ws = []
    for path, cat, _, _ in sorted(sd.esc_clips()):
        if cat == "glass_breaking":
            continue
        x = sd.read_wav(path)
        for s in range(0, len(x) - N + 1, N):
            ws.append(x[s:s + N])
    return np.stack(ws).astype(np.float32)


def background_windows():
    """BACKGROUND_ROWS of vigild's windows (hop 7800) of the background packages, at random."""
    import nonevent_data as nd
    ws = np.concatenate([sd.windows(nd.stream(p), HOP) for p in BACKGROUND_PACKAGES])
    pick = np.sort(np.random.default_rng(18).choice(len(ws), BACKGROUND_ROWS, replace=False))
    return ws[pick].astype(np.float32)


def add(m, mu, sd_):
    c = lambda name, v: m.graph.initializer.append(numpy_helper.from_array(np.asarray(v, np.float32), name))
    c("emb_mu", mu[None, :])
    c("emb_isd", (1.0 / sd_)[None, :])
    c("emb_eps", np.array(1e-9))
    nodes = [
        helper.make_node("Concat", POOLS + ["feat"], ["emb_raw"], axis=1, name="emb_concat"),
        helper.make_node("Sub", ["emb_raw", "emb_mu"], ["emb_c"], name="emb_sub"),
        helper.make_node("Mul", ["emb_c", "emb_isd"], ["emb_z"], name="emb_scale"),
        helper.make_node("ReduceL2", ["emb_z"], ["emb_n"], keepdims=1, name="emb_norm",
                         **({"axes": [1]} if m.opset_import[0].version < 18 else {})),
        helper.make_node("Add", ["emb_n", "emb_eps"], ["emb_n1"], name="emb_eps_add"),
        helper.make_node("Div", ["emb_z", "emb_n1"], ["embedding"], name="emb_div"),
    ]
    if m.opset_import[0].version >= 18:
        c("emb_axes", np.array([1]))
        m.graph.initializer[-1].data_type = TensorProto.INT64
        m.graph.initializer[-1].CopyFrom(numpy_helper.from_array(np.array([1], np.int64), "emb_axes"))
        nodes[3].input.append("emb_axes")
    m.graph.node.extend(nodes)
    m.graph.output.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", len(mu)]))
    for k, v in [("vigil.embedding", "embedding"), ("vigil.embedding_background", BACKGROUND)]:
        m.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    for p in m.metadata_props:
        if p.key == "vigil.version":
            p.value = "1.2.0"
    return m


def main():
    m = strip(onnx.load(MODEL))
    raw = raw_features(m, esc_windows())
    mu, sdv = raw.mean(0), raw.std(0) + 1e-3
    m = add(m, mu, sdv)
    onnx.checker.check_model(m)
    onnx.save(m, MODEL)
    import onnxruntime as ort
    s = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
    ws = background_windows()
    emb = np.concatenate([s.run(None, {"audio": ws[i:i + 256]})[1] for i in range(0, len(ws), 256)])
    q = np.clip(np.round(emb * 127), -127, 127).astype(np.int8)
    q.tofile(os.path.join(MODELS, BACKGROUND))
    print(f"{MODEL}: {os.path.getsize(MODEL) / 1024:.1f} KB, embedding {emb.shape[1]} values; "
          f"{BACKGROUND}: {len(q)} windows, {q.nbytes / 1024:.1f} KB")


if __name__ == "__main__":
    main()
