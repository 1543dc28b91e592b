#!/usr/bin/env python3
"""Issue 18, sounds over other audio (exploration on TUNE data only; nothing ships or is chosen
from it): exp_enroll_residual.py's residual similarity, through enroll_lived_eval.py's machinery
as a device lives it. Every window's embedding e (the streams', the placed clips') becomes
unit(unit(e) - lambda * unit(mu)), mu the mean of the stream's previous 60 windows (~30 s;
a placed clip takes mu from the moment it is placed at). The similarity to the prototypes, the
near-miss memory (which remembers residuals too), the guard and vigild's alert rule run
unchanged at the setting vigild ships (enroll_lived_eval.GUARDED), on the tune draws 0-4 and
enroll_lived_eval.py's tune streams (tune minus the projection's packages, plus tune2), with
its placements (seed 1818). lambda 0 is vigild today and reproduces enroll_lived_eval's tune row
for that setting.

The enrolled clips and the shipped background set have no context of their own: both take the
background set's mean as their mu, so the prototypes, the clips' match to each other (the
floor) and the background's best match (the enrolled threshold) are in residual terms too.
Approximation: a placed clip does not enter the mu of the windows after it.

  python3 Models/training/exp_enroll_residual_lived.py [--calibration mean|context]
  (~30 s with the stream embeddings cached; output results/enroll_residual_lived.txt, or
  results/enroll_residual_lived_context.txt)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import enroll_lived_eval as le  # noqa: E402
import enroll_online_eval as eo  # noqa: E402
from add_embedding import PROJECTION_PACKAGES  # noqa: E402
from exp_enroll_residual import CONTEXT, unit  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "enroll_residual_lived.txt")
LAMBDAS = [0.0, 0.7, 0.85]


def context_means(e):
    """unit(mean of the CONTEXT windows before each window) (zeros for the first)."""
    u = unit(e.astype(np.float64))
    c = np.vstack([np.zeros((1, u.shape[1])), np.cumsum(u, 0)])
    i = np.arange(len(u))
    lo = np.maximum(0, i - CONTEXT)
    n = np.maximum(1, i - lo)[:, None]
    mu = (c[i] - c[lo]) / n
    mu[0] = 0
    return unit(mu).astype(np.float32)


CONTEXTS = 2048          # device contexts drawn from the projection's streams (neither tune nor test)
CONTEXTS_PER_CLIP = 16


def context_pool(sess, rng):
    """(windows, their context means): CONTEXTS random windows of the projection's own streams,
    which no tune or test figure reads, each with the mean of the CONTEXT windows before it."""
    _, EP = eo.stream_embeddings(sess, PROJECTION_PACKAGES)
    names = [p for p in PROJECTION_PACKAGES if len(EP[p]) > CONTEXT + 1]
    weight = np.array([len(EP[p]) for p in names], float)
    weight /= weight.sum()
    W, M = [], []
    for _ in range(CONTEXTS):
        p = names[rng.choice(len(names), p=weight)]
        t = int(rng.integers(CONTEXT, len(EP[p])))
        W.append(unit(EP[p][t]))
        M.append(unit(unit(EP[p][t - CONTEXT:t]).mean(0)))
    return np.array(W, np.float32), np.array(M, np.float32)


def contextual(emb, enrolled, lam, CM, rng):
    """Each enrolled clip's windows as residuals after CONTEXTS_PER_CLIP random device contexts
    (one per copy), so prototypes and the clips' match to each other are in the terms the
    device's windows are."""
    out = {}
    for q in enrolled:
        e, loud = emb[q]
        mus = CM[rng.choice(len(CM), CONTEXTS_PER_CLIP, replace=False)]
        r = np.concatenate([unit(unit(e) - lam * mu) for mu in mus])
        out[q] = (r, np.tile(loud, CONTEXTS_PER_CLIP))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calibration", choices=["mean", "context"], default="mean",
                    help="mean: clips and background set against the background set's mean (results/enroll_residual_lived.txt); "
                         "context: against device contexts drawn from the projection's streams (results/enroll_residual_lived_context.txt)")
    a = ap.parse_args()
    say = ee.Report()
    sess = ee.session()
    m = ee.manifest()
    tune = sorted(p for p in m if (m[p]["split"] == "tune" and p not in PROJECTION_PACKAGES) or m[p]["split"] == "tune2")
    key, E = eo.stream_embeddings(sess, tune)
    B = ee.background()
    hours = {p: len(E[p]) * eo.HOP_S / 3600 for p in E}
    emb, D = eo.clip_embeddings(sess)
    draws = list(ee.TUNE_DRAWS)
    prep0 = eo.prepare(sess, E, D, emb, B, tune, draws, np.random.default_rng(1818))
    MU = {p: context_means(E[p]) for p in tune}
    setting, ff = le.GUARDED[:-1], le.GUARDED[-1]
    cd = [(c, d) for c in ee.CLASSES for d in draws]
    say(f"# Residual similarity as lived, tune only, calibration '{a.calibration}' ({key}): {len(tune)} tune streams ({sum(hours.values()):.2f} h), draws {draws}, "
        f"context {CONTEXT} windows; setting: vigild's ({le.name_of(le.GUARDED)})")
    muB = unit(B.mean(0))
    if a.calibration == "context":
        CW, CM = context_pool(sess, np.random.default_rng(60))
    for lam in LAMBDAS:
        R = {p: unit(unit(E[p]) - lam * MU[p]).astype(np.float32) for p in tune}
        # The enrolled clips and the background set have no context of their own. "mean": both
        # take the background set's mean as mu. "context": the background is CONTEXTS windows of
        # the projection's streams with their own contexts, and each clip is taken after random
        # ones of those contexts. Either way prototypes, the clips' match to each other (the
        # floor) and the background's best match are residuals too.
        B_r = unit(B - lam * muB) if a.calibration == "mean" else unit(CW - lam * CM)
        prep, seqs = {}, {}
        crng = np.random.default_rng(61)
        for (cat, d), (_, _, pl) in prep0.items():
            enrolled = D[cat][d][0]
            if a.calibration == "mean":
                emb_r = {q: (unit(unit(emb[q][0]) - lam * muB), emb[q][1]) for q in enrolled}
            else:
                emb_r = contextual(emb, enrolled, lam, CM, crng)
            protos = ee.prototypes([emb_r[q] for q in enrolled], "clip")
            bgm = (float((B_r @ protos.T).max()), eo.clips_match(emb_r, enrolled))
            sims = {p: (R[p] @ protos.T).max(1) for p in tune}
            placed = []
            for p, i0, g, _, u in pl:
                r = unit(unit(np.asarray(u, np.float32)) - lam * MU[p][i0]).astype(np.float32)
                placed.append((p, i0, g, (r @ protos.T).max(1), r))
            prep[(cat, d)] = (bgm, sims, placed)
            for ps, gains in le.PASSES.items():
                seqs[(cat, d, ps)] = le.lived(R, sims, placed, tune, gains)
        res = le.evaluate(seqs, prep, cd, hours, *setting, [ff])
        alone, mixed = res["alone"][ff], res["mixed"][ff]
        met = sum(k / n >= ee.TARGET_RECALL and fa / h <= ee.BUDGET for k, n, fa, h in alone.values())
        say(f"lambda {lam:.2f}: {met} classes met (alone); recall alone {np.mean([k / n for k, n, _, _ in alone.values()]):.3f}, "
            f"mixed {np.mean([k / n for k, n, _, _ in mixed.values()]):.3f}, false alarms {np.mean([fa / h for _, _, fa, h in alone.values()]):.2f}/h | "
            + " ".join(f"{c}:{alone[c][0] / alone[c][1]:.2f}/{mixed[c][0] / mixed[c][1]:.2f}@{alone[c][2] / alone[c][3]:.2f}" for c in ee.CLASSES))
    say("(per class: recall alone / mixed in @ false alarms per hour)")
    say.write(OUT if a.calibration == "mean" else OUT.replace(".txt", "_context.txt"))


if __name__ == "__main__":
    main()
