#!/usr/bin/env python3
"""Issue 18: enrolled sounds as a device LIVES them: the held-out clips go through the device's
calibrator in their place in the stream, so what a clip's own windows teach the device (its
onset and tail come close without reaching the bar: near misses) and what earlier occurrences of
the same sound taught it meet the later ones. enroll_online_eval.py judges each placed clip
against the device's memory just BEFORE the clip, as if the enrolled sound never taught the
device anything; a household's kettle boils every day.

Found by the Swift test EnrollmentIntegrationTests (CI, 2026-12-03): the same kettle, played a
second time on the same device, did not raise: its first play's onset window (similarity 0.77,
under the enrolled 0.80) had become a near miss, and the bar for sounds like it rose to ~0.87.

  python3 Models/training/enroll_lived_eval.py [--tune-only]
  (output: Models/training/results/enroll_lived_eval.txt; ~10 min with enroll_online_eval's
  stream embeddings cached)

Same draws, placements (seed 1818, tune then test), streams and alert rule as
enroll_online_eval.py. Per (class, draw, stream): every placement of the draw's held-out clips
in that stream is inserted at its moment, all at once (each clip at +0 and -10 dB, 6 placements
per gain: a class heard about once a minute in the hardest case, far more often than a home
would), then the near-miss memory runs over the whole sequence. A clip counts as raised when
for_frames consecutive windows of it reach the bar in force as the device then stands; false
alarms are the raises that start outside the clips. Recall is reported for the clips mixed into
the stream (the 2 gains) and for the clip alone inserted (what issue 18.5 measures).

Grid (tune draws 0-4, tune + tune2 streams): near misses kept (64, 256), admitted from 0.1 or
0.2 below, margin, cap (absolute, or the enrolled threshold + c), and the GUARD: a near miss is
remembered only if no window within `guard` windows before or after it reached the bar (the
onset and tail of a sound that did raise are that sound). Choice: as enroll_online_eval.py (most
classes at recall >= 0.8 with <= 1/h, then most within 1/h, then mean recall, then fewest false
alarms), on the clip-alone recall.
"""
import argparse
import os
import sys
from collections import deque

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import enroll_online_eval as eo  # noqa: E402
from add_embedding import PROJECTION_PACKAGES  # noqa: E402
from rules_replay import wilson  # noqa: E402

OUT = os.path.join(eo.HERE, "results", "enroll_lived_eval.txt")
KEEP_FROM = 0.4          # windows further below every setting's admit bound never matter (floor >= 0.6, admit <= 0.2)
KINDS = [(64, 0.2), (256, 0.2)]
MARGINS = [0.1, 0.15]
CAP_ABOVE = [0.1, 0.15, 0.2]      # the cap, enrolled threshold + c; with STRONG, also the guard's bar
GUARDS = [4, 8]
LEARN = ["blocked", "under"]
STRONG = [False, True]
# Tried on tune before (results/enroll_lived_eval_first_grid.txt, enroll_lived_eval_uncapped.txt): margin 0.05 (false
# alarms over 1/h), cap 1 (a device went deaf to the kettle: EnrollmentIntegrationTests).
# Tried on tune and dropped (first grid of this script, guard 0 and 4 beside it; its code left out since): confirm 0.9 / 0.95 (a near
# miss lifts the bar only once another matched it that closely): recall up, false alarms 1.6-3.5/h.
FLOORS = [eo.SHIPPED["floor"]]
# What the first guarded choice shipped (2026-12-03 evening, commit aab9422), and what vigild runs
# (DeviceCalibration.chosen): (floor, (near misses, admit), margin, cap, guard, learn, strong, for_frames).
GUARDED = (eo.SHIPPED["floor"], (64, 0.2), 0.1, ("+", 0.15), 8, "under", None, 2)
PASSES = {"mixed": tuple(eo.GAINS_DB), "alone": ("alone",)}


def cap_of(cap, t0):
    return min(1.0, t0 + cap[1]) if isinstance(cap, tuple) else cap


def cap_name(cap):
    return f"T0+{cap[1]:.2f}" if isinstance(cap, tuple) else f"{cap:.2f}"


def name_of(setting):
    floor, (M, admit), margin, cap, guard, learn, strong, ff = setting
    if M == 0:
        return f"floor {eo.floor_name(floor)}, no memory (the enrolled threshold), for_frames {ff}"
    return (f"floor {eo.floor_name(floor)}, near misses {M} admit {admit}, margin {margin:.2f}, cap {cap_name(cap)}, guard {guard}, "
            f"learn {learn}, strong {strong or '-'}, for_frames {ff}")


def guarded_bars(idx, X, S, t0, M, admit, margin, cap, guard, learn="blocked", strong=None):
    """The near-miss memory (DeviceCalibration .nearMisses, enroll_online_eval.memory_bars) over the
    windows kept (original indices `idx`, unit embeddings X, similarities S), with the guard: a
    window below the bar becomes a near miss only once `guard` further windows passed without one
    reaching the bar, and not within `guard` windows after one that did. `learn` "blocked": every
    window under the bar in force may be remembered (vigild before); "under": only windows under
    the enrolled threshold itself (a window the enrollment would raise, held back only by what the
    device learnt, teaches nothing: no ratchet). `strong` c: only a window
    at t0 + c or above guards its neighbours (a weak match that raised, a game's sample, lets its
    onset and tail teach the device, so it stops; a strong one, the enrolled sound, does not).
    Returns the bar at each kept window."""
    if M == 0:
        return np.full(len(idx), t0)
    bars = np.full(len(idx), t0)
    mem = np.zeros((M, X.shape[1]), np.float32)
    n = k = 0
    pending = deque()

    def remember(e):
        nonlocal n, k
        mem[k] = e
        k = (k + 1) % M
        n += 1
    last_hit = -10 ** 9
    lo = t0 - admit
    for j in np.flatnonzero(S >= lo).tolist():
        i = idx[j]
        while pending and idx[pending[0]] < i - guard:
            remember(X[pending.popleft()])
        bar = max(t0, min(cap, float((mem[:min(n, M)] @ X[j]).max()) + margin)) if n else t0
        bars[j] = bar
        if S[j] >= bar:
            if strong is None or S[j] >= t0 + strong:
                last_hit = i
                pending.clear()
        elif i - last_hit > guard and (learn == "blocked" or S[j] < t0):
            if guard == 0:
                remember(X[j])
            else:
                pending.append(j)
    return bars


def raises(idx, hit, ff):
    """Where vigild's rule raises (enroll_online_eval.alerts, on kept windows only: a window not
    kept is below every bar)."""
    out, active, above, prev, last = [], False, 0, -10, -np.inf
    for j in np.flatnonzero(hit).tolist():
        i = idx[j]
        if i != prev + 1:
            active, above = False, 0
        if active:
            prev = i
            continue
        above = above + 1 if i == prev + 1 else 1
        prev = i
        if above < ff or i * eo.HOP_S - last < eo.COOLDOWN:
            continue
        active, last, above = True, i * eo.HOP_S, 0
        out.append(i)
    return out


def lived(E, sims, pl, pkgs, gains):
    """Per stream: the kept windows of the stream with the placed clips (of `gains`) inserted at
    their moments: (original indices, unit embeddings, similarities, [(first, end) of each clip])."""
    out = {}
    for p in pkgs:
        events = sorted([(i0, s, X) for q, i0, g, s, X in pl if q == p and g in gains], key=lambda t: t[0])
        Xs, Ss, ranges, cur, pos = [], [], [], 0, 0
        for i0, s, X in events:
            Xs.append(E[p][cur:i0]); Ss.append(sims[p][cur:i0])
            pos += i0 - cur
            Xs.append(np.asarray(X, np.float32)); Ss.append(s)
            ranges.append((pos, pos + len(s)))
            pos += len(s)
            cur = i0
        Xs.append(E[p][cur:]); Ss.append(sims[p][cur:])
        S = np.concatenate(Ss)
        keep = np.flatnonzero(S >= KEEP_FROM)
        X = np.concatenate([x.astype(np.float32) for x in Xs])[keep] if len(keep) else np.zeros((0, E[p].shape[1]), np.float32)
        out[p] = (keep, X, S[keep], ranges)
    return out


def evaluate(seqs, prep, cats_draws, hours, floor, kind, margin, cap, guard, learn, strong, ffs):
    """{pass: {ff: {cat: (raised, clips, false alarms, hours)}}}"""
    M, admit = kind
    passes = [ps for ps in list(PASSES) + ["once"] if (*cats_draws[0], ps) in seqs]
    res = {ps: {ff: {} for ff in ffs} for ps in passes}
    for (cat, d) in cats_draws:
        (bg, match), _, _ = prep[(cat, d)]
        t0 = eo.t0_of(bg, match, floor)
        c = cap_of(cap, t0)
        for ps in passes:
            for p, (idx, X, S, ranges) in seqs[(cat, d, ps)].items():
                bars = guarded_bars(idx, X, S, t0, M, admit, margin, c, guard, learn, strong)
                hit = S >= bars
                for ff in ffs:
                    r = res[ps][ff].setdefault(cat, [0, 0, 0, 0.0])
                    ups = raises(idx, hit, ff)
                    starts = np.searchsorted(idx, [a for a, _ in ranges])
                    ends = np.searchsorted(idx, [b for _, b in ranges])
                    for a0, b0 in zip(starts, ends):
                        h = hit[a0:b0]
                        ii = idx[a0:b0]
                        r[0] += bool(h.any()) if ff == 1 else bool(np.any(h[1:] & h[:-1] & (np.diff(ii) == 1)))
                        r[1] += 1
                    # a raise that starts in a clip, or within 2 windows of its end, is the clip's
                    r[2] += sum(not any(a <= u < b + 2 for a, b in ranges) for u in ups)
                    r[3] += hours[p]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tune-only", action="store_true")
    ap.add_argument("--any-cap", dest="capped", action="store_false",
                    help="let the choice take cap 1 (no cap): the first choice, results/enroll_lived_eval_uncapped.txt")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    say = ee.Report()
    sess = ee.session()
    m = ee.manifest()
    tune = sorted(p for p in m if (m[p]["split"] == "tune" and p not in PROJECTION_PACKAGES) or m[p]["split"] == "tune2")
    test = [] if a.tune_only else sorted(p for p in m if m[p]["split"] == "test")
    key, E = eo.stream_embeddings(sess, tune + test)
    B = ee.background()
    hours = {p: len(E[p]) * eo.HOP_S / 3600 for p in E}
    say(f"# Enrollment as a device lives it: clips through the calibrator in their place ({os.path.basename(ee.MODEL)} {key})")
    say(f"streams: tune {len(tune)} ({sum(hours[p] for p in tune):.2f} h), test {len(test)} ({sum(hours[p] for p in test):.2f} h)")
    emb, D = eo.clip_embeddings(sess)
    prng = np.random.default_rng(1818)     # enroll_online_eval's placements: tune first, then test

    def sequences(pkgs, draws, once=False):
        prep = eo.prepare(sess, E, D, emb, B, pkgs, draws, prng)
        seqs = {}
        for (cat, d), (_, sims, pl) in prep.items():
            for ps, gains in PASSES.items():
                seqs[(cat, d, ps)] = lived(E, sims, pl, pkgs, gains)
            if once:
                # Each recording once (its first placement): ~4 occurrences of the class an hour
                # across the test streams, a milder household than 6 times each.
                seen = set()
                first = [e for e in pl if e[2] == "alone" and id(e[4]) not in seen and not seen.add(id(e[4]))]
                seqs[(cat, d, "once")] = lived(E, sims, first, pkgs, ("alone",))
        return prep, seqs

    def summary(per):
        met = sum(k / n >= ee.TARGET_RECALL and fa / h <= ee.BUDGET for k, n, fa, h in per.values())
        within = sum(fa / h <= ee.BUDGET for k, n, fa, h in per.values())
        # Mean recall to 2 decimals: ~30-90 placements per class, a finer difference is noise (the
        # unrounded rule took cap T0+0.10 over T0+0.15 by 0.0007 of recall, at 0.14 false alarms/h more).
        return (met, within, round(float(np.mean([k / n for k, n, _, _ in per.values()])), 2),
                float(np.mean([fa / h for _, _, fa, h in per.values()])))

    def line(per):
        return " ".join(f"{c}:{k / n:.2f}@{fa / h:.2f}" for c, (k, n, fa, h) in per.items())

    tune_draws = list(ee.TUNE_DRAWS)
    prep, seqs = sequences(tune, tune_draws)
    cd = [(c, d) for c in ee.CLASSES for d in tune_draws]
    say(f"\n## Choice (tune draws 0-4, tune streams), recall of the clip alone as lived @ false alarms/h (mixed-in recall beside)")
    grid = []
    # What vigild shipped before this script (enroll_online_eval.py's own choice, no guard).
    shipped = (eo.SHIPPED["floor"], (64, 0.2), 0.1, 1.0, 0, "blocked", None, 1)
    settings = [(floor, (0, 0.0), 0.0, 1.0, 0, "blocked", None) for floor in FLOORS] + [shipped[:-1]]
    settings += [(floor, kind, margin, ("+", c), guard, learn, c if strong else None) for floor in FLOORS for kind in KINDS
                 for margin in MARGINS for c in CAP_ABOVE for guard in GUARDS for learn in LEARN for strong in STRONG]
    for setting in settings:
        res = evaluate(seqs, prep, cd, hours, *setting, eo.FOR_FRAMES)
        for ff in eo.FOR_FRAMES:
            met, within, rec, fa = summary(res["alone"][ff])
            mrec = summary(res["mixed"][ff])[2]
            grid.append((met, within, rec, -fa) + setting + (ff,))
            say(f"  {name_of(setting + (ff,))}: {met} met, {within} within; recall {rec:.2f} (mixed {mrec:.2f}) at {fa:.2f}/h; "
                f"{line(res['alone'][ff])}")
    ship_row = next(g for g in grid if g[4:] == shipped)
    # Guarded settings only; and capped below 1 for every enrolled threshold the floor allows (up
    # to 0.8; T0 + 0.2 is no cap there): whatever a device learnt, a window that close to the
    # enrolled clips still raises, so no device goes deaf to the sound it was taught (the first
    # choice, cap 1, failed EnrollmentIntegrationTests: after a restart the kettle itself no longer
    # raised on a device whose everyday hum carries a quieter kettle).
    def capped(cap, floor):
        return isinstance(cap, tuple) and floor[3] + cap[1] < 1 - 1e-9
    best = max((g for g in grid if g[8] > 0 and (capped(g[7], g[4]) or not a.capped)), key=lambda g: g[:4])
    say(f"shipped before: {name_of(shipped)}: {ship_row[0]} met, {ship_row[1]} within, recall {ship_row[2]:.2f} at {-ship_row[3]:.2f}/h")
    g_row = next(g for g in grid if g[4:] == GUARDED)
    say(f"first guarded choice: {name_of(GUARDED)}: {g_row[0]} met, {g_row[1]} within, recall {g_row[2]:.2f} at {-g_row[3]:.2f}/h")
    say(f"chosen: {name_of(best[4:])}: {best[0]} met, {best[1]} within, recall {best[2]:.2f} at {-best[3]:.2f}/h (most classes at "
        f"recall >= {ee.TARGET_RECALL} with <= {ee.BUDGET}/h, then most within {ee.BUDGET}/h, then mean recall, then fewest false alarms)")
    if a.tune_only:
        say.write(a.out)
        return

    test_draws = [d for d in range(ee.DRAWS) if d not in ee.TUNE_DRAWS]
    prep, seqs = sequences(test, test_draws, once=True)
    cd = [(c, d) for c in ee.CLASSES for d in test_draws]
    h_test = sum(hours[p] for p in test)
    for name, setting in [("shipped before", shipped), ("first guarded choice", GUARDED), ("chosen on tune", tuple(best[4:]))]:
        f = setting[-1]
        res = evaluate(seqs, prep, cd, hours, *setting[:-1], [f])
        say(f"\n## Test (draws 5-9, test streams {h_test:.2f} h x 5 draws), {name}: {name_of(setting)}")
        met = once_met = 0
        for cat, (k, n, fa, h) in res["alone"][f].items():
            lo, hi = wilson(k, n)
            mk, mn = res["mixed"][f][cat][:2]
            ok_, on_, ofa = res["once"][f][cat][:3]
            good = k / n >= ee.TARGET_RECALL and fa / h <= ee.BUDGET
            met += good
            once_met += ok_ / on_ >= ee.TARGET_RECALL and ofa / h <= ee.BUDGET
            say(f"{cat:16s} recall alone, as lived {k:3d}/{n:3d} = {k / n:.2f} (Wilson {lo:.2f}-{hi:.2f}); each recording once "
                f"{ok_}/{on_} = {ok_ / on_:.2f} at {ofa / h:.2f}/h; mixed in {mk}/{mn} = {mk / mn:.2f}; "
                f"false alarms {fa}/{h:.1f} h = {fa / h:.2f}/h (Poisson 95 % {ee.poisson_lower(fa, h):.2f}-{ee.poisson_interval_upper(fa, h):.2f})"
                f"{'  target met' if good else ''}")
        say(f"classes with recall >= 0.8 at <= 1 false alarm/h: {met} of {len(ee.CLASSES)} (each recording once: {once_met})")
    say.write(a.out)


if __name__ == "__main__":
    main()
