#!/usr/bin/env python3
"""Issue 18: where the enrolled sounds' test false alarms come from, by non-event package and
kind (speech, music, game, notification), for the shipped per-device setting (near misses:
DeviceCalibration.chosen). Read after the choice to describe it; nothing is chosen here.

  python3 Models/training/enroll_fa_sources.py [--split test|confirm] [--setting shipped|fixed-floor]
      (~1 min with enroll_online_eval.py's caches; output on stdout: results/enroll_fa_sources*.txt)

`--files` also lists each false alarm's source file (read after the choice, to see whether a
"false alarm" is in fact the enrolled sound in a game's effects: none was, 2026-12-03).
`--split confirm` counts on game audio no choice read and fetched only after the shipped setting
had been chosen and run on test (nonevent_data.py, PACKAGES); `--setting fixed-floor` is the
setting shipped before it (near misses with admit 0.1 and one floor, 0.6), for comparison.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import enroll_online_eval as eo  # noqa: E402
import nonevent_data as nd  # noqa: E402

SETTINGS = {"shipped": eo.SHIPPED,
            "fixed-floor": {"near_misses": 64, "admit": 0.1, "margin": 0.1, "cap": 1.0, "floor": 0.6}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="test", choices=["test", "confirm"])
    ap.add_argument("--setting", default="shipped", choices=sorted(SETTINGS))
    ap.add_argument("--files", action="store_true", help="also list the source file of every false alarm")
    a = ap.parse_args()
    S = SETTINGS[a.setting]
    sess, test, _, E, emb, D, B, draws = eo.held_out_split(a.split)
    m = ee.manifest()
    hours = {p: len(E[p]) * ee.HOP_S / 3600 * len(draws) for p in test}
    kind = {p: m[p].get("kind", "?") for p in test}
    by, files = {}, {}
    for cat in ee.CLASSES:
        for d in draws:
            P = ee.prototypes([emb[q] for q in D[cat][d][0]], "clip")
            t0 = eo.enrolled_threshold(B, emb, D[cat][d][0], S["floor"])
            for p in test:
                s = (E[p] @ P.T).max(1)
                bars = eo.shipped_bars(E[p], s, t0, S)
                raised = eo.raise_windows(s, bars, S.get("for_frames", 1))
                by[(cat, p)] = by.get((cat, p), 0) + len(raised)
                if a.files:
                    for i in raised:
                        f, _ = nd.file_at(p, int(i * ee.HOP))     # already relative to the package's root
                        files[(cat, p, f)] = files.get((cat, p, f), 0) + 1
    total = sum(by.values())
    print(f"# {a.split} false alarms of enrolled sounds by source (draws {draws[0]}-{draws[-1]}, {a.setting}: near misses {S['near_misses']}, "
          f"admit {S['admit']}, margin {S['margin']}, cap {S['cap']}" + (f" and T0 + {S['cap_above']}" if "cap_above" in S else "")
          + f", floor {S['floor']}, guard {S.get('guard', 0)}, learn {S.get('learn', 'blocked')}, for_frames {S.get('for_frames', 1)}): {total} in all")
    h = sum(hours.values())
    print(f"per class over {h / len(draws):.2f} h x {len(draws)} draws: " + ", ".join(
        f"{c} {sum(by[(c, p)] for p in test) / h:.2f}/h ({ee.poisson_lower(sum(by[(c, p)] for p in test), h):.2f}-"
        f"{ee.poisson_interval_upper(sum(by[(c, p)] for p in test), h):.2f})" for c in ee.CLASSES))
    for k in sorted(set(kind.values())):
        pk = [p for p in test if kind[p] == k]
        n = sum(v for (c, p), v in by.items() if p in pk)
        h = sum(hours[p] for p in pk)
        per = ", ".join(f"{c} {sum(by[(c, p)] for p in pk) / h:.2f}" for c in ee.CLASSES)
        print(f"{k:13s} {len(pk):2d} packages, {h / len(draws):5.2f} h: {n:3d} false alarms ({per} per h)")
    for p in sorted(test, key=lambda p: -sum(by[(c, p)] for c in ee.CLASSES)):
        n = sum(by[(c, p)] for c in ee.CLASSES)
        if n:
            print(f"  {p:32s} {kind[p]:13s} {hours[p] / len(draws):5.2f} h: {n:3d} ("
                  + ", ".join(f"{c} {by[(c, p)]}" for c in ee.CLASSES if by[(c, p)]) + ")")

    if a.files:
        print("\nby source file (class, package, false alarms over the draws, file):")
        for (c, p, f), n in sorted(files.items()):
            print(f"  {c:16s} {p:24s} {n:3d} {f}")


if __name__ == "__main__":
    main()
