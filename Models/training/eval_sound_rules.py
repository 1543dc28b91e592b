#!/usr/bin/env python3
"""The sound model judged through vigild's alert rule: false alarms per hour on 14 h of
real non-event audio, door bells and glass breaks Debian ships, and the alert rules chosen
without leakage, reported with Poisson (rates) and Wilson (recall) 95 % intervals and a
chance baseline.

  python3 Models/training/nonevent_data.py fetch          # once: the audio (not in git)
  nice -n 10 python3 Models/training/train_sound.py --cv-only   # held-out window scores, one file per
                                                          # fold as it ends (resumable; ~4 min a fold idle)
  python3 Models/training/eval_sound_rules.py > Models/training/results/sound_rules.txt 2>/dev/null
  python3 Models/training/eval_sound_rules.py --model PATH
  python3 Models/training/eval_sound_rules.py --confirm   # the shipped rule on `confirm` and test + confirm

What may read what:
- the non-event audio is split by package (nonevent_data.PACKAGES, a fixed list): rules are
  chosen on `tune` only; `test` is reported and read by no choice.
- event recall comes from the 5-fold CV of train_sound.py (each window scored by a model
  that never saw its source recording; the folds done so far are used when the CV has not
  finished). Nested: for fold k the rule is chosen on the other folds (and `tune`), then
  applied to fold k, so no choice reads the windows it is reported on. The rule shipped in
  etc/vigil.json was chosen on `tune` + CHOICE_FOLDS (fold 1, the only fold done then); the
  other folds are held out from it and give its recall as they finish.
- the 4 glass breaks and 5 door bells of nonevent_data (Debian packages) were never trained on
  and no choice reads them: held-out recall for the shipped model and rule.
(The training recipe itself was tuned on the CV folds earlier; that leak is older than this
script and not undone by it.)
"""
import ast
import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nonevent_data as nd  # noqa: E402
from rules_replay import Rule, raises, wilson, poisson_interval, configured_rule  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.abspath(os.path.join(HERE, ".."))
N, HOP, SR = 15600, 7800, 16000
HOP_S = HOP / SR
LABELS = ["normal", "glass_breaking", "smoke_alarm", "door_bell"]
ALARMS = ["glass_breaking", "smoke_alarm"]
BUDGET = 0.5          # false alarms / h allowed on `tune` when choosing (half the 1/h target)
CHOICE_FOLDS = [1]     # the CV folds the shipped rule was chosen on (the only one done then); the
                       # others are held out from that choice and report its recall as they finish
THRS = [0.5, 0.7, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999]
FFS = [1, 2, 3]


VIGIL_JSON = os.path.join(MODELS, "..", "etc", "vigil.json")


def model_threshold(model):
    return float(_session(model).get_modelmeta().custom_metadata_map["vigil.threshold"])


def shipped_rule(model):
    """The audio alert of etc/vigil.json as vigild reads it (this checkout's values)."""
    return configured_rule(VIGIL_JSON, LABELS, model_threshold(model))


def previous_rule():
    """etc/vigil.json's audio alert before this evaluation chose the rules (issue 18): glass and
    smoke at the model's 0.97, smoke 0.99 on 2 windows in a row, cooldown 30 s."""
    return Rule(["glass_breaking", "smoke_alarm"], 0.97, label_rules={"smoke_alarm": (0.99, 2)}, cooldown_s=30)


def _session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


EMB_TENSORS = [f"cnn{k}_{t}" for k in range(3) for t in ("gmx_f", "gav_f")] + ["feat"]   # 192 + 262


def _session_with_embedding(path):
    """The model with its CNNs' pooled conv activations as extra outputs (candidates for an
    enrollment embedding; the scores are unchanged). Falls back to the plain model."""
    import onnx
    m = onnx.load(path)
    names = {o for n in m.graph.node for o in n.output}
    if not all(t in names for t in EMB_TENSORS):
        return _session(path)
    for t in EMB_TENSORS:
        m.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def score_windows(sess, x, bs=256, with_emb=False):
    if len(x) < N:
        x = np.pad(x, (0, N - len(x)))
    W = np.lib.stride_tricks.sliding_window_view(x, N)[::HOP]
    S, E = [], []
    for i in range(0, len(W), bs):
        out = sess.run(None, {"audio": np.ascontiguousarray(W[i:i + bs])})
        S.append(out[0])
        if with_emb and len(out) > 1:
            E.append(np.concatenate(out[1:], axis=1).astype(np.float16))
    return (np.concatenate(S), np.concatenate(E) if E else None) if with_emb else np.concatenate(S)


def nonevent_scores(model):
    """{package: scores [n, 4]} for every non-event stream, cached per model file hash (with the
    pooled CNN activations in <package>.emb.npy, for enrollment experiments)."""
    key = hashlib.sha1(open(model, "rb").read()).hexdigest()[:12]
    cache = os.path.join(nd.BUILD, "scores", key)
    os.makedirs(cache, exist_ok=True)
    sess = None
    out = {}
    for pkg in nd.manifest():
        p = os.path.join(cache, pkg + ".npy")
        if not os.path.exists(p):
            sess = sess or _session_with_embedding(model)
            s, e = score_windows(sess, nd.stream(pkg), with_emb=True)
            np.save(p, s)
            if e is not None:
                np.save(os.path.join(cache, pkg + ".emb.npy"), e)
        out[pkg] = np.load(p)
    return out


def fa_count(rule, S_by_pkg, pkgs, by_label=False):
    cnt, per_label, src = 0, {}, {}
    for p in pkgs:
        r = raises(rule, S_by_pkg[p], LABELS, HOP_S)
        cnt += len(r)
        for _, lab, _ in r:
            per_label[lab] = per_label.get(lab, 0) + 1
        if r:
            src[p] = len(r)
    return (cnt, per_label, src) if by_label else cnt


def hours(pkgs):
    m = nd.manifest()
    return sum(nd.audio_seconds(m[p]) for p in pkgs) / 3600


def fmt_rate(k, h):
    lo, hi = poisson_interval(k, h)
    return f"{k} in {h:.2f} h = {k / h:.2f}/h (95 % {lo:.2f}-{hi:.2f})"


# ---------------------------------------------------------------- held-out (CV) events
def load_cv():
    """(scores, meta) of the CV's held-out windows: the whole run's file, else the folds done so far
    (train_sound.py --cv-only keeps each fold's scores as it finishes); None without any."""
    build = os.path.join(HERE, "build")
    p = os.path.join(build, "sound_cv_windows.npz")
    if os.path.exists(p):
        z = np.load(p, allow_pickle=False)
        return z["scores"], [ast.literal_eval(m) for m in z["meta"]]
    S, meta = [], []
    for k in range(1, 6):
        f = os.path.join(build, f"sound_cv_fold{k}.npz")
        if os.path.exists(f):
            z = np.load(f, allow_pickle=False)
            if "meta" in z:
                S.append(z["scores"])
                meta += [ast.literal_eval(m) for m in z["meta"]]
    return (np.concatenate(S), meta) if S else None


def recordings(scores, meta, kind):
    """{clip: (fold, scores [n,4] in window order, event mask)} of positive recordings of `kind`."""
    out = {}
    for i, m in enumerate(meta):
        if m["kind"] == kind:
            out.setdefault(m["clip"], []).append((m["i"], i, m["event"], m["fold"]))
    res = {}
    for clip, rows in out.items():
        rows.sort()
        res[clip] = (rows[0][3], scores[[r[1] for r in rows]], np.array([r[2] for r in rows]))
    return res


def event_recall(rule, label, recs):
    """(recordings caught, recordings, event windows completing the rule's run, event windows):
    a recording is caught when the rule, replayed over it, raises `label`."""
    caught = 0
    hit = tot = 0
    ms, ff = rule.label_rules.get(label, (rule.min_score, rule.for_frames))
    ms = rule.min_score if ms is None else ms
    ff = max(ff, rule.for_frames)
    c = LABELS.index(label)
    for fold, S, ev in recs.values():
        caught += any(lab == label for _, lab, _ in raises(rule, S, LABELS, HOP_S))
        f = S[:, c] >= ms
        run = np.zeros(len(f), int)
        for i in range(len(f)):
            run[i] = run[i - 1] + 1 if f[i] and i else int(f[i])
        hit += int(((run >= ff) & ev).sum())
        tot += int(ev.sum())
    return caught, len(recs), hit, tot


def single_rule(label, thr, ff):
    return Rule([label], thr, for_frames=ff, cooldown_s=30)


def choose(label, recs_inner, S_ne, tune):
    """The rule for `label` with the best inner-fold recall whose false alarms on `tune` stay
    <= BUDGET per hour (recordings caught first for glass, whose events are short; event windows
    completing the rule for smoke, whose recordings are all caught). Where recall cannot tell
    candidates apart (few recordings: often all 0 or all caught), the most sensitive one in the
    budget wins (lowest min_score, then fewest for_frames), as without event folds (recs_inner
    empty): the budget already bounds the false alarms, and breaking ties towards the strictest
    rule would pick a rule that never fires. With no candidate in the budget: the one with the
    fewest false alarms. Reads nothing else.
    Returns (rule, false alarms per hour on tune, budget met)."""
    h = hours(tune)
    best = None
    for thr in THRS:
        for ff in FFS:
            r = single_rule(label, thr, ff)
            k = fa_count(r, S_ne, tune)
            ok = k / h <= BUDGET
            if not recs_inner:
                key = (ok, -thr, -ff) if ok else (ok, -k, -thr, -ff)
            else:
                c, _, hit, _ = event_recall(r, label, recs_inner)
                primary = c if label == "glass_breaking" else hit
                key = (ok, primary, hit, -thr, -ff) if ok else (ok, -k, primary, -thr, -ff)
            if best is None or key > best[0]:
                best = (key, r, k / h)
    return best[1], best[2], best[0][0]


def combined_rule(chosen):
    """One alert for all labels, as etc/vigil.json writes it: each label held to its own rule by
    `label_rules`, the alert's min_score the lowest of them (vigild compares the picked score
    with the alert's min_score after the label rules have gated it)."""
    base = min(r.min_score for r in chosen.values())
    return Rule(list(chosen), base, cooldown_s=30,
                label_rules={lab: (r.min_score, r.for_frames) for lab, r in chosen.items()})


def config_snippet(rule):
    import json
    lr = {lab: {"min_score": ms, "for_frames": ff} for lab, (ms, ff) in rule.label_rules.items()}
    return json.dumps({"labels": rule.labels, "min_score": rule.min_score, "label_rules": lr})


def caught(rule, label, scored):
    """How many of the scored sounds [(name, scores)] raise `label` under `rule`, with its Wilson interval."""
    k = sum(any(lab == label for _, lab, _ in raises(rule, Sx, LABELS, HOP_S)) for _, Sx in scored)
    lo, hi = wilson(k, len(scored))
    return f"{k}/{len(scored)} (Wilson 95 % {lo:.2f}-{hi:.2f})"


def print_raises(rule, S, pkgs, m):
    for p in pkgs:
        for i, lab, sc in raises(rule, S[p], LABELS, HOP_S):
            f, t = nd.file_at(p, i * HOP)
            print(f"  [{m[p]['split']}] {p}: {f} @ {t:.1f} s  {lab} {sc:.3f}")


def nested(label, recs, folds, S, tune):
    """Fold k's recall under the rule chosen on the other folds done (and `tune`)."""
    tot = [0, 0, 0, 0]
    for k in folds:
        outer = {c: v for c, v in recs.items() if v[0] == k}
        inner = {c: v for c, v in recs.items() if v[0] != k}
        if not outer or not inner:
            print(f"  fold {k}: {'no ' + label + ' recording held out' if not outer else 'no other fold to choose on'}")
            continue
        r, fa_tune, ok = choose(label, inner, S, tune)
        got = event_recall(r, label, outer)
        tot = [a + b for a, b in zip(tot, got)]
        print(f"  fold {k}: chosen on folds {sorted({v[0] for v in inner.values()})} + tune: {r.describe()} "
              f"(tune {fa_tune:.2f}/h{'' if ok else ', BUDGET NOT MET'}) -> caught {got[0]}/{got[1]} recordings, "
              f"event windows {got[2]}/{got[3]}")
    return tot


def confirm(model):
    """`--confirm`: etc/vigil.json's rule on the `confirm` packages (game audio fetched after every
    choice here was made; nonevent_data.PACKAGES), alone and with `test`: the audio no choice read."""
    m = nd.manifest()
    S = nonevent_scores(model)
    rule = shipped_rule(model)
    for name, split in (("confirm", ("confirm",)), ("test + confirm", ("test", "confirm"))):
        ps = sorted(p for p in m if m[p]["split"] in split)
        k, per, src = fa_count(rule, S, ps, by_label=True)
        print(f"etc/vigil.json: {rule.describe()}, cooldown {rule.cooldown_s:g} s on {name} ({len(ps)} packages): "
              f"{fmt_rate(k, hours(ps))}; by label {per}; by package {src}")
    # Games ship one recording under several names (megaglest's night ambience: 4 tilesets, one
    # file): each copy is listening time and a raise again. Counted once, as well.
    ps = sorted(p for p in m if m[p]["split"] == "confirm")
    dup_s, kept, raised = 0.0, 0, []
    for p in ps:
        seen = set()
        for f in nd.audio_files(os.path.join(nd.BUILD, "root", p)):
            h = hashlib.sha1(open(f, "rb").read()).hexdigest()
            if h in seen:
                dup_s += len(nd.decode(f)) / nd.SR
            seen.add(h)
        firsts = {}
        for i, lab, sc in raises(rule, S[p], LABELS, HOP_S):
            f, at = nd.file_at(p, int(i * HOP))
            h = hashlib.sha1(open(os.path.join(nd.BUILD, "root", p, f), "rb").read()).hexdigest()
            first = firsts.setdefault(h, f) == f
            kept += first
            raised.append(f"{p}: {f} @ {at:.1f} s {lab} {sc:.3f}{'' if first else ' (a copy of ' + firsts[h] + ')'}")
    print("raised on confirm:\n  " + "\n  ".join(raised))
    h = hours(ps) - dup_s / 3600
    test = sorted(p for p in m if m[p]["split"] == "test")
    kt = fa_count(rule, S, test)
    print(f"confirm with each recording once ({dup_s / 3600:.2f} h of copies left out): {fmt_rate(kept, h)}; "
          f"with test (test's copies not removed): {fmt_rate(kept + kt, h + hours(test))}")


def main():
    model = os.path.join(MODELS, "sound.onnx")
    if "--model" in sys.argv:
        model = sys.argv[sys.argv.index("--model") + 1]
    if "--confirm" in sys.argv:
        return confirm(model)
    m = nd.manifest()
    S = nonevent_scores(model)
    # The packages added after these choices (tune2, confirm) stay out of this report: --confirm.
    m = {p: v for p, v in m.items() if v["split"] in ("tune", "test")}
    allp = sorted(m)
    tune = [p for p in allp if m[p]["split"] == "tune"]
    test = [p for p in allp if m[p]["split"] == "test"]
    ht, hT = hours(tune), hours(test)
    print(f"# sound model through vigild's rule: {os.path.basename(model)}")
    print(f"non-event audio: {hours(allp):.2f} h from {len(allp)} Debian packages "
          f"(tune {ht:.2f} h, test {hT:.2f} h); kinds "
          + ", ".join(f"{k} {hours([p for p in allp if m[p]['kind'] == k]):.2f} h"
                      for k in ("speech", "music", "game", "notification")))
    print("who reads what: rules are chosen (section 3) on `tune` and on the CV folds' held-out event scores;\n"
          "`test`, the outer CV fold of the nested figures and the Debian glass / door-bell sounds are read by no choice.\n"
          "Rates: Poisson exact 95 % intervals; recall: Wilson 95 % intervals.")

    # 1. the configured rule on `test`
    print("\n## 1. the alert rule in etc/vigil.json on `test` (no choice read these packages)")
    shipped, before = shipped_rule(model), previous_rule()
    for name, rule in (("etc/vigil.json", shipped), ("before issue 18's choice", before)):
        k, per, src = fa_count(rule, S, test, by_label=True)
        kt = fa_count(rule, S, tune)
        print(f"{name}: {rule.describe()}, cooldown {rule.cooldown_s:g} s: TEST {fmt_rate(k, hT)}; by label {per}; "
              f"by package {src}; (tune: {fmt_rate(kt, ht)})")
        for kind in ("speech", "music", "game", "notification"):
            ps = [p for p in test if m[p]["kind"] == kind]
            print(f"  test {kind:12s}: {fmt_rate(fa_count(rule, S, ps), hours(ps))}")
    print("what etc/vigil.json's rule raised (split, package: file @ seconds into it, label, score):")
    print_raises(shipped, S, allp, m)

    print("\n## 1b. each label alone (cooldown 30 s) on `tune`: false alarms, the grid the choice reads")
    print("  " + " " * 22 + "".join(f"{t:>7}" for t in THRS))
    for label in ["glass_breaking", "smoke_alarm", "door_bell"]:
        for ff in FFS:
            print(f"  {label:15s} x{ff}:   " + "".join(f"{fa_count(single_rule(label, t, ff), S, tune):7d}" for t in THRS))
    print(f"  (in {ht:.2f} h; the budget {BUDGET}/h allows {int(BUDGET * ht)})")

    # 2. sounds no model and no choice read
    sess = _session(model)
    bells = [(name, score_windows(sess, x)) for name, x in nd.doorbells()]
    glass = [(name, score_windows(sess, x)) for name, x in nd.glass()]
    print("\n## 2. door bells: the 5 door-bell sounds Debian ships (nonevent_data.DOORBELLS)")
    for thr, ff in [(0.5, 1), (0.9, 1), (0.97, 1), (0.97, 2)]:
        print(f"  door_bell >= {thr} x{ff}: caught {caught(single_rule('door_bell', thr, ff), 'door_bell', bells)}")
    for name, Sd in bells:
        print(f"  {name}: max door_bell {Sd[:, 3].max():.3f}, max over labels {dict(zip(LABELS, Sd.max(0).round(3).tolist()))}")
    print("\n## 2b. glass: the 4 game glass-break sounds in these packages (nonevent_data.GLASS; never trained on)")
    for thr, ff in [(0.5, 1), (0.9, 1), (0.97, 1), (0.97, 2), (0.99, 1)]:
        print(f"  glass_breaking >= {thr} x{ff}: caught {caught(single_rule('glass_breaking', thr, ff), 'glass_breaking', glass)}")
    for name, Sg in glass:
        print(f"  {name}: max glass_breaking {Sg[:, 1].max():.3f}")

    # 3. the choice
    cv = load_cv()
    scores, meta = cv if cv else (None, [])
    folds = sorted({x["fold"] for x in meta})
    print(f"\n## 3. rules chosen per label (the shipped one on tune + CV folds {CHOICE_FOLDS}): min_score in {THRS}, for_frames in {FFS}; the best CV recall with "
          f"<= {BUDGET}/h on `tune` (choose() says how ties go)")
    print(f"CV folds with held-out scores: {folds or 'none'} of 1-5 (train_sound.py --cv-only; each fold's model "
          "never saw that fold's source recordings)")
    chosen = {}
    for label in ALARMS:
        recs = recordings(scores, meta, label) if cv else {}
        print(f"\n### {label}")
        if len(folds) >= 2:
            print("nested: the rule for fold k is chosen on the other folds done, and reported on fold k")
            c, n, hit, ev = nested(label, recs, folds, S, tune)
            lo, hi = wilson(c, n)
            wl, wh = wilson(hit, ev)
            durs = [len(recs[x][1]) * HOP_S for x in recs]
            print(f"  NESTED held-out recall: recordings caught {c}/{n} (Wilson 95 % {lo:.2f}-{hi:.2f}); event windows "
                  f"completing the rule {hit}/{ev} ({wl:.2f}-{wh:.2f}; windows of one recording are not independent, "
                  "so this interval is too narrow)")
            chance = np.mean([1 - np.exp(-1.0 / 3600 * d) for d in durs]) if durs else float("nan")
            print(f"  chance baseline: alerts at random at 1/h would catch {chance:.4f} of these recordings")
        inner = {c: v for c, v in recs.items() if v[0] in CHOICE_FOLDS}
        outer = {c: v for c, v in recs.items() if v[0] not in CHOICE_FOLDS}
        final, fa_tune, ok = choose(label, inner, S, tune)
        chosen[label] = final
        kT = fa_count(final, S, test)
        src = f"tune + CV folds {sorted({v[0] for v in inner.values()})}" if inner else \
            "tune only (no CV scores: the most sensitive rule in the budget)"
        print(f"  CHOSEN on {src}: {final.describe()}; tune {fa_tune:.2f}/h{'' if ok else ' (BUDGET NOT MET)'}")
        print(f"  TEST non-event: {fmt_rate(kT, hT)}; target <= 1/h {'met' if kT / hT <= 1 else 'NOT met'}")
        if label == "glass_breaking":
            print(f"  Debian glass breaks (no choice, no model read them): caught {caught(final, label, glass)}")
        for name, part in (("HELD-OUT CV folds " + str(sorted({v[0] for v in outer.values()})), outer),
                           ("the CV folds it was chosen on (not held out from the choice)", inner)):
            if part:
                c, n, hit, ev = event_recall(final, label, part)
                lo, hi = wilson(c, n)
                wl, wh = wilson(hit, ev)
                print(f"  {name}: recordings caught {c}/{n} (Wilson 95 % {lo:.2f}-{hi:.2f}), "
                      f"event windows {hit}/{ev} ({wl:.2f}-{wh:.2f})")

    # 4. the chosen rules as one alert
    rule = combined_rule(chosen)
    print(f"\n## 4. the chosen rules as one alert (cooldown 30 s): {rule.describe()}")
    print(f"  etc/vigil.json alert: {config_snippet(rule)}")
    same = (shipped.describe(), shipped.cooldown_s) == (rule.describe(), rule.cooldown_s)
    print(f"  etc/vigil.json {'holds this rule' if same else 'holds a DIFFERENT rule: ' + shipped.describe()}")
    for name, ps, h in (("TEST", test, hT), ("tune", tune, ht)):
        k, per, src = fa_count(rule, S, ps, by_label=True)
        print(f"  {name}: {fmt_rate(k, h)}; " + ", ".join(
            f"{lab} {fmt_rate(per.get(lab, 0), h)}" for lab in ALARMS) + f"; by package {src}")
    print(f"  Debian glass breaks: caught {caught(rule, 'glass_breaking', glass)}")


if __name__ == "__main__":
    main()
