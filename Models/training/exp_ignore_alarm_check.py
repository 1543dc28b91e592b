#!/usr/bin/env python3
"""Issue 18, tried and dropped (2026-12-03): could vigilctl refuse an ignore that would silence a
smoke alarm by playing SYNTHETIC alarm beeps to the model (no recordings shipped)? An ignore is
refused if a synthetic temporal-three beep (three 0.5 s beeps, 0.5 s apart, 1.5 s quiet), which
the model scores >= 0.97 on an event label, matches it at the ignore's threshold (vigilctl's:
background best + 0.03, at least 0.7).

  python3 Models/training/exp_ignore_alarm_check.py   (~1 min; needs nonevent_data.py fetch)

Two ignores are checked: (a) the night-call false alarm of `confirm` (eval_sound_rules.py
--confirm; its ignore silences 1 of 4 real smoke recordings, ignore_confirm.py) and (b) an ignore
made from Models/fixtures/sound_smoke.f32, a real smoke alarm's window (the case that matters
most: a household silencing its own alarm after a cooking false alarm). Beeps: sine, sine with
odd harmonics, square and clipped sine, 2.4-4.0 kHz. Result (printed): the night call's ignore
is matched by sine beeps at 2.5-2.7 kHz (0.77 >= 0.70), the real alarm's ignore by no synthetic
beep (best 0.65): the embedding tells a real alarm from a synthetic one, so the check would miss
the dangerous case. Dropped; the way that would work is shipping embeddings of real alarm
recordings beside the model (like the background set), licences permitting.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import eval_sound_rules as er  # noqa: E402
import nonevent_data as nd  # noqa: E402
from rules_replay import raises  # noqa: E402

SR = 16000
KINDS = ("sine", "odd", "square", "clip")


def temporal_three(hz, kind, secs=4.0, amp=0.3):
    t = np.arange(int(secs * SR)) / SR
    on = ((t % 4) < 2.5) & ((t % 1) < 0.5)
    ph = 2 * np.pi * hz * t
    w = {"sine": np.sin(ph), "odd": np.sin(ph) + np.sin(3 * ph) / 3 + np.sin(5 * ph) / 5,
         "square": np.sign(np.sin(ph)), "clip": np.clip(3 * np.sin(ph), -1, 1)}[kind]
    return (amp * on * w).astype(np.float32)


def ignore_of(sess, B, x):
    P, bg = ee.ignore_of(sess, B, x)
    return P, ee.ignore_threshold(bg)


def main():
    sess = ee.session()
    B = ee.background()
    rule = er.shipped_rule(ee.MODEL)
    x = nd.stream("megaglest-data")
    i0 = raises(rule, ee.run(sess, x)[0], er.LABELS, er.HOP_S)[0][0]
    smoke = np.fromfile(os.path.join(ee.MODELS, "fixtures", "sound_smoke.f32"), dtype=np.float32)
    ignores = {"night call (confirm false alarm)": ignore_of(sess, B, ee.alert_evidence(x, i0)),
               "real smoke alarm (fixture)": ignore_of(sess, B, np.concatenate([smoke, smoke, np.zeros(SR, np.float32)]))}
    for name, (P, thr) in ignores.items():
        best = (-1.0, None)
        for kind in KINDS:
            for hz in range(2400, 4100, 100):
                S, E, _ = ee.run(sess, temporal_three(hz, kind))
                alarm = S[:, 1:].max(1) >= 0.97
                if alarm.any():
                    best = max(best, (float((E[alarm] @ P.T).max()), f"{kind} {hz} Hz"))
        print(f"{name}: ignore threshold {thr:.3f}; best synthetic alarm window {best[0]:.3f} ({best[1]}): "
              f"{'caught' if best[0] >= thr else 'NOT caught'}")


if __name__ == "__main__":
    main()
