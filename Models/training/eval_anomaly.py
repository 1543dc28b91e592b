#!/usr/bin/env python3
"""Quality of Models/anomaly.onnx (v2) as vigild runs it: per-device baseline, false-alarm
budget, the default alert rule. Judged as a user would: alert raises per device-day on
normal stretches (no merging beyond the rule's own 30 s cooldown), faults caught and the
delay to the first raise, with a chance baseline and 95 % intervals.

Splits (no choice is made on the test split):
  tune: synthetic devices, seed 1, and NAB artificialNoAnomaly
  test: synthetic devices, seed 2, and NAB realKnownCause (7 real series, 19 windows)
Usage: python3 Models/training/eval_anomaly.py [--split tune|test|both] [--budget 1]
"""
import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baseline as bl  # noqa: E402
import train_anomaly as ta  # noqa: E402
from common import MODELS_DIR, session, write_results, wilson as common_wilson  # noqa: E402

COOLDOWN_S = 30.0   # the alert rule's default cooldown_s
V1 = None           # --v1: a v1 session to judge instead
DAY = 86400.0


# ---------------------------------------------------------------- synthetic devices
def synth(kind, seed):
    """One device: dict(name, t, X [n, F], faults [(a, b)], stuck [(field, t0)]).
    Faults are labelled windows; everything else is normal."""
    rng = np.random.default_rng(1000 * seed + sum(map(ord, kind)))
    faults, stuck = [], []
    if kind in ("coarse_1hz", "coarse_1min"):
        # 8 sensors; field 0 a pressure sensor with 9 distinct values, field 1 a 0.5-step
        # temperature, the rest continuous AR(1) noise of different scales
        dt = 1.0 if kind == "coarse_1hz" else 60.0
        n = int((2 if dt == 1 else 30) * DAY / dt)
        t = np.arange(n) * dt
        X = np.zeros((n, 8))
        p = np.cumsum(rng.normal(0, 0.02, n)) * 0.0
        X[:, 0] = np.clip(np.round(3.0 + 1.2 * np.sin(2 * np.pi * t / DAY) + p + rng.normal(0, 0.3, n)), -1, 7)
        X[:, 1] = np.round((40 + 2 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.2, n)) * 2) / 2
        for f in range(2, 8):
            e = rng.normal(0, 1, n)
            a = 0.9
            y = np.zeros(n)
            for i in range(1, n):
                y[i] = a * y[i - 1] + e[i]
            X[:, f] = 10 * f + (0.1 * f) * y * math.sqrt(1 - a * a)
        # faults: a level shift of 8 noise sds in one continuous field, 10 min
        for k in range(4):
            a = t[int(n * (0.3 + 0.15 * k))]
            f = 2 + (k % 6)
            m = (t >= a) & (t < a + 600 + (0 if dt == 1 else 3000))
            X[m, f] += 8 * 0.1 * f
            faults.append((a, a + 600 + (0 if dt == 1 else 3000)))
    elif kind == "stuck":
        dt = 60.0
        n = int(20 * DAY / dt)
        t = np.arange(n) * dt
        X = np.stack([20 + 3 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.1, n),
                      50 + rng.normal(0, 1, n)], 1)
        i0 = int(n * 0.6)
        X[i0:i0 + int(DAY / dt), 1] = X[i0, 1]     # humidity stuck for a day
        stuck.append((1, t[i0]))
        a = t[int(n * 0.85)]
        m = (t >= a) & (t < a + 3600)
        X[m, 0] += 2.0
        faults.append((a, a + 3600))
    elif kind == "drift":
        dt = 60.0
        n = int(20 * DAY / dt)
        t = np.arange(n) * dt
        X = (15 + rng.normal(0, 0.2, n))[:, None].copy()
        a = t[int(n * 0.7)]
        m = t >= a
        X[m, 0] += np.minimum((t[m] - a) / (6 * 3600), 1.0) * 3.0   # +3 (15 sds) over 6 h, then stays
        faults.append((a, t[-1]))                  # it never comes back: every raise after a is right
    elif kind == "daily":
        dt = 60.0
        n = int(30 * DAY / dt)
        t = np.arange(n) * dt
        X = (20 + 5 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.2, n))[:, None].copy()
        for k in range(3):
            a = t[int(n * (0.4 + 0.2 * k))]
            m = (t >= a) & (t < a + 1800)
            X[m, 0] += 3.0 if k != 1 else -3.0
            faults.append((a, a + 1800))
    elif kind == "gaps":
        dt = 60.0
        n = int(20 * DAY / dt)
        t = np.arange(n) * dt
        keep = np.ones(n, bool)
        for k in range(12):                        # twelve outages of 1-6 h
            i = rng.integers(0, n)
            keep[i:i + rng.integers(60, 360)] = False
        X = (100 + 0.5 * np.cumsum(rng.normal(0, 0.02, n)) + rng.normal(0, 0.5, n))[:, None].copy()
        for k in range(3):
            a = t[int(n * (0.45 + 0.2 * k))]
            m = (t >= a) & (t < a + 1800)
            X[m, 0] += 6.0
            keep[m] = True
            faults.append((a, a + 1800))
        t, X = t[keep], X[keep]
    elif kind == "bursts":
        dt = 1.0
        n = int(2 * DAY / dt)
        t = np.arange(n) * dt
        X = (5 + rng.normal(0, 0.1, n))[:, None].copy()
        for k in range(4):
            a = t[int(n * (0.3 + 0.17 * k))]
            m = (t >= a) & (t < a + 300)
            X[m, 0] += rng.normal(0, 1.0, m.sum())          # noise x10 for 5 min
            faults.append((a, a + 300))
    else:
        raise ValueError(kind)
    return {"name": f"{kind}", "t": t.astype(np.float64), "X": X.astype(np.float32),
            "faults": faults, "stuck": stuck, "source": "synthetic"}


KINDS = ["coarse_1hz", "coarse_1min", "stuck", "drift", "daily", "gaps", "bursts"]


def nab_devices(group, windows=True):
    out = []
    for s in ta.load_nab(group):
        out.append({"name": s["name"], "t": s["t"], "X": s["v"][:, None].astype(np.float32),
                    "faults": s["windows"] if windows else [], "stuck": [], "source": "NAB " + group})
    return out


# ---------------------------------------------------------------- run one device as vigild would
def run_device(sess, dev, budget, horizon_s, warmup_s):
    t, X = dev["t"], dev["X"]
    n, F = X.shape
    W = ta.W
    d = bl.Device(F, W, horizon_s=horizon_s, warmup_s=warmup_s, budget=budget)
    states = np.zeros((n, bl.ROWS, F), np.float32)
    decay = np.zeros(n)
    stuck_any = np.zeros(n, bool)
    for i in range(n):
        states[i] = d.state()
        stuck_any[i] = bool((states[i][bl.MASK] == 0).any()) and d.n >= 2
        decay[i] = d.update(t[i], X[i])
    # model scores for every full window (reading i >= W-1): the state from before reading i
    idx = np.arange(W)[None, :] + np.arange(n - W + 1)[:, None]
    scores = np.zeros(n)
    bs = 4096
    for s0 in range(0, n - W + 1, bs):
        sl = slice(s0, min(n - W + 1, s0 + bs))
        win = X[idx[sl]]
        st = states[W - 1 + np.arange(sl.start, sl.stop)]
        scores[W - 1 + np.arange(sl.start, sl.stop)] = sess.run(None, {"window": win, "baseline": st})[0][:, 0]
    # threshold tracker and the alert rule (for_frames 1, clear below the threshold, cooldown 30 s)
    raises = []
    active = False
    last_raise = -math.inf
    thr_log = []
    # the threshold tracker sees the interval estimate and count as the live device keeps them
    tr = bl.Device(F, W, horizon_s=horizon_s, warmup_s=warmup_s, budget=budget)
    for i in range(n):
        tr.t_first = t[0] if tr.t_first is None else tr.t_first
        # dt and n as the live device keeps them
        if i > 0:
            dt = max(0.0, t[i] - t[i - 1])
            tr.wdt = tr.wdt * decay[i] + 1.0
            tr.dt += (dt - tr.dt) / tr.wdt
        tr.t_last = t[i]
        tr.n = i + 1
        if i < W - 1:
            continue
        thr = tr.threshold()
        thr_log.append(thr)
        s = scores[i]
        if not active:
            if s >= thr and t[i] - last_raise >= COOLDOWN_S:
                active = True
                last_raise = t[i]
                raises.append(t[i])
        elif s < thr:
            active = False
        tr.observe(s, decay[i], thr)
    return np.array(raises), scores, np.array(thr_log), stuck_any


def run_device_v1(sess, dev, threshold=0.7):
    """anomaly.onnx v1 (one input, no baseline) through the same rule at its fixed min_score."""
    t, X = dev["t"], dev["X"]
    n, W = len(t), ta.W
    idx = np.arange(W)[None, :] + np.arange(n - W + 1)[:, None]
    scores = np.zeros(n)
    for s0 in range(0, n - W + 1, 4096):
        sl = slice(s0, min(n - W + 1, s0 + 4096))
        scores[W - 1 + np.arange(sl.start, sl.stop)] = sess.run(None, {"window": X[idx[sl]]})[0][:, 0]
    raises, active, last = [], False, -math.inf
    for i in range(W - 1, n):
        if not active:
            if scores[i] >= threshold and t[i] - last >= COOLDOWN_S:
                active, last = True, t[i]
                raises.append(t[i])
        elif scores[i] < threshold:
            active = False
    return np.array(raises), scores, None, np.zeros(n, bool)


def judge(dev, raises):
    t = dev["t"]
    faults = dev["faults"]
    inside = np.zeros(len(raises), bool)
    caught, delays = 0, []
    for a, b in faults:
        m = (raises >= a) & (raises <= b)
        inside |= m
        if m.any():
            caught += 1
            delays.append(float(raises[m][0] - a))
    normal_s = (t[-1] - t[0]) - sum(min(b, t[-1]) - max(a, t[0]) for a, b in faults)
    fa = int((~inside).sum())
    # chance: the same number of raises at uniformly random times; P(window caught)
    span = t[-1] - t[0]
    nr = len(raises)
    chance = sum(1 - (1 - (min(b, t[-1]) - max(a, t[0])) / span) ** nr for a, b in faults) if nr else 0.0
    return {"faults": len(faults), "caught": caught, "delays_s": delays, "false_alarms": fa,
            "normal_days": normal_s / DAY, "raises": nr, "chance_caught": chance}


def poisson_ci(k, exposure):
    """95 % interval of a rate from k events (Wilson-Hilferty approximation of the exact Garwood)."""
    def q(kk, z):
        if kk <= 0:
            return 0.0
        return kk * (1 - 1 / (9 * kk) + z / (3 * math.sqrt(kk))) ** 3
    lo = q(k, -1.96) / exposure if k > 0 else 0.0
    hi = q(k + 1, 1.96) / exposure
    return lo, hi


def wilson(k, n):
    # The card's tables print 0-1 for an empty cell rather than nan.
    return (0.0, 1.0) if n == 0 else common_wilson(k, n)


def evaluate(devices, sess, budget, horizon_s, warmup_s, title):
    rows, tot = [], {"faults": 0, "caught": 0, "fa": 0, "days": 0.0, "chance": 0.0, "delays": []}
    for dev in devices:
        if V1 is not None:
            raises, _, _, stuck_any = run_device_v1(V1, dev)
        else:
            raises, _, _, stuck_any = run_device(sess, dev, budget, horizon_s, warmup_s)
        r = judge(dev, raises)
        stuck_note = ""
        for f, t0 in dev["stuck"]:
            flagged = dev["t"][stuck_any & (dev["t"] >= t0)]
            stuck_note = f"stuck flagged after {(flagged[0] - t0) / 60:.0f} min" if len(flagged) else "stuck NOT flagged"
        md = f"{np.median(r['delays_s']) / 60:.1f}" if r["delays_s"] else "-"
        fad = r["false_alarms"] / r["normal_days"]
        rows.append([dev["name"], dev["source"], f"{r['caught']}/{r['faults']}", f"{r['chance_caught']:.2f}", md,
                     r["false_alarms"], f"{r['normal_days']:.1f}", f"{fad:.2f}",
                     f"{poisson_ci(r['false_alarms'], r['normal_days'])[1]:.2f}", stuck_note])
        tot["faults"] += r["faults"]
        tot["caught"] += r["caught"]
        tot["fa"] += r["false_alarms"]
        tot["days"] += r["normal_days"]
        tot["chance"] += r["chance_caught"]
        tot["delays"] += r["delays_s"]
    lo, hi = wilson(tot["caught"], tot["faults"])
    flo, fhi = poisson_ci(tot["fa"], tot["days"])
    md = f"{np.median(tot['delays']) / 60:.1f}" if tot["delays"] else "-"
    rows.append(["TOTAL", "", f"{tot['caught']}/{tot['faults']} (95% {lo:.2f}-{hi:.2f})", f"{tot['chance']:.2f}", md,
                 tot["fa"], f"{tot['days']:.1f}", f"{tot['fa'] / max(tot['days'], 1e-9):.2f} ({flo:.2f}-{fhi:.2f})", "", ""])
    print(f"\n### {title}")
    header = ["device", "source", "faults caught", "chance", "median delay min", "false alarms",
              "normal days", "FA/device-day", "FA/day 95% upper", "stuck"]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |")
    return {"rows": rows, "total": tot | {"delays": None}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="both", choices=["tune", "test", "both"])
    ap.add_argument("--budget", type=float, default=1.0)
    ap.add_argument("--horizon-h", type=float, default=72.0)
    ap.add_argument("--warmup-h", type=float, default=24.0)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--tail", default=bl.TAIL, choices=["exp", "gpd"])
    ap.add_argument("--q0", type=float, default=bl.Q0)
    ap.add_argument("--nab", default="1")
    ap.add_argument("--v1", help="judge this v1 model (one input, min_score 0.7) instead, for comparison")
    args = ap.parse_args()
    global V1
    if args.v1:
        V1 = session(args.v1)
    bl.TAIL, bl.Q0 = args.tail, args.q0
    sess = session(os.path.join(MODELS_DIR, "anomaly.onnx"))
    out = {}
    kinds = args.kinds.split(",")
    cfg = "v1 model, min_score 0.7" if args.v1 else f"budget {args.budget}/day, horizon {args.horizon_h} h, warm-up {args.warmup_h} h, tail {args.tail}, q0 {args.q0}"
    if args.split in ("tune", "both"):
        devs = [synth(k, 1) for k in kinds if k] + (nab_devices("artificialNoAnomaly", windows=False) if args.nab == "1" else [])
        out["tune"] = evaluate(devs, sess, args.budget, args.horizon_h * 3600, args.warmup_h * 3600, f"tune split ({cfg})")
    if args.split in ("test", "both"):
        devs = [synth(k, 2) for k in kinds] + nab_devices("realKnownCause")
        out["test"] = evaluate(devs, sess, args.budget, args.horizon_h * 3600, args.warmup_h * 3600, f"test split ({cfg})")
    write_results("anomaly_eval_v1.json" if args.v1 else "anomaly_eval.json", {"config": vars(args), **out})


def evaluate_shipped():
    """Entry point for evaluate.py."""
    sys.argv = [sys.argv[0]]
    main()


if __name__ == "__main__":
    main()
