#!/usr/bin/env python3
"""Issue 16: motion_sets.NIGHT_MAPS' day/night switches on opencv-doc images that are in neither
the tuning nor the test split, through the shipped model and the state vigild keeps (200 frames
at 10 fps, a switch every 4 s, as day_night_variants). First run as evidence, with v2.9: were
the test split's alerting variants (bright red: aloeL, butterfly) particular to those scenes?
(3 of 40 streams alerted: no.) Since v2.10 these streams are tuning data
(train_motion.tune_recolour_more chose TS on them); the test split stays unread by choices.

  python3 Models/training/night_variants_extra.py   (~1 min; needs opencv-doc)
"""
import os
import sys

import cv2
import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import motion_sets as ms  # noqa: E402
import motion_stream as mst  # noqa: E402
from common import MODELS_DIR, OPENCV_DATA, session  # noqa: E402

EXTRA_IMAGES = ["HappyFish.jpg", "apple.jpg", "basketball1.png", "ela_original.jpg", "rubberwhale1.png",
                "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg", "aero3.jpg"]


def streams():
    """(image, night kind, frames at 10 fps) for every EXTRA_IMAGES x NIGHT_MAPS switch (seed 7);
    score from frame 20 on, as day_night_variants."""
    rng = np.random.default_rng(7)
    for name in EXTRA_IMAGES:
        bgr = cv2.imread(os.path.join(OPENCV_DATA, name), cv2.IMREAD_COLOR)
        day = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        for kind, night_of in ms.NIGHT_MAPS.items():
            night = np.clip(night_of(bgr.astype(np.float32)), 0, 255).astype(np.uint8)
            yield name, kind, ms.camera([night if (i // 40) % 2 else day for i in range(200)], rng)


def main():
    path = os.path.join(MODELS_DIR, "motion.onnx")
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    sess = session(path)
    tally = {}
    print(f"# motion v{meta['vigil.version']}: day/night switches every 4 s on {len(EXTRA_IMAGES)} opencv-doc images in neither split")
    for name, kind, frames in streams():
        sc = mst.run_stream(sess, frames, 10, mst.state_for(meta))[20:, 1]
        a1, a2 = mst.alerts(sc, 0.5, 1, 0.3, 300), mst.alerts(sc, 0.5, 2, 0.3, 300)
        t = tally.setdefault(kind, [0, 0, 0])
        t[0], t[1], t[2] = t[0] + 1, t[1] + (a1 > 0), t[2] + (a2 > 0)
        if a1 or a2:
            print(f"  {name}, {kind} night: {100 * np.mean(np.nan_to_num(sc) >= 0.5):.2f} % of frames said motion, alerts {a1} (for_frames 1), {a2} (for_frames 2)")
    for kind, (n, a1, a2) in tally.items():
        print(f"{kind} night: streams alerting {a1}/{n} (for_frames 1), {a2}/{n} (for_frames 2)")


if __name__ == "__main__":
    main()
