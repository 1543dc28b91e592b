#!/usr/bin/env python3
"""The straightforward Python service a user would otherwise write: paho-mqtt +
onnxruntime + sqlite3, one commit per row. `make bench` runs it on the same models
and load as vigild and prints the ratios.

It decodes the same payloads (json, wav, pgm), adapts frames to the model the same
simple way (resize by area averaging, fixed audio windows with 50% hop, a sliding
window of readings), stores one row per inference, and publishes each detection on
vigil/<node>/detections/<pipeline>/<device> so the harness measures it like vigild.

    python3 bench/baseline.py --broker 127.0.0.1:1883 --db /tmp/b.db --models Models
"""
import argparse, io, json, sqlite3, struct, sys, time, uuid, wave
import numpy as np
import onnxruntime as ort
import paho.mqtt.client as mqtt
import os
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Models", "training"))
import baseline as baseline_ref  # noqa: E402  (the per-device anomaly baseline, as vigild keeps it)


def load(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    meta = s.get_modelmeta().custom_metadata_map
    return s, meta


def pgm(payload):
    # P5 header: magic, width, height, maxval, one whitespace, then pixels.
    parts, i = [], 0
    while len(parts) < 4:
        while payload[i:i + 1].isspace(): i += 1
        if payload[i:i + 1] == b"#":
            while payload[i:i + 1] not in (b"\n", b""): i += 1
            continue
        j = i
        while not payload[j:j + 1].isspace(): j += 1
        parts.append(payload[i:j]); i = j
    w, h = int(parts[1]), int(parts[2])
    return np.frombuffer(payload[i + 1:i + 1 + w * h], dtype=np.uint8).reshape(h, w).astype(np.float32) / 255.0


def resize(img, h, w):
    H, W = img.shape
    if (H, W) == (h, w): return img
    ys = (np.arange(h + 1) * H / h).astype(int); xs = (np.arange(w + 1) * W / w).astype(int)
    out = np.empty((h, w), np.float32)
    for r in range(h):
        band = img[ys[r]:max(ys[r + 1], ys[r] + 1)]
        for c in range(w):
            out[r, c] = band[:, xs[c]:max(xs[c + 1], xs[c] + 1)].mean()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", default="127.0.0.1:1883")
    ap.add_argument("--db", required=True)
    ap.add_argument("--models", default="Models")
    ap.add_argument("--node", default="baseline")
    a = ap.parse_args()
    host, port = a.broker.rsplit(":", 1)
    models = {k: load(f"{a.models}/{k}.onnx") for k in ("motion", "sound", "anomaly")}
    db = sqlite3.connect(a.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("""CREATE TABLE IF NOT EXISTS detections(id INTEGER PRIMARY KEY, uuid TEXT UNIQUE, ts REAL,
                  pipeline TEXT, device TEXT, model TEXT, label TEXT, score REAL, scores TEXT, latency_ms REAL, synced_at REAL)""")
    state = {}

    def cv_box3(x):
        p = np.pad(x, 1, mode="edge")
        return sum(p[dy:dy + x.shape[0], dx:dx + x.shape[1]] for dy in range(3) for dx in range(3)) / 9.0

    def infer(client, pipeline, device, model, x, ts, extra=None):
        s, meta = models[model]
        t0 = time.perf_counter()
        scores = s.run(None, {s.get_inputs()[0].name: x, **(extra or {})})[0].reshape(-1)
        ms = (time.perf_counter() - t0) * 1000
        labels = meta.get("vigil.labels", "").split(",")
        best = int(np.argmax(scores))
        u = str(uuid.uuid4())
        db.execute("INSERT INTO detections(uuid, ts, pipeline, device, model, label, score, scores, latency_ms) VALUES (?,?,?,?,?,?,?,?,?)",
                   (u, ts, pipeline, device, model, labels[best], float(scores[best]),
                    json.dumps(dict(zip(labels, map(float, scores)))), ms))
        db.commit()
        client.publish(f"vigil/{a.node}/detections/{pipeline}/{device}",
                       json.dumps({"uuid": u, "ts": ts, "label": labels[best], "score": float(scores[best]), "latency_ms": ms}), qos=0)
        return labels[best]

    def on_message(client, _, msg):
        now = time.time()
        parts = msg.topic.split("/")
        if len(parts) != 3: return
        device, kind = parts[1], parts[2]
        try:
            if kind == "camera":
                s, meta = models["motion"]
                h, w = map(int, meta.get("vigil.frame", "120x160").split("x"))
                img = resize(pgm(msg.payload), h, w)
                channels = meta.get("vigil.channels", "previous,current").split(",")
                st = state.get(("camera", device))
                if st is None:
                    # the device's state, as vigild keeps it (docs/pipelines.md, camera)
                    state[("camera", device)] = {"previous": img, "background": img.copy(),
                                                 "activity": np.zeros_like(img), "ts": now}
                else:
                    planes = {"current": img, "previous": st["previous"], "background": st["background"],
                              "activity": st["activity"], "weight": np.ones_like(img)}
                    x = np.stack([planes[c] for c in channels])[None].astype(np.float32)
                    dt = max(0.0, now - st["ts"])
                    bs, acs = float(meta.get("vigil.background_s", 20)), float(meta.get("vigil.activity_s", 60))
                    a, ad = 1 - np.exp(-min(dt, bs) / bs), 1 - np.exp(-min(dt, acs) / acs)
                    g = st["background"].mean() / max(img.mean(), 1e-3)
                    dev = np.abs(cv_box3(img * g - st["background"]))
                    st["activity"] += ad * (dev - st["activity"])
                    st["background"] += a * (img - st["background"])
                    st["previous"], st["ts"] = img, now
                    if infer(client, "camera", device, "motion", x, now) == "lighting":
                        st["background"] = img.copy()
            elif kind == "audio":
                s, meta = models["sound"]
                n = int(meta.get("vigil.window", "16000"))
                with wave.open(io.BytesIO(msg.payload)) as wf:
                    pcm = np.frombuffer(wf.readframes(wf.getnframes()), dtype="<i2").astype(np.float32) / 32768
                buf = np.concatenate([state.get(("audio", device), np.zeros(0, np.float32)), pcm])
                while len(buf) >= n:
                    infer(client, "audio", device, "sound", buf[:n][None], now)
                    buf = buf[n // 2:]
                state[("audio", device)] = buf
            elif kind == "env":
                s, meta = models["anomaly"]
                wlen = int(meta.get("vigil.window", "32"))
                obj = json.loads(msg.payload)
                row = [float(obj["temperature"]), float(obj["humidity"])]
                win = state.setdefault(("env", device), [])
                win.append(row)
                del win[:-wlen]
                ts = float(obj.get("ts", now))
                # anomaly v2 takes the device's baseline too (vigil.state): the same work vigild does
                extra = None
                if "vigil.state" in meta:
                    dev = state.setdefault(("env-baseline", device), baseline_ref.Device(2, wlen))
                    extra = {meta["vigil.state"]: dev.state()[None]}
                    dev.update(ts, row)
                if len(win) == wlen:
                    infer(client, "environment", device, "anomaly", np.array(win, np.float32)[None], ts, extra)
        except Exception as e:  # the straightforward service logs and goes on
            print(f"{msg.topic}: {e}", file=sys.stderr)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"baseline-{a.node}")
    c.on_message = on_message
    c.on_connect = lambda cl, *_: cl.subscribe("sensors/+/+", qos=1)
    c.connect(host, int(port))
    print("baseline ready", flush=True)
    c.loop_forever()


if __name__ == "__main__":
    main()
