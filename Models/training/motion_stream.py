"""What vigild's camera adapter does for a model whose `vigil.channels` is
`current,background,activity,weight` (Sources/VigilCore/Intake/Adapters/ImageAdapter.swift,
`CameraState`), re-implemented in numpy so training and evaluation see the same inputs
as the daemon. Keep the two in step: the Swift tests pin the same numbers.

Per device:
- background B: running average of the frames, time constant `background_s`
  (alpha = 1 - exp(-dt / background_s), dt from the frames' timestamps, at most
  background_s); when the model says `lighting`, rescaled to the frame's mean (v2.1) if
  that explains the frame (90 % of |box3(frame - rescaled)| < RESCALE_FIT: a light
  switched, and a person in view is not copied into the background), else reset to the
  frame (day/night, clipped highlights), as it is when `lighting` comes twice in a row.
- activity D: running average, time constant `activity_s`, of |box3(g * C - B)|, the
  current frame's deviation from the background after matching its mean brightness
  (g = mean(B) / mean(C)), 3x3 box-blurred against sensor noise. Swaying trees, water
  and flags keep it high; a passer-by raises it only briefly.
- weight W: 0 in masked pixels, else the model's vigil.min_area / the pipeline's min_area.
- restless R (v2.8, issue 16): running average, time constant `activity_s`, of whether the
  frame differs (|box3(g * C - S)| >= GHOST_FIT, gain-matched) from a snapshot S taken at
  least RESTLESS_LAG_S (0.4 s, fixed before any run) before, renewed every RESTLESS_LAG_S: the
  share of time a pixel keeps changing, whatever the frame rate. Foliage in wind changes all
  the time; a person standing still barely; a pavement only while someone passes.
- ghosts healed (2026-12-03, issue 16): a clean background K keeps the scene as it was before
  anything stood in it. K follows B slowly (time constant CLEAN_FACTOR x background_s) where
  the frame agrees with B and B agrees with K; it takes in a change (a parked car) only once
  the frame has agreed with B for CLEAN_FACTOR x background_s without a break. Where the
  frame has matched K but not B for GHOST_S seconds without a break, B is reset to K there:
  what B absorbed of an object that stood and then left (a ghost, which kept v2.1 saying
  motion for 20-60 s after a person or car had gone) is dropped. Comparisons with K are
  gain-matched to K's own mean, so a light change needs nothing done to K. GHOST_FIT and
  CLEAN_FACTOR were fixed before any run; GHOST_S = 1 s was chosen on the tuning split (the
  smallest of 0.5 / 1 / 2 s that left its vegetation at 0 false pairs: 0.5 s gave 2 alerts);
  since v2.9 the model declares it (`vigil.ghost_s`, chosen again once the restless map took
  the foliage out: train_motion.tune_ghost).
- the view aligned (v2.12, issue 16; the model's vigil.align): a creeping camera (a pole in the
  wind; Intel's car park slides ~6 px of 768 in 9 s) turns every edge into motion against planes
  learnt on the old view. Each frame is first moved back onto the state's view by an offset
  (sub-pixel, bilinear: `warp`), and the offset follows `align_step` (one Lucas-Kanade step on the
  3x3-blurred frame and background, with a gain and an offset of brightness fitted alongside,
  counting only pixels a shift explains), by at most ALIGN_STEP a frame and ALIGN_REACH in all.
  vigild's ViewAligner does the same.
The model gets (C, B, D, W) computed from the frames before C; the state is then updated
with C.
"""
import math

import numpy as np

H, W = 120, 160
RESCALE_FIT = 0.03   # fixed, not tuned: 1.4x the 90th percentile of |box3| of 10/255 sensor noise (0.021)
GHOST_FIT = RESCALE_FIT   # a pixel agrees with a background within this (box3, gain-matched)
CLEAN_FACTOR = 5.0        # the clean background's time constant and acceptance time, x background_s
GHOST_S = 1.0             # seconds a pixel must match the clean background (not B) before B is reset there (v2.9: the model's vigil.ghost_s)
RESTLESS_LAG_S = 0.4      # v2.8: the restless map compares each frame with a snapshot this old (renewed every RESTLESS_LAG_S)
# Alignment (v2.12, issue 16, a creeping camera): fixed before any run, not tuned
ALIGN_INLIER = (0.1, 0.06)   # |residual| (box3) below which a pixel counts, first pass and the two after
ALIGN_SHARE = 0.5            # share of pixels that must count for a frame to move the offset
ALIGN_GAIN = 0.5             # share of a frame's estimate taken (damps the estimate's noise)
ALIGN_STEP = 0.25            # px a frame may move the offset, at most (a creep is far slower)
ALIGN_REACH = 4.0            # px (at 160 x 120) the offset may reach
ALIGN_TEXTURE = 2e-5         # mean squared gradient (smaller eigenvalue) below which the scene cannot be aligned
CHANNELS = "current,background,activity,weight"


def warp(img, oy, ox):
    """img moved by (oy, ox) px: out[y, x] = img[y - oy, x - ox], bilinear, edges repeated."""
    h, w = img.shape
    y, x = np.arange(h, dtype=np.float64) - oy, np.arange(w, dtype=np.float64) - ox
    y0, x0 = np.floor(y), np.floor(x)
    fy, fx = (y - y0).astype(np.float32)[:, None], (x - x0).astype(np.float32)[None, :]
    ya, yb = np.clip(y0, 0, h - 1).astype(int), np.clip(y0 + 1, 0, h - 1).astype(int)
    xa, xb = np.clip(x0, 0, w - 1).astype(int), np.clip(x0 + 1, 0, w - 1).astype(int)
    rows = img[ya] * (1 - fy) + img[yb] * fy
    return (rows[:, xa] * (1 - fx) + rows[:, xb] * fx).astype(np.float32)


# Both chosen on the tuning glare streams (exp_motion_register.py, Models/motion.md v2.11): a shift
# alone drifted on a still camera with large objects under auto-exposure (0 -> 160 empty frames said
# motion); moving the offset only after a `still` frame froze it on the creeping view (397 -> 160)
ALIGN_PHOTOMETRIC = True        # the step also fits a gain and an offset of brightness (a scale error on a lit gradient reads as a shift)
ALIGN_ONLY_AFTER_STILL = False  # tried, off: the offset moves only on frames after one the model called `still`


ALIGN_RESTLESS = 0.3            # pixels this restless or more (the model's TD) take no part: foliage sways, the view does not
ALIGN_BLOCKS = 4                # the view cut into ALIGN_BLOCKS x ALIGN_BLOCKS blocks; the shift is their median
ALIGN_MEDIAN = True             # (a large object crossing moves its own blocks' estimates, not most of them)


def align_step(frame, bg, still=None):
    """How far (dy, dx) the frame's content still sits from the background's: frame(p) ~ bg(p + d),
    by Lucas-Kanade on both 3x3-blurred, gain-matched, robust to objects (pixels whose residual
    stays above ALIGN_INLIER do not count), or None when too few pixels fit or the scene has too
    little texture to tell. With ALIGN_MEDIAN the shift is the median of each block's own
    (with the brightness fitted over the whole view), over the blocks with texture and most of
    their pixels fitting. still: where pixels may count at all (None: everywhere)."""
    b = box3(bg)
    e = box3(frame) * (float(bg.mean()) / max(float(frame.mean()), 1e-3)) - b
    gy, gx = np.zeros_like(b), np.zeros_like(b)
    gy[1:-1] = (b[2:] - b[:-2]) / 2
    gx[:, 1:-1] = (b[:, 2:] - b[:, :-2]) / 2
    cols = [gy, gx] + ([b - float(b.mean()), np.ones_like(b)] if ALIGN_PHOTOMETRIC else [])
    d = np.zeros(len(cols))
    for bar in ALIGN_INLIER + ALIGN_INLIER[1:]:
        r = e - sum(c * v for c, v in zip(cols, d))
        m = np.abs(r) < bar
        if m.mean() < ALIGN_SHARE:
            return None
        if still is not None:
            m = m & still
        a = np.array([[np.sum(ci * cj * m) for cj in cols] for ci in cols])
        if np.linalg.eigvalsh(a[:2, :2])[0] < ALIGN_TEXTURE * m.sum():
            return None
        d = np.linalg.solve(a, np.array([np.sum(c * e * m) for c in cols]))
    if not ALIGN_MEDIAN:
        return d[:2]
    rest = e - sum(c * v for c, v in zip(cols[2:], d[2:]))     # what is left for the shift to explain
    h, w = b.shape
    shifts = []
    for by in range(ALIGN_BLOCKS):
        for bx in range(ALIGN_BLOCKS):
            sl = (slice(by * h // ALIGN_BLOCKS, (by + 1) * h // ALIGN_BLOCKS), slice(bx * w // ALIGN_BLOCKS, (bx + 1) * w // ALIGN_BLOCKS))
            mb, yy, xx, rb = m[sl], gy[sl], gx[sl], rest[sl]
            k = int(mb.sum())
            if k < ALIGN_SHARE * mb.size:
                continue
            ab = np.array([[np.sum(yy * yy * mb), np.sum(yy * xx * mb)], [np.sum(yy * xx * mb), np.sum(xx * xx * mb)]])
            if np.linalg.eigvalsh(ab)[0] < ALIGN_TEXTURE * k:
                continue
            shifts.append(np.linalg.solve(ab, np.array([np.sum(yy * rb * mb), np.sum(xx * rb * mb)])))
    if len(shifts) < ALIGN_BLOCKS:
        return None
    return np.median(np.array(shifts), axis=0)


def box3(x):
    p = np.pad(x, 1, mode="edge")
    return sum(p[dy:dy + x.shape[0], dx:dx + x.shape[1]] for dy in range(3) for dx in range(3)) / 9.0


class CameraState:
    def __init__(self, background_s=20.0, activity_s=60.0, weight=None, heal=True, channels=CHANNELS, hold=1.0, ghost_s=GHOST_S,
                 moving_through_lighting=False, align=False, align_holds_after_lighting=False, align_band=0):
        self.bg_s, self.act_s, self.heal, self.hold, self.ghost_s = background_s, activity_s, heal, hold, ghost_s
        self.channels = channels.split(",")
        self.moved = False            # the `moving` channel: the model said motion on the last frame
        # ... or, when moving_through_lighting (v2.11's candidate; shipped with v2.14, vigild's
        # CameraState.observe), on the one before and `lighting` on the last
        self.through_lighting = moving_through_lighting
        # align (issue 16, a creeping camera): each frame is moved onto the state's view (`offset`,
        # px) before anything else reads it; the offset follows align_step
        self.align, self.offset = align, np.zeros(2)
        # ... but not on a frame after a `lighting` one when align_holds_after_lighting: the lighting
        # re-base may have made the background the last frame, with whatever was crossing it in it
        self.align_holds_lit = align_holds_after_lighting
        # ... and, when align_band (px; v2.14, vigild's ImageAdapter.bandedWeights: Models/motion.md
        # "v2.11's blown-out-car candidate on the aligned state"), the band of that width on each side the warp
        # pulls the frame from (where it repeats the edge) is left out of the weight plane: nothing was
        # seen there, and what an object left in the background at the border is never healed
        self.align_band = align_band
        self.was_still = True         # the model said `still` on the last frame (or there was none)
        self.said_motion = False
        self.weight = np.ones((H, W), np.float32) if weight is None else weight.astype(np.float32)
        self.B = None
        self.D = None
        self.last = None
        self.ts = None
        self.lit = False

    def inputs(self, cur, ts):
        """The model input for frame `cur` (float32 [H, W] in [0,1]) at `ts`, or None for
        a device's first frame; then updates the state with `cur`."""
        cur = cur.astype(np.float32)
        if self.align and self.B is not None:
            moved = warp(cur, *self.offset)
            still = self.R < ALIGN_RESTLESS if ALIGN_RESTLESS is not None else None
            measure = (self.was_still or not ALIGN_ONLY_AFTER_STILL) and not (self.align_holds_lit and self.lit)
            d = align_step(moved, self.B, still) if measure else None
            if d is not None:
                self.offset = np.clip(self.offset + np.clip(ALIGN_GAIN * d, -ALIGN_STEP, ALIGN_STEP), -ALIGN_REACH, ALIGN_REACH)
            cur = warp(cur, *self.offset) if np.any(self.offset) else cur
        if self.B is None:
            self.B = cur.copy()
            self.D = np.zeros_like(cur)
            self.K = cur.copy()                   # clean background
            self.settled = np.zeros_like(cur)     # seconds the frame has agreed with B
            self.ghost = np.zeros_like(cur)       # seconds the frame has matched K but not B
            self.R = np.zeros_like(cur)           # restless: share of time changed against the snapshot
            self.S, self.S_ts = cur.copy(), ts    # the snapshot and when it was taken
            self.ts, self.last = ts, cur
            return None
        planes = {"current": cur, "background": self.B, "activity": self.D, "restless": self.R, "weight": self.banded_weight(),
                  "moving": np.full_like(cur, 1.0 if self.moved else 0.0), "previous": self.last}
        x = np.stack([planes[c] for c in self.channels])[None].astype(np.float32)
        dt = min(max(ts - self.ts, 0.0), self.bg_s)
        a = 1.0 - math.exp(-dt / self.bg_s)
        ad = 1.0 - math.exp(-min(max(ts - self.ts, 0.0), self.act_s) / self.act_s)
        g = float(self.B.mean()) / max(float(cur.mean()), 1e-3)
        dev = np.abs(box3(cur * g - self.B))
        self.D = ((1 - ad) * self.D + ad * dev).astype(np.float32)
        gs = float(self.S.mean()) / max(float(cur.mean()), 1e-3)
        changed = (np.abs(box3(cur * gs - self.S)) >= GHOST_FIT).astype(np.float32)
        self.R = ((1 - ad) * self.R + ad * changed).astype(np.float32)
        if ts - self.S_ts >= RESTLESS_LAG_S:
            self.S, self.S_ts = cur, ts
        # hold 1 keeps the arithmetic every version before v2.7 was tuned and recorded with;
        # the held form is vigild's (B + rate x (C - B)), one rate per pixel
        if self.hold == 1.0:
            self.B = ((1 - a) * self.B + a * cur).astype(np.float32)
        else:
            ah = 1.0 - math.exp(-dt / (self.hold * self.bg_s))
            rate = np.where(dev < GHOST_FIT, np.float32(a), np.float32(ah))
            self.B = (self.B + rate * (cur - self.B)).astype(np.float32)
        if self.heal:
            self.heal_ghosts(cur, dev, max(ts - self.ts, 0.0))
        self.ts, self.last = ts, cur
        return x

    def banded_weight(self):
        """The weight plane, less align_band px on each side the warp invents (none while the offset is 0)."""
        if not (self.align and self.align_band) or not np.any(self.offset):
            return self.weight
        w, b = self.weight.copy(), self.align_band
        oy, ox = self.offset
        # out[y, x] = frame[y - oy, x - ox]: ox < 0 pulls from the right, so the right edge is repeated
        if ox < 0:
            w[:, -b:] = 0
        elif ox > 0:
            w[:, :b] = 0
        if oy < 0:
            w[-b:, :] = 0
        elif oy > 0:
            w[:b, :] = 0
        return w

    def heal_ghosts(self, cur, dev, dt):
        ks = CLEAN_FACTOR * self.bg_s
        ak = 1.0 - math.exp(-min(dt, ks) / ks)
        n = cur.size
        mk, mb = float(self.K.sum()), float(self.B.sum())
        gk = mk / max(float(cur.sum()), 1e-3 * n)
        # K's light level against B's, from the pixels where they agree (a ghost is not a light change)
        r = mk / max(mb, 1e-3 * n)
        same = np.abs(self.B * r - self.K) < GHOST_FIT
        if same.sum() >= n // 10:
            r = float(self.K[same].sum()) / max(float(self.B[same].sum()), 1e-3 * n)
        dev_k = np.abs(box3(cur * gk - self.K))
        self.ghost = np.where((dev_k < GHOST_FIT) & (dev >= GHOST_FIT), self.ghost + dt, 0.0).astype(np.float32)
        self.B = np.where(self.ghost >= self.ghost_s, self.K / r, self.B).astype(np.float32)
        agrees = dev < GHOST_FIT
        self.settled = np.where(agrees, self.settled + dt, 0.0).astype(np.float32)
        bk = self.B * r
        same = np.abs(bk - self.K) < GHOST_FIT
        track = agrees & same
        accept = agrees & ~same & (self.settled >= ks)
        self.K = np.where(track, self.K + ak * (bk - self.K), np.where(accept, bk, self.K)).astype(np.float32)

    def observe(self, label):
        """The model's verdict on the last input: `lighting` re-baselines the background:
        a first `lighting` rescales it to the frame's light level (a light switched: what
        the background learnt stays, so a person in view is not copied into it and left as
        a ghost); `lighting` again on the next frame (the scene itself changed: day/night)
        replaces it with the frame."""
        if label == "lighting":
            g = float(self.last.mean()) / max(float(self.B.mean()), 1e-3)
            scaled = np.clip(self.B * g, 0, 1).astype(np.float32)
            # rescaling explains the frame (most pixels within RESCALE_FIT after a 3x3 blur):
            # a light switched; else (day/night, blown-out highlights) start from the frame
            fits = float(np.percentile(np.abs(box3(self.last - scaled)), 90)) < RESCALE_FIT
            self.B = scaled if fits and not self.lit else self.last.copy()
        self.lit = label == "lighting"
        self.was_still = label == "still"
        # one `lighting` frame does not end an object's visit when the model asks so: a car whose
        # exposure step was taken for lighting is still in view on the next frame
        self.moved = label == "motion" or (self.through_lighting and label == "lighting" and self.said_motion)
        self.said_motion = label == "motion"


def state_for(meta, **kw):
    """A CameraState with the time constants a model declares (`vigil.background_s`,
    `vigil.activity_s`, `vigil.background_hold`, `vigil.ghost_s`, `vigil.moving_through_lighting`,
    `vigil.align`, `vigil.align_band`), as vigild sets them up (the last two keys since v2.14;
    the tried v2.11 candidate declared the first too, so its figures can be reproduced). The aligner's
    offset holds after `lighting` (v2.13's vigild) unless the model is v2.12, whose figures were
    measured with the vigild it shipped with (the offset moving on every frame)."""
    align = meta.get("vigil.align") == "1"
    kw.setdefault("align_holds_after_lighting", align and not meta.get("vigil.version", "").startswith("2.12."))
    return CameraState(background_s=float(meta["vigil.background_s"]), activity_s=float(meta["vigil.activity_s"]),
                       hold=float(meta.get("vigil.background_hold", 1.0)), ghost_s=float(meta.get("vigil.ghost_s", GHOST_S)),
                       moving_through_lighting=meta.get("vigil.moving_through_lighting") == "1",
                       align=align, align_band=int(meta.get("vigil.align_band", 0)), **kw)


def run_stream(sess, frames, fps, state=None, labels=("still", "motion", "lighting")):
    """Feeds frames (float32 [N, H, W]) at `fps` through a CameraState and the model.
    Returns an array [N, 3] of scores (NaN rows for frames that made no input)."""
    st = state or CameraState()
    st.channels = sess.get_modelmeta().custom_metadata_map.get("vigil.channels", CHANNELS).split(",")
    out = np.full((len(frames), 3), np.nan, np.float32)
    for i, f in enumerate(frames):
        x = st.inputs(f, i / fps)
        if x is None:
            continue
        s = sess.run(None, {"frames": x})[0][0]
        out[i] = s
        st.observe(labels[int(np.argmax(s))])
    return out


def alerts(motion_scores, min_score=0.5, for_frames=2, clear_below=0.3, cooldown_frames=0):
    """Raised alerts under vigild's rule (docs/alerts.md) on one device's motion scores:
    raise after `for_frames` consecutive scores >= min_score, clear below clear_below.
    cooldown_frames: frames after a raise during which no new raise happens."""
    raised, run, n, last = False, 0, 0, -10 ** 9
    for i, s in enumerate(motion_scores):
        if np.isnan(s):
            continue
        if not raised:
            run = run + 1 if s >= min_score else 0
            if run >= for_frames and i - last >= cooldown_frames:
                raised, n, last, run = True, n + 1, i, 0
        elif s < clear_below:
            raised = False
    return n
