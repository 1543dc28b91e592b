#!/usr/bin/env python3
"""Issue 18: the enrollment figures of enroll_online_eval.py, checked THROUGH vigild.

enroll_online_eval.py replays vigild's arithmetic in Python (the similarity, the per-device
near-miss memory, the alert rule) over hours of audio; EnrollmentCalibratorTests pins the Swift
calibrator to it on a fixed series. This runs the real thing on real audio: a real mosquitto
broker on a free loopback port, `vigilctl enroll` on the draw's 5 clips, `vigild` with the
shipped audio pipeline (etc/vigil.json: hop 0.5, smoke >= 0.97, enrolled labels alert), and
each test non-event stream published as that stream's own device, in 60 s PCM16 WAV messages.
Then, per stream, it compares vigild's log with the Python replay on the same PCM16 audio,
the prototypes and threshold vigilctl stored:
  windows: detections vigild logged, and how many of them agree on "at the bar" (the enrolled
           label's score >= min_score  <=>  similarity >= bar in force for for_frames windows in
           a row, eo.shipped_bars)
  alerts:  the label's raised alerts in vigild's `alerts` table against eo.alerts
and how far vigilctl's prototypes and threshold are from the Python evaluation's own (which
reads the clips with sound_data.read_wav, not through vigild's decoder and resampler).

  swift build              (make test builds it too; a release build: --bin .build/release)
  python3 Models/training/enroll_vigild_check.py [--classes dog,sneezing] [--draw 5] [--bin .build/debug]
      [--streams N | --only PACKAGE,...]
  (~2 min per class on this 2-core VM with the debug build; output
  Models/training/results/enroll_vigild_check.txt, whose committed copy is of the prototypes of
  the clips alone; results/enroll_vigild_check_copies.txt is this run with vigilctl's altered
  copies (2026-12-05); the PCM16 streams' embeddings are cached in /tmp/vigil-enroll-vigild-check)

Where they differ, the stream is named with what vigild raised there: vigild keeps one alert
state per (pipeline, device), so an alert of another label (smoke_alarm) can hold a window of
the enrolled label that the per-label replay counts as a new alert.
"""
import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enroll_eval as ee  # noqa: E402
import enroll_online_eval as eo  # noqa: E402
import nonevent_data as nd  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "enroll_vigild_check.txt")
MIN_SCORE = 0.97                 # etc/vigil.json's audio rule
S = eo.SHIPPED           # what vigild runs (DeviceCalibration.chosen, Enroller.positiveFloor)
CHUNK_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pcm16(x):
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def wav_bytes(q, path):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(ee.SR)
        w.writeframes(q.tobytes())


def write_config(d, port, model=os.path.join(REPO, "Models", "sound.onnx")):
    cfg = {
        "node": "check",
        "mqtt": {"host": "127.0.0.1", "port": port, "client_id": f"vigild-check-{os.getpid()}"},
        "storage": {"path": os.path.join(d, "vigil.db")},
        "models": {"sound": {"path": model}},
        "pipelines": [{"name": "audio", "topic": "sensors/{device}/audio", "format": "wav", "model": "sound", "hop": 0.5,
                       "alert": {"labels": ["smoke_alarm"], "min_score": MIN_SCORE}}],
    }
    path = os.path.join(d, "vigil.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


class Node:
    """A real mosquitto broker on a free loopback port and vigild with etc/vigil.json's audio
    pipeline (write_config), in the temporary directory d: `with Node(d, bin) as n:`."""

    def __init__(self, d, bin_dir, model=os.path.join(REPO, "Models", "sound.onnx")):
        self.d, self.port = d, free_port()
        self.vigild, self.vigilctl = os.path.join(bin_dir, "vigild"), os.path.join(bin_dir, "vigilctl")
        self.model = model

    def __enter__(self):
        with open(os.path.join(self.d, "mosquitto.conf"), "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.broker = subprocess.Popen(["mosquitto", "-c", os.path.join(self.d, "mosquitto.conf")], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.cfg = write_config(self.d, self.port, self.model)
        time.sleep(0.3)
        self.logpath = os.path.join(self.d, "vigild.log")
        self.daemon = subprocess.Popen([self.vigild, "--config", self.cfg], stdout=open(self.logpath, "w"), stderr=subprocess.STDOUT)
        self.wait_log("connected to broker")
        return self

    def __exit__(self, *_):
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(timeout=30)
        if self.broker.poll() is None:
            self.broker.terminate()

    def wait_log(self, text, seconds=30):
        end = time.time() + seconds
        while time.time() < end:
            if text in open(self.logpath).read():
                return
            if self.daemon.poll() is not None:
                break
            time.sleep(0.2)
        raise SystemExit(f"vigild did not log {text!r}: {open(self.logpath).read()[-2000:]}")

    def enroll(self, label, clips):
        """vigilctl enroll; once vigild uses it: (uuid, unit prototypes, threshold) as stored."""
        r = subprocess.run([self.vigilctl, "enroll", "--label", label, "--config", self.cfg] + clips, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"vigilctl enroll failed for {label}: {r.stderr}")
        self.wait_log("enrollments: 1 in use")
        self.db = sqlite3.connect(os.path.join(self.d, "vigil.db"), timeout=30)
        uuid, dim, blob, t0 = self.db.execute("SELECT uuid, dim, prototypes, threshold FROM enrollments WHERE label = ?", (label,)).fetchone()
        return uuid, np.frombuffer(blob, dtype="<f4").reshape(-1, dim), t0

    def publish(self, device, q):
        """PCM16 samples q as one WAV message on the device's audio topic (QoS 1)."""
        path = os.path.join(self.d, "chunk.wav")
        wav_bytes(q, path)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-q", "1", "-t", f"sensors/{device}/audio",
                        "-f", path], check=True)

    def wait_detections(self, device, want, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.db.execute("SELECT count(*) FROM detections WHERE device = ?", (device,)).fetchone()[0] >= want:
                return
            time.sleep(0.5)


def detections(db, device):
    rows = db.execute("SELECT scores FROM detections WHERE device = ? ORDER BY ts", (device,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def enrolled_score(scores, label):
    """detections.scores is {"label": score, ...} (Detection.scoresJSON)."""
    return scores.get(label, 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--classes", default=",".join(ee.CLASSES))
    ap.add_argument("--draw", type=int, default=5, help="a test draw (5-9)")
    ap.add_argument("--bin", default=os.path.join(REPO, ".build", "debug"))
    ap.add_argument("--streams", type=int, default=0, help="only the first N test streams (a quick look; 0: all)")
    ap.add_argument("--only", default="", help="only these test streams (comma-separated package names)")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    say = ee.Report()

    sess = ee.session()
    m = ee.manifest()
    test = sorted(p for p in m if m[p]["split"] == "test")
    test = test[:a.streams] if a.streams else test
    test = [p for p in test if p in a.only.split(",")] if a.only else test
    emb, D = eo.clip_embeddings(sess)
    import exp_enroll_augment as ea
    alt = ea.altered_embeddings(sess, {q for cat in a.classes.split(",") for q in D[cat][a.draw][0]}, ea.SETS[ea.SHIPPED])
    audio, E = {}, {}
    cache = os.path.join(tempfile.gettempdir(), "vigil-enroll-vigild-check")
    os.makedirs(cache, exist_ok=True)
    for p in test:
        audio[p] = pcm16(nd.stream(p))
        f = os.path.join(cache, p + ".npy")
        if not os.path.exists(f):
            _, e, _ = ee.run(sess, audio[p].astype(np.float32) / 32768)
            np.save(f, e.astype(np.float32))
        E[p] = np.load(f)
    hours = sum(len(E[p]) for p in test) * ee.HOP_S / 3600
    say(f"# Enrollment through vigild ({a.bin}): test draw {a.draw}, {len(test)} test streams ({hours:.2f} h), "
        f"each its own device, {CHUNK_S} s PCM16 WAV messages; rule: etc/vigil.json's audio pipeline (min_score {MIN_SCORE})")

    for cat in a.classes.split(","):
        enrolled = D[cat][a.draw][0]
        with tempfile.TemporaryDirectory(prefix="vigil-check-") as d, Node(d, a.bin) as node:
            uuid, P, t0 = node.enroll(cat, enrolled)
            db = node.db
            # vigilctl adds the prototypes of altered copies of each clip (ClipAlteration.positive)
            copies = {q: [alt[(q, n)] for n in ea.SETS[ea.SHIPPED]] for q in enrolled}
            mine = eo.enrolled_prototypes(emb, enrolled, copies)
            mine_t0 = eo.enrolled_threshold(ee.background(), emb, enrolled, S["floor"], copies)
            say(f"\n## {cat}: vigilctl's threshold {t0:.4f} (the evaluation's {mine_t0:.4f}); its prototypes against the "
                f"evaluation's, cosine {', '.join(f'{c:.4f}' for c in (P * mine).sum(1))}")
            tot = {"win": 0, "agree": 0, "bar_v": 0, "bar_p": 0, "al_v": 0, "al_p": 0, "n": 0}
            for p in test:
                q = audio[p]
                for i in range(0, len(q), CHUNK_S * ee.SR):
                    node.publish(p, q[i:i + CHUNK_S * ee.SR])
                want = len(E[p])
                node.wait_detections(p, want, 120 + want * 0.02)
                sims = (E[p] @ P.T).max(1)
                bars = eo.shipped_bars(E[p], sims, t0, S)
                # vigild scores the label at the bar once for_frames windows in a row reached it
                ff, run, at_bar_p = S.get("for_frames", 1), 0, np.zeros(len(sims), bool)
                for i, h in enumerate((sims >= bars).tolist()):
                    run = run + 1 if h else 0
                    at_bar_p[i] = run >= ff
                got = np.array([enrolled_score(s, cat) >= MIN_SCORE for s in detections(db, p)])
                nwin = min(len(got), len(at_bar_p))
                time.sleep(0.2)
                al_v = db.execute("SELECT count(*) FROM alerts WHERE state = 'raised' AND label = ? AND device = ?", (cat, p)).fetchone()[0]
                al_p = eo.alerts(sims, bars, S.get("for_frames", 1))
                tot["win"] += nwin
                tot["n"] += len(got) - want
                tot["agree"] += int((got[:nwin] == at_bar_p[:nwin]).sum())
                tot["bar_v"] += int(got.sum())
                tot["bar_p"] += int(at_bar_p.sum())
                tot["al_v"] += al_v
                tot["al_p"] += al_p
                if al_v != al_p or nwin != want:
                    raised = db.execute("SELECT label, round(score, 4) FROM alerts WHERE state = 'raised' AND device = ? ORDER BY ts", (p,)).fetchall()
                    top = [max(((k, round(v, 4)) for k, v in s_.items() if k != "normal"), key=lambda kv: kv[1]) for s_ in detections(db, p)]
                    say(f"  {p}: windows logged {len(got)} / expected {want}; alerts vigild {al_v}, Python {al_p}; "
                        f"vigild raised on this device: {raised}; at-the-bar windows {np.flatnonzero(at_bar_p).tolist()}, "
                        f"their detections' best labels {[top[i] for i in np.flatnonzero(at_bar_p) if i < len(top)]}")
            say(f"windows compared {tot['win']} (logged minus expected: {tot['n']}); agree on 'at the bar' {tot['agree']} "
                f"({tot['agree'] / max(1, tot['win']):.5f}); at the bar: vigild {tot['bar_v']}, Python {tot['bar_p']}; "
                f"alerts raised: vigild {tot['al_v']}, Python {tot['al_p']} ({tot['al_v'] / hours:.2f} vs {tot['al_p'] / hours:.2f}/h)")
    say.write(a.out)


if __name__ == "__main__":
    main()
