#!/usr/bin/env python3
"""Issue 18 experiment: does taking away each device's running-average embedding (what its
everyday audio looks like) before the similarity bring back the enrolled sound when it plays
OVER other audio? Diagnostic on TUNE only (draws 0-4, the tune packages the projection did not
read): per class, the lowest static threshold whose false alarms on the tune streams stay
<= 1/h, and the recall of the held-out clips mixed into the streams (and alone) at it. An
oracle threshold per class, so optimistic for every variant alike: it compares representations,
it is not a figure to report.

  python3 Models/training/exp_enroll_center.py [--taus 60,300,1800]   (~1 min, stream embeddings cached by enroll_online_eval.py)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import enroll_online_eval as eo  # noqa: E402
from add_embedding import PROJECTION_PACKAGES  # noqa: E402

HOP_S = ee.HOP_S


def unit(x):
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-9)


def running_mean(E, tau_s):
    """mu[i] = the device's exponential average of windows 0..i-1 (what vigild would hold when
    window i arrives); mu[0] = E[0]."""
    a = 1 - np.exp(-HOP_S / tau_s)
    mu = np.empty_like(E)
    m = E[0].copy()
    for i in range(len(E)):
        mu[i] = m
        m += a * (E[i] - m)
    return mu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--taus", default="60,300,1800")
    ap.add_argument("--draws", default="0,1,2,3,4")
    a = ap.parse_args()
    taus = [float(t) for t in a.taus.split(",")]
    draw_ids = [int(d) for d in a.draws.split(",")]
    sess = ee.session()
    m = ee.manifest()
    tune = sorted(p for p in m if m[p]["split"] == "tune" and p not in PROJECTION_PACKAGES)
    _, E = eo.stream_embeddings(sess, tune)
    muB = ee.background().mean(0)
    H = sum(len(E[p]) * HOP_S / 3600 for p in tune)
    emb, D = eo.clip_embeddings(sess)
    P = {k: [(p, i0, g, unit(e), path) for p, i0, g, e, path in v]
         for k, v in eo.placements(sess, E, D, tune, draw_ids, np.random.default_rng(1818)).items()}

    variants = [("raw", None)] + [(f"centred tau {t:.0f} s", t) for t in taus]
    mus = {t: {p: running_mean(E[p], t) for p in tune} for t in taus}
    thresholds = np.round(np.arange(0.30, 1.0001, 0.01), 2)
    for name, tau in variants:
        print(f"\n## {name}", flush=True)
        for ff in (1, 2):
            row = []
            for cat in ee.CLASSES:
                fa = np.zeros(len(thresholds))
                hit_mix = np.zeros(len(thresholds))
                hit_alone = np.zeros(len(thresholds))
                n_mix = n_alone = 0
                for d in draw_ids:
                    raw = np.stack([e[l].mean(0) if l.any() else e.mean(0) for e, l in (emb[q] for q in D[cat][d][0])])
                    protos = unit(raw) if tau is None else unit(unit(raw) - muB)
                    sims = {}
                    for p in tune:
                        X = E[p] if tau is None else unit(E[p] - mus[tau][p])
                        sims[p] = (X @ protos.T).max(1)
                    for j, t in enumerate(thresholds):
                        fa[j] += sum(eo.alerts(sims[p], np.full(len(sims[p]), t), ff) for p in tune)
                    for p, i0, g, e, path in P[(cat, d)]:
                        X = e if tau is None else unit(e - mus[tau][p][i0])
                        s = (X @ protos.T).max(1)
                        hit_mix += np.array([eo.raised(s, np.full(len(s), t), ff) for t in thresholds])
                        n_mix += 1
                        if g == 0:
                            ea = emb[path][0]
                            Xa = ea if tau is None else unit(ea - mus[tau][p][i0])
                            sa = (Xa @ protos.T).max(1)
                            hit_alone += np.array([eo.raised(sa, np.full(len(sa), t), ff) for t in thresholds])
                            n_alone += 1
                fah = fa / (H * len(draw_ids))
                ok = np.flatnonzero(fah <= 1.0)
                j = ok[0] if len(ok) else len(thresholds) - 1
                row.append(f"{cat}: t {thresholds[j]:.2f} mixed {hit_mix[j] / n_mix:.2f} alone {hit_alone[j] / n_alone:.2f} @ {fah[j]:.2f}/h")
            print(f"  ff {ff}: " + "; ".join(row), flush=True)


if __name__ == "__main__":
    main()
