#!/usr/bin/env python3
"""Issue 18, enrolling from 5 clips of a class recorded elsewhere: do prototypes of ALTERED
copies of the enrolled clips (pitch and speed, level, tone, noise) reach the class's other
recordings? Each enrolled clip adds one prototype per alteration (the mean embedding of its loud
windows, as for the clip); the clips' match to each other (the floor) and the background set's
best match (the enrolled threshold) are taken over all of them, as vigilctl would.

Every alteration is simple enough for vigilctl to do on the clips (no audio beyond the clips):
  speed   resampled by r (pitch and speed together), linear interpolation
  gain    level in dB
  lowpass / highpass  one-pole filter at f Hz (a smaller speaker, another room, a wall between)
  noise   pink noise (fixed seed) at snr dB under the clip's loud frames' power

The choice is made on TUNE (draws 0-4, enroll_lived_eval.py's tune streams and placements) at
the setting vigild ships (enroll_lived_eval.GUARDED), by enroll_lived_eval's rule (classes at
recall >= 0.8 with <= 1/h, then within 1/h, then mean recall to 2 decimals, then fewest false
alarms); with --test the chosen set and "none" are then reported on test (draws 5-9, test
streams), which no choice reads.

  python3 Models/training/exp_enroll_augment.py [--test]
  (~1 min for every set with the stream and altered-clip embeddings cached; output
  results/enroll_augment.txt)
  python3 Models/training/exp_enroll_augment.py --vigilctl .build/debug
  (what vigilctl enroll stores (ClipAlteration.positive) against this script's arithmetic for
  SHIPPED: each class's test draw 5 enrolled by both; output results/enroll_augment_vigilctl.txt)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import enroll_lived_eval as le  # noqa: E402
import enroll_online_eval as eo  # noqa: E402
import sound_data as sd  # noqa: E402
from add_embedding import PROJECTION_PACKAGES  # noqa: E402
from rules_replay import wilson  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "enroll_augment.txt")
SR = ee.SR


def speed(x, r):
    n = int(round(len(x) / r))
    return np.interp(np.arange(n) * r, np.arange(len(x)), x).astype(np.float32)


def one_pole(x, hz, high):
    """y[i] = (1 - a) x[i] + a y[i-1], a = exp(-2 pi hz / SR); the high-pass is x - y."""
    from scipy.signal import lfilter
    a = np.exp(-2 * np.pi * hz / SR)
    y = lfilter([1 - a], [1, -a], x).astype(np.float32)
    return (x - y) if high else y


def pink(n, seed=7):
    """Paul Kellet's economy pink filter over white noise: unit RMS."""
    from scipy.signal import lfilter
    w = np.random.default_rng(seed).standard_normal(n)
    y = w * 0.1848
    for pole, gain in ((0.99765, 0.0990460), (0.96300, 0.2965164), (0.57000, 1.0526913)):
        y = y + lfilter([gain], [1, -pole], w)
    return (y / np.sqrt(np.mean(y ** 2))).astype(np.float32)


def noisy(x, snr):
    db = sd.frame_db(x)
    loud_power = np.mean(10 ** (db[db >= db.max() - ee.LOUD_DB] / 10))
    return x + pink(len(x)) * np.sqrt(loud_power / 10 ** (snr / 10))


ALTER = {
    "speed0.92": lambda x: speed(x, 0.92), "speed1.08": lambda x: speed(x, 1.08),
    "speed0.85": lambda x: speed(x, 0.85), "speed1.15": lambda x: speed(x, 1.15),
    "gain-12": lambda x: x * 10 ** (-12 / 20), "gain+6": lambda x: np.clip(x * 2, -1, 1),
    "lowpass2k": lambda x: one_pole(x, 2000, False), "highpass500": lambda x: one_pole(x, 500, True),
    "noise10": lambda x: noisy(x, 10), "noise0": lambda x: noisy(x, 0),
    "speed0.96": lambda x: speed(x, 0.96), "speed1.04": lambda x: speed(x, 1.04),
    "speed0.88": lambda x: speed(x, 0.88), "speed1.12": lambda x: speed(x, 1.12),
    "lowpass4k": lambda x: one_pole(x, 4000, False), "highpass250": lambda x: one_pole(x, 250, True),
}
SETS = {
    "none": [],
    "speed8": ["speed0.92", "speed1.08"],
    "speed15": ["speed0.85", "speed1.15"],
    "gain": ["gain-12", "gain+6"],
    "tone": ["lowpass2k", "highpass500"],
    "noise": ["noise10", "noise0"],
    "speed8+tone": ["speed0.92", "speed1.08", "lowpass2k", "highpass500"],
    "speed8+noise": ["speed0.92", "speed1.08", "noise10", "noise0"],
    "speed4+tone": ["speed0.96", "speed1.04", "lowpass2k", "highpass500"],
    "speed12+tone": ["speed0.88", "speed1.12", "lowpass2k", "highpass500"],
    "speed4+8+tone": ["speed0.96", "speed1.04", "speed0.92", "speed1.08", "lowpass2k", "highpass500"],
    "speed8+15+tone": ["speed0.92", "speed1.08", "speed0.85", "speed1.15", "lowpass2k", "highpass500"],
    "speed8+softtone": ["speed0.92", "speed1.08", "lowpass4k", "highpass250"],
    "speed8+bothtone": ["speed0.92", "speed1.08", "lowpass2k", "highpass500", "lowpass4k", "highpass250"],
    "all": ["speed0.92", "speed1.08", "gain-12", "gain+6", "lowpass2k", "highpass500", "noise10", "noise0"],
}


def altered_embeddings(sess, paths, names=None):
    """{(path, alteration): (window embeddings, loud windows)} for the `names` alterations (default:
    all of ALTER), cached per model hash and alteration."""
    import hashlib
    import pickle
    key = hashlib.sha1(open(ee.MODEL, "rb").read()).hexdigest()[:12]
    cache = os.path.join("/tmp/vigil-enroll-online", key, "altered.pkl")
    out = pickle.load(open(cache, "rb")) if os.path.exists(cache) else {}
    names = list(names or ALTER)
    paths = [p for p in paths if any((p, n) not in out for n in names)]
    for i, path in enumerate(sorted(paths)):
        x = sd.read_wav(path)
        for name in names:
            if (path, name) in out:
                continue
            _, e, W = ee.run(sess, ALTER[name](x))
            out[(path, name)] = (e, ee.loud(W))
        print(f"\raltered {i + 1}/{len(paths)} clips", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if paths:
        pickle.dump(out, open(cache, "wb"))
    return out


def evaluate(prep0, E, D, emb, alt, B, pkgs, draws, hours, names, once=False):
    """enroll_lived_eval.evaluate at vigild's setting on eo.prepare's placements `prep0`, prototypes
    of the clips and their `names` alterations: {pass: {cat: (raised, clips, false alarms, hours)}}."""
    prep, seqs = {}, {}
    for (cat, d), (_, _, pl) in prep0.items():
        enrolled = D[cat][d][0]
        copies = {q: [alt[(q, n)] for n in names] for q in enrolled}
        protos = eo.enrolled_prototypes(emb, enrolled, copies)
        bgm = (float((B @ protos.T).max()), eo.clips_match(emb, enrolled, copies))
        sims = {p: (E[p] @ protos.T).max(1) for p in pkgs}
        placed = [(p, i0, g, (u @ protos.T).max(1), u) for p, i0, g, _, u in pl]
        prep[(cat, d)] = (bgm, sims, placed)
        for ps, gains in le.PASSES.items():
            seqs[(cat, d, ps)] = le.lived(E, sims, placed, pkgs, gains)
        if once:
            # each recording once, its first placement (enroll_lived_eval's "once": a milder household)
            seen = set()
            first = [e for e in placed if e[2] == "alone" and id(e[4]) not in seen and not seen.add(id(e[4]))]
            seqs[(cat, d, "once")] = le.lived(E, sims, first, pkgs, ("alone",))
    cd = [(c, d) for c in ee.CLASSES for d in draws]
    res = le.evaluate(seqs, prep, cd, hours, *le.GUARDED[:-1], [le.GUARDED[-1]])
    return {ps: res[ps][le.GUARDED[-1]] for ps in res}


SHIPPED = "speed8+bothtone"     # what vigilctl does: ClipAlteration.positive


def vigilctl_check(bin_dir, sess, emb, alt, B, D):
    """vigilctl enroll on each class's draw-5 clips (into the log of a real vigild, which creates
    it), its stored prototypes and threshold against this script's for SHIPPED."""
    import sqlite3
    import subprocess
    import tempfile
    from enroll_vigild_check import Node
    say = ee.Report()
    say(f"# vigilctl enroll against exp_enroll_augment.py's arithmetic ({SHIPPED}: {', '.join(SETS[SHIPPED])}), draw 5 of each class")
    for cat in ee.CLASSES:
        enrolled = D[cat][5][0]
        copies = {q: [alt[(q, n)] for n in SETS[SHIPPED]] for q in enrolled}
        P = eo.enrolled_prototypes(emb, enrolled, copies)
        t0 = eo.enrolled_threshold(B, emb, enrolled, eo.SHIPPED["floor"], copies)
        with tempfile.TemporaryDirectory() as d, Node(d, bin_dir) as n:
            r = subprocess.run([n.vigilctl, "enroll", "--label", cat, "--config", n.cfg] + enrolled,
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"vigilctl enroll {cat}: {r.stderr}")
            dim, blob, t = sqlite3.connect(os.path.join(d, "vigil.db")).execute(
                "SELECT dim, prototypes, threshold FROM enrollments").fetchone()
        V = np.frombuffer(blob, dtype="<f4").reshape(-1, dim)
        cos = (V * P).sum(1) if V.shape == P.shape else np.array([np.nan])
        say(f"{cat:16s} prototypes vigilctl {len(V)}, here {len(P)} (cosine min {cos.min():.5f}); threshold vigilctl {t:.4f}, here {t0:.4f}")
    say.write(OUT.replace(".txt", "_vigilctl.txt"))


def confirm():
    """False alarms on the confirm split (game audio no choice read; enroll_fa_sources.py --split
    confirm), test draws 5-9, as lived (placements of the held-out clips in place, as on test),
    'none' against SHIPPED in one run."""
    say = ee.Report()
    sess, pkgs, key, E, emb, D, B, draws = eo.held_out_split("confirm")
    hours = {p: len(E[p]) * eo.HOP_S / 3600 for p in E}
    alt = altered_embeddings(sess, {q for cat in ee.CLASSES for d in draws for q in D[cat][d][0]}, SETS[SHIPPED])
    prep0 = eo.prepare(sess, E, D, emb, B, pkgs, draws, np.random.default_rng(1820))
    say(f"# False alarms on the confirm split ({len(pkgs)} streams, {sum(hours.values()):.2f} h x {len(draws)} draws), "
        f"vigild's setting, {os.path.basename(ee.MODEL)} {key}")
    for name in ["none", SHIPPED]:
        res = evaluate(prep0, E, D, emb, alt, B, pkgs, draws, hours, SETS[name])["alone"]
        total = sum(fa for _, _, fa, _ in res.values())
        say(f"{name:16s} {total} false alarms ({total / sum(hours.values()) / len(draws) / len(res):.2f}/h per class) | "
            + " ".join(f"{c}:{fa / h:.2f}/h" for c, (_, _, fa, h) in res.items()))
    say.write(OUT.replace(".txt", "_confirm.txt"))


def summary(per):
    met = sum(k / n >= ee.TARGET_RECALL and fa / h <= ee.BUDGET for k, n, fa, h in per.values())
    within = sum(fa / h <= ee.BUDGET for k, n, fa, h in per.values())
    return (met, within, round(float(np.mean([k / n for k, n, _, _ in per.values()])), 2),
            -float(np.mean([fa / h for _, _, fa, h in per.values()])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--test", action="store_true", help="report the tune choice and 'none' on test")
    ap.add_argument("--vigilctl", metavar="BIN", help="compare vigilctl enroll (in BIN) with this arithmetic, nothing else")
    ap.add_argument("--confirm", action="store_true",
                    help="false alarms of 'none' and SHIPPED on the confirm split's game audio (test draws), nothing else")
    a = ap.parse_args()
    if a.confirm:
        return confirm()
    if a.vigilctl:
        sess = ee.session()
        emb, D = eo.clip_embeddings(sess)
        alt = altered_embeddings(sess, {q for cat in ee.CLASSES for q in D[cat][5][0]}, SETS[SHIPPED])
        return vigilctl_check(os.path.abspath(a.vigilctl), sess, emb, alt, ee.background(), D)
    say = ee.Report()
    sess = ee.session()
    m = ee.manifest()
    tune = sorted(p for p in m if (m[p]["split"] == "tune" and p not in PROJECTION_PACKAGES) or m[p]["split"] == "tune2")
    test = sorted(p for p in m if m[p]["split"] == "test") if a.test else []
    key, E = eo.stream_embeddings(sess, tune + test)
    B = ee.background()
    hours = {p: len(E[p]) * eo.HOP_S / 3600 for p in E}
    emb, D = eo.clip_embeddings(sess)
    enrolled = {q for cat in ee.CLASSES for d in range(ee.DRAWS) for q in D[cat][d][0]}
    alt = altered_embeddings(sess, enrolled)
    say(f"# Enrolled clips with altered copies as extra prototypes ({os.path.basename(ee.MODEL)} {key}); "
        f"vigild's setting {le.name_of(le.GUARDED)}")
    say(f"tune: {len(tune)} streams ({sum(hours[p] for p in tune):.2f} h), draws 0-4; per class: recall alone / mixed in @ false alarms/h")
    rows = []
    prng = np.random.default_rng(1818)     # enroll_lived_eval's placements: tune first, then test
    prep_tune = eo.prepare(sess, E, D, emb, B, tune, list(ee.TUNE_DRAWS), prng)
    for name, alts in SETS.items():
        res = evaluate(prep_tune, E, D, emb, alt, B, tune, list(ee.TUNE_DRAWS), hours, alts)
        s = summary(res["alone"])
        mixed = np.mean([k / n for k, n, _, _ in res["mixed"].values()])
        rows.append((s, name))
        say(f"  {name:14s} {s[0]} met, {s[1]} within; recall alone {s[2]:.2f}, mixed {mixed:.3f}, {-s[3]:.2f}/h | "
            + " ".join(f"{c}:{res['alone'][c][0] / res['alone'][c][1]:.2f}/{res['mixed'][c][0] / res['mixed'][c][1]:.2f}"
                       f"@{res['alone'][c][2] / res['alone'][c][3]:.2f}" for c in ee.CLASSES))
    best = max(rows)[1]
    say(f"chosen on tune: {best} (most classes met, then within 1/h, then mean recall, then fewest false alarms)")
    if a.test:
        test_draws = [d for d in range(ee.DRAWS) if d not in ee.TUNE_DRAWS]
        prep_test = eo.prepare(sess, E, D, emb, B, test, test_draws, prng)
        for name in dict.fromkeys(["none", best]):
            res = evaluate(prep_test, E, D, emb, alt, B, test, test_draws, hours, SETS[name], once=True)
            say(f"\n## Test (draws 5-9, {len(test)} test streams, {sum(hours[p] for p in test):.2f} h x 5 draws): {name}")
            met = once_met = 0
            for cat, (k, n, fa, h) in res["alone"].items():
                lo, hi = wilson(k, n)
                mk, mn = res["mixed"][cat][:2]
                ok_, on_, ofa = res["once"][cat][:3]
                good = k / n >= ee.TARGET_RECALL and fa / h <= ee.BUDGET
                met += good
                once_met += ok_ / on_ >= ee.TARGET_RECALL and ofa / h <= ee.BUDGET
                say(f"{cat:16s} recall alone {k:3d}/{n:3d} = {k / n:.2f} (Wilson {lo:.2f}-{hi:.2f}); each recording once {ok_}/{on_} = "
                    f"{ok_ / on_:.2f} at {ofa / h:.2f}/h; mixed in {mk}/{mn} = {mk / mn:.2f}; "
                    f"false alarms {fa}/{h:.1f} h = {fa / h:.2f}/h{'  target met' if good else ''}")
            say(f"classes with recall >= 0.8 at <= 1 false alarm/h: {met} of {len(ee.CLASSES)} (each recording once: {once_met})")
    say.write(OUT)


if __name__ == "__main__":
    main()
