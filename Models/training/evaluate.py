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
from common import MODELS_DIR, session, latency_ms, table  # noqa: E402


def size_kb(path):
    return f"{os.path.getsize(path) / 1024:.1f} KB"


# ---------------------------------------------------------------- motion
def eval_motion(path, label="float32"):
    import eval_motion
    eval_motion.main(path)


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
