#!/usr/bin/env python3
"""Independent "person present" labels for vtest.avi: OpenCV's HOG + linear SVM people
detector (Dalal-Triggs), which knows nothing about frame differences, so the motion
model is not judged by its own pixel rule.

Writes results/vtest_people.json: per frame, the boxes found (x, y, w, h at 768x576) and
whether any person was found, for every third frame (HOG is slow on 2 shared cores);
small, far walkers are often missed, which only makes fewer frames count as labelled. Run: python3 Models/training/label_people.py
"""
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OPENCV_DATA, RESULTS_DIR  # noqa: E402

UPSCALE = 1.0
STEP = 3   # every third frame: HOG takes ~1 s a frame here


def main():
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    cap = cv2.VideoCapture(os.path.join(OPENCV_DATA, "vtest.avi"))
    frames = []
    t = 0
    while True:
        ok, im = cap.read()
        if not ok:
            break
        if t % STEP:
            t += 1
            continue
        g = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
        big = cv2.resize(g, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_LINEAR)
        rects, weights = hog.detectMultiScale(big, winStride=(8, 8), padding=(8, 8), scale=1.1)
        boxes = [[int(v / UPSCALE) for v in r] for r, wt in zip(rects, np.ravel(weights)) if wt > 0.5]
        frames.append({"t": t, "people": len(boxes), "boxes": boxes})
        t += 1
        if t % 100 == 0:
            print(t, file=sys.stderr)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, "vtest_people.json"), "w") as f:
        json.dump({"detector": "cv2.HOGDescriptor default people detector, every 3rd frame, winStride 8, scale 1.1, weight > 0.5",
                   "frames": frames}, f)
    n = sum(1 for f in frames if f["people"])
    print(f"{n}/{len(frames)} frames with a person")


if __name__ == "__main__":
    main()
