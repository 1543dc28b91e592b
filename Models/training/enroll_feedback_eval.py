#!/usr/bin/env python3
"""Issue 18: enrolled sounds' false alarms once the household answers them. A device cannot tell a
sound that recurs and raises (a game's sample) from the enrolled sound recurring; the user can:
`vigilctl enroll --ignore --from-alert UUID` (docs/alerts.md). This replays that: per class and
draw, the shipped setting (enroll_online_eval.SHIPPED: the guarded near-miss memory) runs on each
stream of the split as its own device; the earliest false alarm still raised (across all the
pipeline's devices) is answered with an ignore made as vigilctl makes it (its evidence: 2 s
before to 1 s after, `enroll_eval.alert_evidence`; the ignore's threshold as vigilctl sets it;
the shipped-alarm check assumed passed with --force), which then silences every window like it
on every device (ignores are per pipeline, as in vigild); then again, up to K answers.

What the answers cost: the held-out clips of the class (each alone, as issue 18.5 measures),
raised by the enrolled threshold (for_frames windows in a row), before and after the ignores.
Tried and dropped: refusing an ignore whose prototypes match the enrolled sound's own at the
ignore's threshold (as the alarm check does for alarms): it refused nearly every answer (a false
alarm of an enrolled sound is close to its prototypes by definition; confirm: 1.30 -> 1.26/h
with 10 answers).

  python3 Models/training/enroll_feedback_eval.py [--split confirm|test|tune] [--copies] [--ignore-copies]
  (output: Models/training/results/enroll_feedback_<split>.txt; ~2 min with the stream embeddings cached)
  --copies: the enrolled sound's prototypes include its clips' altered copies, as vigilctl makes
  them since 2026-12-05 (ClipAlteration.positive); output enroll_feedback_<split>_copies.txt
  --ignore-copies: each answer's ignore also gets the prototypes of its evidence's altered copies
  (a trial; vigilctl makes ignores from the clip alone); output ..._ignorecopies.txt
  --split tune: enroll_lived_eval.py's tune streams and the tune draws 0-4 (for choosing)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import enroll_lived_eval as el  # noqa: E402
import enroll_online_eval as eo  # noqa: E402
import nonevent_data as nd  # noqa: E402

ANSWERS = [0, 1, 3, 10]     # false alarms answered per pipeline (class and draw)


def hits_in_a_row(hit, ff):
    if ff == 1:
        return bool(hit.any())
    return bool(np.any(hit[1:] & hit[:-1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="confirm", choices=["confirm", "test", "tune"])
    ap.add_argument("--ignore-copies", action="store_true", help="each answer's ignore with its evidence's altered copies too")
    ap.add_argument("--copies", action="store_true", help="prototypes of the clips' altered copies too (vigilctl since 2026-12-05)")
    a = ap.parse_args()
    out = os.path.join(eo.HERE, "results",
                       f"enroll_feedback_{a.split}{'_copies' if a.copies else ''}{'_ignorecopies' if a.ignore_copies else ''}.txt")
    say = ee.Report()
    S = eo.SHIPPED
    ff = S.get("for_frames", 1)
    if a.split == "tune":
        from add_embedding import PROJECTION_PACKAGES
        sess, m = ee.session(), ee.manifest()
        pkgs = sorted(p for p in m if (m[p]["split"] == "tune" and p not in PROJECTION_PACKAGES) or m[p]["split"] == "tune2")
        key, E = eo.stream_embeddings(sess, pkgs)
        emb, D = eo.clip_embeddings(sess)
        B, draws = ee.background(), list(ee.TUNE_DRAWS)
    else:
        sess, pkgs, key, E, emb, D, B, draws = eo.held_out_split(a.split)
    import exp_enroll_augment as ea

    def ignore_of(x):
        """The answer's ignore: ee.ignore_of, or with its evidence's altered copies (--ignore-copies)."""
        if not a.ignore_copies:
            return ee.ignore_of(sess, B, x)
        P = []
        for y in [x] + [ea.ALTER[n](x) for n in ea.SETS[ea.SHIPPED]]:
            _, e, W = ee.run(sess, y)
            P.append(ee.prototypes([(e, ee.loud(W))], "clip"))
        P = np.concatenate(P)
        return P, float((B @ P.T).max())
    hours = sum(len(E[p]) for p in pkgs) * eo.HOP_S / 3600
    audio = {p: nd.stream(p) for p in pkgs}
    copies = None
    if a.copies:
        enrolled = {q for cat in ee.CLASSES for d in draws for q in D[cat][d][0]}
        alt = ea.altered_embeddings(sess, enrolled, ea.SETS[ea.SHIPPED])
        copies = {q: [alt[(q, n)] for n in ea.SETS[ea.SHIPPED]] for q in enrolled}
    say(f"# Enrolled sounds' false alarms answered with --ignore --from-alert ({a.split}: {len(pkgs)} streams, {hours:.2f} h; "
        f"draws {draws[0]}-{draws[-1]}; shipped setting {S}; model {key}{'; prototypes with altered copies' if a.copies else ''}{'; ignores with altered copies' if a.ignore_copies else ''})")
    total = {k: [0, 0, 0] for k in ANSWERS}      # false alarms, clips raised, clips
    for cat in ee.CLASSES:
        per = {k: [0, 0, 0] for k in ANSWERS}
        for d in draws:
            P = eo.enrolled_prototypes(emb, D[cat][d][0], copies)
            t0 = eo.enrolled_threshold(B, emb, D[cat][d][0], S["floor"], copies)
            sims = {p: (E[p] @ P.T).max(1) for p in pkgs}
            bars = {p: eo.shipped_bars(E[p], sims[p], t0, S) for p in pkgs}
            silenced = {p: np.zeros(len(E[p]), bool) for p in pkgs}
            clips = [emb[q][0] for q in D[cat][d][1]]
            clip_sims = [(c @ P.T).max(1) for c in clips]
            clip_silenced = [np.zeros(len(c), bool) for c in clips]
            tried = set()       # raises answered already (an ignore that missed its own window leaves it raising)
            for k in range(max(ANSWERS) + 1):
                ups = {p: el.raises(np.arange(len(E[p])), (sims[p] >= bars[p]) & ~silenced[p], ff) for p in pkgs}
                if k in ANSWERS:
                    per[k][0] += sum(len(u) for u in ups.values())
                    per[k][1] += sum(hits_in_a_row((s >= t0) & ~z, ff) for s, z in zip(clip_sims, clip_silenced))
                    per[k][2] += len(clips)
                first = min(((i, p) for p, u in ups.items() for i in u if (p, i) not in tried), default=None)
                if first is None or k == max(ANSWERS):
                    for later in ANSWERS:     # nothing left to answer: the same figures for more answers
                        if later > k:
                            per[later][0] += sum(len(u) for u in ups.values())
                            per[later][1] += sum(hits_in_a_row((s >= t0) & ~z, ff) for s, z in zip(clip_sims, clip_silenced))
                            per[later][2] += len(clips)
                    break
                i, p = first
                # The alert's window is where the rule raised (for_frames in a row end at i).
                ig, bg = ignore_of(ee.alert_evidence(audio[p], i))
                thr = ee.ignore_threshold(bg)
                for q in pkgs:
                    silenced[q] |= (E[q] @ ig.T).max(1) >= thr
                for j, c in enumerate(clips):
                    clip_silenced[j] |= (c @ ig.T).max(1) >= thr
                tried.add((p, i))
        line = " ".join(f"{k} answered: {fa / (hours * len(draws)):.2f}/h, recall {kr}/{n} = {kr / n:.2f};" for k, (fa, kr, n) in per.items())
        say(f"{cat:16s} {line}")
        for k in ANSWERS:
            for x in range(3):
                total[k][x] += per[k][x]
    say("all classes: " + " ".join(f"{k} answered: {fa / (hours * len(draws) * len(ee.CLASSES)):.2f}/h per class, recall {kr / n:.2f};"
                                   for k, (fa, kr, n) in total.items()))
    say("(recall: the held-out clips alone at the enrolled threshold, for_frames in a row, not silenced by the answers' ignores)")
    say.write(out)


if __name__ == "__main__":
    main()
