#!/usr/bin/env python3
"""Print the quality tables of the shipped models (Models/*.onnx). Does not retrain.

  python3 Models/training/evaluate.py            # all three
  python3 Models/training/evaluate.py motion     # one
  python3 Models/training/evaluate.py --int8     # also quantized variants (size/latency/quality)

Needs the data in /work/shared/data (or $VIGIL_DATA) and opencv-doc's sample videos.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MODELS_DIR, session, latency_ms  # noqa: E402


def table(rows, header):
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))


def size_kb(path):
    return f"{os.path.getsize(path) / 1024:.1f} KB"


# ---------------------------------------------------------------- motion
def eval_motion(path, rng_seed=99, label="float32"):
    import train_motion as tm
    sess = session(path)
    thr = float(dict((p.key, p.value) for p in __import__("onnx").load(path).metadata_props)["vigil.threshold"])
    data, info = tm.datasets("test", np.random.default_rng(rng_seed))
    rows = []
    for name, (pairs, is_motion) in data.items():
        p = tm.run(sess, pairs)[:, 1]
        hit = p >= thr
        if is_motion:
            rows.append([name, len(pairs), f"recall {hit.mean():.4f}"])
        else:
            rows.append([name, len(pairs), f"false positives {hit.mean() * 100:.2f}%"])
    # one nuisance at a time, at full camera resolution then area-resized (as the daemon does)
    import motion_data as md
    rng = np.random.default_rng(rng_seed + 1)
    full = md.load_vtest_full()
    moving, _ = md.moving_people_mask(full)
    idx = [t for t in range(400, len(full)) if moving[t]][::4]
    scenes = md.still_scenes(md.TEST_IMAGES) + [("vtest_background", md.vtest_background(full))]
    for kind in md.NUISANCES:
        neg = np.array([np.stack([md.area_resize(g).astype(np.float32) / 255.0, md.single_nuisance(g, kind, rng)])
                        for _, g in scenes for _ in range(5)])
        pos = np.array([np.stack([md.area_resize(full[t - 1]).astype(np.float32) / 255.0,
                                  md.single_nuisance(full[t], kind, rng)]) for t in idx])
        fp = (tm.run(sess, neg)[:, 1] >= thr).mean()
        rec = (tm.run(sess, pos)[:, 1] >= thr).mean()
        rows.append([f"only {kind}: stills (neg) / vtest gap1 (pos)", f"{len(neg)}/{len(pos)}",
                     f"FP {fp * 100:.2f}% / recall {rec:.4f}"])
    feed = {"frames": data["vtest gap1 clean (pos)"][0][0][None]}
    med, p95 = latency_ms(sess, feed)
    print(f"\n## motion ({label}) {os.path.basename(path)}  size {size_kb(path)}  threshold {thr}")
    print(f"test split: vtest frames 400-794 with people moving (excluded {info['moving_frames_excluded']} "
          f"frames without), held-out still images; seed {rng_seed}")
    table(rows, ["set", "pairs", "result"])
    print(f"latency: median {med:.3f} ms, p95 {p95:.3f} ms (1 thread)")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    which = args or ["motion", "sound", "anomaly"]
    int8 = "--int8" in sys.argv
    if "motion" in which:
        eval_motion(os.path.join(MODELS_DIR, "motion.onnx"))
        if int8 and os.path.exists(os.path.join(MODELS_DIR, "training", "build", "motion.int8.onnx")):
            eval_motion(os.path.join(MODELS_DIR, "training", "build", "motion.int8.onnx"), label="int8")
    if "sound" in which:
        import eval_sound
        eval_sound.main(int8=int8)
    if "anomaly" in which:
        import eval_anomaly
        eval_anomaly.evaluate_shipped()   # no INT8 variant: no weights to quantize


if __name__ == "__main__":
    main()
