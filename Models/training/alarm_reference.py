#!/usr/bin/env python3
"""The alarm reference set vigilctl checks an ignore against (issue 18): embeddings of the windows
of the 4 real smoke-alarm recordings (../shared/data/sound/smoke_alarm, BigSoundBank, CC0) that
the shipped model itself scores at or above its threshold on smoke_alarm. An ignore zeroes every
window like it, real events included; one made from a bird call in the alarm band silenced 1 of
the 4 recordings (Models/sound.md, "Smoke on audio nothing had read"), and synthetic beeps do not
stand in for real alarms (exp_ignore_alarm_check.py). `vigilctl enroll --ignore` refuses, without
--force, an ignore that would silence any of these windows (Enroller, `alarmWindowsSilenced`).

  python3 Models/training/alarm_reference.py     # writes Models/sound-alarms.i8 and declares it in
                                                 # sound.onnx's metadata (vigil.embedding_alarms);
                                                 # needs ../shared/data; the graph is not touched
  python3 Models/training/alarm_reference.py --evaluate   # what the check refuses (below; ~2 min,
                                                 # needs nonevent_data.py fetch)

--evaluate: (1) an ignore made from each real recording (as --from-alert: 2 s before to 1 s after
its first alarm window) against the OTHER three recordings' windows: would an alarm not in the
set be protected? (2) an ignore of every false alarm etc/vigil.json's rule raises on the `test`
and `confirm` audio: how many would be refused (the cost: a nuisance the household must --force)?
Same format as the background set: int8 rows (value x 127) of the embedding's size.
"""
import os
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import sound_data as sd  # noqa: E402

ALARMS = "sound-alarms.i8"
KEY = "vigil.embedding_alarms"


def alarm_rows(sess, threshold):
    """Embeddings of the smoke recordings' windows the model scores >= threshold on smoke_alarm."""
    smoke = ee.LABELS.index("smoke_alarm")
    rows = []
    for path in sd.smoke_recordings():
        S, E, _ = ee.run(sess, sd.read_wav(path))
        rows.append(E[S[:, smoke] >= threshold])
        print(f"{os.path.basename(path)}: {int((S[:, smoke] >= threshold).sum())} of {len(S)} windows at or above {threshold}")
    return np.concatenate(rows)


def evaluate():
    import eval_sound_rules as er
    import nonevent_data as nd
    from rules_replay import raises
    sess, B = ee.session(), ee.background()
    thr_model = float({p.key: p.value for p in onnx.load(ee.MODEL).metadata_props}["vigil.threshold"])
    smoke = ee.LABELS.index("smoke_alarm")

    def ignore_of(x, i):
        P, bg = ee.ignore_of(sess, B, ee.alert_evidence(x, i))
        return P, ee.ignore_threshold(bg)

    recs = [sd.read_wav(p) for p in sd.smoke_recordings()]
    runs = [ee.run(sess, x)[:2] for x in recs]
    rows = [E[S[:, smoke] >= thr_model] for S, E in runs]
    print("(1) an ignore of each real alarm recording, checked against the other three:")
    for k, (x, (S, _)) in enumerate(zip(recs, runs)):
        P, thr = ignore_of(x, int(np.argmax(S[:, smoke] >= thr_model)))
        others = np.concatenate([r for j, r in enumerate(rows) if j != k])
        n = int(((others @ P.T).max(1) >= thr).sum())
        print(f"  smoke_alarm_{k + 1}.wav: threshold {thr:.3f}, {n} of {len(others)} other windows silenced: {'refused' if n else 'NOT refused'}")
    A = np.fromfile(os.path.join(os.path.dirname(ee.MODEL), ALARMS), dtype=np.int8).astype(np.float32) / 127
    A = A.reshape(-1, B.shape[1])
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    rule = er.shipped_rule(ee.MODEL)
    m = nd.manifest()
    print("(2) an ignore of every false alarm of etc/vigil.json's rule on test and confirm, against the shipped set:")
    refused = total = 0
    for p in sorted(q for q in m if m[q]["split"] in ("test", "confirm")):
        x = nd.stream(p)
        S, _, _ = ee.run(sess, x)
        for i, lab, sc in raises(rule, S, er.LABELS, er.HOP_S):
            P, thr = ignore_of(x, i)
            n = int(((A @ P.T).max(1) >= thr).sum())
            f, at = nd.file_at(p, i * er.HOP)
            total, refused = total + 1, refused + bool(n)
            print(f"  [{m[p]['split']}] {p}: {f} @ {at:.1f} s ({lab} {sc:.3f}): {n} of {len(A)} alarm windows -> {'refused' if n else 'stored'}")
    print(f"  {refused} of {total} refused")


def main():
    if "--evaluate" in sys.argv:
        return evaluate()
    model = onnx.load(ee.MODEL)
    meta = {p.key: p.value for p in model.metadata_props}
    rows = alarm_rows(ee.session(), float(meta["vigil.threshold"]))
    q = np.clip(np.round(rows * 127), -127, 127).astype(np.int8)
    q.tofile(os.path.join(os.path.dirname(ee.MODEL), ALARMS))
    if meta.get(KEY) != ALARMS:
        model.metadata_props.append(onnx.StringStringEntryProto(key=KEY, value=ALARMS))
        onnx.save(model, ee.MODEL)
    print(f"{ALARMS}: {len(q)} windows, {q.nbytes / 1024:.1f} KB; {os.path.basename(ee.MODEL)} declares it ({KEY})")


if __name__ == "__main__":
    main()
