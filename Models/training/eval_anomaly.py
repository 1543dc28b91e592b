"""Quality of the shipped Models/anomaly.onnx on NAB (called by evaluate.py)."""
import os

import numpy as np
import onnx

from common import MODELS_DIR, session, latency_ms, read_results
import train_anomaly as ta


def run_series(sess, s):
    X = ta.sliding(s["v"])
    sc = np.array([sess.run(None, {"window": X[i:i + 1]})[0][0, 0] for i in range(len(X))])
    return s["t"][ta.W - 1:], sc


def evaluate(path, label="float32"):
    from evaluate import table, size_kb
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    thr = float(meta["vigil.threshold"])
    sess = session(path)
    rows = []
    tot = {"windows": 0, "caught": 0, "false_alarms": 0, "days": 0.0, "n_out": 0, "n_fire": 0}
    for s in ta.load_nab("realKnownCause"):
        t, sc = run_series(sess, s)
        r = ta.evaluate_series(t, sc, s["windows"], thr)
        rows.append([s["name"], f"{r['caught']}/{r['windows']}", r["false_alarms"], f"{r['days']:.1f}",
                     f"{r['fa_per_day']:.2f}", f"{100 * r['firing_share_outside']:.2f}%"])
        for k in ["windows", "caught", "false_alarms", "days"]:
            tot[k] += r[k]
        tot["n_out"] += r["n_outside"]
        tot["n_fire"] += r["n_firing_outside"]
    rows.append(["TOTAL realKnownCause", f"{tot['caught']}/{tot['windows']}", tot["false_alarms"],
                 f"{tot['days']:.1f}", f"{tot['false_alarms'] / tot['days']:.2f}",
                 f"{100 * tot['n_fire'] / tot['n_out']:.2f}%"])
    for s in ta.load_nab("artificialNoAnomaly"):
        t, sc = run_series(sess, s)
        r = ta.evaluate_series(t, sc, [], thr)
        rows.append([f"(no anomaly) {s['name']}", "-", r["false_alarms"], f"{r['days']:.1f}",
                     f"{r['fa_per_day']:.2f}", f"{100 * r['firing_share_outside']:.2f}%"])
    print(f"\n## anomaly ({label}) {os.path.basename(path)}  size {size_kb(path)}  threshold {thr}  window {ta.W}")
    print("NAB: an alarm = run of readings with score >= threshold (firing readings < 1 h apart merged); "
          "a labelled window is caught when an alarm starts inside it; other alarms are false alarms.")
    table(rows, ["series", "windows caught", "false alarms", "days", "FA/day", "firing share (unlabelled time)"])
    for f in [1, 8]:
        x = np.random.default_rng(0).normal(20, 1, (1, ta.W, f)).astype(np.float32)
        med, p95 = latency_ms(sess, {"window": x}, runs=500)
        print(f"latency F={f}: median {med:.3f} ms, p95 {p95:.3f} ms (1 thread)")
    try:
        cal = read_results("anomaly_calibration.json")
        print("leave-one-series-out (threshold z calibrated on the other 6 series; from results/anomaly_calibration.json):")
        table([[k, f"{v['caught']}/{v['windows']}", f"{v['fa_per_day']:.2f}", f"{v['z_threshold']:.2f}"]
               for k, v in cal["leave_one_series_out"].items()], ["held-out series", "caught", "FA/day", "z at 0.7"])
    except FileNotFoundError:
        pass


def main(int8=False):
    evaluate(os.path.join(MODELS_DIR, "anomaly.onnx"))
    p = os.path.join(MODELS_DIR, "training", "build", "anomaly.int8.onnx")
    if int8 and os.path.exists(p):
        evaluate(p, "int8")
