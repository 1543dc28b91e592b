"""Frame pairs for the motion model: real positives from vtest.avi, negatives from
still scenes with sensor noise, brightness / auto-exposure steps and JPEG re-encoding.

Split (fixed): vtest frames [0, 400) and the `TUNE_IMAGES` are used to choose the
thresholds; vtest frames [400, 795) and `TEST_IMAGES` are only used for evaluation.
"""
import os

import cv2
import numpy as np

from common import OPENCV_DATA

H, W = 120, 160
TUNE_IMAGES = ["building.jpg", "home.jpg", "board.jpg", "fruits.jpg", "aero1.jpg", "left01.jpg"]
TEST_IMAGES = ["baboon.jpg", "messi5.jpg", "leuvenA.jpg", "graf1.png", "aloeL.jpg",
               "butterfly.jpg", "orange.jpg", "left05.jpg"]


def area_resize(g):
    """What the daemon does: area-average any camera frame to 120x160."""
    return cv2.resize(g, (W, H), interpolation=cv2.INTER_AREA)


def load_vtest_full():
    cap = cv2.VideoCapture(os.path.join(OPENCV_DATA, "vtest.avi"))
    frames = []
    while True:
        ok, im = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY))
    return np.array(frames)  # uint8 [N, 576, 768]


def moving_people_mask(full):
    """Pairs (t-gap, t) whose full-resolution difference shows a moving person:
    >= 0.1% of full-res pixels change by more than 20 grey levels after a 5x5 blur.
    Returns per-frame boolean for gap 1 (index t means pair (t-1, t))."""
    b = np.array([cv2.GaussianBlur(f, (5, 5), 0).astype(np.int16) for f in full])
    frac = (np.abs(np.diff(b, axis=0)) > 20).mean(axis=(1, 2))
    return np.concatenate([[False], frac >= 0.001]), frac


def jpeg(g, q):
    ok, buf = cv2.imencode(".jpg", g, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def nuisance(full_u8, rng, strength=1.0, allow_jpeg=True):
    """One camera observation of a scene: brightness/exposure step (gain 0.6..1.4 with
    optional gamma 0.8..1.25, clipped to 8 bit), sensor noise (Gaussian + shot noise),
    optional JPEG re-encoding (quality 30..90), at the camera resolution; then the
    daemon's area resize to 120x160. Returns float32 [120,160] in [0,1]."""
    x = full_u8.astype(np.float32) / 255.0
    gain = rng.uniform(0.6, 1.4) if rng.random() < 0.7 * strength else 1.0
    gamma = rng.uniform(0.8, 1.25) if rng.random() < 0.3 * strength else 1.0
    x = np.clip(gain * x ** gamma, 0, 1)
    sigma = rng.uniform(0.0, 0.02) * strength          # up to ~5 grey levels
    shot = rng.uniform(0.0, 0.015) * strength
    x = x + rng.normal(0, 1, x.shape).astype(np.float32) * (sigma + shot * np.sqrt(x))
    u8 = np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
    if allow_jpeg and rng.random() < 0.6 * strength:
        u8 = jpeg(u8, rng.uniform(30, 90))
    return area_resize(u8).astype(np.float32) / 255.0


def still_scenes(names):
    out = []
    for n in names:
        g = cv2.imread(os.path.join(OPENCV_DATA, n), cv2.IMREAD_GRAYSCALE)
        if g is None:
            raise FileNotFoundError(n)
        out.append((n, g))
    return out


def small_camera(g, rng):
    """Also simulate a low-resolution camera: nuisances applied at 160x120 directly."""
    return area_resize(g)


def negative_pairs(scenes, rng, per_scene):
    """Pairs of two independent observations of the same still scene."""
    pairs, tags = [], []
    for name, g in scenes:
        lo = area_resize(g)
        for i in range(per_scene):
            src = lo if i % 2 else g     # half at camera res 160x120 (no noise averaging)
            a = nuisance(src, rng, strength=0.5)
            b = nuisance(src, rng, strength=1.0)
            pairs.append(np.stack([a, b]))
            tags.append(name)
    return np.array(pairs, dtype=np.float32), tags


def positive_pairs(full, idx, rng, gap=1, with_nuisance=False):
    pairs = []
    for t in idx:
        if with_nuisance:
            a = nuisance(full[t - gap], rng, strength=0.5)
            b = nuisance(full[t], rng, strength=1.0)
        else:
            a = area_resize(full[t - gap]).astype(np.float32) / 255.0
            b = area_resize(full[t]).astype(np.float32) / 255.0
        pairs.append(np.stack([a, b]))
    return np.array(pairs, dtype=np.float32)


def vtest_background(full):
    """Median over the video: the street without people (a real still scene)."""
    return np.median(full[::5], axis=0).astype(np.uint8)


def single_nuisance(full_u8, kind, rng):
    """Second observation of a scene with exactly one nuisance (for the breakdown table)."""
    x = full_u8.astype(np.float32) / 255.0
    if kind == "gain x1.4":
        x = np.clip(x * 1.4, 0, 1)
    elif kind == "gain x0.6":
        x = x * 0.6
    elif kind == "noise sigma 5/255":
        x = x + rng.normal(0, 5 / 255, x.shape).astype(np.float32)
    u8 = np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
    if kind == "jpeg q30":
        u8 = jpeg(u8, 30)
    return area_resize(u8).astype(np.float32) / 255.0


NUISANCES = ["gain x1.4", "gain x0.6", "noise sigma 5/255", "jpeg q30"]
