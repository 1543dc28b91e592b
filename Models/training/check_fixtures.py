#!/usr/bin/env python3
"""Check every fixture in Models/fixtures/expected.json against the shipped model:
size, label and scores (tolerance 1e-4), and for a model with an embedding output
(`vigil.embedding`) its size, unit length and first values. Needs only numpy + onnxruntime, no data.

  python3 Models/training/check_fixtures.py
  python3 Models/training/check_fixtures.py --update-embedding   # after add_embedding.py: rewrites only
                                                                 # embedding_size / embedding_head
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

MODELS = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIX = os.path.join(MODELS, "fixtures")


def main():
    with open(os.path.join(FIX, "expected.json")) as f:
        exp = json.load(f)
    update = "--update-embedding" in sys.argv[1:]
    bad = 0
    for name, e in sorted(exp.items()):
        path = os.path.join(MODELS, e["model"])
        meta = {p.key: p.value for p in onnx.load(path).metadata_props}
        labels = meta["vigil.labels"].split(",")
        x = np.fromfile(os.path.join(FIX, name), dtype="<f4")
        assert x.size == int(np.prod(e["shape"])), (name, x.size, e["shape"])
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        feed = {e["input"]: x.reshape(e["shape"])}
        if "state" in e:   # a stateful model's baseline input (vigil.state)
            feed[meta["vigil.state"]] = np.fromfile(os.path.join(FIX, e["state"]), dtype="<f4").reshape(e["state_shape"])
        out = sess.run(None, feed)
        s = out[0][0]
        if len(labels) == 1:
            got = labels[0] if s[0] >= float(meta["vigil.threshold"]) else "normal"
        else:
            got = labels[int(np.argmax(s))]
        ok = got == e["expected_label"] and np.allclose(s, e["scores"], atol=1e-4)
        if "vigil.embedding" in meta:   # the second output (issue 18): unit length, same head
            names = [o.name for o in sess.get_outputs()]
            emb = out[names.index(meta["vigil.embedding"])][0]
            if update:   # the scores are still checked: an embedding change must leave them as they were
                e["embedding_size"] = int(emb.size)
                e["embedding_head"] = [round(float(v), 5) for v in emb[:6]]
            ok = ok and emb.size == e["embedding_size"] and abs(np.linalg.norm(emb) - 1) < 1e-4 \
                and np.allclose(emb[:len(e["embedding_head"])], e["embedding_head"], atol=1e-4)
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {name:22s} {e['model']:13s} {got:15s} {np.round(s, 4).tolist()}")
    if update and not bad:
        from common import update_expected
        update_expected(exp)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
