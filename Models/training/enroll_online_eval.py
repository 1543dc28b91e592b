#!/usr/bin/env python3
"""Issue 18: per-device ONLINE calibration of enrolled sounds, against the static calibration
vigilctl did first (enroll_eval.py), both measured the same way: online, on each non-event
stream as one device, from its first window (false alarms count from t = 0: no free warm-up),
with recall measured on the held-out clips of the class alone (issue 18.5: "recall on the rest
of that class") and MIXED into that device's stream.

  python3 Models/training/enroll_online_eval.py [--model Models/sound.onnx] [--background PATH]
      [--objective alone|mixed] [--no-memory] [--no-adaptive-floor] [--no-tune2] [--tune-only]
      [--background-packages P,P,...]
  (--tune-only: the choice on tune and nothing else, no test stream read: for comparing models on tune)
  (output: Models/training/results/enroll_online_eval.txt; ~10 min on 1 core with the stream embeddings cached; embeddings of the
  streams cached in /tmp/vigil-enroll-online/<model hash>)
  The shipped setting is this command's choice with no options (SHIPPED). Earlier shipped choices:
  --no-memory --objective mixed (results/enroll_online_eval_level_mixed.txt); --no-adaptive-floor
  --no-tune2 (results/enroll_online_eval_memory_fixed_floor.txt).

The calibrator (Sources/VigilCore/Enrollment/DeviceCalibration.swift is the same arithmetic):
per device and enrollment, a picture of what of the device's own everyday audio comes close to
the enrollment's prototypes. Only windows that did NOT reach the threshold in force update it
(the enrolled sound itself must not teach the device to ignore it). T0 is the enrollment's own
threshold (vigilctl's: background set best match + 0.03, at least the floor), `cap` the highest
the device may push the bar (so a device cannot go deaf). Three kinds; the first two keep one
number, `level`, and the threshold in force is effective = max(T0, min(cap, level + margin)):
  max       decaying max: level = max(level - decay x dt, s)
  quantile  stochastic (Robbins-Monro) q-quantile: level += step x q if s > level else -step x (1 - q)
  (the first window of a device sets level = s)
  memory    the last M near misses (embeddings of windows with s >= T0 - admit that did not
            reach the bar in force); a window's bar is max(T0, min(cap, closest near miss + margin)):
            see memory_bars.

Measurement: per class, 10 draws of 5 enrolled clips (enroll_eval.draws, same seed: the same
draws); draws 0-4, the `tune` non-event packages the embedding's projection did not read and the
`tune2` game sound libraries choose kind, parameters, margin, cap, floor and for_frames (on the
recall --objective names; the floor is fixed or follows the enrolled clips, ADAPTIVE_FLOORS);
draws 5-9 and the `test` packages are reported, with the static calibration next to it.
  false alarms: the label's alerts (vigild's rule: for_frames, clear below the bar, cooldown 30 s)
    on every stream x every draw, threshold in force window by window.
  recall: each held-out clip of the draw is added (at its recorded level, and 10 dB quieter) into
    PLACEMENTS random (stream, time) of the split; the windows it touches are run through the
    model, and the clip counts as raised when for_frames consecutive windows reach the threshold
    in force at that moment (the trajectory of the stream without the clip: one clip among hours
    barely moves it). Recall intervals are Wilson 95 % over placements; placements of one clip
    are not independent (few clips), so they are too narrow. The clip alone (unmixed, as
    enroll_eval.py scores it) is judged against the same moment's threshold; the two recalls
    are reported side by side, the choice reads the one --objective names.
"""
import argparse
import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import nonevent_data as nd  # noqa: E402
import sound_data as sd  # noqa: E402
from add_embedding import PROJECTION_PACKAGES  # noqa: E402
from rules_replay import wilson  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "enroll_online_eval.txt")
N, HOP, SR = ee.N, ee.HOP, ee.SR
HOP_S = HOP / SR
COOLDOWN = 30.0
PLACEMENTS = 6           # random (stream, time) per held-out clip and gain
GAINS_DB = [0, -10]      # the clip at its recorded level, and 10 dB quieter
STATIC_MARGIN = 0.03     # vigilctl's calibration today (Enroller.defaultMargin)
FLOORS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75]
MARGINS = [0.02, 0.05, 0.1, 0.15]
CAPS = [0.85, 0.9, 1.0]
FOR_FRAMES = [1, 2]
KINDS = [("max", d) for d in (0.005, 0.02, 0.1)] + [("quantile", qs) for qs in ((0.999, 0.01), (0.9999, 0.01))]
# memory: per device, the last M near misses (windows with s >= T0 - admit that did not reach the
# bar in force), in place of the one number; param (M, admit)
# Floors that follow the enrolled clips (stop 28): the median over the 5 clips of each clip's best
# match to the other 4 clips' prototypes (vigilctl's `matchByOthers`), less `delta`, within [lo, hi].
# Clips that resemble each other closely (toilet flushes, 0.8-0.9) get a higher floor than clips
# that do not (clock alarms, 0.54-0.64), where one global floor fits neither. Tried with the
# static and the memory kinds, cap 1.0.
ADAPTIVE_FLOORS = [("clips", delta, lo, hi) for delta in (0.05, 0.1, 0.15) for lo in (0.55, 0.6) for hi in (0.8, 0.9)]
MEMORY_KINDS = [("memory", (m, ad)) for m in (16, 64, 256) for ad in (0.1, 0.2)]
# What vigild ships, this script's choice (results/enroll_online_eval.txt): DeviceCalibration.chosen
# and Enroller.positiveFloor. enroll_vigild_check.py and enroll_fa_sources.py replay it.
# Since 2026-12-03 evening the choice of enroll_lived_eval.py (the clips go through the calibrator
# in their place; guarded, capped); this script's own choice, which cannot see a clip teach the device, was
# {"near_misses": 64, "admit": 0.2, "margin": 0.1, "cap": 1.0, floor as below, no guard}.
SHIPPED = {"near_misses": 64, "admit": 0.2, "margin": 0.1, "cap": 1.0, "cap_above": 0.15, "floor": ("clips", 0.1, 0.6, 0.8),
           "guard": 8, "learn": "under", "for_frames": 2}


def shipped_bars(E, sim, t0, S=SHIPPED):
    """The bar in force at each window of one device's stream under setting S (vigild's DeviceCalibration.chosen)."""
    cap = min(S["cap"], t0 + S["cap_above"]) if "cap_above" in S else S["cap"]
    return memory_bars(E, sim, t0, S["near_misses"], S["admit"], S["margin"], cap, guard=S.get("guard", 0),
                       learn=S.get("learn", "blocked"))[0]


def calibrate(sim, t0, kind, param, margin, cap):
    """The threshold in force at each window of one device's similarity series (before the
    window updates the state), as DeviceCalibration.swift computes it (checked equal, both
    kinds, on a fixed series: Tests/VigilCoreTests/EnrollmentCalibratorTests.swift). vigild's
    for_frames of its own (DeviceCalibration.Settings.forFrames) is `alerts`/`raised`'s ff."""
    out = np.empty(len(sim))
    level = None
    if kind == "max":
        dec = param * HOP_S / 3600          # decay per window (param: similarity per hour)
    else:
        q, step = param
        up, down = step * q, step * (1 - q)
    for i, s in enumerate(sim.tolist()):
        thr = t0 if level is None else max(t0, min(cap, level + margin))
        out[i] = thr
        if kind == "max":
            if level is not None:
                level -= dec
            if s < thr and (level is None or s > level):
                level = s
        elif s < thr:
            if level is None:
                level = s
            elif s > level:
                level += up
            else:
                level -= down
    return out


def memory_bars(E, sim, t0, M, admit, margin, cap, at=(), guard=0, learn="blocked"):
    """The "memory" kind: the bar in force at each window of one device's stream (before the
    window updates the memory) and the memory just before each window index in `at`. The device
    remembers (ring of M) the embeddings of its near misses: windows whose similarity is at least
    t0 - admit and did not reach the bar in force. A window's bar is
        max(t0, min(cap, max_j cos(window, near miss j) + margin))
    so a recurring near miss (a TV jingle) lifts the bar only for sounds like itself, where the
    decaying max lifts it for every sound, the enrolled one included. Windows further than
    `admit` below t0 can neither raise nor be remembered and are skipped. `guard` > 0: the memory
    as vigild keeps it since 2026-12-03 (enroll_lived_eval.guarded_bars: no near miss within
    `guard` windows of one that reached the bar; `learn` "under": only windows under t0 are
    remembered); no snapshots then."""
    if guard:
        from enroll_lived_eval import guarded_bars
        return guarded_bars(np.arange(len(E)), E, sim, t0, M, admit, margin, cap, guard, learn), {}
    bars = np.full(len(E), t0)
    mem = np.zeros((M, E.shape[1]), np.float32)
    n = k = 0
    snaps, at, ai = {}, sorted(set(at)), 0
    for i in np.flatnonzero(sim >= t0 - admit).tolist():
        while ai < len(at) and at[ai] <= i:
            snaps[at[ai]] = mem[:min(n, M)].copy()
            ai += 1
        bar = max(t0, min(cap, float((mem[:min(n, M)] @ E[i]).max()) + margin)) if n else t0
        bars[i] = bar
        if sim[i] < bar:
            mem[k] = E[i]
            k = (k + 1) % M
            n += 1
    for i in at[ai:]:
        snaps[i] = mem[:min(n, M)].copy()
    return bars, snaps


def memory_clip_bars(X, snap, t0, margin, cap):
    """The bar each window X of a placed clip meets on a device whose memory is `snap`."""
    if len(snap) == 0:
        return np.full(len(X), t0)
    return np.maximum(t0, np.minimum(cap, (X @ snap.T).max(1) + margin))


def raise_windows(sim, thr, ff):
    """The windows where vigild's rule raises on the label (score >= bar <=> similarity >=
    threshold in force)."""
    out, last, active, above = [], -np.inf, False, 0
    hit = sim >= thr
    for i in np.flatnonzero(hit | np.roll(hit, 1)):     # a window below only matters right after one above
        if not hit[i]:
            active, above = False, 0
            continue
        if active:
            continue
        above = above + 1 if i > 0 and hit[i - 1] else 1
        if above < ff or i * HOP_S - last < COOLDOWN:
            continue
        active, last, above = True, i * HOP_S, 0
        out.append(int(i))
    return out


def alerts(sim, thr, ff):
    """How many times vigild's rule raises on the label."""
    return len(raise_windows(sim, thr, ff))


def raised(sim, thr, ff):
    ok = sim >= thr
    if ff == 1:
        return bool(ok.any())
    return bool(np.any(ok[1:] & ok[:-1]))


def stream_embeddings(sess, pkgs):
    """(model hash, {package: unit embeddings of its stream's windows}), cached per model hash."""
    key = hashlib.sha1(open(ee.MODEL, "rb").read()).hexdigest()[:12]
    cache = os.path.join("/tmp/vigil-enroll-online", key)
    os.makedirs(cache, exist_ok=True)
    E = {}
    for p in pkgs:
        f = os.path.join(cache, p + ".npy")
        if not os.path.exists(f):
            _, e, _ = ee.run(sess, nd.stream(p))
            np.save(f, e.astype(np.float16))
        E[p] = np.load(f).astype(np.float32)
    return key, E


def enrolled_prototypes(emb, enrolled, copies=None):
    """The prototypes of enrolled clips: one per clip, then one per altered copy of it when
    `copies` ({clip: [(window embeddings, loud windows)]}: vigilctl's ClipAlteration.positive,
    exp_enroll_augment.py) are given."""
    return ee.prototypes([c for q in enrolled for c in [emb[q]] + (copies or {}).get(q, [])], "clip")


def clips_match(emb, enrolled, copies=None):
    """Median over the enrolled clips of each one's best loud-window match to the others' prototypes
    (Enroller.Clip.matchByOthers; with `copies`, the others' copies too)."""
    out = []
    for i, q in enumerate(enrolled):
        others = enrolled_prototypes(emb, [r for j, r in enumerate(enrolled) if j != i], copies)
        e, loud = emb[q]
        out.append(float(((e[loud] if loud.any() else e) @ others.T).max()))
    return float(np.median(out))


def floor_of(floor, match):
    """A fixed floor, or ("clips", delta, lo, hi): the enrolled clips' median match less delta, within [lo, hi]."""
    if isinstance(floor, tuple):
        _, delta, lo, hi = floor
        return min(hi, max(lo, match - delta))
    return floor


def enrolled_threshold(B, emb, enrolled, floor, copies=None):
    """vigilctl's threshold for an enrollment of these clips (Enroller.enroll): the background's best
    match to their prototypes + STATIC_MARGIN, at least the floor (floor_of), at most 0.995."""
    P = enrolled_prototypes(emb, enrolled, copies)
    return t0_of(float((B @ P.T).max()), clips_match(emb, enrolled, copies), floor)


def t0_of(bg, match, floor):
    """The enrolled threshold from the background's best match and the clips' median match to each other."""
    return min(0.995, max(bg + STATIC_MARGIN, floor_of(floor, match)))


def floor_name(floor):
    return f"clips-{floor[1]:.2f} in [{floor[2]:.2f}, {floor[3]:.2f}]" if isinstance(floor, tuple) else f"{floor:.2f}"


def drawn_background(sess, pkgs, streams):
    """A background set drawn from `pkgs` like add_embedding.background_windows (BACKGROUND_ROWS windows
    at random, seed 18, stored as int8), from the cached stream embeddings (float16: close, not equal)."""
    from add_embedding import BACKGROUND_ROWS
    assert not set(pkgs) & streams, f"background packages {sorted(set(pkgs) & streams)} are also scored streams"
    _, EB = stream_embeddings(sess, pkgs)
    ws = np.concatenate([EB[p] for p in pkgs])
    pick = np.sort(np.random.default_rng(18).choice(len(ws), BACKGROUND_ROWS, replace=False))
    B = np.clip(np.round(ws[pick] * 127), -127, 127) / 127
    return B / (np.linalg.norm(B, axis=1, keepdims=True) + 1e-9)


def clip_embeddings(sess):
    """({clip path: (window embeddings, loud windows)} of the held-out classes' clips,
    {class: enroll_eval's draws})."""
    clips = sd.esc_clips()
    emb = {}
    for cat in ee.CLASSES:
        for path, c, _, _ in clips:
            if c == cat:
                _, e, W = ee.run(sess, sd.read_wav(path))
                emb[path] = (e, ee.loud(W))
    rng = np.random.default_rng(18)
    return emb, {cat: ee.draws(sorted([c for c in clips if c[1] == cat]), rng) for cat in ee.CLASSES}


def placements(sess, E, D, pkgs, draw_ids, prng):
    """Each held-out clip of each draw added into PLACEMENTS random (stream, time) of `pkgs` at
    each gain: {(cat, d): [(stream, first window i0, gain, embeddings of the windows it touches, clip)]}."""
    todo = []
    # a random moment of the split's audio: streams weighted by length (too short ones left out)
    pkgs = [p for p in pkgs if len(E[p]) > 60]
    weight = np.array([len(E[p]) for p in pkgs], float)
    weight /= weight.sum()
    for cat in ee.CLASSES:
        for d in draw_ids:
            for path in D[cat][d][1]:
                for g in GAINS_DB:
                    for _ in range(PLACEMENTS):
                        p = pkgs[prng.choice(len(pkgs), p=weight)]
                        todo.append((cat, d, path, p, int(prng.integers(0, len(E[p]) - 30)), g))
    out, audio = {}, {}
    for cat, d, path, p, i0, g in sorted(todo, key=lambda t: t[3]):
        if p not in audio:
            audio.clear()
            audio[p] = nd.stream(p)
        x = sd.read_wav(path) * 10 ** (g / 20)
        s = audio[p]
        off = i0 * HOP + HOP          # the clip starts half a window into window i0
        n_win = (off + len(x)) // HOP - i0 + 1
        seg = s[i0 * HOP:(i0 + n_win) * HOP + N].copy()
        seg[off - i0 * HOP:off - i0 * HOP + len(x)] += x[:max(0, len(seg) - (off - i0 * HOP))]
        W = sd.windows(seg)[:n_win]
        _, e = sess.run(None, {"audio": np.ascontiguousarray(W, dtype=np.float32)})
        out.setdefault((cat, d), []).append((p, i0, g, e, path))
    return out


def held_out_split(split):
    """What a report on one split's streams needs: (session, the split's packages, model hash,
    their stream embeddings, clip embeddings, draws, background set, the test draws 5-9)."""
    sess = ee.session()
    m = ee.manifest()
    pkgs = sorted(p for p in m if m[p]["split"] == split)
    key, E = stream_embeddings(sess, pkgs)
    emb, D = clip_embeddings(sess)
    return sess, pkgs, key, E, emb, D, ee.background(), [d for d in range(ee.DRAWS) if d not in ee.TUNE_DRAWS]


def prepare(sess, E, D, emb, B, pkgs, draw_ids, prng, copies=None):
    """Per (class, draw): ((background's best match, clips' median match), {stream: similarity
    series}, placements [(stream, i0, gain or "alone", similarities, unit embeddings)]);
    `copies`: see enrolled_prototypes."""
    P = placements(sess, E, D, pkgs, draw_ids, prng)
    out = {}
    for cat in ee.CLASSES:
        for d in draw_ids:
            protos = enrolled_prototypes(emb, D[cat][d][0], copies)
            bg = (float((B @ protos.T).max()), clips_match(emb, D[cat][d][0], copies))
            sims = {p: (E[p] @ protos.T).max(1) for p in pkgs}
            unit = [e / np.linalg.norm(e, axis=1, keepdims=True) for _, _, _, e, _ in P[(cat, d)]]
            pl = [(p, i0, g, (u @ protos.T).max(1), u) for (p, i0, g, _, _), u in zip(P[(cat, d)], unit)]
            # The same clip alone (as enroll_eval.py scores it), judged at the same moment's
            # threshold: what the threshold costs, apart from what the mixing costs.
            pl += [(p, i0, "alone", (emb[path][0] @ protos.T).max(1), emb[path][0]) for p, i0, g, e, path in P[(cat, d)] if g == GAINS_DB[0]]
            out[(cat, d)] = (bg, sims, pl)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=ee.MODEL)
    ap.add_argument("--background", default=None, help="int8 background embeddings (default: sound-background.i8 beside the model)")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--objective", choices=["mixed", "alone"], default="alone",
                    help="which recall the choice on tune (and the 'target met' mark) reads: the clip alone, as issue 18.5 "
                         "words it (recall on the rest of the class; default), or clips mixed into the streams")
    ap.add_argument("--no-memory", dest="memory", action="store_false",
                    help="leave the 'memory' kind (near misses remembered per device) out of the grid (the grid before it was added)")
    ap.add_argument("--tune-only", action="store_true", help="stop after the choice on tune (no test figures): for comparing models on tune")
    ap.add_argument("--no-tune2", dest="tune2", action="store_false",
                    help="choose on the `tune` streams alone, without the `tune2` game sound libraries (the choice before stop 28)")
    ap.add_argument("--no-adaptive-floor", dest="adaptive", action="store_false",
                    help="leave the floors that follow the enrolled clips (ADAPTIVE_FLOORS) out of the grid (the grid before stop 28)")
    ap.add_argument("--background-packages", default=None,
                    help="comma-separated non-event packages to draw the background set from, in memory, as add_embedding.py "
                         "draws it (instead of the file): for comparing background sets on tune")
    a = ap.parse_args()
    ee.MODEL = os.path.abspath(a.model)
    ee.BACKGROUND = a.background or os.path.join(os.path.dirname(ee.MODEL), "sound-background.i8")

    say = ee.Report()

    sess = ee.session()
    m = ee.manifest()
    tune = sorted(p for p in m if (m[p]["split"] == "tune" and p not in PROJECTION_PACKAGES) or (a.tune2 and m[p]["split"] == "tune2"))
    test = [] if a.tune_only else sorted(p for p in m if m[p]["split"] == "test")
    key, E = stream_embeddings(sess, tune + test)
    B = ee.background() if not a.background_packages else drawn_background(sess, a.background_packages.split(","), set(tune + test))
    hours = {p: len(E[p]) * HOP_S / 3600 for p in E}
    say(f"# Enrollment: per-device online calibration against the static one ({os.path.basename(ee.MODEL)} {key}, embedding {B.shape[1]})")
    say(f"streams (devices): tune {len(tune)} ({sum(hours[p] for p in tune):.2f} h), test {len(test)} ({sum(hours[p] for p in test):.2f} h); "
        f"hours counted from each stream's first window")

    emb, D = clip_embeddings(sess)
    # The same placements for every calibration compared (tune first, then test: one generator).
    prng = np.random.default_rng(1818)

    by_gain = {}      # (ff, cat, gain) -> [k, n] of the last evaluate() call
    in_force = []     # time-averaged threshold in force per (cat, draw, stream) of the last call

    def evaluate(prep, pkgs, draw_ids, floor, calib, margin, cap, ffs):
        """{ff: {cat: (k, n, fa, hours)}} ; calib None = static."""
        res = {ff: {} for ff in ffs}
        by_gain.clear()
        in_force.clear()
        for cat in ee.CLASSES:
            acc = {ff: [0, 0, 0, 0.0] for ff in ffs}
            for d in draw_ids:
                (bg, match), sims, pl = prep[(cat, d)]
                t0 = t0_of(bg, match, floor)
                snaps = {}
                if calib is not None and calib[0] == "memory":
                    thr = {}
                    for p in pkgs:
                        thr[p], snaps[p] = memory_bars(E[p], sims[p], t0, calib[1][0], calib[1][1], margin, cap,
                                                       [i0 for q, i0, _, _, _ in pl if q == p])
                else:
                    thr = {p: (np.full(len(sims[p]), t0) if calib is None else calibrate(sims[p], t0, calib[0], calib[1], margin, cap))
                           for p in pkgs}
                in_force.extend(float(thr[p].mean()) for p in pkgs)
                for ff in ffs:
                    r = acc[ff]
                    for p in pkgs:
                        r[2] += alerts(sims[p], thr[p], ff)
                        r[3] += hours[p]
                    for p, i0, g, s, X in pl:
                        bar = (memory_clip_bars(X, snaps[p][i0], t0, margin, cap) if snaps else thr[p][i0:i0 + len(s)])
                        hit = raised(s, bar, ff)
                        if (g == "alone") == (a.objective == "alone"):
                            r[0] += hit
                            r[1] += 1
                        kn = by_gain.setdefault((ff, cat, g), [0, 0])
                        kn[0] += hit
                        kn[1] += 1
            for ff in ffs:
                res[ff][cat] = tuple(acc[ff])
        return res

    def summary(per):
        """(classes at the target, classes within the false-alarm budget, mean recall, mean false alarms/h):
        the choice takes the most classes at the target, then the most within the budget, then recall."""
        met = sum(k / n >= ee.TARGET_RECALL and fa / h <= ee.BUDGET for k, n, fa, h in per.values())
        within = sum(fa / h <= ee.BUDGET for k, n, fa, h in per.values())
        return met, within, np.mean([k / n for k, n, _, _ in per.values()]), np.mean([fa / h for _, _, fa, h in per.values()])

    def line(per):
        return " ".join(f"{c}:{k / n:.2f}@{fa / h:.2f}" for c, (k, n, fa, h) in per.items())

    # ---------------------------------------------------------------- choice on tune
    tune_draws = list(ee.TUNE_DRAWS)
    prep = prepare(sess, E, D, emb, B, tune, tune_draws, prng)
    say(f"\n## Choice (tune draws 0-4, tune streams): recall of {'mixed' if a.objective == 'mixed' else 'unmixed (alone)'} held-out clips @ false alarms/h; "
        f"{PLACEMENTS} placements x {len(GAINS_DB)} gains ({GAINS_DB} dB) per clip")
    grid, static = [], []
    for floor in FLOORS + (ADAPTIVE_FLOORS if a.adaptive else []):
        res = evaluate(prep, tune, tune_draws, floor, None, 0, 1, FOR_FRAMES)
        for ff in FOR_FRAMES:
            met, within, rec, fa = summary(res[ff])
            static.append((met, within, rec, -fa, floor, ff))
            say(f"  static floor {floor_name(floor)} ff {ff}: {met} classes met, {within} within {ee.BUDGET}/h; mean recall {rec:.2f}, mean {fa:.2f}/h; {line(res[ff])}")
    smet, swithin, srec, sfa, sfloor, sff = max(static, key=lambda g: g[:4])
    static_grid = [(kind, floor, margin, cap) for kind in KINDS + (MEMORY_KINDS if a.memory else [])
                   for floor in FLOORS for margin in MARGINS for cap in CAPS]
    if a.adaptive and a.memory:
        static_grid += [(kind, floor, margin, 1.0) for kind in MEMORY_KINDS for floor in ADAPTIVE_FLOORS for margin in MARGINS]
    say(f"best static on tune (same order): floor {sfloor}, for_frames {sff}")
    for kind, floor, margin, cap in static_grid:
        res = evaluate(prep, tune, tune_draws, floor, kind, margin, cap, FOR_FRAMES)
        for ff in FOR_FRAMES:
            met, within, rec, fa = summary(res[ff])
            grid.append((met, within, rec, -fa, kind, floor, margin, cap, ff))
            say(f"  {kind[0]:8s} {str(kind[1]):14s} floor {floor_name(floor)} margin {margin:.2f} cap {cap:.2f} ff {ff}: "
                f"{met} classes met, {within} within {ee.BUDGET}/h; mean recall {rec:.2f}, mean {fa:.2f}/h; {line(res[ff])}")
    met, within, rec, nfa, kind, floor, margin, cap, ff = max(grid, key=lambda g: g[:4])
    say(f"chosen: {kind[0]} {kind[1]}, floor {floor_name(floor)}, margin {margin}, cap {cap}, for_frames {ff} (most classes at recall >= "
        f"{ee.TARGET_RECALL} with <= {ee.BUDGET}/h on tune, then most classes within {ee.BUDGET}/h, then mean recall, then fewest false alarms)")

    if a.tune_only:
        best = max(grid, key=lambda g: g[:4])
        say(f"tune summary of the chosen setting: {best[0]} classes met, {best[1]} within {ee.BUDGET}/h, mean recall {best[2]:.2f}, mean {-best[3]:.2f}/h")
        say.write(a.out)
        return

    # ---------------------------------------------------------------- report on test
    test_draws = [d for d in range(ee.DRAWS) if d not in ee.TUNE_DRAWS]
    prep = prepare(sess, E, D, emb, B, test, test_draws, prng)
    h_test = sum(hours[p] for p in test)
    for name, fl, calib, mg, cp, f in [("static (today: floor 0.75, for_frames 1)", 0.75, None, 0, 1, 1),
                                       (f"static, best on tune: floor {floor_name(sfloor)}, for_frames {sff}", sfloor, None, 0, 1, sff),
                                       (f"online {kind[0]} {kind[1]} floor {floor_name(floor)} margin {margin} cap {cap} for_frames {ff}",
                                        floor, kind, margin, cap, ff)]:
        res = evaluate(prep, test, test_draws, fl, calib, mg, cp, [f])[f]
        say(f"\n## Test (draws 5-9, test streams {h_test:.2f} h x 5 draws): {name}")
        met = 0
        for cat, (k, n, fa, h) in res.items():
            lo, hi = wilson(k, n)
            good = k / n >= ee.TARGET_RECALL and fa / h <= ee.BUDGET
            met += good
            gains = " ".join(f"{g:+d} dB {by_gain[(f, cat, g)][0]}/{by_gain[(f, cat, g)][1]}" for g in GAINS_DB)
            gains += f"; the clip alone {by_gain[(f, cat, 'alone')][0]}/{by_gain[(f, cat, 'alone')][1]}"
            say(f"{cat:16s} recall{' (alone)' if a.objective == 'alone' else ''} {k:3d}/{n:3d} = {k / n:.2f} (Wilson {lo:.2f}-{hi:.2f}, placements of few clips: too narrow; {gains}), "
                f"false alarms {fa}/{h:.1f} h = {fa / h:.2f}/h (Poisson 95 % {ee.poisson_lower(fa, h):.2f}-{ee.poisson_interval_upper(fa, h):.2f})"
                f"{'  target met' if good else ''}")
        say(f"classes with recall >= 0.8 at <= 1 false alarm/h: {met} of {len(ee.CLASSES)}; threshold in force, time-averaged per "
            f"(class, draw, stream): median {np.median(in_force):.3f}, 90th percentile {np.percentile(in_force, 90):.3f}")
    say("chance baseline: a detector raising on every window has recall 1.00 at one false alarm per cooldown (120/h)")
    say.write(a.out)


if __name__ == "__main__":
    main()
