#!/usr/bin/env python3
"""Build Models/motion.onnx (v2): the current frame against the device's background.

The graph is in motion_graph.py, the daemon's per-device state (background, activity,
weight) in motion_stream.py, the data in motion_sets.py. Six thresholds are chosen on
the tuning split only (vtest frames < 400, TUNE_IMAGES, tree.avi frames < 34):
  T1  window change (1 - SSIM structure), TU window activity and TM window brightness change
      (v2.1: an evenly coloured object changes a window's mean, not its structure): grid, best tuning recall
      (people streams, and every HOG-found person alone on the empty street), ties to the
      widest margin over the nuisances. activity_s = 60 s: an earlier grid over 20 / 60 s
      lost tuning recall at 20 s (busy pavements become "active")
  TA  minimum changed area (vigil.min_area): 1.5 x the largest area any tuning nuisance
      frame reached
  TL  whole-frame change (lighting): 3 x the largest watched fraction of a tuning frame
      with people (v2.0: half-way between it and 1, which let a day/night switch that
      changed the brightness of half the windows through as motion once TM was added)
  TG  light-level change (lighting): 3 x the largest |log(mean frame / mean background)|
      of a tuning frame with people (people entering move the mean a little)
then v2.2's AL, TT, TGL (tune_local: the local-change exception to the light rule) and v2.3's
RC (tune_lamp: the outline near which a brightness change counts), each on the tuning split
with the thresholds before it as they are.
Run: python3 Models/training/train_motion.py   (tune ~5 min on one core, tune_local ~12 and tune_lamp ~8 min on 2 cores)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MODELS_DIR, save_model, session, write_results  # noqa: E402
import motion_graph as mg  # noqa: E402
import motion_sets as ms  # noqa: E402
import motion_stream as mst  # noqa: E402

SEED = 1234
VERSION = "2.14.0"
H, W = mg.H, mg.W
PROBE_TL = 0.5       # provisional lighting bars while probing (re-baseline the background)
PROBE_TG = 0.2


def probe_stream(sess, frames, fps, activity_s=60.0, bars=(PROBE_TL, PROBE_TG), state=None):
    """(area, whole, gain, top, sarea) per frame through the daemon's state (or `state`, an experiment's
    variant of it), re-baselining at the lighting bars (TL, TG): the provisional ones, or
    the model's once they are known."""
    st = state if state is not None else mst.CameraState(activity_s=activity_s)
    out = np.full((len(frames), 5), np.nan, np.float32)
    for i, f in enumerate(frames):
        x = st.inputs(f, i / fps)
        if x is None:
            continue
        out[i] = sess.run(None, {"frames": x})[0][0]
        st.observe("lighting" if lit(out[i], bars) else "still")
    return out


def lit(r, bars=(PROBE_TL, PROBE_TG)):
    return r[1] > bars[0] or r[2] > bars[1]


def load(split):
    cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build", f"motion_{split}_sets_v2.pkl")   # v2: the test tree without its hand
    if os.path.exists(cache):
        import pickle
        with open(cache, "rb") as f:
            return pickle.load(f)
    rng = np.random.default_rng(SEED if split == "tune" else SEED + 1)
    full = ms.vtest_frames()
    sets = ms.positive_streams(split, full, rng), ms.nuisance_streams(split, full, rng)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    import pickle
    with open(cache, "wb") as f:
        pickle.dump(sets, f)
    return sets


def grid(flag, default):
    """A grid from the command line (`--t1 0.3,0.4`), else the default."""
    if flag in sys.argv:
        return [float(v) for v in sys.argv[sys.argv.index(flag) + 1].split(",")]
    return default


T1_GRID = grid("--t1", [0.25, 0.3, 0.4, 0.5])
TU_GRID = grid("--tu", [0.01, 0.02, 0.03, 0.05, 0.1])
TM_GRID = grid("--tm", [10.0])


def tune():
    """Grid over T1 and TU; TA, TL, TG follow from the tuning streams (see the docstring).
    Picks the best tuning recall (the lower of: frames of the people streams, and each
    HOG-found person alone on the empty street), ties broken by the widest margin between
    the people's 1st-percentile area and the largest nuisance area."""
    pos, neg = load("tune")
    singles, _ = ms.single_people("tune", ms.vtest_frames())
    best = None
    for t1, tu, tm, act_s in [(t1, tu, tm, a) for t1 in T1_GRID for tu in TU_GRID for tm in TM_GRID for a in [60.0]]:
        if True:
            sess = session(mg.build({"T1": t1, "TU": tu, "TM": tm, "TA": 1.0, "TL": 1.0, "TG": 10.0}, VERSION, probe=True))
            pr = []
            for name, frames, fps, lab, start in pos:
                r = probe_stream(sess, frames, fps, act_s)
                keep = [i for i in range(start, len(frames)) if lab[i]]
                pr.append(r[keep])
            pr = np.concatenate(pr)
            # the lighting bars come from the people alone; the nuisances then run through
            # the state as the model will drive it (v2.1: v2.0 used the provisional bars here,
            # so a frame the model calls lighting could set the minimum area)
            tl = round(min((float(pr[:, 1].max()) + 1) / 2, 3 * float(pr[:, 1].max())), 3)
            tg = round(max(3 * float(pr[:, 2].max()), 0.05), 3)
            na, by_kind = [], {}
            for name, kind, frames, fps, start in neg:
                r = probe_stream(sess, frames, fps, act_s, (tl, tg))[start:]
                # frames judged lighting re-baseline: the model says lighting there
                na.append(np.where([lit(x, (tl, tg)) for x in r], 0, r[:, 0]))
                by_kind[kind] = max(by_kind.get(kind, 0.0), float(np.nanmax(na[-1])))
            na = np.concatenate(na)
            print("  largest nuisance area by kind:", {k: round(v, 4) for k, v in by_kind.items()}, flush=True)
            nmax = float(np.nanmax(na))
            ta = round(max(nmax * 1.5, 1e-3), 4)
            rec_streams = float(((pr[:, 0] > ta) & (pr[:, 1] < tl) & (pr[:, 2] < tg)).mean())
            one = np.array([sess.run(None, {"frames": x[None]})[0][0] for x in singles])
            rec_one = float(((one[:, 0] > ta) & (one[:, 1] < tl) & (one[:, 2] < tg)).mean())
            rec = min(rec_streams, rec_one)
            margin = float(np.percentile(pr[:, 0], 1)) / max(nmax, 1e-4)
            print(f"T1={t1} TU={tu} TM={tm} activity_s={act_s}: TA={ta} TL={tl} TG={tg} tuning recall {rec:.4f} (streams {rec_streams:.4f}, n={len(pr)}; one person at a time {rec_one:.4f}, n={len(one)}), "
                  f"max nuisance area {nmax:.4f}, people area p1 {np.percentile(pr[:, 0], 1):.4f}, margin {margin:.1f}", flush=True)
            # ties (recall, margin to 0.1) go to the lower TU: more protection for areas
            # that keep changing, at no cost on the tuning people
            key = (round(rec, 4), round(margin, 1))
            if best is None or key > best[0]:
                best = (key, {"T1": t1, "TU": tu, "TM": tm, "TA": ta, "TL": tl, "TG": tg, "activity_s": act_s})
    return best[1]


LOCAL_KEYS = ("AL", "TT", "TGL")     # v2.2's local-change exception (motion_graph step 8)
AL_GRID = [1.0, 2.0, 3.0]
TT_GRID = [0.6, 0.8]
TGL_GRID = [0.3, 0.5]


def _labels_of(args):
    """Every tuning stream through the state and a candidate model, as vigild runs it."""
    p, c, streams = args
    sess = session(mg.build(dict(p, **c), VERSION))
    out = []
    for frames, fps in streams:
        st = mst.CameraState(background_s=20.0, activity_s=p["activity_s"])
        out.append(np.nanargmax(np.nan_to_num(mst.run_stream(sess, frames, fps, st), nan=-1), axis=1))
    return out


def tune_local(p):
    """v2.2: the local-change exception to the light-level rule (AL, TT, TGL; motion_graph
    step 8), chosen on the tuning split with the other thresholds as they are. Each candidate
    runs every tuning stream through the state as vigild would (its own labels re-base the
    background). A candidate may say motion on no more tuning nuisance frames (light steps,
    ramps, day/night, noise, speckle, vegetation, and the empty frames around the objects
    below, and lamps switched on in part of the scene, motion_sets.lamp_streams, which the
    model without the exception already fires on now and then) than the model without the
    exception, and may not lower the people's recall;
    among those, the most frames of objects crossing under an auto-exposure
    (motion_sets.ae_object_streams) said motion wins; ties go to the larger AL and TT and
    the smaller TGL (the exception as narrow as the tuning data allows)."""
    from multiprocessing import Pool
    p = {k: v for k, v in p.items() if k not in LOCAL_KEYS}    # the model without the exception
    pos, neg = load("tune")
    full = ms.vtest_frames()
    objs = ms.ae_object_streams("tune", full, np.random.default_rng(SEED + 2))
    neg = neg + ms.lamp_streams("tune", full, np.random.default_rng(SEED + 5))   # lamps: v2.1 fires on some already; no more
    streams = [(s[1], s[2]) for s in pos] + [(s[2], s[3]) for s in neg] + [(s[1], s[2]) for s in objs]
    cands = [None] + [{"AL": a, "TT": t, "TGL": g} for a in AL_GRID for t in TT_GRID for g in TGL_GRID]
    with Pool(2) as pool:
        runs = pool.map(_labels_of, [(p, c or {}, streams) for c in cands])
    def score(labels):
        lp, ln, lo = labels[:len(pos)], labels[len(pos):len(pos) + len(neg)], labels[len(pos) + len(neg):]
        people = np.concatenate([l[s[4]:][[bool(x) for x in s[3][s[4]:]]] == 1 for l, s in zip(lp, pos)])
        nuis = sum(int((l[s[4]:] == 1).sum()) for l, s in zip(ln, neg))
        nuis += sum(int((l[s[4]:][[x is False for x in s[3][s[4]:]]] == 1).sum()) for l, s in zip(lo, objs))
        obj = np.concatenate([l[s[4]:][[x is True for x in s[3][s[4]:]]] == 1 for l, s in zip(lo, objs)])
        return people.mean(), nuis, int(obj.sum()), len(obj)
    base = score(runs[0])
    print(f"without the exception: people {base[0]:.4f}, nuisance frames said motion {base[1]}, objects under AE {base[2]}/{base[3]}", flush=True)
    best = None
    for c, labels in zip(cands[1:], runs[1:]):
        r = score(labels)
        ok = r[1] <= base[1] and r[0] >= base[0]
        print(f"  AL={c['AL']} TT={c['TT']} TGL={c['TGL']}: objects {r[2]}/{r[3]}, people {r[0]:.4f}, nuisance frames said motion {r[1]}"
              f"{'' if ok else '  (excluded)'}", flush=True)
        key = (r[2], c["AL"], c["TT"], -c["TGL"])
        if ok and (best is None or key > best[0]):
            best = (key, c)
    if best is None:
        print("no candidate keeps the tuning nuisances: the exception stays off", flush=True)
        return {}
    print("chosen", best[1], flush=True)
    return best[1]


LD = 25                # v2.3: windows (2 px each) around an outline within which a brightness change counts
RC_GRID = [0.005, 0.01, 0.02, 0.04, 0.08]   # v2.3: how far from a multiple of the background a window marks an outline


def _scores_of(args):
    """Every given stream through the state and a candidate model, as vigild runs it: scores."""
    p, streams = args
    sess = session(mg.build(p, VERSION))
    return [mst.run_stream(sess, frames, fps, _state(p))
            for frames, fps in streams]


def _tally(sc, pos, neg, objs, lamps, cuts):
    """What tune_lamp and tune_big weigh, from one candidate's scores on
    pos + neg + objs + lamps (in that order): the people's recall, the nuisance frames said
    motion (the objects' empty frames included), the object frames said motion in each group
    of objs split at `cuts`, the lamps raising an alert (for_frames 2) and their frames said motion."""
    a, b, c_ = len(pos), len(pos) + len(neg), len(pos) + len(neg) + len(objs)
    m = [np.nan_to_num(x[:, 1], nan=0.0) >= 0.5 for x in sc]
    people = np.concatenate([x[s[4]:][[bool(v) for v in s[3][s[4]:]]] for x, s in zip(m[:a], pos)])
    nuis = sum(int(x[s[4]:].sum()) for x, s in zip(m[a:b], neg))
    nuis += sum(int(x[s[4]:][[v is False for v in s[3][s[4]:]]].sum()) for x, s in zip(m[b:c_], objs))
    hits = [x[s[4]:][[v is True for v in s[3][s[4]:]]] for x, s in zip(m[b:c_], objs)]
    edges = [0, *cuts, len(objs)]
    groups = [np.concatenate(hits[i:j]) for i, j in zip(edges, edges[1:])]
    lamp_frames = sum(int(x[s[4]:].sum()) for x, s in zip(m[c_:], lamps))
    lamp_alerts = sum(mst.alerts(x[s[4]:, 1], 0.5, 2, 0.3, int(30 * s[3])) for x, s in zip(sc[c_:], lamps))
    return people.mean(), nuis, groups, lamp_alerts, lamp_frames


def tune_lamp(p):
    """v2.3: RC, how far from a multiple of the background (1 - cos^2) a window must be to
    mark an object's outline (motion_graph step 4c: a brightness change counts only within LD
    windows of one), chosen on the tuning split with the other thresholds as they are. Rule, fixed
    before the run: a candidate may not lower the people's recall, nor the frames of people
    standing 30 s (motion_sets.standing_streams) or of objects crossing under an auto-exposure
    said motion, nor say motion on more of the other tuning nuisance frames than the model
    without the gate; among those, the fewest lamp switch-ons raising an alert (for_frames 2),
    then the fewest lamp frames said motion; ties to the larger RC (the narrower gate)."""
    from multiprocessing import Pool
    p = {k: v for k, v in p.items() if k not in ("LD", "RC")}
    pos, neg = load("tune")
    full = ms.vtest_frames()
    objs = ms.ae_object_streams("tune", full, np.random.default_rng(SEED + 2))
    n_ae = len(objs)
    objs = objs + ms.standing_streams("tune", full, np.random.default_rng(SEED + 8))
    lamps = ms.lamp_streams("tune", full, np.random.default_rng(SEED + 5))
    streams = ([(s[1], s[2]) for s in pos] + [(s[2], s[3]) for s in neg] + [(s[1], s[2]) for s in objs]
               + [(s[2], s[3]) for s in lamps])
    cands = [None] + RC_GRID
    with Pool(2) as pool:
        runs = pool.map(_scores_of, [(dict(p, LD=LD, RC=c) if c else p, streams) for c in cands])

    def score(sc):
        people, nuis, (obj, stand), lamp_alerts, lamp_frames = _tally(sc, pos, neg, objs, lamps, [n_ae])
        return people, nuis, int(obj.sum()), len(obj), int(stand.sum()), len(stand), lamp_alerts, lamp_frames

    def show(r):
        return (f"people {r[0]:.4f}, nuisance frames {r[1]}, objects under AE {r[2]}/{r[3]}, people standing {r[4]}/{r[5]}, "
                f"lamps alerting {r[6]}/{len(lamps)} ({r[7]} frames)")

    base = score(runs[0])
    print(f"without the gate: {show(base)}", flush=True)
    best = None
    for c, sc in zip(cands[1:], runs[1:]):
        r = score(sc)
        ok = r[0] >= base[0] and r[1] <= base[1] and r[2] >= base[2] and r[4] >= base[4]
        print(f"  LD={LD} RC={c}: {show(r)}{'' if ok else '  (excluded)'}", flush=True)
        key = (-r[6], -r[7], c)
        if ok and (best is None or key > best[0]):
            best = (key, c)
    if best is None:
        print("no candidate keeps the tuning people, objects and nuisances: the gate stays off", flush=True)
        return {}
    print("chosen RC", best[1], flush=True)
    return {"LD": LD, "RC": best[1]}


BIG_KEYS = ("AH", "TW", "TGB", "HELD")       # v2.4's large-object exception (motion_graph step 9; v2.5's step 10)
AH_GRID = [0.03, 0.05]
AH_GRID_HELD = [0.015, 0.03, 0.05]          # v2.5: 0.015 again, run 1's choice (its failure was the day/night switch)
TW_GRID = [0.65, 0.8]
TGB_GRID = [0.1, 0.18, 0.3, 0.4, 0.5]     # log gain: x1.11, x1.2, x1.35, x1.49, x1.65 (0.4 and 0.5 added
                                          # for v2.6: v2.5 chose 0.3, the top of the grid)


def _object_stream_tallies(p, cands):
    """What tune_big and tune_recolour weigh: the tuning people, nuisances (with the day/night
    variants), v2.2's objects, people standing 30 s and large objects under an auto-exposure,
    and lamps, through p with each candidate (None: p alone). Per candidate (people's recall,
    nuisance frames said motion, objects said motion, objects, standing said motion, standing,
    lamp alerts, lamp frames said motion, large objects said motion, large objects); and the
    number of lamp streams."""
    from multiprocessing import Pool
    pos, neg = load("tune")
    full = ms.vtest_frames()
    objs = ms.ae_object_streams("tune", full, np.random.default_rng(SEED + 2))
    n_ae = len(objs)
    objs = objs + ms.standing_streams("tune", full, np.random.default_rng(SEED + 8))
    n_st = len(objs)
    objs = objs + ms.ae_object_streams("tune", full, np.random.default_rng(SEED + 9), size=ms.LARGE_OBJECT)
    lamps = ms.lamp_streams("tune", full, np.random.default_rng(SEED + 5))
    neg = neg + ms.day_night_variants("tune", full, np.random.default_rng(SEED + 10))
    streams = ([(s[1], s[2]) for s in pos] + [(s[2], s[3]) for s in neg] + [(s[1], s[2]) for s in objs]
               + [(s[2], s[3]) for s in lamps])
    with Pool(2) as pool:
        runs = pool.map(_scores_of, [(dict(p, **c) if c else p, streams) for c in cands])

    def score(sc):
        people, nuis, (obj, stand, big), lamp_alerts, lamp_frames = _tally(sc, pos, neg, objs, lamps, [n_ae, n_st])
        return (people, nuis, int(obj.sum()), len(obj), int(stand.sum()), len(stand), lamp_alerts, lamp_frames,
                int(big.sum()), len(big))
    return [score(sc) for sc in runs], len(lamps)


# What each tally of _object_stream_tallies says, in the order a choice prints them after the
# one it aims at.
_TALLY_TEXT = {
    "people": lambda r, n: f"people {r[0]:.4f}",
    "nuisance": lambda r, n: f"nuisance frames {r[1]}",
    "objects": lambda r, n: f"objects under AE {r[2]}/{r[3]}",
    "standing": lambda r, n: f"people standing {r[4]}/{r[5]}",
    "large": lambda r, n: f"large objects under AE {r[8]}/{r[9]}",
    "lamps": lambda r, n: f"lamps alerting {r[6]}/{n} ({r[7]} frames)",
}


def _choose(cands, tallies, n_lamps, aim, base_name, name, admissible, key, none_message):
    """The choice tune_big, tune_recolour and tune_hold make from _object_stream_tallies: prints
    the state without the candidates (`base_name`) and each candidate (`name(c)`; the `aim`
    tally first, "(excluded)" where `admissible(r, base)` fails); returns the admissible
    candidate with the largest `key(c, r, base)` (None: the candidate cannot be chosen), or {}."""
    def show(r):
        return ", ".join(f(r, n_lamps) for f in [_TALLY_TEXT[aim]] + [t for k, t in _TALLY_TEXT.items() if k != aim])

    base = tallies[0]
    print(f"{base_name}: {show(base)}", flush=True)
    best = None
    for c, r in zip(cands[1:], tallies[1:]):
        ok = admissible(r, base)
        print(f"  {name(c)}: {show(r)}{'' if ok else '  (excluded)'}", flush=True)
        k = key(c, r, base)
        if ok and k is not None and (best is None or k > best[0]):
            best = (k, c)
    if best is None:
        print(none_message, flush=True)
        return {}
    print("chosen", best[1], flush=True)
    return best[1]


def tune_big(p, held=False):
    """v2.4 (tried, not shipped: every choice alerted on the test split's day/night switch;
    Models/motion.md): AH, TW and TGB, the large-object exception to the light rule (motion_graph step 9),
    chosen on the tuning split with the other thresholds as they are. Rule, fixed before the
    run: a candidate may not lower the people's recall, nor the frames said motion of people
    standing 30 s or of the v2.2 objects crossing under an auto-exposure, nor say motion on
    more tuning nuisance frames (the empty frames around every object included, and day/night
    switches with other night images, motion_sets.day_night_variants: added after the first
    choice, AH 0.015 TW 0.8, alerted on the test split's day/night switch) or lamp frames,
    nor raise more lamp alerts (for_frames 2), than the model without it; among those,
    the most frames of large objects crossing under an auto-exposure (motion_sets.LARGE_OBJECT)
    said motion; ties to the larger AH and the smaller TW and TGB (the narrower exception).
    TGB (the light-level move the exception allows) joined the grid in the third run, after the
    second choice (AH 0.05 TW 0.8 at TGL) alerted on the test split's day/night switch too.
    held (v2.5, motion_graph step 10): the exception applies only on a frame after one the model
    said motion on (an object already in view), the same rule and grid with AH 0.015 back in it."""
    p = {k: v for k, v in p.items() if k not in BIG_KEYS}
    cands = [None] + [dict({"AH": a, "TW": w, "TGB": g}, **({"HELD": True} if held else {}))
                      for a in (AH_GRID_HELD if held else AH_GRID) for w in TW_GRID for g in TGB_GRID]
    tallies, n_lamps = _object_stream_tallies(p, cands)
    return _choose(cands, tallies, n_lamps, "large", "without the exception",
                   lambda c: f"AH={c['AH']} TW={c['TW']} TGB={c['TGB']}",
                   lambda r, base: (r[0] >= base[0] and r[1] <= base[1] and r[2] >= base[2] and r[4] >= base[4]
                                    and r[6] <= base[6] and r[7] <= base[7]),
                   lambda c, r, base: (r[8], c["AH"], -c["TW"], -c["TGB"]),
                   "no candidate keeps the tuning people, objects and nuisances: the exception stays off")


RECOLOUR_KEYS = ("TS", "AR")   # v2.6's recolouring rule (motion_graph step 11)
TS_GRID = [0.05, 0.1, 0.2]      # structure share of the changed area
AR_GRID = [1.5, 2.0, 3.0, 4.0, 6.0]   # x TA: the smallest recoloured area (4 and 6 added in a second run: 3 lost one standing frame)


def tune_recolour(p):
    """v2.6: TS and AR, the recolouring rule (motion_graph step 11: a change of brightness with
    next to no change of structure, over more than AR x TA, on a frame after one that was not
    motion, is lighting), chosen on the tuning split with the other thresholds as they are.
    Rule, fixed before the run: a candidate may not lower the people's recall, nor the frames
    said motion of people standing 30 s, of the v2.2 objects and of the large objects crossing
    under an auto-exposure, nor raise more lamp alerts or say motion on more lamp frames, than
    the model without it; among those, the fewest tuning nuisance frames said motion (the
    day/night variants and the objects' empty frames included); ties to the narrower rule
    (the smaller TS, the larger AR)."""
    p = {k: v for k, v in p.items() if k not in RECOLOUR_KEYS}
    cands = [None] + [{"TS": t, "AR": a} for t in TS_GRID for a in AR_GRID]
    tallies, n_lamps = _object_stream_tallies(p, cands)
    return _choose(cands, tallies, n_lamps, "nuisance", "without the rule", lambda c: f"TS={c['TS']} AR={c['AR']}",
                   lambda r, base: (r[0] >= base[0] and r[2] >= base[2] and r[4] >= base[4] and r[8] >= base[8]
                                    and r[6] <= base[6] and r[7] <= base[7]),
                   lambda c, r, base: (-r[1], -c["TS"], c["AR"]) if r[1] < base[1] else None,
                   "no candidate keeps the tuning people, objects and lamps and removes a nuisance frame: the rule stays off")


HOLD_GRID = [1.25, 1.5, 2.0, 3.0, 4.0]   # v2.7: the background's time constant where the frame differs from it, x background_s


def tune_hold(p):
    """v2.7: HOLD, how much slower the background learns where the frame differs from it
    (motion_stream.CameraState: a person standing still is absorbed over HOLD x background_s
    instead of background_s), chosen on the tuning split with the graph as it is. Rule, fixed
    after a first probe of HOLD 2 and 4 (HOLD 2: people standing 30 s 2109 -> 2384 of 2384
    frames said motion, one large-object frame lost; HOLD 4: nuisance frames 5 -> 16): a
    candidate may not lower the people's recall or the frames said motion of the v2.2 objects,
    nor say motion on more tuning nuisance frames (the objects' empty frames, a second after
    they left, included) or lamp frames, nor raise more lamp alerts, nor lose more than 0.5 %
    of the large objects' frames, than the state without it; among those, the most frames of
    people standing said motion; ties to the smaller HOLD (the state nearer the one shipped)."""
    cands = [None] + [{"HOLD": h} for h in HOLD_GRID]
    tallies, n_lamps = _object_stream_tallies(p, cands)
    return _choose(cands, tallies, n_lamps, "standing", "HOLD 1 (background_s everywhere)", lambda c: f"HOLD={c['HOLD']}",
                   lambda r, base: (r[0] >= base[0] and r[1] <= base[1] and r[2] >= base[2] and r[8] >= base[8] - 0.005 * r[9]
                                    and r[6] <= base[6] and r[7] <= base[7]),
                   lambda c, r, base: (r[4], -c["HOLD"]) if r[4] > base[4] else None,
                   "no candidate keeps the tuning people, objects and nuisances and holds more standing frames: HOLD stays 1")


def _state(p):
    """The per-device state vigild keeps for a model built from p (its time constants as the model declares them)."""
    return mst.CameraState(background_s=20.0, activity_s=p["activity_s"], hold=p.get("HOLD", 1.0), ghost_s=p.get("GS", mst.GHOST_S),
                           moving_through_lighting=bool(p.get("MTL")), align=bool(p.get("ALIGN")),
                           align_holds_after_lighting=bool(p.get("AHL")), align_band=int(p.get("ABAND", 0)))


def _gust_text(names, g):
    """One candidate's figures on motion_sets.gust_streams (`names`), as _gust_alerts gives them (`g`)."""
    return "gusts " + "; ".join(f"{n.split('gusts ')[1]}: {a:.1f} alerts/min, {100 * f:.1f} % pairs" for n, (a, f) in zip(names, g))


def _keeps_every_tally(r, base):
    """What tune_restless, tune_spread and tune_ghost ask of a candidate's _object_stream_tallies
    against the state without it: no fewer people, objects, standing or large-object frames said
    motion, no more nuisance or lamp frames, no more lamp alerts."""
    return (r[0] >= base[0] and r[1] <= base[1] and r[2] >= base[2] and r[4] >= base[4]
            and r[8] >= base[8] and r[6] <= base[6] and r[7] <= base[7])


TD_GRID = [0.2, 0.3, 0.5]   # v2.8: the share of time a window may keep changing (restless map) before it stops counting


def _gust_alerts(args):
    """Alerts a minute (for_frames 2, cooldown 30 s) and false pairs on motion_sets.gust_streams, after their first minute."""
    p, streams = args
    sess = session(mg.build(p, VERSION))
    out = []
    for _, frames, fps in streams:
        sc = mst.run_stream(sess, frames, fps, _state(p))
        after = sc[ms.VEG_SCORE_FROM_S * fps:, 1]
        minutes = len(after) / fps / 60
        out.append((mst.alerts(after, 0.5, 2, 0.3, 30 * fps) / minutes, float(np.mean(np.nan_to_num(after) >= 0.5))))
    return out


def tune_restless(p):
    """v2.8: TD, the bar on the restless map (motion_stream.CameraState: the share of time a
    pixel differs from the frame 0.4 s before) that replaces the activity channel's TU: foliage
    in wind changes all the time, a person standing still barely, a pavement while someone
    passes. Chosen on the tuning split with everything else as it is. Rule, fixed after a probe
    (disclosed in Models/motion.md: TD 0.2 and 0.3 run on tuning first, 0.2 lost standing frames):
    a candidate may not lower the people's recall, or the frames said motion of v2.2's objects,
    people standing or large objects, nor say motion on more tuning nuisance frames or lamp
    frames, nor raise more lamp alerts, than v2.7 (the activity channel); among those, the fewest
    alerts a minute on the tuning gusts (motion_sets.gust_streams), then the fewest of their
    pairs said motion; ties to the larger TD (a window must change more often to stop counting)."""
    from multiprocessing import Pool
    cands = [None] + [{"TD": t} for t in TD_GRID]
    tallies, n_lamps = _object_stream_tallies(p, cands)
    gusts = ms.gust_streams("tune", np.random.default_rng(SEED + 12))
    with Pool(2) as pool:
        gust = pool.map(_gust_alerts, [(dict(p, **c) if c else p, gusts) for c in cands])
    names = [g[0] for g in gusts]

    def gust_text(c):
        return _gust_text(names, gust[cands.index(c)])

    print(f"v2.7 (activity, TU {p['TU']}): {gust_text(None)}", flush=True)
    by = {id(c): sum(a for a, _ in gust[i]) for i, c in enumerate(cands)}
    pairs = {id(c): sum(f for _, f in gust[i]) for i, c in enumerate(cands)}
    return _choose(cands, tallies, n_lamps, "standing", "v2.7 (activity)", lambda c: f"TD={c['TD']}, {gust_text(c)}",
                   _keeps_every_tally,
                   lambda c, r, base: (-by[id(c)], -pairs[id(c)], c["TD"]),
                   "no candidate keeps every tuning figure: the activity channel stays")


RS_GRID = [3, 5]   # v2.9: windows over which a window takes the most restless one's share (3: +-1 window, 2 px)


def _foliage_people(p, streams):
    """People frames beside gusty foliage said motion (motion_sets.foliage_people_streams), and their number."""
    sess = session(mg.build(p, VERSION))
    hit = n = 0
    for _, frames, fps, lab, k in streams:
        sc = mst.run_stream(sess, frames, fps, _state(p))[:, 1]
        pos = [i for i in range(k, len(lab)) if lab[i]]
        hit += int(sum(sc[i] >= 0.5 for i in pos))
        n += len(pos)
    return hit, n


def _wind_figures(args):
    """tune_spread's and tune_ghost's per-candidate figures: the gusts, the people beside gusty
    foliage, and (given standing streams) the exit tail."""
    p, gusts, people, standing = args
    return _gust_alerts((p, gusts)), _foliage_people(p, people), (_exit_tail(p, standing) if standing else None)


def _wind_runs(p, cands, tail=False):
    """tune_spread's and tune_ghost's runs of p with each candidate: _object_stream_tallies (and
    the number of lamp streams), the gust streams' names and _wind_figures per candidate (the exit
    tail of the tuning standing people only if `tail`)."""
    from multiprocessing import Pool
    tallies, n_lamps = _object_stream_tallies(p, cands)
    gusts = ms.gust_streams("tune", np.random.default_rng(SEED + 12))
    full = ms.vtest_frames()
    people = ms.foliage_people_streams("tune", full, np.random.default_rng(SEED + 14))
    standing = ms.standing_streams("tune", full, np.random.default_rng(SEED + 8)) if tail else None
    with Pool(2) as pool:
        figs = pool.map(_wind_figures, [(dict(p, **c) if c else p, gusts, people, standing) for c in cands])
    return tallies, n_lamps, [g[0] for g in gusts], figs


def tune_spread(p):
    """v2.9: RS, the windows (RS x RS, stride 1) over which a window's restless share is the
    largest (motion_graph step 5): foliage swayed +-10 px reaches, at the far end of a gust,
    pixels that changed too rarely to count as restless themselves, next to ones that did.
    Chosen on the tuning split with everything else as it is. Rule, fixed after a probe (RS 3
    and 5 on the tuning gusts and foliage_people_streams, disclosed in Models/motion.md): a
    candidate may not lower any tally tune_restless guards, nor the frames of people beside
    gusty foliage said motion, below v2.8's (RS 1); among those, the fewest alerts a minute on
    the tuning gusts, then the fewest of their pairs said motion (and fewer than v2.8's); ties to
    the smaller RS (the least of the view given to the foliage)."""
    cands = [None] + [{"RS": r} for r in RS_GRID]
    tallies, n_lamps, names, figs = _wind_runs(p, cands)

    def text(c):
        g, (hit, n), _ = figs[cands.index(c)]
        return f"people beside gusty foliage {hit}/{n}; {_gust_text(names, g)}"

    print(f"v2.8 (RS 1): {text(None)}", flush=True)
    by = {id(c): sum(a for a, _ in figs[i][0]) for i, c in enumerate(cands)}
    pairs = {id(c): sum(f for _, f in figs[i][0]) for i, c in enumerate(cands)}
    beside = {id(c): figs[i][1][0] for i, c in enumerate(cands)}
    return _choose(cands, tallies, n_lamps, "standing", "v2.8 (RS 1)", lambda c: f"RS={c['RS']}, {text(c)}",
                   _keeps_every_tally,
                   lambda c, r, base: ((-by[id(c)], -pairs[id(c)], -c["RS"])
                                      if beside[id(c)] >= beside[id(None)] and (by[id(c)], pairs[id(c)]) < (by[id(None)], pairs[id(None)]) else None),
                   "no candidate keeps every tuning figure: RS stays 1")


GS_GRID = [0.2, 0.3, 0.5]   # v2.9: seconds before the background is reset to the clean one where only it differs


def _exit_tail(p, streams):
    """Frames said motion in the 3 s after each standing person left (motion_sets.standing_streams:
    what the background kept of them, until the ghost healer resets it), summed."""
    sess = session(mg.build(p, VERSION))
    n = 0
    for _, frames, fps, lab, _ in streams:
        sc = mst.run_stream(sess, frames, fps, _state(p))[:, 1]
        gone = max(i for i, v in enumerate(lab) if v) + 1
        n += int((np.nan_to_num(sc[gone:gone + 3 * fps]) >= 0.5).sum())
    return n


def tune_ghost(p):
    """v2.9: GS, how long a pixel must match the clean background and not the background before
    the background is reset there (motion_stream GHOST_S, the model's `vigil.ghost_s`). 1 s was
    chosen in v2.6 when 0.5 s let the tuning tree raise alerts; the restless map (v2.8, spread in
    v2.9) now takes foliage out, and what the background kept of a person who stood said motion
    for ~1 s after they left (Intel footage, v2.8: 5 % false pairs after exits). Chosen on the
    tuning split with everything else as it is. Rule, fixed after a probe (GS 1, 0.5, 0.3 on the
    tuning standing people, objects and gusts, disclosed in Models/motion.md): a candidate may not
    lower any tally tune_spread guards below GS 1's (people, objects, standing, large objects, people
    beside gusty foliage), nor say motion on more nuisance or lamp frames, nor raise more lamp or
    gust alerts, nor more gust pairs; among those, the fewest frames said motion in the 3 s after
    the tuning standing people left; ties to the larger GS (the slower reset)."""
    cands = [None] + [{"GS": g} for g in GS_GRID]
    tallies, n_lamps, names, figs = _wind_runs(p, cands, tail=True)

    def text(c):
        g, (hit, n), tail = figs[cands.index(c)]
        return f"frames said motion in the 3 s after a standing person left {tail}; people beside gusty foliage {hit}/{n}; {_gust_text(names, g)}"

    print(f"GS 1 (v2.6-v2.8): {text(None)}", flush=True)
    fig = {id(c): figs[i] for i, c in enumerate(cands)}
    base = fig[id(None)]

    def keeps(c):
        g, (hit, _), _ = fig[id(c)]
        return (hit >= base[1][0] and sum(a for a, _ in g) <= sum(a for a, _ in base[0])
                and sum(f for _, f in g) <= sum(f for _, f in base[0]))

    return _choose(cands, tallies, n_lamps, "standing", "GS 1 (v2.6-v2.8)", lambda c: f"GS={c['GS']}, {text(c)}",
                   _keeps_every_tally,
                   lambda c, r, b: ((-fig[id(c)][2], c["GS"]) if keeps(c) and fig[id(c)][2] < base[2] else None),
                   "no candidate keeps every tuning figure and shortens the tail: GS stays 1")


TS_MORE_GRID = [0.1, 0.2, 0.3]   # v2.10: TS again, with day/night switches on scenes in neither split


def _extra_day_night(p):
    """Streams alerting (for_frames 1) and frames said motion on night_variants_extra's day/night
    switches (10 opencv-doc images in neither split, 4 night images each)."""
    import night_variants_extra as nve
    sess = session(mg.build(p, VERSION))
    streams = frames_m = 0
    for _, _, frames in nve.streams():
        sc = mst.run_stream(sess, frames, 10, _state(p))[20:, 1]
        streams += mst.alerts(sc, 0.5, 1, 0.3, 300) > 0
        frames_m += int((np.nan_to_num(sc) >= 0.5).sum())
    return streams, frames_m


def tune_recolour_more(p):
    """v2.10: TS again. v2.6 chose TS 0.05 as the narrowest of equal candidates (0.05 / 0.1 / 0.2
    kept every tuning tally at AR 6); day/night switches on 10 opencv-doc images in neither split
    (night_variants_extra.py, read first as evidence: 3 of 40 streams alerting with v2.9, and a
    /tmp probe of TS 0.1 / 0.2 on them: 2 / 1) now join the tuning data for this choice. Rule: no
    tally worse than TS 0.05's (_keeps_every_tally); then the fewest of those streams alerting
    (for_frames 1), then the fewest of their frames said motion, and fewer than TS 0.05's; ties
    to the smaller TS (the narrower rule)."""
    from multiprocessing import Pool
    cands = [None] + [{"TS": t} for t in TS_MORE_GRID]
    tallies, n_lamps = _object_stream_tallies(p, cands)
    with Pool(2) as pool:
        extra = pool.map(_extra_day_night, [dict(p, **c) if c else p for c in cands])
    fig = {id(c): extra[i] for i, c in enumerate(cands)}
    print(f"TS {p['TS']} (v2.6-v2.9): extra day/night streams alerting {extra[0][0]}/40, frames said motion {extra[0][1]}", flush=True)
    return _choose(cands, tallies, n_lamps, "nuisance", f"TS {p['TS']} (v2.6-v2.9)",
                   lambda c: f"TS={c['TS']}, extra day/night streams alerting {fig[id(c)][0]}/40, frames said motion {fig[id(c)][1]}",
                   _keeps_every_tally,
                   lambda c, r, b: ((-fig[id(c)][0], -fig[id(c)][1], -c["TS"]) if fig[id(c)] < fig[id(None)] else None),
                   "no candidate keeps every tuning figure and alerts less on the extra day/night switches: TS stays")


TGB_GLARE_GRID = [0.4, 0.5, 0.6, 0.7, 0.8]   # v2.11: log gain x1.49 (v2.5-v2.10), x1.65, x1.82, x2.01, x2.23
MTL_GRID = [False, True]                      # v2.11: the moving channel held through one lighting frame (motion_stream)


GLARE_CAMERAS = ((SEED + 11, 0.0), (SEED + 13, ms.GLARE_DRIFT))   # (seed, drift): a still camera, a creeping one


def glare_tally(sess, new_state, seed, drift, full):
    """On the tuning motion_sets.glare_object_streams(seed, drift), each through new_state() (from
    each stream's score_from): frames said motion with the object in view, such frames, frames
    said motion with nothing in view, such frames."""
    hit = n = empty = ne = 0
    for _, frames, fps, lab, score_from in ms.glare_object_streams("tune", full, np.random.default_rng(seed), drift=drift):
        m = (np.nan_to_num(mst.run_stream(sess, frames, fps, new_state())[:, 1]) >= 0.5)[score_from:]
        on = np.array([v is True for v in lab[score_from:]])
        off = np.array([v is False for v in lab[score_from:]])
        hit, n = hit + int(m[on].sum()), n + int(on.sum())
        empty, ne = empty + int(m[off].sum()), ne + int(off.sum())
    return hit, n, empty, ne


def _glare_figures(p):
    """glare_tally's first three figures with a still camera and with a creeping one, through the
    state vigild keeps for p; and _extra_day_night's figures."""
    sess = session(mg.build(p, VERSION))
    full = ms.vtest_frames()
    still, creeping = [glare_tally(sess, lambda: _state(p), seed, drift, full)[:3] for seed, drift in GLARE_CAMERAS]
    return still, creeping, _extra_day_night(p)


def tune_glare(p):
    """v2.11 (tried, not shipped: Models/motion.md "v2.11"): TGB again, the light-level move the
    large-object exception allows (motion_graph step 9), and MTL, whether the `moving` channel
    stays 1 through one `lighting` frame after a `motion` frame (motion_stream.CameraState).
    Intel's car park footage (test) showed frames of a blown-out white car said `lighting` at
    2.5 fps, the exposure having darkened the frame by more than TGB's x1.49, and the frame after
    such a frame `lighting` too (the exception needs `moving`); no tuning stream moved the exposure
    that far with an object in view, so TGB 0.4 and 0.5 tied (v2.6). Tuning streams with large
    objects in glare (motion_sets.glare_object_streams) now do; since the first run (TGB 0.8 with
    the hold, whose `lighting` re-bases no longer hid the footage's creeping camera), the same
    streams with the view creeping (GLARE_DRIFT) too. Rule, fixed before each run: no tally worse
    than v2.10's (TGB 0.4, no hold: _keeps_every_tally), no more glare-stream frames said motion
    with nothing in view on either camera, no more of night_variants_extra's day/night streams
    alerting nor their frames said motion; then the most glare-object frames said motion (both
    cameras), more than v2.10's; ties to the smaller TGB, then to no hold (the narrower rule)."""
    from multiprocessing import Pool
    cands = [None] + [{"TGB": g, "MTL": h} for g in TGB_GLARE_GRID for h in MTL_GRID if (g, h) != (p["TGB"], False)]
    tallies, n_lamps = _object_stream_tallies(p, cands)
    with Pool(2) as pool:
        glare = pool.map(_glare_figures, [dict(p, **c) if c else p for c in cands])
    fig = {id(c): glare[i] for i, c in enumerate(cands)}
    text = lambda g: (f"glare objects {g[0][0]}/{g[0][1]}, empty frames said motion {g[0][2]}; "
                      f"creeping view {g[1][0]}/{g[1][1]}, empty {g[1][2]}; "
                      f"extra day/night streams alerting {g[2][0]}/40 ({g[2][1]} frames)")
    base = glare[0]
    keeps = lambda g: g[0][2] <= base[0][2] and g[1][2] <= base[1][2] and g[2][0] <= base[2][0] and g[2][1] <= base[2][1]
    caught = lambda g: g[0][0] + g[1][0]
    return _choose(cands, tallies, n_lamps, "large", f"TGB {p['TGB']}, no hold (v2.5-v2.10), {text(base)}",
                   lambda c: f"TGB={c['TGB']} MTL={int(c['MTL'])}, {text(fig[id(c)])}",
                   _keeps_every_tally,
                   lambda c, r, b: ((caught(fig[id(c)]), -c["TGB"], -c["MTL"])
                                    if keeps(fig[id(c)]) and caught(fig[id(c)]) > caught(base) else None),
                   "no candidate keeps every tuning figure and says motion on more glare-object frames: TGB stays")


def tune_align(p):
    """v2.12: ALIGN, whether each frame is moved back onto the device's view before the state reads
    it (motion_stream.align_step / warp; vigild's ViewAligner). Intel's car park camera creeps (~6 px
    of 768 over 9 s) and the tuning glare streams with the view creeping (GLARE_DRIFT) say motion
    on 397 of 1792 empty frames with v2.10's state; exp_motion_register.py showed whole-pixel shifts
    leave half of that. The aligner's constants were fixed before any run (motion_stream ALIGN_*).
    Rule, fixed before the run: with ALIGN, every tally _wind_runs and _glare_figures give may lose
    at most 0.5 % of its total where it counts what should be caught (people, objects under AE,
    standing people, large objects, people beside gusty foliage, glare objects on the still
    camera), and may not grow where it counts what should not (nuisance and lamp frames, lamp and
    gust alerts, gust pairs, the exit tail, the still camera's empty glare frames, the extra
    day/night streams alerting and their frames); and the creeping view's empty frames said motion
    must fall by a quarter or more. Then ALIGN is on."""
    from multiprocessing import Pool
    cands = [None, {"ALIGN": True}]
    tallies, n_lamps, names, figs = _wind_runs(p, cands, tail=True)
    with Pool(2) as pool:
        glare = pool.map(_glare_figures, [dict(p, **c) if c else p for c in cands])

    def text(i):
        return _align_text(figs[i], glare[i], names)

    def key(c, r, b):
        ce, ce0 = glare[1][1][2], glare[0][1][2]
        return 1 if _align_keeps(figs[1], figs[0], glare[1], glare[0]) and ce <= 0.75 * ce0 else None

    return _choose(cands, tallies, n_lamps, "people", f"v2.10 (no alignment), {text(0)}", lambda c: f"ALIGN, {text(1)}",
                   _align_admissible, key, "alignment loses a tuning figure or does not take the creep away: ALIGN stays off")


def _within(got, base, total):
    """got at most 0.5 % of total below base: the allowance tune_align and tune_align_lit give what should be caught."""
    return got >= base - 0.005 * total


def _align_admissible(r, b):
    """_object_stream_tallies' r against the base's b, as tune_align and tune_align_lit weigh them:
    what should be caught loses at most 0.5 % of its total, what should not does not grow."""
    return (_within(r[0], b[0], 1.0) and r[1] <= b[1] and _within(r[2], b[2], r[3]) and _within(r[4], b[4], r[5])
            and _within(r[8], b[8], r[9]) and r[6] <= b[6] and r[7] <= b[7])


def _align_keeps(fig, fig0, glare, glare0):
    """A candidate's _wind_figures and _glare_figures against the base's, as tune_align and
    tune_align_lit weigh them: people beside gusty foliage and the still camera's glare objects lose
    at most 0.5 %; gust alerts and pairs, the exit tail, the still camera's empty glare frames and
    the extra day/night streams and frames do not grow."""
    (g, (hit, n), tail), (g0, (hit0, _), tail0) = fig, fig0
    (gh, gn, ge), _, (dn, df) = glare
    (gh0, _, ge0), _, (dn0, df0) = glare0
    return (_within(hit, hit0, n) and sum(a for a, _ in g) <= sum(a for a, _ in g0)
            and sum(f for _, f in g) <= sum(f for _, f in g0) and tail <= tail0
            and _within(gh, gh0, gn) and ge <= ge0 and dn <= dn0 and df <= df0)


def _align_text(fig, glare, names, extra=""):
    """One candidate's figures as tune_align and tune_align_lit print them (extra: after the creeping view's)."""
    g, (hit, n), tail = fig
    (gh, gn, ge), (ch, cn, ce), (dn, df) = glare
    return (f"glare objects {gh}/{gn}, empty frames said motion {ge}; creeping view {ch}/{cn}, empty {ce}; {extra}"
            f"extra day/night streams alerting {dn}/40 ({df} frames); exit tail {tail}; "
            f"people beside gusty foliage {hit}/{n}; {_gust_text(names, g)}")


GLARE_STILL_SEEDS = tuple(SEED + 67 + k for k in range(7))   # v2.13: more still cameras under glare objects (seeds 1301-1307)


def _still_glare_seed(args):
    """glare_tally on the still camera for one of GLARE_STILL_SEEDS, through p's state."""
    p, seed = args
    return glare_tally(session(mg.build(p, VERSION)), lambda: _state(p), seed, 0.0, ms.vtest_frames())


def _more_still_cameras(pool, ps):
    """glare_tally on the still cameras of GLARE_STILL_SEEDS through each of ps: per p, the four
    figures summed over the seeds, and the text tune_align_lit and tune_glare_aligned print."""
    k = len(GLARE_STILL_SEEDS)
    seeds = pool.map(_still_glare_seed, [(q, s) for q in ps for s in GLARE_STILL_SEEDS])
    more = [tuple(sum(r[i] for r in seeds[j * k:(j + 1) * k]) for i in range(4)) for j in range(len(ps))]
    texts = [f"{k} more still cameras: glare objects {mh}/{mn}, empty frames said motion {me}/{mne} "
             f"(by seed {[r[2] for r in seeds[j * k:(j + 1) * k]]}); " for j, (mh, mn, me, mne) in enumerate(more)]
    return more, texts


def _aligned_runs(p, cands):
    """What tune_align_lit and tune_glare_aligned weigh, p with each candidate: _wind_runs' tallies
    (exit tail included), the number of lamp streams and _wind_figures; _glare_figures; the 7 more
    still cameras (_more_still_cameras); and text(i), candidate i's figures as they print them."""
    from multiprocessing import Pool
    tallies, n_lamps, names, figs = _wind_runs(p, cands, tail=True)
    ps = [dict(p, **c) if c else p for c in cands]
    with Pool(2) as pool:
        glare = pool.map(_glare_figures, ps)
        more, more_text = _more_still_cameras(pool, ps)
    return tallies, n_lamps, figs, glare, more, lambda i: _align_text(figs[i], glare[i], names, more_text[i])


def tune_align_lit(p):
    """v2.13: AHL, whether the aligner's offset holds on a frame after a `lighting` one. Tuning glare
    streams on a still camera with more seeds (GLARE_STILL_SEEDS; exp probe /tmp, disclosed in
    Models/motion.md "v2.13") showed the offset walking 1.4 px across a run of `lighting` frames
    under a large object in glare (fruits.jpg, 700 paint, mean AE, 10 fps, seed 1303), and 28 of
    that stream's 51 empty frames said motion after: on a second `lighting` in a row the background
    is the last frame, the object in it, and the blocks' median followed the object. Rule, fixed
    before the run: with AHL, every tally tune_align guards may lose at most 0.5 % of its total
    where it counts what should be caught and may not grow where it counts what should not (the
    creeping view's empty frames included, and its object frames may lose at most 0.5 %); the
    still cameras of GLARE_STILL_SEEDS may lose at most 0.5 % of their object frames, and their
    empty frames said motion must fall. Then AHL is on."""
    cands = [None, {"AHL": True}]
    tallies, n_lamps, figs, glare, more, text = _aligned_runs(p, cands)

    def key(c, r, b):
        (_, (ch, cn, ce), _), (_, (ch0, _, ce0), _) = glare[1], glare[0]
        (mh, mn, me, _), (mh0, _, me0, _) = more[1], more[0]
        keeps = (_align_keeps(figs[1], figs[0], glare[1], glare[0]) and _within(ch, ch0, cn) and ce <= ce0
                 and _within(mh, mh0, mn))
        return 1 if keeps and me < me0 else None

    return _choose(cands, tallies, n_lamps, "people", f"v2.12 (the offset moves on every frame), {text(0)}",
                   lambda c: f"AHL (held after `lighting`), {text(1)}", _align_admissible, key,
                   "holding the offset after `lighting` loses a tuning figure or does not cut the still cameras' empty frames: AHL stays off")


def _tune_glare_candidate(p, cand, admissible, tallies_keep, base_name, name, none_message):
    """What tune_glare_aligned and tune_glare_band do with their one candidate: _aligned_runs of p and
    p with cand; `admissible` and `tallies_keep` weigh _object_stream_tallies (against the base's);
    _align_keeps on the wind and glare figures, the creeping view's and GLARE_STILL_SEEDS' empty
    frames said motion do not grow; then more glare-object frames said motion than the base over
    the still camera, the creeping view and GLARE_STILL_SEEDS together."""
    cands = [None, cand]
    tallies, n_lamps, figs, glare, more, text = _aligned_runs(p, cands)

    def caught(i):
        return glare[i][0][0] + glare[i][1][0] + more[i][0]

    def key(c, r, b):
        keeps = (tallies_keep(r, b) and _align_keeps(figs[1], figs[0], glare[1], glare[0])
                 and glare[1][1][2] <= glare[0][1][2] and more[1][2] <= more[0][2])
        return 1 if keeps and caught(1) > caught(0) else None

    print(f"glare-object frames said motion (still + creeping + {len(GLARE_STILL_SEEDS)} more still): "
          f"base {caught(0)}, candidate {caught(1)}", flush=True)
    return _choose(cands, tallies, n_lamps, "large", f"{base_name}, {text(0)}", lambda c: f"{name(c)}, {text(1)}",
                   admissible, key, none_message)


def tune_glare_aligned(p):
    """Tried 2026-12-05, not chosen (Models/motion.md "v2.11's blown-out-car candidate on the aligned
    state"): v2.11's candidate (TGB 0.8 with MTL, the top of tune_glare's grid, chosen there before
    the creeping camera blocked it) on the aligned state v2.13 ships (ALIGN, AHL).
    tune_glare's grid replays every tuning stream ten times with the aligner in numpy (over an hour
    on 2 cores, stopped unfinished: Models/motion.md "v2.12"), so only that one candidate is tried.
    Rule, fixed before the run: no _object_stream_tallies tally worse than the base's
    (_keeps_every_tally, tune_glare's rule); _align_keeps against the base (people beside gusty
    foliage and the still camera's glare objects lose at most 0.5 %, gust alerts and pairs, the exit
    tail, the still camera's empty glare frames and the extra day/night streams do not grow); the
    creeping view's and GLARE_STILL_SEEDS' empty frames said motion do not grow; then more
    glare-object frames said motion than the base, over the still camera, the creeping view and
    GLARE_STILL_SEEDS together."""
    return _tune_glare_candidate(p, {"TGB": 0.8, "MTL": True}, lambda r, b: True, _keeps_every_tally,
                                 f"v2.13 (TGB {p['TGB']}, no hold)", lambda c: f"TGB={c['TGB']} MTL=1",
                                 "v2.11's candidate on the aligned state loses a tuning figure or catches no more glare objects: v2.13 stays")


def tune_glare_band(p):
    """Tried 2026-12-05 (Models/motion.md "v2.11's blown-out-car candidate on the aligned state"):
    tune_glare_aligned's candidate failed on the creeping view's empty frames (0 -> 35) because the
    background kept a sliver of the object at the frame's border, where the warp repeats the edge and
    the ghost healing cannot match it; /tmp screens on the tuning glare figures (disclosed there)
    found a band as wide as one of the model's windows (motion_graph.WIN) left out of the weight
    plane on the sides the warp invents (ABAND; motion_stream.CameraState align_band) took it to 0.
    The candidate is that band with TGB 0.8 and MTL, one run. Rule, fixed before the run (the
    band is on the aligner's side, so the allowance of tune_align and tune_align_lit):
    _align_admissible on _object_stream_tallies, _align_keeps on the wind and glare figures, the
    creeping view's and GLARE_STILL_SEEDS' empty frames said motion do not grow; then more
    glare-object frames said motion than the base over the still camera, the creeping view and
    GLARE_STILL_SEEDS together."""
    return _tune_glare_candidate(p, {"TGB": 0.8, "MTL": True, "ABAND": mg.WIN}, _align_admissible, lambda r, b: True,
                                 f"v2.13 (TGB {p['TGB']}, no hold, no band)", lambda c: f"TGB={c['TGB']} MTL=1 ABAND={c['ABAND']}",
                                 "the band with v2.11's candidate loses a tuning figure or catches no more glare objects: v2.13 stays")


def main():
    if "--no-tune" in sys.argv:     # rebuild from the recorded thresholds (fixtures, graph edits)
        from common import read_results
        rec = read_results("motion_params.json")
        p = {k: rec[k] for k in ["T1", "TU", "TM", "TA", "TL", "TG", "activity_s"]}
        # v2.2: choose only the local-change exception (the rest as recorded), or take the recorded one
        p.update(tune_local(p) if "--local" in sys.argv else {k: rec[k] for k in LOCAL_KEYS if k in rec})
        p.update(tune_lamp(p) if "--lamp" in sys.argv else {k: rec[k] for k in ("LD", "RC") if k in rec})
        # the large-object exception: v2.4 (--big) tried, not shipped; v2.5 (--big --held, only while an
        # object is in view) shipped (Models/motion.md); --big runs the choice, else the recorded one
        p.update(tune_big(p, held="--held" in sys.argv) if "--big" in sys.argv else {k: rec[k] for k in BIG_KEYS if k in rec})
        # v2.6: the recolouring rule (--recolour runs the choice, else the recorded one)
        p.update(tune_recolour(p) if "--recolour" in sys.argv else {k: rec[k] for k in RECOLOUR_KEYS if k in rec})
        # v2.7: the background held where the frame differs (--hold runs the choice, else the recorded one)
        p.update(tune_hold(p) if "--hold" in sys.argv else {k: rec[k] for k in ("HOLD",) if k in rec})
        # v2.8: the restless map in place of the activity channel (--restless runs the choice, else the recorded one)
        p.update(tune_restless(p) if "--restless" in sys.argv else {k: rec[k] for k in ("TD",) if k in rec})
        # v2.9: the restless share spread over neighbouring windows (--spread runs the choice, else the recorded one)
        p.update(tune_spread(p) if "--spread" in sys.argv else {k: rec[k] for k in ("RS",) if k in rec})
        # v2.9: how soon a ghost is healed (--ghost runs the choice, else the recorded one)
        p.update(tune_ghost(p) if "--ghost" in sys.argv else {k: rec[k] for k in ("GS",) if k in rec})
        # v2.10: TS chosen again with the extra day/night scenes (--recolour-more runs the choice)
        if "--recolour-more" in sys.argv:
            p.update(tune_recolour_more(p))
        # v2.12: the view aligned on a creeping camera (--align runs the choice, else the recorded one)
        p.update(tune_align(p) if "--align" in sys.argv else {k: rec[k] for k in ("ALIGN",) if k in rec})
        # v2.11 (tried, not shipped): TGB and the moving hold with large objects in glare; --glare runs
        # the choice. Unaligned (v2.11), the creeping view in its tuning data blocked it; here it runs
        # on the aligned state (a full retune ran it before the alignment, as v2.11 / v2.12 did). With
        # the aligner in Python its 10 candidates take over an hour on 2 cores (stopped after 66 min,
        # 2026-12-05: Models/motion.md "v2.12")
        if "--glare" in sys.argv:
            p.update(tune_glare(p))
        # v2.13: the aligner's offset held on a frame after `lighting` (--align-lit runs the choice, else the recorded one)
        p.update(tune_align_lit(p) if "--align-lit" in sys.argv else {k: rec[k] for k in ("AHL",) if k in rec})
        # v2.11's candidate alone on the aligned state (tried 2026-12-05, not chosen; --glare-aligned runs the
        # choice, else the recorded one)
        p.update(tune_glare_aligned(p) if "--glare-aligned" in sys.argv else {k: rec[k] for k in ("MTL",) if k in rec})
        # the same with the warp's invented border out of the weight plane (--glare-band runs the choice, else the recorded one)
        p.update(tune_glare_band(p) if "--glare-band" in sys.argv else {k: rec[k] for k in ("ABAND",) if k in rec})
    else:
        p = tune()
        p.update(tune_local(p))
        p.update(tune_lamp(p))
        p.update(tune_big(p, held=True))
        p.update(tune_recolour(p))
        p.update(tune_hold(p))
        p.update(tune_restless(p))
        p.update(tune_spread(p))
        p.update(tune_ghost(p))
        p.update(tune_recolour_more(p))
        p.update(tune_glare(p))
        p.update(tune_align(p))
        p.update(tune_align_lit(p))
        p.update(tune_glare_aligned(p))
        p.update(tune_glare_band(p))
    print("chosen", p)
    if "--dry" in sys.argv:     # grid only: nothing written
        return
    path = os.path.join(MODELS_DIR, "motion.onnx")
    size = save_model(mg.build(p, VERSION), path)
    write_results("motion_params.json", dict(p, KRC=mg.KRC, KS=mg.KS, KT=mg.KT, cells=list(mg.CELLS), top_cells=mg.TOP_CELLS, KG=mg.KG, KM=mg.KM, K1=mg.K1, K2=mg.K2, KL=mg.KL, KU=mg.KU, win=mg.WIN, stride=mg.STRIDE,
                                             c=mg.C, sat=mg.SAT, sigma=mg.SIGMA, seed=SEED, background_s=20.0))
    print(f"wrote {path} ({size} bytes)")
    make_fixtures()


def synthetic_scene(rng):
    """A textured synthetic room (no third-party pixels) for the committed fixtures."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    img = 0.45 + 0.15 * np.sin(x / 9.0) * np.cos(y / 13.0) + 0.1 * (x / W)
    img[70:, :] = 0.3 + 0.05 * ((x[70:, :] // 10 + y[70:, :] // 10) % 2)   # tiled floor
    img[20:60, 100:140] = 0.8                                                   # window
    return np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1).astype(np.float32)


def with_person(img, x0):
    out = img.copy()
    out[50:100, x0:x0 + 14] = 0.12          # a dark figure 14x50 px
    out[40:52, x0 + 3:x0 + 11] = 0.7        # head
    return out


def make_fixtures():
    """Model inputs as the daemon builds them: (current, background, activity, weight, moving),
    nothing in view on the frame before each (moving 0)."""
    from common import write_fixture, update_expected
    rng = np.random.default_rng(SEED + 7)
    bg = synthetic_scene(rng)
    zeros, ones = np.zeros((H, W), np.float32), np.ones((H, W), np.float32)
    sess = session(os.path.join(MODELS_DIR, "motion.onnx"))
    c = sess.get_inputs()[0].shape[1]
    person = np.stack([with_person(bg, 40), bg, zeros, ones] + [zeros] * (c - 4))[None]
    noisy = np.clip(bg + rng.normal(0, 0.02, bg.shape), 0, 1)            # sensor noise only
    still = np.stack([noisy, bg, zeros, ones] + [zeros] * (c - 4))[None]
    dark = np.clip(bg * 0.3 + rng.normal(0, 0.01, bg.shape), 0, 1)      # lights dimmed to 30 %
    dimmed = np.stack([dark, bg, zeros, ones] + [zeros] * (c - 4))[None]
    entries = {}
    for name, arr, label in [("motion_pair.f32", person, "motion"), ("motion_still.f32", still, "still"),
                             ("motion_lighting.f32", dimmed, "lighting")]:
        arr = write_fixture(name, arr.astype(np.float32))
        s = sess.run(None, {"frames": arr})[0][0]
        got = ["still", "motion", "lighting"][int(np.argmax(s))]
        assert got == label, (name, s)
        entries[name] = {"model": "motion.onnx", "input": "frames", "shape": [1, c, H, W],
                         "expected_label": label, "scores": [round(float(v), 6) for v in s],
                         "source": "synthetic scene (train_motion.py make_fixtures)"}
    update_expected(entries)
    print("fixtures:", {k: v["scores"] for k, v in entries.items()})


if __name__ == "__main__":
    main()
