#!/usr/bin/env python3
"""Issue 16: the footage of eval_motion_footage.py THROUGH vigild, as a user runs it.

A real mosquitto broker on a free loopback port, vigild with a camera pipeline (the shipped
motion model, etc/demo.json's kind of rule: motion >= 0.5 for 2 frames, cooldown 30 s), and
each video published as its own camera, frame by frame as binary PGM at its own frame rate in
real time (vigild stamps a PGM frame with its arrival time, so the state's time constants see
the real spacing). Then, per video, vigild's detections are compared with the Python replay
(motion_stream.CameraState, ghosts healed) fed the same frames at the times vigild stamped, and
both with the hand labels: frames said motion, false pairs where nothing is in view, and the
alerts vigild raised.

  swift build   (or make test; a release build: --bin .build/release)
  python3 Models/training/motion_vigild_check.py --videos DIR [--bin .build/debug]
      (~3 min: the videos play in real time; output Models/training/results/motion_vigild_check.txt)
"""
import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import session, wilson  # noqa: E402
import eval_motion_footage as ef  # noqa: E402
import motion_stream as mst  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "motion_vigild_check.txt")
LABELS = ("still", "motion", "lighting")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(d, port):
    cfg = {
        "node": "check",
        "mqtt": {"host": "127.0.0.1", "port": port, "client_id": f"vigild-motion-check-{os.getpid()}"},
        "storage": {"path": os.path.join(d, "vigil.db")},
        "models": {"motion": {"path": os.path.join(REPO, "Models", "motion.onnx")}},
        "pipelines": [{"name": "camera", "topic": "sensors/{device}/camera", "format": "pgm", "model": "motion",
                       "motion": {"save_s": 3600},   # saved once, at stop: vigilctl lists each camera's view offset
                       "alert": {"labels": ["motion"], "min_score": ef.RULE["min_score"], "for_frames": ef.RULE["for_frames"],
                                 "clear_below": ef.RULE["clear_below"], "cooldown_s": ef.RULE["cooldown_s"]}}],
    }
    path = os.path.join(d, "vigil.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def publish(port, device, frames, fps, d):
    """Frames as binary PGM, one message each, at `fps` in real time."""
    t0 = time.time()
    path = os.path.join(d, f"{device}.pgm")
    for i, g in enumerate(frames):
        h, w = g.shape
        with open(path, "wb") as f:
            f.write(b"P5\n%d %d\n255\n" % (w, h) + g.tobytes())
        delay = t0 + i / fps - time.time()
        if delay > 0:
            time.sleep(delay)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", f"sensors/{device}/camera",
                        "-f", path], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "build", "sample-videos"))
    ap.add_argument("--bin", default=os.path.join(REPO, ".build", "debug"))
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    lines = []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    sess = session(ef.MODEL)
    meta = {p.key: p.value for p in onnx.load(ef.MODEL).metadata_props}
    videos = {}
    for name, spec in ef.VIDEOS.items():
        path = os.path.join(a.videos, name)
        if not os.path.exists(path) or ef.git_blob_id(path) != spec["blob"]:
            sys.exit(f"{path}: missing or another version (eval_motion_footage.py says where the footage comes from)")
        videos[spec["what"]] = (spec, ef.grey_frames(path))
    say(f"# Motion footage through vigild ({a.bin}): each video its own camera, binary PGM at its frame rate in real time; "
        f"rule motion >= {ef.RULE['min_score']} for {ef.RULE['for_frames']} frames, clear below {ef.RULE['clear_below']}, cooldown {ef.RULE['cooldown_s']:g} s")
    replay_offset = {}
    with tempfile.TemporaryDirectory(prefix="vigil-motion-check-") as d:
        port = free_port()
        with open(os.path.join(d, "mosquitto.conf"), "w") as f:
            f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen(["mosquitto", "-c", os.path.join(d, "mosquitto.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        logpath = os.path.join(d, "vigild.log")
        daemon = None
        try:
            time.sleep(0.3)
            daemon = subprocess.Popen([os.path.join(a.bin, "vigild"), "--config", write_config(d, port)],
                                      stdout=open(logpath, "w"), stderr=subprocess.STDOUT)
            end = time.time() + 30
            while "connected to broker" not in open(logpath).read():
                if time.time() > end or daemon.poll() is not None:
                    sys.exit(f"vigild did not connect: {open(logpath).read()[-2000:]}")
                time.sleep(0.2)
            threads = [threading.Thread(target=publish, args=(port, what, frames, spec["fps"], d)) for what, (spec, frames) in videos.items()]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            db = sqlite3.connect(os.path.join(d, "vigil.db"), timeout=30)
            for what, (spec, frames) in videos.items():
                want = len(frames) - 1        # the first frame makes no input
                end = time.time() + 60
                while db.execute("SELECT count(*) FROM detections WHERE device = ?", (what,)).fetchone()[0] < want and time.time() < end:
                    time.sleep(0.5)
            time.sleep(1)
            for what, (spec, frames) in videos.items():
                rows = db.execute("SELECT ts, label, scores FROM detections WHERE device = ? ORDER BY ts", (what,)).fetchall()
                alerts = db.execute("SELECT ts FROM alerts WHERE state = 'raised' AND device = ? ORDER BY ts", (what,)).fetchall()
                n = len(frames)
                say(f"\n## {what}s: {n} frames published at {spec['fps']:g} fps; vigild logged {len(rows)} detections (want {n - 1})")
                if len(rows) != n - 1:
                    say("   frames lost or duplicated: the comparison below is not frame for frame")
                    continue
                ts = [rows[0][0] - (rows[1][0] - rows[0][0])] + [r[0] for r in rows]   # the first frame's time: one step before
                st = mst.state_for(meta, channels=meta["vigil.channels"])
                py, pys = [None], [None]
                for i, g in enumerate(frames):
                    x = st.inputs(ef.ms.to_model(g), ts[i])
                    if x is None:
                        continue
                    s = sess.run(None, {"frames": x})[0][0]
                    py.append(LABELS[int(np.argmax(s))])
                    pys.append(s)
                    st.observe(py[-1])
                replay_offset[what] = st.offset.copy()
                vd = [None] + [r[1] for r in rows]
                agree = sum(p == v for p, v in zip(py[1:], vd[1:]))
                say(f"   labels: vigild and the Python replay agree on {agree}/{n - 1} frames")
                for i in range(1, n):   # where they differ: both sets of scores (a frame on the edge of a threshold?)
                    if py[i] != vd[i]:
                        say(f"     frame {i}: vigild {vd[i]} {rows[i - 1][2]}, replay {py[i]} [{', '.join(f'{v:.3f}' for v in pys[i])}]")
                lab = ef.frame_labels(n, spec["visits"], spec["exit_tail"])
                for who, labels in (("vigild", vd), ("replay", py)):
                    m = np.array([np.nan if x is None else float(x == "motion") for x in labels])
                    pos, neg = lab == 1, (lab == 0) & ~np.isnan(m)
                    k, npos = int(np.nansum(m[pos])), int(pos.sum())
                    lo, hi = wilson(k, npos)
                    say(f"   {who}: object frames said motion {k}/{npos} = {k / npos:.3f} [{lo:.3f}, {hi:.3f}], "
                        f"false pairs where nothing is in view {int(np.nansum(m[neg]))}/{int(neg.sum())} = {100 * np.nanmean(m[neg]):.2f} %")
                t_first = ts[0]
                at = [(t[0] - t_first) * spec["fps"] for t in alerts]
                visit = [next((k for k, (lo_, hi_) in enumerate(spec["visits"]) if lo_ - ef.EDGE <= f <= hi_ + spec["exit_tail"]), None) for f in at]
                say(f"   vigild raised {len(alerts)} alerts, at frames {', '.join(f'{f:.0f}' for f in at)}: "
                    f"{sum(v is not None for v in visit)} during a visit, {sum(v is None for v in visit)} where nothing was in view")
        finally:
            if daemon is not None:
                daemon.terminate()
                daemon.wait(timeout=30)
            broker.terminate()
        # Each camera's state, saved at stop, as `vigilctl baseline cameras` shows it: how far its
        # view has crept (the aligner's offset), against where the Python replay's offset ended.
        db = os.path.join(d, "vigil.db")
        table = subprocess.run([os.path.join(a.bin, "vigilctl"), "baseline", "cameras", "--db", db, "--format", "table"],
                               capture_output=True, text=True)
        say("\n## vigilctl baseline cameras (states saved when vigild stopped)\n" + table.stdout.rstrip() + table.stderr.rstrip())
        js = subprocess.run([os.path.join(a.bin, "vigilctl"), "baseline", "cameras", "--db", db, "--format", "jsonl"],
                            capture_output=True, text=True).stdout
        for row in (json.loads(l) for l in js.splitlines() if l.strip()):
            r = replay_offset.get(row.get("device"))
            if r is not None:
                say(f"   {row['device']}: vigild's view offset x {row['view_x']:.4f} y {row['view_y']:.4f}, "
                    f"the replay's x {r[1]:.4f} y {r[0]:.4f}")
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
