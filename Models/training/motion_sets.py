"""Streams for tuning and evaluating the motion model, split by video and time range.

Positives (real people, labelled by OpenCV's HOG people detector, label_people.py, never
by a pixel difference): vtest.avi frames [0, 400) for tuning, [400, 795) for testing,
played as a camera would deliver them (10 fps), subsampled (2 fps), every frame repeated
5 times (50 fps: a person moves < 1 px between frames, the slow-mover case), and with
sensor noise 10/255.
Nuisances (no person; every alert is false): real still scenes (OpenCV sample images:
TUNE_IMAGES / TEST_IMAGES; the vtest street with people removed, median of each half)
seen by a simulated camera over time: sensor noise 10/255 at 160x120, abrupt lighting
steps x0.25..x4 (3 frames, and permanent), auto-exposure following over 3 frames, slow
ramps, a day/night switch to an IR-like grey, rain/snow-like speckle; and real swaying
vegetation, tree.avi (frames [0, 34) tuning, [34, 53) testing, played back and forth),
full frame and composited beside the vtest street. The tuning part of tree.avi barely
moves, so for tuning it is swayed further by a smooth, gusting displacement field
(`sway`); the test part is used as recorded. Frames [53, 68) are not vegetation: a hand
passes in front of the camera there (seen by eye; from frame 54 on, 53 shows a sliver), so
evaluate.py scores them as motion (TREE_HAND), not as a nuisance.

Each stream says from which frame it is scored: the per-device state needs time to learn
a scene (background_s, activity_s), as a camera that has been running would have. People
streams play their range forwards then backwards and are scored on the second pass;
vegetation is scored after its first minute, and evaluate.py also reports the first minute.
"""
import json
import os

import cv2
import numpy as np

from common import OPENCV_DATA, RESULTS_DIR
import motion_data as md

H, W = 120, 160


def to_model(u8):
    return md.area_resize(u8).astype(np.float32) / 255.0


def vtest_frames():
    return md.load_vtest_full()


def people_labels():
    with open(os.path.join(RESULTS_DIR, "vtest_people.json")) as f:
        frames = json.load(f)["frames"]
    return {fr["t"]: fr["people"] > 0 for fr in frames}


TREE_TUNE = (0, 34)    # tree.avi frames: foliage only
TREE_TEST = (34, 53)   # foliage only (until 2026-12-03 the test took [34, 68), hand included)
TREE_HAND = (54, 68)   # a hand in front of the camera, labelled by eye (53: its first sliver, not scored)


def tree_frames():
    cap = cv2.VideoCapture(os.path.join(OPENCV_DATA, "tree.avi"))
    out = []
    while True:
        ok, im = cap.read()
        if not ok:
            break
        out.append(im)
    return out   # BGR 320x240, 68 frames decode (the rest of the file is unreadable)


def pingpong(seq, n):
    idx = list(range(len(seq))) + list(range(len(seq) - 2, 0, -1))
    return [seq[idx[i % len(idx)]] for i in range(n)]


def camera(u8_frames, rng, gains=None, noise=3 / 255, speckle=0):
    """A simulated camera: per-frame gain (auto-exposure / lights), sensor noise and
    optional speckle at the source resolution, 8-bit clipping, then the daemon's resize."""
    out = []
    for i, g in enumerate(u8_frames):
        x = g.astype(np.float32) / 255.0
        if gains is not None:
            x = x * gains[i]
        if noise:
            x = x + rng.normal(0, noise, x.shape).astype(np.float32)
        if speckle:
            h, w = x.shape
            k = int(speckle * h * w)
            ys, xs = rng.integers(0, h - 3, k), rng.integers(0, w, k)
            for dy in range(3):      # short bright streaks, new every frame
                x[ys + dy, xs] = np.maximum(x[ys + dy, xs], 0.95)
        out.append(to_model(np.clip(np.round(x * 255), 0, 255).astype(np.uint8)))
    return np.array(out, np.float32)


def lighting_gains(n):
    """Steps x0.25, x2, x3, x4 for 3 frames and back; auto-exposure following a step over
    3 frames; a permanent step to x0.5 and back; spaced 25 frames apart."""
    g = np.ones(n, np.float32)
    events = []
    for f in [0.25, 2.0, 3.0, 4.0]:
        events.append([f, f, f])
        events.append([f, 1 + (f - 1) * 0.6, 1 + (f - 1) * 0.25])  # AE catching up
    t = 10
    for e in events:
        if t + 3 >= n:
            break
        g[t:t + 3] = e
        t += 25
    if t + 60 < n:
        g[t:t + 50] = 0.5
    return g


def ramp_gains(n):
    t = np.arange(n) / max(n - 1, 1)
    return (1.0 - 0.7 * np.sin(np.pi * t)).astype(np.float32)  # down to x0.3 and back


def day_night(bgr, n, rng, period=40):
    """Colour day image <-> IR-like night grey (red channel dominant, flatter, darker)."""
    day = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    r = bgr[:, :, 2].astype(np.float32)
    night = np.clip(0.55 * r + 25, 0, 255).astype(np.uint8)
    frames = [night if (i // period) % 2 else day for i in range(n)]
    return camera(frames, rng)


NIGHT_MAPS = {     # v2.4's tuning: IR-like night images other than day_night's red channel
    "green": lambda bgr: 0.6 * bgr[:, :, 1] + 20,
    "blue": lambda bgr: 0.5 * bgr[:, :, 0] + 40,
    "flat grey": lambda bgr: 0.35 * cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) + 60,
    "bright red": lambda bgr: 0.9 * bgr[:, :, 2] + 10,
}


def day_night_variants(split, full, rng, n=200, period=40):
    """[(name, kind, frames, fps, score_from)]: day_night's switch with other night mappings
    (NIGHT_MAPS) on the split's scenes: a night image that keeps more or less of the day's
    structure and brightness."""
    lo, hi = (0, 400) if split == "tune" else (400, len(full))
    street = np.median(full[lo:hi:5], axis=0).astype(np.uint8)
    scenes = still_images(split) + [("vtest street (median)", cv2.cvtColor(street, cv2.COLOR_GRAY2BGR))]
    out = []
    for name, bgr in scenes:
        day = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        for kind, night_of in NIGHT_MAPS.items():
            night = np.clip(night_of(bgr.astype(np.float32)), 0, 255).astype(np.uint8)
            frames = [night if (i // period) % 2 else day for i in range(n)]
            out.append((name, f"day/night switch, {kind} night", camera(frames, rng), 10, 20))
    return out


def still_images(split):
    names = md.TUNE_IMAGES if split == "tune" else md.TEST_IMAGES
    out = []
    for n in names:
        im = cv2.imread(os.path.join(OPENCV_DATA, n), cv2.IMREAD_COLOR)
        out.append((n, im))
    return out


def sway(frames_g, rng, amp=3.0, fps=15.0):
    """Wind on foliage: each frame displaced by a smooth random field (blurred noise
    phases, +-amp px at 320x240) that oscillates at ~0.7 Hz under a slow gust envelope."""
    h, w = frames_g[0].shape
    ph = [cv2.GaussianBlur(rng.uniform(0, 2 * np.pi, (h, w)).astype(np.float32), (0, 0), 25) for _ in range(2)]
    ph = [(p - p.min()) / (np.ptp(p) + 1e-6) * 4 * np.pi for p in ph]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for t, f in enumerate(frames_g):
        s = t / fps
        gust = 0.4 + 0.6 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.08 * s))
        dx = amp * gust * np.sin(2 * np.pi * 0.7 * s + ph[0])
        dy = 0.5 * amp * gust * np.sin(2 * np.pi * 0.9 * s + ph[1])
        out.append(cv2.remap(f, (gx + dx).astype(np.float32), (gy + dy).astype(np.float32), cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT))
    return out


VEG_FRAMES = 1800     # 2 minutes at 15 fps
VEG_SCORE_FROM_S = 60


def nuisance_streams(split, full, rng, n=200):
    """[(name, kind, frames, fps, score_from)] with no person in any frame."""
    lo, hi = (0, 400) if split == "tune" else (400, len(full))
    street = np.median(full[lo:hi:5], axis=0).astype(np.uint8)
    scenes = [(name, cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), im) for name, im in still_images(split)]
    scenes.append(("vtest street (median)", street, cv2.cvtColor(street, cv2.COLOR_GRAY2BGR)))
    out = []
    for name, g, bgr in scenes:
        out.append((name, "noise 10/255 at 160x120", camera([md.area_resize(g)] * n, rng, noise=10 / 255), 10, 20))
        out.append((name, "lighting steps + AE", camera([g] * n, rng, gains=lighting_gains(n)), 10, 20))
        out.append((name, "ramp x1 -> x0.3 -> x1 (20 s)", camera([g] * n, rng, gains=ramp_gains(n)), 10, 20))
        out.append((name, "day/night grey switch", day_night(bgr, n, rng), 10, 20))
        out.append((name, "rain/snow speckle", camera([g] * n, rng, speckle=0.002), 10, 20))
    trees = tree_frames()
    half = trees[slice(*(TREE_TUNE if split == "tune" else TREE_TEST))]
    tg = pingpong([cv2.cvtColor(t, cv2.COLOR_BGR2GRAY) for t in half], VEG_FRAMES)
    if split == "tune":
        tg = sway(tg, rng)
    k = VEG_SCORE_FROM_S
    out.append(("tree.avi", "vegetation, full frame, 15 fps", camera(tg, rng), 15, 15 * k))
    out.append(("tree.avi", "vegetation, full frame, 3 fps", camera(tg[::5], rng), 3, 3 * k))
    out.append(("tree.avi beside the street", "vegetation, left 40 %, 15 fps",
                camera(composite(street, tg), rng), 15, 15 * k))
    return out


def object_under_ae(g, rng, shade, metering, n=120, fps=10, size=((0.15, 0.35), (0.12, 0.3)), glare=False, drift=0.0):
    """A still scene, an object (15-35 % of the width, 12-30 % of the height: a car seen from
    above) crossing it in 4 s, and a camera whose auto-exposure reacts to it (issue 16, v2.2):
    `highlight` metering keeps the 99th percentile where it was (a white object darkens the
    whole frame, as a car park camera does when a white car drives in), `mixed` meters half
    the mean and half the highlights (a dark object brightens it). The exposure moves 40 %
    of the way to its target each frame. Returns the camera's frames and a label per frame:
    True object in view, False empty, None the first and last two frames of a pass (a sliver)
    and the second after the object left (the exposure is still on its way back; the
    footage evaluation leaves a tail out too, its `exit_tail`).
    glare (v2.11): the object is brighter than the sensor's range (`shade` over 255: a white car
    in the sun, as on Intel's car park footage, where it stays blown out while the exposure
    darkens the frame by x1.5-x2) but for two dark windscreens, and the exposure meters what the
    sensor gives (clipped). drift: px (at the scene's size) the whole view slides right over the
    stream, and a third of it down (a pole-mounted camera creeping in the wind: Intel's car park
    view slides ~5 px of 768 within 6 s)."""
    h, w = g.shape
    ow, oh = int(w * rng.uniform(*size[0])), int(h * rng.uniform(*size[1]))
    y0 = int(rng.uniform(0, h - oh))
    tex = cv2.GaussianBlur(rng.normal(0, 12, (oh, ow)).astype(np.float32), (0, 0), 3)
    obj = np.clip(shade + tex, 0, None if glare else 255)
    if glare:     # dark windscreens across it: what stays visible of a car whose paint is blown out
        for a, b in ((0.25, 0.35), (0.6, 0.7)):
            obj[:, int(a * ow):int(b * ow)] = 60 + tex[:, int(a * ow):int(b * ow)]
    if metering == "highlight":
        meter = lambda f: np.percentile(f, 99)
    elif metering == "mean":
        meter = lambda f: f.mean()
    else:
        meter = lambda f: 0.5 * f.mean() + 0.5 * np.percentile(f, 99)
    target = meter(g.astype(np.float32))
    gain, frames, labels = 1.0, [], []
    t0, span = n // 4, n // 3
    for t in range(n):
        f = g.astype(np.float32).copy()
        x0 = int(-ow + (w + ow) * (t - t0) / span) if t0 <= t < t0 + span else None
        seen = False
        if x0 is not None:
            a, b = max(0, x0), min(w, x0 + ow)
            if b > a:
                f[y0:y0 + oh, a:b] = obj[:, a - x0:b - x0]
                seen = True
        if drift:
            f = cv2.warpAffine(f, np.float32([[1, 0, drift * t / n], [0, 1, drift * t / (3 * n)]]), (w, h),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if glare:     # what the metering would restore, read from the clipped capture at the current gain
            gain += 0.4 * (gain * target / max(meter(np.minimum(f * gain, 255)), 1.0) - gain)
        else:
            gain += 0.4 * (target / max(meter(f), 1.0) - gain)
        frames.append(np.clip(np.round(f * gain), 0, 255).astype(np.uint8))
        labels.append(seen)
    lab = list(labels)
    on = [t for t in range(n) if labels[t]]
    if on:
        for t in on[:2] + on[-2:] + list(range(on[-1] + 1, on[-1] + 1 + fps)):
            if t < n:
                lab[t] = None
    return camera(frames, rng), lab


def dimmed_scenes(split, full):
    """The split's still scenes and its empty street, grey, dimmed to 70 % (so a white object
    or a pool of lamp light can be brighter than the scene's own highlights)."""
    lo, hi = (0, 400) if split == "tune" else (400, len(full))
    street = np.median(full[lo:hi:5], axis=0).astype(np.uint8)
    scenes = [(name, cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)) for name, im in still_images(split)]
    scenes.append(("vtest street (median)", street))
    return [(name, np.clip(g.astype(np.float32) * 0.7, 0, 255).astype(np.uint8)) for name, g in scenes]


LARGE_OBJECT = ((0.35, 0.6), (0.3, 0.6))   # v2.4 (tried): 10-36 % of the frame, a car close to the camera


GUST_AMPS = (6.0, 10.0)   # px at 320x240: the gusts the +-3 px tuning sway does not reach


def gust_streams(split, rng):
    """[(name, frames, fps)] (v2.8, issue 16): the split's half of tree.avi swayed by gusts of
    +-6 and +-10 px (`sway`), full frame, at 15 fps and every 5th frame (3 fps): stronger wind
    than the real clip (a light breeze) shows. v2.1-v2.7 fire on 52-87 % of their pairs, 2 alerts
    a minute. Score them from VEG_SCORE_FROM_S on, as the other vegetation."""
    trees = [cv2.cvtColor(t, cv2.COLOR_BGR2GRAY) for t in tree_frames()[slice(*(TREE_TUNE if split == "tune" else TREE_TEST))]]
    out = []
    for amp in GUST_AMPS:
        cam = camera(sway(pingpong(trees, VEG_FRAMES), rng, amp=amp), rng)
        out.append((f"vegetation, full frame, gusts +-{amp:g} px, 15 fps", cam, 15))
        out.append((f"vegetation, full frame, gusts +-{amp:g} px, 3 fps", cam[::5], 3))
    return out


def ae_object_streams(split, full, rng, size=None):
    """[(name, frames, fps, labels, score_from)]: objects crossing each of the split's still
    scenes (dimmed to 70 % so a white object outshines the highlights) under an auto-exposure
    that reacts to them; white and dark objects, both meterings, at 10 and 2.5 fps.
    size: object_under_ae's (width, height) ranges, or LARGE_OBJECT (v2.4's streams)."""
    out = []
    for name, g in dimmed_scenes(split, full):
        for shade in (235, 25):
            for metering in ("highlight", "mixed"):
                frames, lab = object_under_ae(g, rng, shade, metering, **({"size": size} if size else {}))
                tag = f"{name}, {'large ' if size else ''}{'white' if shade > 128 else 'dark'} object, {metering} AE"
                out.append((tag + ", 10 fps", frames, 10, lab, 20))
                out.append((tag + ", 2.5 fps", frames[::4], 2.5, lab[::4], 5))
    return out


GLARE_DRIFT = 4.0           # px at 320 wide over a 12 s stream (2 px at the model's 160: Intel's car park crept ~1.2)
GLARE_SHADES = (500, 700)    # a white car in the sun: x2 and x2.7 the sensor's white (it stays blown out)


def glare_object_streams(split, full, rng, drift=0.0):
    """[(name, frames, fps, labels, score_from)] (v2.11, issue 16): large objects brighter than the
    sensor's range (object_under_ae's `glare`) crossing each of the split's dimmed still scenes,
    the exposure metering the mean or half the mean and half the highlights, at 10 and 2.5 fps:
    the exposure darkens the frame by up to x2 while the object stays blown out (on Intel's car
    park footage it darkens x1.7; the synthetic objects of ae_object_streams move it by x1.35 at
    most). drift: object_under_ae's (GLARE_DRIFT: the same streams with the camera creeping)."""
    out = []
    for name, g in dimmed_scenes(split, full):
        for shade in GLARE_SHADES:
            for metering in ("mean", "mixed"):
                frames, lab = object_under_ae(g, rng, shade, metering, size=LARGE_OBJECT, glare=True, drift=drift)
                tag = f"{name}, large object in glare ({shade}), {metering} AE" + (f", view drifting {drift:g} px" if drift else "")
                out.append((tag + ", 10 fps", frames, 10, lab, 20))
                out.append((tag + ", 2.5 fps", frames[::4], 2.5, lab[::4], 5))
    return out


def lamp_stream(g, rng, metering, n=100, fps=10):
    """A lamp switched on in part of a still scene for 4 s (issue 16, v2.2): a soft pool of
    light (Gaussian, sigma 8-20 % of the width, x1.5-x2.5 at its centre) at a random place;
    the camera's exposure does nothing (`none`), holds the mean (`mean`) or the 99th
    percentile (`highlight`), moving 40 % of the way each frame. No object: every alert is
    false. What the v2.2 exception must not turn into motion (a local light change that
    moves the frame's light level looks, in area, like an object under an auto-exposure)."""
    h, w = g.shape
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    sig = rng.uniform(0.08, 0.2) * w
    yy, xx = np.mgrid[0:h, 0:w]
    pool = 1 + rng.uniform(0.5, 1.5) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sig ** 2))
    meter = (lambda f: np.percentile(f, 99)) if metering == "highlight" else (lambda f: f.mean())
    target, gain, out = meter(g.astype(np.float32)), 1.0, []
    for t in range(n):
        f = g.astype(np.float32) * (pool if 3 * fps <= t < 7 * fps else 1.0)
        if metering != "none":
            gain += 0.4 * (target / max(meter(np.minimum(f, 255)), 1.0) - gain)
        out.append(np.clip(np.round(f * gain), 0, 255).astype(np.uint8))
    return camera(out, rng)


def lamp_streams(split, full, rng, repeats=3):
    """[(name, kind, frames, fps, score_from)]: lamps switched on in each of the split's
    still scenes (dimmed to 70 %), under the three exposure behaviours, `repeats` each."""
    out = []
    for name, g in dimmed_scenes(split, full):
        for metering in ("none", "mean", "highlight"):
            for _ in range(repeats):
                out.append((name, f"local lamp, {metering} AE", lamp_stream(g, rng, metering), 10, 20))
    return out


TREE_RECT = (0, 0, 307, 576)   # x, y, w, h in the 768x576 composite: the tree's area


def with_tree(frame, tree_g):
    """A copy of the 768x576 `frame` with the tree frame `tree_g` pasted over TREE_RECT."""
    x, y, w, h = TREE_RECT
    f = frame.copy()
    f[y:y + h, x:x + w] = cv2.resize(tree_g, (w, h), interpolation=cv2.INTER_AREA)
    return f


def composite(street, tree_frames_g):
    """Swaying tree (tree.avi) pasted over the left 40 % of the vtest street."""
    return [with_tree(street, t) for t in tree_frames_g]


def foliage_people_streams(split, full, rng, warm_s=60, fps=10):
    """[(name, frames, fps, labels, score_from)] (issue 16): the split's vtest people walking
    beside the split's tree swayed by gusts (GUST_AMPS) over the left 40 % (composite), after
    `warm_s` of the tree over the empty street (the restless map's warm-up), at 10 and 2 fps.
    Label True where a HOG box lies at least half outside the tree's area (a person beside the
    foliage, visible), None elsewhere (not scored): what a window that takes foliage in wind
    for restless may not cost."""
    lo, hi = (0, 400) if split == "tune" else (400, len(full))
    street = np.median(full[lo:hi:5], axis=0).astype(np.uint8)
    boxes, x_tree = people_boxes(), TREE_RECT[0] + TREE_RECT[2]
    idx = list(range(lo, hi))
    idx = idx + idx[::-1]
    warm = warm_s * fps

    def beside(t):     # None, not False: frames with nobody beside the tree are not scored
        return any(max(0, min(x + w, x_tree) - x) <= 0.5 * w for x, _, w, _ in boxes.get(t, [])) or None

    trees = [cv2.cvtColor(t, cv2.COLOR_BGR2GRAY) for t in tree_frames()[slice(*(TREE_TUNE if split == "tune" else TREE_TEST))]]
    out = []
    for amp in GUST_AMPS:
        tg = sway(pingpong(trees, warm + len(idx)), rng, amp=amp, fps=fps)
        cam = camera([with_tree(street if i < warm else full[idx[i - warm]], t) for i, t in enumerate(tg)], rng)
        lab = [None] * warm + [beside(t) for t in idx]
        out.append((f"vtest people beside foliage in gusts +-{amp:g} px, {fps} fps", cam, fps, lab, warm))
        out.append((f"vtest people beside foliage in gusts +-{amp:g} px, {fps // 5} fps", cam[::5], fps // 5, lab[::5], warm // 5))
    return out


def positive_streams(split, full, rng):
    """[(name, frames, fps, labelled, score_from)] labelled: per frame True where HOG found
    a person (only every third source frame is labelled; others are None = not scored).
    The range plays forwards then backwards; the second pass is scored."""
    lab = people_labels()
    lo, hi = (0, 400) if split == "tune" else (400, len(full))
    idx = list(range(lo, hi))
    idx = idx + idx[::-1]
    def labels(ids):
        return [lab.get(t) if lab.get(t) else None for t in ids]
    clean = np.array([to_model(full[t]) for t in idx], np.float32)
    half = len(idx) // 2
    out = [("vtest 10 fps", clean, 10, labels(idx), half)]
    out.append(("vtest 10 fps, noise 10/255", camera([md.area_resize(full[t]) for t in idx], rng, noise=10 / 255), 10, labels(idx), half))
    out.append(("vtest 2 fps", clean[::5], 2, labels(idx[::5]), half // 5))
    slow = idx[half:half + 120]
    out.append(("vtest each frame x5 (50 fps, slow movers)", np.repeat(clean[half:half + 120], 5, axis=0), 50,
                [l for l in labels(slow) for _ in range(5)], 20))
    return out


def people_boxes():
    with open(os.path.join(RESULTS_DIR, "vtest_people.json")) as f:
        frames = json.load(f)["frames"]
    return {fr["t"]: fr["boxes"] for fr in frames if fr["boxes"]}


def single_people(split, full, pad=8):
    """One person at a time: for every HOG box in the split's labelled frames, that box's
    pixels (plus `pad` px) pasted on the split's empty street (median), as the model input
    a device whose background is that street would get: (frame, background, 0, 1).
    vtest frames hold several people; this measures each one alone, as a quiet scene sees
    them. Returns float32 [N, 4, H, W] and the box sizes (w, h at 768x576)."""
    lo, hi = (0, 400) if split == "tune" else (400, len(full))
    street = np.median(full[lo:hi:5], axis=0).astype(np.uint8)
    bg = to_model(street)
    zeros, ones = np.zeros_like(bg), np.ones_like(bg)
    xs, sizes = [], []
    for t, boxes in sorted(people_boxes().items()):
        if not lo <= t < hi:
            continue
        for x, y, w, h in boxes:
            f = street.copy()
            y0, y1 = max(0, y - pad), min(full.shape[1], y + h + pad)
            x0, x1 = max(0, x - pad), min(full.shape[2], x + w + pad)
            f[y0:y1, x0:x1] = full[t][y0:y1, x0:x1]
            xs.append(np.stack([to_model(f), bg, zeros, ones]))
            sizes.append((w, h))
    return np.array(xs, np.float32), sizes


def standing_stream(street, person, box, rng, fps=10, before_s=10, stand_s=30, after_s=5):
    """A person who walks in and stands nearly still (v2.3, issue 16): the HOG box `box` of
    frame `person` pasted on the empty street, shifted by up to 2 px (source pixels) each
    frame, for `stand_s` seconds, with `before_s` of empty street before and `after_s` after.
    The background absorbs a person who stands (background_s 20): what is left of them
    against it fades, first in structure, then in brightness. Labels: True while the person
    is in view (the first 2 frames not scored), None for 1 s after they left, else False."""
    x, y, w, h = box
    pad = 8
    y0, y1 = max(0, y - pad), min(street.shape[0], y + h + pad)
    x0, x1 = max(0, x - pad), min(street.shape[1], x + w + pad)
    crop = person[y0:y1, x0:x1]
    frames, lab = [], []
    for t in range(int((before_s + stand_s + after_s) * fps)):
        f = street.copy()
        on = before_s * fps <= t < (before_s + stand_s) * fps
        if on:
            dy, dx = rng.integers(-2, 3, 2)
            ya, xa = min(max(0, y0 + dy), street.shape[0] - crop.shape[0]), min(max(0, x0 + dx), street.shape[1] - crop.shape[1])
            f[ya:ya + crop.shape[0], xa:xa + crop.shape[1]] = crop
        frames.append(f)
        after = (before_s + stand_s) * fps <= t < (before_s + stand_s + 1) * fps
        first = before_s * fps <= t < before_s * fps + 2
        lab.append(None if after or first else on)
    return camera(frames, rng), lab


def standing_streams(split, full, rng, k=8):
    """[(name, frames, fps, labels, score_from)]: `k` of the split's HOG-found people (the
    tallest box of k frames spread over the split), each standing 30 s on the split's empty
    street (standing_stream)."""
    lo, hi = (0, 400) if split == "tune" else (400, len(full))
    street = np.median(full[lo:hi:5], axis=0).astype(np.uint8)
    boxes = [(t, max(b, key=lambda r: r[3])) for t, b in sorted(people_boxes().items()) if lo <= t < hi and b]
    picks = [boxes[i] for i in np.linspace(0, len(boxes) - 1, k).astype(int)]
    out = []
    for t, box in picks:
        frames, lab = standing_stream(street, full[t], box, rng)
        out.append((f"vtest frame {t}, person standing 30 s", frames, 10, lab, 50))
    return out
