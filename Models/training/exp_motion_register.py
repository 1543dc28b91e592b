#!/usr/bin/env python3
"""Issue 16, experiment (Models/motion.md, sections "v2.11" and "v2.12"): does registering the
device's background to the frame take away the false motion of a creeping camera? Tuning data only: motion_sets.glare_object_streams with a still camera and with the view
creeping GLARE_DRIFT px over each stream, through the shipped model's thresholds.

  python3 Models/training/exp_motion_register.py [VARIANT ...]   (~3.5 min a variant on one core;
      prints the figures; results/motion_register_experiment.txt, motion_align_experiment.txt)

Variants: `none` (vigild's state as it is), `naive` (each frame, the shift within +-2 px that
minimises the gain-matched mean squared difference between frame and background, applied when it
cuts that by a fifth) and `robust` (the mean of the smallest 70 % of the absolute differences, so
a large object's pixels do not pull the estimate; applied when it cuts that by a tenth and the
same shift has won 5 frames in a row). A shift rolls every plane of the state (edges repeated).
The `subpx` variants (v2.12, the view aligned: motion_stream.align_step) move each frame onto the
state's view instead, by a sub-pixel offset; `subpx` is what vigild ships.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import read_results, session  # noqa: E402
import motion_graph as mg  # noqa: E402
import motion_sets as ms  # noqa: E402
import motion_stream as mst  # noqa: E402
import train_motion as tm  # noqa: E402

REACH = 2                   # px at 160x120 either way
PLANES = ("B", "K", "S", "D", "R", "settled", "ghost")


def best_shift(cur, bg, trim):
    """(dy, dx) such that bg[y + dy, x + dx] best matches cur[y, x] (gain-matched), and its error
    against no shift's: the mean squared difference, or with `trim` the mean of the smallest
    `trim` share of the absolute differences."""
    r = REACH
    c = cur[r:-r, r:-r] * (bg.mean() / max(cur.mean(), 1e-3))

    def err(dy, dx):
        d = c - bg[r + dy:bg.shape[0] - r + dy, r + dx:bg.shape[1] - r + dx]
        if trim is None:
            return float(np.mean(d ** 2))
        a = np.sort(np.abs(d).ravel())
        return float(a[:int(trim * a.size)].mean())

    e, dy, dx = min((err(dy, dx), dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1))
    return (dy, dx), e / max(err(0, 0), 1e-12)


def roll(a, dy, dx):
    """a moved so that a'[y, x] = a[y + dy, x + dx], edges repeated."""
    a = np.roll(a, (-dy, -dx), axis=(0, 1))
    if dy > 0:
        a[-dy:] = a[-dy - 1]
    elif dy < 0:
        a[:-dy] = a[-dy]
    if dx > 0:
        a[:, -dx:] = a[:, -dx - 1:-dx]
    elif dx < 0:
        a[:, :-dx] = a[:, -dx:-dx + 1]
    return a


class RegisteredState(mst.CameraState):
    def __init__(self, trim, cut, wins, **kw):
        super().__init__(**kw)
        self.trim, self.cut, self.wins = trim, cut, wins
        self.last_shift, self.run, self.applied = None, 0, 0

    def inputs(self, cur, ts):
        if self.B is not None:
            shift, ratio = best_shift(cur.astype(np.float32), self.B, self.trim)
            shift = shift if ratio < self.cut else (0, 0)
            self.run = self.run + 1 if shift != (0, 0) and shift == self.last_shift else 1
            self.last_shift = shift
            if shift != (0, 0) and self.run >= self.wins:
                self.run, self.applied = 0, self.applied + 1
                for k in PLANES:
                    setattr(self, k, roll(getattr(self, k), *shift).astype(np.float32))
        return super().inputs(cur, ts)


VARIANTS = {"none": None, "naive": dict(trim=None, cut=0.8, wins=1), "robust": dict(trim=0.7, cut=0.9, wins=5),
            # sub-pixel (motion_stream.align_step, v2.12), in the order tried: the shift alone; with a gain
            # and an offset of brightness fitted; that, moved only after a frame the model called `still`;
            # the brightness fitted, the shift the median of the 4 x 4 blocks' own; and (v2.12's) that, the
            # pixels the restless map marks left out
            "subpx-shift": {"ALIGN_PHOTOMETRIC": False, "ALIGN_ONLY_AFTER_STILL": False, "ALIGN_MEDIAN": False, "ALIGN_RESTLESS": None},
            "subpx-photo": {"ALIGN_PHOTOMETRIC": True, "ALIGN_ONLY_AFTER_STILL": False, "ALIGN_MEDIAN": False, "ALIGN_RESTLESS": None},
            "subpx-gated": {"ALIGN_PHOTOMETRIC": True, "ALIGN_ONLY_AFTER_STILL": True, "ALIGN_MEDIAN": False, "ALIGN_RESTLESS": None},
            "subpx-median": {"ALIGN_PHOTOMETRIC": True, "ALIGN_ONLY_AFTER_STILL": False, "ALIGN_MEDIAN": True, "ALIGN_RESTLESS": None},
            "subpx": {"ALIGN_PHOTOMETRIC": True, "ALIGN_ONLY_AFTER_STILL": False, "ALIGN_MEDIAN": True, "ALIGN_RESTLESS": 0.3}}


def main():
    p = read_results("motion_params.json")
    sess = session(mg.build(p, tm.VERSION))
    full = ms.vtest_frames()
    kw = dict(background_s=20.0, activity_s=p["activity_s"], hold=p["HOLD"], ghost_s=p["GS"])
    names = [a for a in sys.argv[1:] if a in VARIANTS] or list(VARIANTS)
    for name, v in ((n, VARIANTS[n]) for n in names):
        if name.startswith("subpx"):
            for k, val in v.items():
                setattr(mst, k, val)
        states = []

        def new_state():
            states.append(mst.CameraState(align=True, **kw) if name.startswith("subpx") else
                          RegisteredState(**v, **kw) if v else mst.CameraState(**kw))
            return states[-1]

        for seed, drift in tm.GLARE_CAMERAS:
            hit, n, empty, ne = tm.glare_tally(sess, new_state, seed, drift, full)
            print(f"{name:6s} {'creeping' if drift else 'still':8s} camera: object frames said motion {hit}/{n}, "
                  f"empty frames said motion {empty}/{ne}", flush=True)
        print(f"{name:6s} shifts applied: {sum(getattr(st, 'applied', 0) for st in states)}", flush=True)


if __name__ == "__main__":
    main()
