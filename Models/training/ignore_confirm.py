#!/usr/bin/env python3
"""Issue 18: the per-home answer to the default smoke rule's false alarms on `confirm` (megaglest's
night ambience, eval_sound_rules.py --confirm): `vigilctl enroll --ignore --from-alert` on the
FIRST of them (its evidence: 2 s before to 1 s after the window), then etc/vigil.json's rule again
on every `confirm` package with the ignore applied, and on the glass and smoke recordings (the
model's training data: whether they still raise is what the ignore may cost). The ignore's
threshold is vigilctl's (background best match + 0.03, at least Enroller.ignoreFloor 0.7).
Nothing is chosen here.

  python3 Models/training/ignore_confirm.py   (~1 min after eval_sound_rules.py --confirm)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import eval_sound_rules as er  # noqa: E402
import nonevent_data as nd  # noqa: E402
from rules_replay import raises  # noqa: E402



def main():
    sess = ee.session()
    rule = er.shipped_rule(ee.MODEL)
    m = nd.manifest()
    pkgs = sorted(p for p in m if m[p]["split"] == "confirm")
    B = ee.background()
    runs = {p: ee.run(sess, nd.stream(p))[:2] for p in pkgs}
    first = next((p, r[0]) for p in pkgs for r in [raises(rule, runs[p][0], er.LABELS, er.HOP_S)] if r)
    p0, (i0, lab0, sc0) = first
    f0, at0 = nd.file_at(p0, i0 * er.HOP)
    protos = [ee.ignore_of(sess, B, ee.alert_evidence(nd.stream(p0), i0))]
    thr = ee.ignore_threshold(protos[0][1])
    print(f"# ignore enrolled from the first confirm false alarm: {p0}: {f0} @ {at0:.1f} s ({lab0} {sc0:.3f}); threshold {thr:.3f}")

    before = after = 0
    for p in pkgs:
        S, E = runs[p]
        r0 = raises(rule, S, er.LABELS, er.HOP_S)
        r1 = raises(rule, ee.suppressed(S, E, protos, ee.IGNORE_MARGIN, ee.IGNORE_FLOOR)[0], er.LABELS, er.HOP_S)
        before, after = before + len(r0), after + len(r1)
        for i, lab, sc in r1:
            f, at = nd.file_at(p, i * er.HOP)
            print(f"  still raised: {p}: {f} @ {at:.1f} s {lab} {sc:.3f}")
    h = er.hours(pkgs)
    print(f"confirm ({h:.2f} h): {before} raises before ({before / h:.2f}/h), {after} with the ignore ({after / h:.2f}/h)")
    POS = ee.event_recordings(sess)
    k0, k1, win, wins = ee.recordings_raising(POS, rule, protos, ee.IGNORE_MARGIN, ee.IGNORE_FLOOR)
    print(f"glass + smoke recordings raising: {k0}/{len(POS)} before, {k1}/{len(POS)} with the ignore ({win}/{wins} of their windows ignored)")


if __name__ == "__main__":
    main()
