"""Quality of the shipped Models/sound.onnx, the held-out CV table and the YAMNet
reference on the same held-out windows (called by evaluate.py).

Held-out numbers come from the 5-fold protocol in sound_data.py: each fold's model is
built by the same recipe as the shipped one and never saw the fold's source recordings.
The shipped model itself was trained on all the data, so running it on those clips again
("resubstitution") is printed too but says little about quality.
"""
import os
import sys

import numpy as np
import onnx

from common import MODELS_DIR, DATA_DIR, session, latency_ms, read_results
import sound_data as sd
import sound_model as sm
import train_sound as ts

YAMNET = os.path.join(DATA_DIR, "reference-models", "yamnet_spectra_in.onnx")
Y_GLASS, Y_SMOKE, Y_DOOR = [435, 437, 464], [393], [349, 350]


def held_out_windows():
    normal, glass, smoke = ts.load_all()
    X, M = [], []
    for k in range(1, ts.K + 1):
        Xt, mt = ts.test_set(normal, glass, smoke, k, np.random.default_rng(ts.SEED + 100 + k))
        for m in mt:
            m["fold"] = k
        X.append(Xt)
        M += mt
    return np.concatenate(X), M


def yamnet_scores(X):
    """Cached in build/ (keyed by a hash of the windows): YAMNet takes ~1 min here."""
    import hashlib
    key = hashlib.sha1(X[:, ::97].tobytes()).hexdigest()[:16]
    cache = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build", f"yamnet_{key}.npy")
    if os.path.exists(cache):
        return np.load(cache)
    out = _yamnet_scores(X)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    np.save(cache, out)
    return out


def _yamnet_scores(X):
    sess = session(YAMNET)
    name = sess.get_inputs()[0].name
    out = np.zeros((len(X), 4), np.float32)
    for i, x in enumerate(X):
        s = sess.run(None, {name: sm.yamnet_patch(x)[None]})[0][0]
        g, sm_, d = s[Y_GLASS].max(), s[Y_SMOKE].max(), s[Y_DOOR].max()
        out[i] = [1 - max(g, sm_, d), g, sm_, d]
    return out


def rows_for(r, who, thr):
    out = []
    for name in ["glass_breaking", "smoke_alarm", "door_bell"]:
        c = r[name]
        ev = f"{c['events_caught']}/{c['events']}" if "events" in c else "-"
        out.append([who, thr, name, c["windows"], f"{c['precision']:.3f}", f"{c['recall']:.3f}", ev,
                    f"{r['false_alarms_per_hour'][name]:.1f}",
                    f"{r['false_alarms_per_hour_for_frames_2'][name]:.1f}"])
    return out


HEADER = ["model", "thr", "class", "pos windows", "precision", "recall", "events caught",
          "FA/h normal", "FA/h for_frames=2"]


def evaluate(path, label="float32", X=None, M=None):
    from evaluate import table, size_kb
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    thr = float(meta["vigil.threshold"])
    sess = session(path)
    print(f"\n## sound ({label}) {os.path.basename(path)}  size {size_kb(path)}  threshold {thr}  "
          f"window {meta['vigil.window']} @ {meta['vigil.sample_rate']} Hz")
    if X is None:
        X, M = held_out_windows()
    # resubstitution (the shipped model saw these recordings; doors are fresh synthetic)
    S = np.concatenate([sess.run(None, {"audio": X[i:i + 1]})[0] for i in range(len(X))])
    r = ts.metrics(S, M, thr)
    print("shipped file on all real clips (RESUBSTITUTION: these recordings were in its training set; "
          "door chimes are new synthetic ones):")
    table(rows_for(r, label, thr), HEADER)
    hours = r["normal_hours"]
    print(f"normal audio: {hours * 60:.1f} min of ESC-50 clips (every non-glass category, clock_alarm included as normal)")
    med, p95 = latency_ms(sess, {"audio": X[:1]}, runs=200)
    print(f"latency: median {med:.2f} ms, p95 {p95:.2f} ms per 0.975 s window (1 thread)")
    return S


def print_cv():
    from evaluate import table
    try:
        cv = read_results("sound_cv.json")
    except FileNotFoundError:
        print("no results/sound_cv.json: run train_sound.py")
        return
    print("\nHELD-OUT (5-fold by source recording; smoke leave-one-recording-out; from results/sound_cv.json, "
          "written by train_sound.py with the shipped recipe):")
    rows = []
    for t, r in cv["by_threshold"].items():
        rows += rows_for(r, "vigil CV", t)
    table(rows, HEADER)
    r = cv["by_threshold"][str(cv["ship_threshold"])]
    print("smoke per held-out recording, window recall at the shipped threshold:",
          {k: round(v, 3) for k, v in r["smoke_alarm"]["per_recording_window_recall"].items()},
          f" recall with for_frames=2: {r['smoke_alarm'].get('recall_for_frames_2', float('nan')):.3f}")
    print("glass per held-out clip, window recall:",
          {k: round(v, 2) for k, v in r["glass_breaking"]["per_recording_window_recall"].items()})
    top = sorted(r["false_alarm_sources"].items(), key=lambda kv: -kv[1])[:8]
    print("most frequent false-alarm sources (class<-ESC-50 category: count):", dict(top))


def main(int8=False):
    from evaluate import table
    import nonevent_data
    if os.path.exists(os.path.join(nonevent_data.BUILD, "manifest.json")):
        import eval_sound_rules
        eval_sound_rules.main()       # the numbers that count: through vigild's rule, on audio it never saw
        import enroll_eval
        enroll_eval.main()            # enrollment from 5 clips and --ignore, calibrated as vigilctl (issue 18)
    else:
        print("(no non-event audio: `python3 Models/training/nonevent_data.py fetch` for false alarms per hour "
              "through vigild's rule)")
    X, M = held_out_windows()
    evaluate(os.path.join(MODELS_DIR, "sound.onnx"), X=X, M=M)
    p = os.path.join(MODELS_DIR, "training", "build", "sound.int8.onnx")
    if int8 and os.path.exists(p):
        evaluate(p, "int8", X=X, M=M)
    print_cv()
    if os.path.exists(YAMNET) and "--no-yamnet" not in sys.argv:
        Y = yamnet_scores(X)
        print("\nYAMNet reference (yamnet_spectra_in.onnx, int8, 3.9 MB; AudioSet-trained, never saw our folds) "
              "on the SAME held-out windows; glass=max(Glass,Shatter,Breaking), smoke=Smoke detector, "
              "door=max(Doorbell,Ding-dong):")
        rows = []
        for t in [0.1, 0.2, 0.3, 0.5]:
            rows += rows_for(ts.metrics(Y, M, t), "YAMNet", t)
        table(rows, HEADER)
        ys = session(YAMNET)
        med, p95 = latency_ms(ys, {ys.get_inputs()[0].name: sm.yamnet_patch(X[0])[None]}, runs=50)
        print(f"YAMNet latency (patch in, log-mel computed outside): median {med:.2f} ms, p95 {p95:.2f} ms (1 thread)")
