#!/usr/bin/env python3
"""Build Models/anomaly.onnx (v2): per-field surprise against a per-device baseline.

Inputs (the Vigil model contract, "stateful anomaly models" in Models/README.md):
  window   [b, W, F]  the last W = 64 readings, oldest first (F fields, dynamic)
  baseline [b, 5, F]  the daemon's per-device, per-field state, rows
                      center, spread, change, floor, mask (baseline.py says how each is kept)
Per field:
  x      = mean of the newest L = 3 readings, med = median of the older 61
  z_chg  = |x - med|    / max(change, floor)     (a jump against the device's usual jitter)
  z_lvl  = |x - center| / max(spread, floor)     (a level the device does not usually have)
  z      = mask * max(z_chg, z_lvl)
  S_f    = z * log10(e)                          (Laplace tail p = exp(-z), S = -log10 p)
S = max(0, max_f S_f - log10(2F))                (Bonferroni: 2F tests)
score = S / (S + 5)                              (0.5 at p = 1e-5)

Nothing is fitted here: the floors come from the data the device sends (its quantisation
step, `min_scale`), and the alert threshold per device from the daemon's false-alarm
budget (`alert.max_false_alarms_per_day`), which follows the quantile of the device's own
surprise history. `vigil.threshold` (0.5) is only the fallback for a pipeline without a
budget. Quality: eval_anomaly.py.
Run: python3 Models/training/train_anomaly.py
"""
import csv
import json
import os
import sys
from datetime import datetime

import numpy as np
from onnx import helper, TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (const, make_model, save_model, session, MODELS_DIR, DATA_DIR,  # noqa: E402
                    write_fixture, update_expected)
import baseline as bl  # noqa: E402

SEED = 7
VERSION = "2.0.0"
W = 64
L = 3            # the newest L readings are averaged (x); the older W-L give the median
THRESHOLD = 0.5  # fallback min_score without a budget: S = 5, p = 1e-5
NAB = os.path.join(DATA_DIR, "anomaly", "nab")


def build(batch="batch"):
    """window [b, W, F] and baseline [b, 5, F] -> scores [b, 1] (see the module docstring)."""
    n = helper.make_node
    B = W - L
    k = (B + 1) // 2         # median of an odd count = k-th largest
    inits = [
        const("s0", np.array([0]), np.int64), const("sB", np.array([B]), np.int64),
        const("sW", np.array([W]), np.int64), const("ax1", np.array([1]), np.int64),
        const("k", np.array([k]), np.int64), const("km1", np.array([k - 1]), np.int64),
        const("r0", np.array([0]), np.int64), const("r1", np.array([1]), np.int64),
        const("r2", np.array([2]), np.int64), const("r3", np.array([3]), np.int64),
        const("r4", np.array([4]), np.int64), const("r5", np.array([5]), np.int64),
        const("i2", np.array([2]), np.int64), const("i3", np.array([3]), np.int64),
        const("log10e", np.array(np.log10(np.e))), const("two", np.array(2.0)),
        const("ln10", np.array(np.log(10.0))), const("zero", np.array(0.0)),
        const("S0", np.array(bl.S0)), const("ax12", np.array([1, 2]), np.int64),
    ]
    nodes = [
        n("Slice", ["window", "s0", "sB", "ax1"], ["base"]),          # [b, W-L, F]
        n("Slice", ["window", "sB", "sW", "ax1"], ["recent"]),        # [b, L, F]
        n("ReduceMean", ["recent"], ["x"], axes=[1], keepdims=1),     # [b, 1, F]
        n("TopK", ["base", "k"], ["top", "top_i"], axis=1, largest=1, sorted=1),
        n("Slice", ["top", "km1", "k", "ax1"], ["med"]),              # [b, 1, F]
        n("Slice", ["baseline", "r0", "r1", "ax1"], ["center"]),
        n("Slice", ["baseline", "r1", "r2", "ax1"], ["spread"]),
        n("Slice", ["baseline", "r2", "r3", "ax1"], ["change"]),
        n("Slice", ["baseline", "r3", "r4", "ax1"], ["floor"]),
        n("Slice", ["baseline", "r4", "r5", "ax1"], ["mask"]),
        # change against the window's median, in units of the device's typical short-term deviation
        n("Max", ["change", "floor"], ["sc"]),
        n("Sub", ["x", "med"], ["dc"]), n("Abs", ["dc"], ["adc"]), n("Div", ["adc", "sc"], ["zc"]),
        # level against the long-horizon centre, in units of its typical spread
        n("Max", ["spread", "floor"], ["sl"]),
        n("Sub", ["x", "center"], ["dl"]), n("Abs", ["dl"], ["adl"]), n("Div", ["adl", "sl"], ["zl"]),
        n("Max", ["zc", "zl"], ["z"]), n("Mul", ["z", "mask"], ["zm"]),
        # Laplace tail: p = exp(-z); surprise S = -log10 p; Bonferroni over 2F tests
        n("Mul", ["zm", "log10e"], ["Sf"]),
        n("ReduceMax", ["Sf"], ["Smax"], axes=[2], keepdims=0),       # [b, 1]
        n("Shape", ["window"], ["shp"]), n("Slice", ["shp", "i2", "i3"], ["nf"]),
        n("Cast", ["nf"], ["nff"], to=TensorProto.FLOAT), n("Mul", ["nff", "two"], ["tests"]),
        n("Log", ["tests"], ["lnt"]), n("Div", ["lnt", "ln10"], ["corr"]),
        n("Sub", ["Smax", "corr"], ["Sc"]), n("Max", ["Sc", "zero"], ["Sp"]),
        # NaN or Inf anywhere in the inputs makes the score NaN (ReduceMax and TopK may skip a
        # NaN), so vigild rejects that input instead of scoring it: x * 0 is 0 or NaN, never overflows
        n("Mul", ["window", "zero"], ["w0"]), n("ReduceSum", ["w0", "ax12"], ["w1"], keepdims=0),
        n("Mul", ["baseline", "zero"], ["b0"]), n("ReduceSum", ["b0", "ax12"], ["b1"], keepdims=0),
        n("Add", ["w1", "b1"], ["g0"]), n("Unsqueeze", ["g0", "ax1"], ["g1"]),      # [b, 1]
        n("Add", ["Sp", "g1"], ["S"]),
        n("Add", ["S", "S0"], ["den"]), n("Div", ["S", "den"], ["scores"]),
    ]
    inp = helper.make_tensor_value_info("window", TensorProto.FLOAT, [batch, W, "fields"])
    st = helper.make_tensor_value_info("baseline", TensorProto.FLOAT, [batch, bl.ROWS, "fields"])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 1])
    meta = {
        "vigil.task": "anomaly",
        "vigil.labels": "anomaly",
        "vigil.threshold": str(THRESHOLD),
        "vigil.window": str(W),
        "vigil.state": "baseline",
        "vigil.state_layout": "center,spread,change,floor,mask",
        "vigil.version": VERSION,
        "vigil.description": (f"Surprise of the mean of the newest {L} readings against each field's long-horizon "
                              "baseline (level and short-term change, resolution-floored scale, Laplace tails, "
                              f"Bonferroni over fields); score = S/(S+{bl.S0:g}) with S = -log10 p. "
                              "Thresholds come from the daemon's false-alarm budget."),
    }
    return make_model(nodes, [inp, st], [out], inits, meta, "vigil_anomaly")


# ---------------------------------------------------------------- NAB
def load_nab(group="realKnownCause"):
    with open(os.path.join(NAB, "labels", "combined_windows.json")) as f:
        wins = json.load(f)
    out = []
    d = os.path.join(NAB, "data", group)
    for fn in sorted(os.listdir(d)):
        ts, v = [], []
        with open(os.path.join(d, fn)) as f:
            for row in csv.DictReader(f):
                ts.append(datetime.fromisoformat(row["timestamp"]).timestamp())
                v.append(float(row["value"]))
        lab = [(datetime.fromisoformat(a).timestamp(), datetime.fromisoformat(b).timestamp())
               for a, b in wins.get(f"{group}/{fn}", [])]
        out.append({"name": fn[:-4], "t": np.array(ts), "v": np.array(v, np.float32), "windows": lab})
    return out



def main():
    model = build()
    path = os.path.join(MODELS_DIR, "anomaly.onnx")
    print(f"wrote {path} ({save_model(model, path)} bytes)")
    make_fixtures()


def make_fixtures():
    """Two windows of a temperature/humidity device and the baseline vigild would pass:
    one ordinary, one with a 10-degree jump in its newest 3 readings."""
    rng = np.random.default_rng(SEED)
    sess = session(os.path.join(MODELS_DIR, "anomaly.onnx"))
    n = 2000
    t = np.arange(n)
    temp = 21.0 + 0.5 * np.sin(2 * np.pi * t / 480) + rng.normal(0, 0.05, n)
    hum = np.round(45.0 + rng.normal(0, 0.5, n))          # a 1 %RH sensor: coarse
    dev = bl.Device(2, W, warmup_s=0, warmup_n=0)
    for i in range(n - 1):
        dev.update(60.0 * i, [temp[i], hum[i]])
    state = dev.state()[None].astype(np.float32)
    flat = np.stack([temp[-W:], hum[-W:]], 1)[None].astype(np.float32)
    spike = flat.copy()
    spike[0, -3:, 0] += 10.0
    write_fixture("anomaly_baseline.f32", state)
    entries = {}
    for name, arr, label in [("anomaly_flat.f32", flat, "normal"), ("anomaly_spike.f32", spike, "anomaly")]:
        arr = write_fixture(name, arr)
        s = sess.run(None, {"window": arr, "baseline": state})[0][0]
        got = "anomaly" if s[0] >= THRESHOLD else "normal"
        assert got == label, (name, s)
        entries[name] = {"model": "anomaly.onnx", "input": "window", "shape": [1, W, 2],
                         "state": "anomaly_baseline.f32", "state_shape": [1, bl.ROWS, 2],
                         "expected_label": label,
                         "note": "anomaly has one output column: expected_label 'anomaly' means "
                                 "score >= vigil.threshold (0.5), 'normal' means below; the baseline "
                                 "input is in anomaly_baseline.f32",
                         "scores": [round(float(v), 6) for v in s],
                         "source": "synthetic temperature/humidity (train_anomaly.make_fixtures)"}
    update_expected(entries)
    print("fixtures:", {k: v["scores"] for k, v in entries.items()})


if __name__ == "__main__":
    main()
