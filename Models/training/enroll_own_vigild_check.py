#!/usr/bin/env python3
"""Issue 18: enrolling a source's own takes (exp_enroll_own_source.py), checked THROUGH vigild,
as a user would try it: `vigilctl enroll` on the takes, then the left-out take heard three
times on a device, each time after 40 s of real everyday audio.

exp_enroll_own_source.py replays vigild in Python with each take's own windows set into a test
stream. Here the real parts run: a mosquitto broker on a free loopback port, vigilctl enroll on
the takes as recorded (ESC-50's 44.1 kHz files, vigilctl's decoder and resampler), vigild with
etc/vigil.json's audio pipeline and the refit model exp_enroll_own_source.py builds, and one
device per draw that hears, as PCM16 16 kHz WAV messages:

    40 s of a test stream | the left-out take | 40 s | the take | 40 s | the take | 10 s

(the 40 s are random moments of the 15 test streams, seeded; the windows straddle the joins, as
a microphone's do). Reported per draw: the plays vigild raised the enrolled label on, and
whether the Python replay of vigild (enroll_online_eval.shipped_bars and raise_windows, on the
prototypes and threshold vigilctl stored) raises the same windows. No choice is made here.

  swift build   (or make test)
  python3 Models/training/exp_enroll_own_source.py     (builds the refit model first)
  python3 Models/training/enroll_own_vigild_check.py [--bin .build/debug] [--groups cow@181955,...]
  (~3 s per draw, 57 draws; output Models/training/results/enroll_own_vigild_check.txt)
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import enroll_online_eval as eo  # noqa: E402
import enroll_vigild_check as vc  # noqa: E402
import exp_enroll_own_source as xo  # noqa: E402
import nonevent_data as nd  # noqa: E402
import sound_data as sd  # noqa: E402
from rules_replay import wilson  # noqa: E402

OUT = os.path.join(xo.HERE, "results", "enroll_own_vigild_check.txt")
PLAYS = 3
BEFORE_S, AFTER_S = 40, 10


def sequence(take, streams, rng):
    """[(PCM16 samples, take or None)]: PLAYS times 40 s of a random test stream then the take, then 10 s."""
    names = sorted(p for p in streams if len(streams[p]) > 60 * sd.SR)     # (a few test packages are shorter)
    weight = np.array([len(streams[p]) for p in names], float)
    weight /= weight.sum()

    def everyday(seconds):
        q = streams[names[rng.choice(len(names), p=weight)]]
        i = int(rng.integers(0, len(q) - seconds * sd.SR))
        return q[i:i + seconds * sd.SR]
    parts = []
    for _ in range(PLAYS):
        parts += [(everyday(BEFORE_S), None), (take, take)]
    return parts + [(everyday(AFTER_S), None)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(vc.REPO, ".build", "debug"))
    ap.add_argument("--groups", default="", help="only these groups (comma-separated, as category@source)")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    if not os.path.exists(xo.MODEL):
        raise SystemExit(f"{xo.MODEL}: missing; run exp_enroll_own_source.py first (it builds the refit model)")
    ee.MODEL, ee.BACKGROUND = xo.MODEL, xo.BACKGROUND
    sess = ee.session()
    m = ee.manifest()
    streams = {p: vc.pcm16(nd.stream(p)) for p in sorted(p for p in m if m[p]["split"] == "test")}
    G = [g for g in xo.groups() if not a.groups or g[0] in a.groups.split(",")]
    say = ee.Report()
    say(f"# Own takes through vigild ({a.bin}, {os.path.relpath(xo.MODEL, vc.REPO)}): per draw, vigilctl enrolls the other takes, "
        f"then one device hears the left-out take {PLAYS} times, each after {BEFORE_S} s of a test stream")
    S, ff = eo.SHIPPED, eo.SHIPPED["for_frames"]
    tot = {"plays": 0, "raised_v": 0, "raised_p": 0, "agree": 0, "draws": 0, "fa_v": 0, "fa_p": 0, "windows": 0, "missing": 0}
    per_take, tries = [], []
    for gi, (gid, cat, takes, _) in enumerate(G):
        for d in xo.DRAWS:
            enrolled = [t for t in takes if t != takes[d]][:ee.SHOTS]
            take = vc.pcm16(sd.read_wav(takes[d]))
            parts = sequence(take, streams, np.random.default_rng(1818 + 10 * gi + d))
            device = f"{gid.replace('@', '-')}-d{d}"
            with tempfile.TemporaryDirectory(prefix="vigil-own-") as tmp, vc.Node(tmp, a.bin, xo.MODEL) as node:
                _, P, t0 = node.enroll(cat, enrolled)
                # What `vigilctl enrolled --try` says of the take before anything is heard.
                take_file = os.path.join(tmp, "take.wav")
                vc.wav_bytes(take, take_file)
                r = subprocess.run([node.vigilctl, "enrolled", "--try", take_file, "--config", node.cfg, "--format", "jsonl"],
                                   capture_output=True, text=True, check=True)
                verdict = json.loads(r.stdout.splitlines()[0])["verdict"]
                for q, _ in parts:
                    node.publish(device, q)
                x = np.concatenate([q for q, _ in parts])
                _, E, _ = ee.run(sess, x.astype(np.float32) / 32768)
                E = E / np.linalg.norm(E, axis=1, keepdims=True)
                node.wait_detections(device, len(E), 60)
                dets = node.db.execute("SELECT ts FROM detections WHERE device = ? ORDER BY ts", (device,)).fetchall()
                got = [ts for ts, in node.db.execute(
                    "SELECT ts FROM alerts WHERE state = 'raised' AND label = ? AND device = ? ORDER BY ts", (cat, device))]
            # vigild's raises as window indices: an alert carries its raising detection's ts
            where = {ts: i for i, (ts,) in enumerate(dets)}
            raised_v = sorted(where.get(ts, -1) for ts in got)
            sims = (E @ P.T).max(1)
            raised_p = eo.raise_windows(sims, eo.shipped_bars(E, sims, t0, S), ff)
            # each play's windows: those touching the take's samples, and 2 after (the rule's for_frames)
            spans, pos = [], 0
            for q, t in parts:
                if t is not None:
                    spans.append((pos // sd.HOP - 1, (pos + len(q)) // sd.HOP + 2))
                pos += len(q)

            def per_play(raises):
                return [any(a0 <= r < b0 for r in raises) for a0, b0 in spans], sum(not any(a0 <= r < b0 for a0, b0 in spans) for r in raises)
            pv, fv = per_play(raised_v)
            pp, fp = per_play(raised_p)
            tot["plays"] += PLAYS
            tot["raised_v"] += sum(pv)
            tot["raised_p"] += sum(pp)
            tot["agree"] += raised_v == raised_p
            tot["draws"] += 1
            tot["fa_v"] += fv
            tot["fa_p"] += fp
            tot["windows"] += len(E)
            tot["missing"] += len(E) - len(dets)
            per_take.append(sum(pv))
            tries.append((verdict, pv[0]))
            say(f"{gid:26s} d{d} threshold {t0:.3f}: --try {verdict!r}; plays raised by vigild {''.join('x' if r else '.' for r in pv)}, "
                f"Python {''.join('x' if r else '.' for r in pp)}; raises elsewhere vigild {fv}, Python {fp}"
                + ("" if raised_v == raised_p else f"   (differ: vigild windows {raised_v}, Python {raised_p})")
                + ("" if len(dets) == len(E) else f"   (windows logged {len(dets)} of {len(E)})"))
    n = tot["plays"]
    lo, hi = wilson(tot["raised_v"], n)
    say(f"\nplays raised: vigild {tot['raised_v']}/{n} = {tot['raised_v'] / max(1, n):.2f} (Wilson {lo:.2f}-{hi:.2f}; plays of one take "
        f"are not independent), Python {tot['raised_p']}/{n}")
    tl, th = wilson(sum(k == PLAYS for k in per_take), len(per_take))
    say(f"takes raised on all {PLAYS} plays: {sum(k == PLAYS for k in per_take)} of {len(per_take)} (Wilson {tl:.2f}-{th:.2f}); "
        f"on none: {sum(k == 0 for k in per_take)}")
    say(f"draws where vigild and the replay raise the same windows: {tot['agree']} of {tot['draws']}; raises outside the plays "
        f"(in {tot['draws'] * (PLAYS * BEFORE_S + AFTER_S) / 60:.0f} min of test streams): vigild {tot['fa_v']}, Python {tot['fa_p']}; "
        f"windows not logged: {tot['missing']} of {tot['windows']}")
    said = sum(v == "alerts" for v, _ in tries)
    say(f"vigilctl enrolled --try on the take alone (a device that heard nothing yet) said 'alerts' for {said} of {len(tries)}; "
        f"it agreed with vigild's first play (after {BEFORE_S} s of a test stream) on {sum((v == 'alerts') == p for v, p in tries)} of "
        f"{len(tries)} (said alerts, not raised: {sum(v == 'alerts' and not p for v, p in tries)}; said not, raised: "
        f"{sum(v != 'alerts' and p for v, p in tries)}); its other verdicts: "
        f"{', '.join(f'{k} {n}' for k, n in sorted(collections.Counter(v for v, _ in tries if v != 'alerts').items()))}")
    say.write(a.out)


if __name__ == "__main__":
    main()
