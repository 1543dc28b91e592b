#!/usr/bin/env python3
"""Build Models/anomaly.onnx: a robust z-score of the newest reading against the window.

window [1, W, F]  (W = 64 readings, oldest first; F fields, dynamic)
  base = readings 0..W-2, x = reading W-1 (the newest)
  med  = median(base)            (TopK, per field)
  mad  = median(|base - med|)
  sd   = std(base)
  scale = 1.4826*mad + 0.1*sd + 0.01*|med| + 1e-3        (floors: flat / quantised signals)
  z    = |x - med| / scale
  score_f = sigmoid(A * (ln z - ln Z0)),  score = max over fields   -> [1,1]

A (steepness) is fixed; Z0 is calibrated on NAB realKnownCause so that the default
threshold 0.7 catches the labelled failure windows without alarming every day
(`vigil.threshold` = 0.7 corresponds to z = Z0 * (7/3)^(1/A)).
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
                    write_results, write_fixture, update_expected)

SEED = 7
VERSION = "1.0.1"
W = 64
L = 3            # the newest L readings are averaged (x); the older W-L are the baseline
A = 3.0
MERGE_S = 3600   # evaluation: firing readings less than 1 h apart are one alarm
MAX_FA_PER_DAY = 0.5
MAX_BUSY = 0.02
THRESHOLD = 0.7
NAB = os.path.join(DATA_DIR, "anomaly", "nab")


def build(z0, batch=1, a=A):
    n = helper.make_node
    B = W - L
    k = (B + 1) // 2         # median of an odd count = k-th largest
    inits = [
        const("s0", np.array([0]), np.int64), const("sB", np.array([B]), np.int64),
        const("sW", np.array([W]), np.int64), const("ax1", np.array([1]), np.int64),
        const("k", np.array([k]), np.int64), const("km1", np.array([k - 1]), np.int64),
        const("c_mad", np.array(1.4826)), const("c_sd", np.array(0.1)),
        const("c_rel", np.array(0.01)), const("c_abs", np.array(1e-3)),
        const("lnz0", np.array(np.log(z0))), const("a", np.array(a)),
        const("tiny", np.array(1e-12)),
    ]
    nodes = [
        n("Slice", ["window", "s0", "sB", "ax1"], ["base"]),          # [b, 61, F]
        n("Slice", ["window", "sB", "sW", "ax1"], ["recent"]),        # [b, 3, F]
        n("ReduceMean", ["recent"], ["x"], axes=[1], keepdims=1),     # [b, 1, F]
        n("TopK", ["base", "k"], ["top", "top_i"], axis=1, largest=1, sorted=1),
        n("Slice", ["top", "km1", "k", "ax1"], ["med"]),              # [b, 1, F]
        n("Sub", ["base", "med"], ["dev"]), n("Abs", ["dev"], ["adev"]),
        n("TopK", ["adev", "k"], ["topd", "topd_i"], axis=1, largest=1, sorted=1),
        n("Slice", ["topd", "km1", "k", "ax1"], ["mad"]),
        n("ReduceMean", ["base"], ["mean"], axes=[1], keepdims=1),
        n("Sub", ["base", "mean"], ["dm"]), n("Mul", ["dm", "dm"], ["dm2"]),
        n("ReduceMean", ["dm2"], ["var"], axes=[1], keepdims=1), n("Sqrt", ["var"], ["sd"]),
        n("Abs", ["med"], ["amed"]),
        n("Mul", ["mad", "c_mad"], ["t1"]), n("Mul", ["sd", "c_sd"], ["t2"]), n("Mul", ["amed", "c_rel"], ["t3"]),
        n("Sum", ["t1", "t2", "t3", "c_abs"], ["scale"]),
        n("Sub", ["x", "med"], ["dx"]), n("Abs", ["dx"], ["adx"]),
        n("Div", ["adx", "scale"], ["z"]),
        n("Add", ["z", "tiny"], ["zt"]), n("Log", ["zt"], ["lnz"]),
        n("Sub", ["lnz", "lnz0"], ["l1"]), n("Mul", ["l1", "a"], ["l2"]), n("Sigmoid", ["l2"], ["sf"]),  # [b,1,F]
        n("ReduceMax", ["sf"], ["scores"], axes=[2], keepdims=0),    # [b, 1]
    ]
    inp = helper.make_tensor_value_info("window", TensorProto.FLOAT, [batch, W, "fields"])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 1])
    z_thr = z0 * (THRESHOLD / (1 - THRESHOLD)) ** (1 / A)
    meta = {
        "vigil.task": "anomaly",
        "vigil.labels": "anomaly",
        "vigil.threshold": str(THRESHOLD),
        "vigil.window": str(W),
        "vigil.version": VERSION,
        "vigil.description": (f"Robust z-score of the mean of the newest {L} readings against the previous {W - L} "
                              "(median/MAD, per field, max over fields), squashed by a calibrated "
                              f"sigmoid: score {THRESHOLD} at z = {z_thr:.2f}. Calibrated on NAB realKnownCause."),
    }
    return make_model(nodes, [inp], [out], inits, meta, "vigil_anomaly")


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


def sliding(v):
    """All windows ending at t = W-1 .. len-1, shape [n, W, 1]."""
    idx = np.arange(W)[None, :] + np.arange(len(v) - W + 1)[:, None]
    return v[idx][:, :, None].astype(np.float32)


def series_scores(sess, s, bs=4096):
    X = sliding(s["v"])
    sc = np.concatenate([sess.run(None, {"window": X[i:i + bs]})[0][:, 0] for i in range(0, len(X), bs)])
    return s["t"][W - 1:], sc


def evaluate_series(t, sc, windows, thr):
    """Alarm = a run of readings with score >= thr; firing readings less than MERGE_S
    apart belong to one alarm (what an alert cooldown does). A labelled window is caught
    when an alarm starts inside it; alarms starting outside every window are false alarms."""
    fi = np.where(sc >= thr)[0]
    if len(fi):
        starts = np.concatenate([[True], np.diff(t[fi]) > MERGE_S])
        onsets = t[fi[starts]]
    else:
        onsets = np.array([])
    inside = np.zeros(len(onsets), bool)
    caught = 0
    for a, b in windows:
        m = (onsets >= a) & (onsets <= b)
        inside |= m
        caught += bool(m.any())
    days = (t[-1] - t[0]) / 86400.0
    fa = int((~inside).sum())
    outside = np.ones(len(t), bool)
    for a, b in windows:
        outside &= ~((t >= a) & (t <= b))
    # share of the normal (unlabelled) time during which the detector fires
    busy = float((sc[outside] >= thr).mean()) if outside.any() else 0.0
    return {"windows": len(windows), "caught": caught, "false_alarms": fa, "days": days,
            "fa_per_day": fa / days, "alarms": len(onsets), "firing_share_outside": busy,
            "n_outside": int(outside.sum()), "n_firing_outside": int((sc[outside] >= thr).sum())}


def z_scores(series):
    """Per-series z (score with A=1, Z0=1 gives sigmoid(ln z) = z/(1+z), invert)."""
    sess = session(build(1.0, batch="n", a=1.0))
    out = []
    for s in series:
        t, sc = series_scores(sess, s)
        sc = np.clip(sc.astype(np.float64), 1e-12, 1 - 1e-7)
        out.append((t, sc / (1 - sc)))   # sigmoid(ln z) = z / (1 + z)  ->  z
    return out


def pooled(series, zs, zt):
    res = [evaluate_series(t, z, s["windows"], zt) for s, (t, z) in zip(series, zs)]
    caught = sum(r["caught"] for r in res)
    fa_day = sum(r["false_alarms"] for r in res) / sum(r["days"] for r in res)
    busy = sum(r["n_firing_outside"] for r in res) / sum(r["n_outside"] for r in res)
    return caught, fa_day, busy, res


def calibrate(series, zs):
    """The z at which the 0.7 threshold sits: the most labelled windows caught while the
    pooled false-alarm rate stays <= MAX_FA_PER_DAY and the detector fires during at most
    MAX_BUSY of the unlabelled time (else one endless alarm would look perfect);
    ties -> fewer false alarms."""
    grid = np.round(np.exp(np.linspace(np.log(2), np.log(60), 80)), 3)
    best = None
    rows = []
    for zt in grid:
        caught, fa_day, busy, _ = pooled(series, zs, zt)
        rows.append((zt, caught, fa_day, busy))
        key = (fa_day <= MAX_FA_PER_DAY and busy <= MAX_BUSY, caught, -fa_day)
        if best is None or key > best[0]:
            best = (key, zt)
    return best[1], rows


def main():
    series = load_nab()
    zs = z_scores(series)
    z_thr, rows = calibrate(series, zs)
    # leave-one-series-out: calibrate on 6, test on the 7th
    loso = {}
    for i, s in enumerate(series):
        rest = [x for j, x in enumerate(series) if j != i]
        rz = [x for j, x in enumerate(zs) if j != i]
        zt_i, _ = calibrate(rest, rz)
        loso[s["name"]] = dict(evaluate_series(zs[i][0], zs[i][1], s["windows"], zt_i), z_threshold=float(zt_i))
    z0 = z_thr / (THRESHOLD / (1 - THRESHOLD)) ** (1 / A)
    print(f"calibrated: score {THRESHOLD} at z = {z_thr}  (Z0 = {z0:.4f}, A = {A})")
    model = build(z0, batch="batch")   # free batch: vigild can run several windows at once
    path = os.path.join(MODELS_DIR, "anomaly.onnx")
    print(f"wrote {path} ({save_model(model, path)} bytes)")
    write_results("anomaly_calibration.json", {
        "W": W, "A": A, "Z0": z0, "z_at_threshold": float(z_thr), "threshold": THRESHOLD,
        "L": L, "merge_s": MERGE_S, "max_fa_per_day": MAX_FA_PER_DAY,
        "max_busy": MAX_BUSY,
        "sweep_z_caught_pooledFAday_busy": [[float(a), int(b), float(c), float(d)] for a, b, c, d in rows],
        "leave_one_series_out": loso})
    for name, r in loso.items():
        print(f"LOSO {name}: caught {r['caught']}/{r['windows']} FA/day {r['fa_per_day']:.2f} "
              f"firing {100 * r['firing_share_outside']:.2f}% of normal time (z_thr {r['z_threshold']})")
    make_fixtures()


def make_fixtures():
    rng = np.random.default_rng(SEED)
    sess = session(os.path.join(MODELS_DIR, "anomaly.onnx"))
    t = np.arange(W)
    temp = 21.0 + 0.5 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.05, W)
    hum = 45.0 + rng.normal(0, 0.5, W)
    flat = np.stack([temp, hum], 1)[None].astype(np.float32)
    spike = flat.copy()
    spike[0, -3:, 0] += 10.0           # temperature jumps 10 degrees for the last 3 readings
    entries = {}
    for name, arr, label in [("anomaly_flat.f32", flat, "normal"), ("anomaly_spike.f32", spike, "anomaly")]:
        arr = write_fixture(name, arr)
        s = sess.run(None, {"window": arr})[0][0]
        got = "anomaly" if s[0] >= THRESHOLD else "normal"
        assert got == label, (name, s)
        entries[name] = {"model": "anomaly.onnx", "input": "window", "shape": [1, W, 2],
                         "expected_label": label,
                         "note": "anomaly has one output column: expected_label 'anomaly' means "
                                 "score >= vigil.threshold (0.7), 'normal' means below",
                         "scores": [round(float(v), 6) for v in s],
                         "source": "synthetic temperature/humidity (train_anomaly.make_fixtures)"}
    update_expected(entries)
    print("fixtures:", {k: v["scores"] for k, v in entries.items()})


if __name__ == "__main__":
    main()
