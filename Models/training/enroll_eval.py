#!/usr/bin/env python3
"""Issue 18 item 5: enrolling a sound from 5 clips with the sound model's `embedding` output,
calibrated the way vigilctl does it (Sources/VigilCore/Enrollment/Enroller.swift), judged
through vigild's alert rule; and the `--ignore` case.

  python3 Models/training/nonevent_data.py fetch     # once: 14 h of real non-event audio (not in git)
  python3 Models/training/enroll_eval.py             # ~5 min; embeddings cached in build/nonevent/emb/
  (output: Models/training/results/enroll_eval.txt)

Enrollment, as vigilctl: every clip windowed like vigild (15600 samples, hop 7800); a clip's
prototype is the mean embedding of its loud windows (a 25 ms frame within 10 dB of the clip's
loudest), unit length (`clip`), or, as a variant, every loud window is a prototype (`window`);
a window's similarity is its highest cosine to a prototype. Threshold: the highest similarity
of any window of the model's background set (Models/sound-background.i8: tune Asterisk
prompts and music on hold) plus a margin, at least a floor. The enrolled label alerts through vigild's rule (for_frames 1,
cooldown 30 s: rules_replay.py); since vigild maps the threshold onto min_score, the rule
raises exactly when the similarity reaches the threshold.

What may read what: classes are ESC-50 categories that are not model labels
(add_embedding.HELD_OUT_CLASSES: the embedding's projection and standardisation leave them
out, but the CNNs saw their clips as `normal`, so recall is optimistic; no retraining without
them was done). Per class 10 random draws of 5 enrolled clips (whole Freesound sources,
so the held-out clips are other recordings); draws 0-4 are `tune`, 5-9 `test`. The variant,
margin and floor are chosen on the tune draws and the `tune` non-event packages the projection
did not read (most classes at recall >= 0.8 with <= 1 false alarm/h, then mean recall); recall on the test draws' held-out clips and
false alarms per hour on the `test` packages are reported. Tune and test draws of a class
share its few clips (a clip held out in a test draw may have been enrolled in a tune draw),
so "test" here is a weaker split than the non-event one.

The `--ignore` case: every alert the shipped rule raises in the first half of each `test`
non-event stream is enrolled as an ignore from its own audio (2 s before to 1 s after the
raising window, as the alert's evidence WAV holds), like `vigilctl enroll --ignore --from-alert`;
reported: the shipped rule's false alarms in the second halves before and after, and whether
the glass / smoke training clips still raise (recall unchanged?).
"""
import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nonevent_data as nd  # noqa: E402
import sound_data as sd  # noqa: E402
import eval_sound_rules as er  # noqa: E402
from add_embedding import HELD_OUT_CLASSES, PROJECTION_PACKAGES  # noqa: E402
from rules_replay import Rule, raises, wilson, poisson_upper  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.abspath(os.path.join(HERE, ".."))
MODEL = os.path.join(MODELS, "sound.onnx")
BACKGROUND = os.path.join(MODELS, "sound-background.i8")
N, HOP, SR = 15600, 7800, 16000
HOP_S = HOP / SR
LABELS = ["normal", "glass_breaking", "smoke_alarm", "door_bell"]
CLASSES = HELD_OUT_CLASSES
SHOTS = 5
DRAWS = 10
TUNE_DRAWS = range(0, 5)
BUDGET = 1.0            # false alarms / h per class on `tune` when choosing (the target)
TARGET_RECALL = 0.8
MARGINS = [0.0, 0.03, 0.08, 0.12, 0.2, 0.3]
FLOORS = [0.0, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]   # threshold = max(background best + margin, floor)
VARIANTS = ["clip", "window"]
IGNORE_FLOORS = [0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98]
LOUD_DB = 10
OUT = os.path.join(HERE, "results", "enroll_eval.txt")


def poisson_lower(k, hours):
    """Two-sided 95 % exact (chi-square) interval on a rate per hour after k events: lower end."""
    from scipy.stats import chi2
    return chi2.ppf(0.025, 2 * k) / 2 / hours if k else 0.0


def poisson_interval_upper(k, hours):
    return poisson_upper(k, hours, 0.975)


def session():
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])


def run(sess, x, bs=256):
    """(scores [n, 4], embeddings [n, D]) of vigild's windows of x."""
    W = sd.windows(x)
    S, E = [], []
    for i in range(0, len(W), bs):
        s, e = sess.run(None, {"audio": np.ascontiguousarray(W[i:i + bs], dtype=np.float32)})
        S.append(s)
        E.append(e)
    return np.concatenate(S), np.concatenate(E), W


def loud(W):
    db = np.array([sd.frame_db(w).max() for w in W])
    return db >= db.max() - LOUD_DB


def background():
    q = np.fromfile(BACKGROUND, dtype=np.int8).astype(np.float32) / 127
    B = q.reshape(-1, int(session().get_outputs()[1].shape[1]))
    return B / (np.linalg.norm(B, axis=1, keepdims=True) + 1e-9)


def manifest():
    """The fetched packages (the manifest fetch writes; else whatever pcm/ already holds)."""
    try:
        return nd.manifest()
    except FileNotFoundError:
        out = {}
        for pkg, ver, kind, split in nd.PACKAGES:
            p = os.path.join(nd.PCM, pkg + ".npy")
            if os.path.exists(p):
                n = np.load(p, mmap_mode="r").shape[0]
                out[pkg] = {"kind": kind, "split": split, "seconds": n / SR, "audio_seconds": n / SR}
        return out


def nonevent(sess, m):
    """{package: (scores, embeddings float16)}, cached per model hash."""
    key = hashlib.sha1(open(MODEL, "rb").read()).hexdigest()[:12]
    cache = os.path.join(nd.BUILD, "emb", key)
    os.makedirs(cache, exist_ok=True)
    out = {}
    for pkg in sorted(m):
        p = os.path.join(cache, pkg + ".npz")
        if not os.path.exists(p):
            s, e, _ = run(sess, nd.stream(pkg))
            np.savez(p, scores=s, emb=e.astype(np.float16))
        z = np.load(p)
        out[pkg] = (z["scores"], z["emb"])
    return out


def hours(m, pkgs):
    return sum(nd.audio_seconds(m[p]) if "files" in m[p] else m[p]["audio_seconds"] for p in pkgs) / 3600


def prototypes(clip_embs, variant):
    if variant == "clip":
        P = np.stack([e[l].mean(0) if l.any() else e.mean(0) for e, l in clip_embs])
    else:
        P = np.concatenate([e[l] if l.any() else e for e, l in clip_embs])
    return P / np.linalg.norm(P, axis=1, keepdims=True)


def alerts(sim, thr, cooldown=30.0):
    """Raises of vigild's rule on the enrolled label (score >= bar <=> similarity >= threshold;
    for_frames 1, clear below the bar, cooldown 30 s): rules_replay.replay, only faster (checked
    equal to it on 200 random streams when this was written)."""
    n, last, active, prev = 0, -np.inf, False, -2
    for i in np.flatnonzero(sim >= thr):
        if i != prev + 1:
            active = False
        prev = i
        if active or i * HOP_S - last < cooldown:
            continue
        active, last, n = True, i * HOP_S, n + 1
    return n


class Report:
    """A results file: each line printed as it comes (long runs show progress) and kept, then written."""

    def __init__(self):
        self.lines = []

    def __call__(self, s=""):
        print(s, flush=True)
        self.lines.append(s)

    def write(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(self.lines) + "\n")


def threshold(B, P, margin, floor):
    """vigilctl's calibration (Enroller.swift): the background's best match plus the margin, at least the floor."""
    return min(0.995, max(float((B @ P.T).max()) + margin, floor))


def draws(cc, rng):
    """DRAWS splits of a class's clips: 5 enrolled (whole sources), the other sources held out."""
    out = []
    srcs = sorted(set(c[3] for c in cc))
    for _ in range(DRAWS):
        rng.shuffle(srcs)
        enroll, rest = [], []
        for s in srcs:
            items = [c[0] for c in cc if c[3] == s]
            (enroll if len(enroll) < SHOTS else rest).extend(items)
        rest += enroll[SHOTS:]
        out.append((enroll[:SHOTS], rest))
    return out


def main():
    say = Report()

    sess = session()
    m = manifest()
    # The projection in the embedding was fitted on some tune packages: choices read the others.
    tune = [p for p in m if m[p]["split"] == "tune" and p not in PROJECTION_PACKAGES]
    test = [p for p in m if m[p]["split"] == "test"]
    NE = nonevent(sess, m)
    NEemb = {p: NE[p][1].astype(np.float32) for p in m}
    B = background()
    h_tune, h_test = hours(m, tune), hours(m, test)
    say(f"# Enrollment with sound.onnx's embedding ({B.shape[1]} values), calibrated as vigilctl does")
    say(f"non-event audio: tune {h_tune:.2f} h ({len(tune)} packages not read by the projection), test {h_test:.2f} h ({len(test)} packages); "
        f"background set {len(B)} windows")
    clips = sd.esc_clips()
    emb = {}
    for cat in CLASSES:
        for path, c, _, src in clips:
            if c == cat:
                _, e, W = run(sess, sd.read_wav(path))
                emb[path] = (e, loud(W))
    rng = np.random.default_rng(18)
    D = {cat: draws(sorted([c for c in clips if c[1] == cat]), rng) for cat in CLASSES}

    def sims(cat, d, variant, pkgs):
        """The draw's prototypes, their background best match, the held-out clips' and the streams' similarities."""
        enroll, rest = D[cat][d]
        P = prototypes([emb[p] for p in enroll], variant)
        return (float((B @ P.T).max()), [(emb[p][0] @ P.T).max(1) for p in rest],
                [(NEemb[p] @ P.T).max(1) for p in pkgs])

    def score(s, margin, floor):
        bg, held, streams = s
        thr = min(0.995, max(bg + margin, floor))
        return thr, sum(bool((h >= thr).any()) for h in held), len(held), sum(alerts(x, thr) for x in streams)

    # --- choice on tune draws + tune packages
    say("\n## Choice (tune draws 0-4, tune packages): recall of held-out clips, false alarms/h")
    grid = {}
    for variant in VARIANTS:
        S = {cat: [sims(cat, d, variant, tune) for d in TUNE_DRAWS] for cat in CLASSES}
        for margin in MARGINS:
            for floor in FLOORS:
                per = {}
                for cat in CLASSES:
                    k = n = fa = 0
                    for s in S[cat]:
                        _, a, b, f = score(s, margin, floor)
                        k, n, fa = k + a, n + b, fa + f
                    per[cat] = (k / n, fa / (h_tune * len(TUNE_DRAWS)))
                met = sum(r >= TARGET_RECALL and f <= BUDGET for r, f in per.values())
                recall = np.mean([r for r, _ in per.values()])
                rate = np.mean([f for _, f in per.values()])
                grid[(variant, margin, floor)] = (met, recall, rate)
                say(f"  {variant:6s} margin {margin:.2f} floor {floor:.2f}: {met} classes at recall >= {TARGET_RECALL} and "
                    f"<= {BUDGET}/h; mean recall {recall:.2f}, mean false alarms {rate:.2f}/h; "
                    + " ".join(f"{c}:{r:.2f}@{f:.2f}" for c, (r, f) in per.items()))
    _, _, variant, margin, floor = max((met, r, v, mg, fl) for (v, mg, fl), (met, r, _) in grid.items())
    say(f"chosen: {variant}, margin {margin}, floor {floor} (most classes at recall >= {TARGET_RECALL} with "
        f"<= {BUDGET} false alarms/h on tune, then highest mean tune recall)")

    # --- report on test draws + test packages
    say(f"\n## Test (draws 5-9, test packages {h_test:.2f} h): {variant}, margin {margin}, floor {floor}")
    met = 0
    for cat in CLASSES:
        k = n = fa = 0
        thrs = []
        for d in range(DRAWS):
            if d in TUNE_DRAWS:
                continue
            thr, a, b, f = score(sims(cat, d, variant, test), margin, floor)
            thrs.append(thr)
            k, n, fa = k + a, n + b, fa + f
        h = h_test * (DRAWS - len(TUNE_DRAWS))
        lo, hi = wilson(k, n)
        good = k / n >= 0.8 and fa / h <= 1.0
        met += good
        say(f"{cat:16s} recall {k:2d}/{n:2d} = {k / n:.2f} (Wilson {lo:.2f}-{hi:.2f}; draws share clips: too narrow), "
            f"false alarms {fa}/{h:.1f} h = {fa / h:.2f}/h (Poisson 95 % {poisson_lower(fa, h):.2f}-{poisson_interval_upper(fa, h):.2f}), thresholds {min(thrs):.3f}-{max(thrs):.3f}"
            f"{'  target met' if good else ''}")
    say(f"classes with recall >= 0.8 at <= 1 false alarm/h: {met} of {len(CLASSES)} (target: 3 of 5)")
    say(f"chance baseline: a detector firing on every held-out clip has recall 1.00 at one false alarm per "
        f"cooldown (120/h); one firing at random at 1/h catches a 5 s clip with p ~ 0.001")

    # The ignore case needs the shipped rule's false alarms, and the tune packages the projection
    # did not read have none in their first halves: it chooses on every tune package (the
    # projection learned those packages' 5 s segments apart, which may flatter an ignore there).
    ignore_case(say, sess, m, [p for p in m if m[p]["split"] == "tune"], test, NE, B, margin)
    say.write(OUT)


IGNORE_MARGIN, IGNORE_FLOOR = 0.03, 0.7     # Enroller.defaultMargin, Enroller.ignoreFloor


def alert_evidence(x, i):
    """The audio `vigilctl enroll --from-alert` takes for an alert at window i of x: 2 s before to 1 s after."""
    return x[max(0, i * HOP - 2 * SR):i * HOP + N + SR]


def ignore_of(sess, B, x, variant="clip"):
    """The ignore vigilctl makes of the clip x: (prototypes, the background's best match to them)."""
    _, e, W = run(sess, x)
    P = prototypes([(e, loud(W))], variant)
    return P, float((B @ P.T).max())


def ignore_threshold(bg, margin=IGNORE_MARGIN, floor=IGNORE_FLOOR):
    """vigilctl's threshold for an ignore: the background's best match + margin, at least the floor."""
    return min(0.995, max(bg + margin, floor))


def event_recordings(sess):
    """(scores, embeddings) of the glass clips and smoke recordings: the model's training data,
    the only event recordings here; whether they still raise is what an ignore may cost."""
    pos = [path for path, c, _, _ in sd.esc_clips() if c == "glass_breaking"] + sd.smoke_recordings()
    return [run(sess, sd.read_wav(path))[:2] for path in pos]


def suppressed(S, E, protos, margin, floor):
    """The scores with the windows ignore enrollments match zeroed on every alerting label (as
    vigild applies an ignore), and which windows those were. protos: [(prototypes, background
    best match, ...)]; each ignore's threshold is vigilctl's: best match + margin, at least floor."""
    S, E = S.copy(), E.astype(np.float32)
    hit = np.zeros(len(S), bool)
    for P, bg, *_ in protos:
        hit |= (E @ P.T).max(1) >= ignore_threshold(bg, margin, floor)
    S[hit, 1:] = 0
    return S, hit


def recordings_raising(POS, rule, protos, margin, floor):
    """(event recordings raising, raising with the ignores, their windows ignored, their windows)."""
    k0 = k1 = win = wins = 0
    for S, E in POS:
        S2, hit = suppressed(S, E, protos, margin, floor)
        k0 += bool(raises(rule, S, LABELS, HOP_S))
        k1 += bool(raises(rule, S2, LABELS, HOP_S))
        win, wins = win + int(hit.sum()), wins + len(hit)
    return k0, k1, win, wins


def ignore_case(say, sess, m, tune, test, NE, B, margin):
    say("\n## --ignore: every shipped-rule false alarm in the first half of each stream enrolled as an ignore "
        "from its own 2 s before to 1 s after (as --from-alert), false alarms counted in the second halves")
    rule = er.shipped_rule(MODEL)
    POS = event_recordings(sess)

    def enrollments(pkgs, variant):
        out, first = [], 0
        for p in pkgs:
            S = NE[p][0]
            r = raises(rule, S[:len(S) // 2], LABELS, HOP_S)
            first += len(r)
            x = nd.stream(p) if r else None
            for i, lab, _ in r:
                out.append(ignore_of(sess, B, alert_evidence(x, i), variant) + (p, lab))
        return out, first

    def judge(pkgs, protos, floor):
        before = after = again = 0
        hs = 0.0
        for p in pkgs:
            S, E = NE[p]
            h = len(S) // 2
            again += len(raises(rule, suppressed(S[:h], E[:h], protos, margin, floor)[0], LABELS, HOP_S))
            before += len(raises(rule, S[h:], LABELS, HOP_S))
            after += len(raises(rule, suppressed(S[h:], E[h:], protos, margin, floor)[0], LABELS, HOP_S))
            hs += (len(S) - h) * HOP_S / 3600
        return (again, before, after, hs) + recordings_raising(POS, rule, protos, margin, floor)

    def show(name, pkgs, protos, first, floor, variant):
        again, before, after, hs, k0, k1, win, wins = judge(pkgs, protos, floor)
        say(f"  {name} {variant:6s} floor {floor:.2f}: {first} false alarms in the first halves -> {len(protos)} ignores "
            f"({again} of them fire again); second halves "
            f"({hs:.2f} h): {before} before ({before / hs:.2f}/h), {after} after ({after / hs:.2f}/h); glass + smoke "
            f"recordings raising: {k0}/{len(POS)} before, {k1}/{len(POS)} after ({win}/{wins} of their windows ignored)")
        return k0 - k1, after, again

    # Chosen on tune: every glass / smoke recording still raising, then the fewest false alarms
    # in the second halves, then the fewest enrolled false alarms firing again.
    options = []
    for v in VARIANTS:
        protos, first = enrollments(tune, v)
        for floor in IGNORE_FLOORS:
            options.append((show("tune", tune, protos, first, floor, v), v, floor))
    _, iv, chosen = min(options)
    say(f"chosen for ignores: {iv} prototypes, floor {chosen} (on tune: no recording lost, then fewest false alarms)")
    protos, first = enrollments(test, iv)
    show("test", test, protos, first, chosen, iv)
    say("  (the recordings are the model's training data, and both lines read them: recall kept here says"
        " little about unseen glass)")


if __name__ == "__main__":
    main()
