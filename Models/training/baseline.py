"""Python mirror of vigild's per-device anomaly state (Sources/VigilCore/Intake/Adapters/Baseline.swift).

The daemon keeps, per device and field, a baseline learned online over `horizon_s`
(exponentially weighted in time), passes it to the model as the `baseline` input
[batch, 5, fields], and keeps, per device, a decayed histogram of the model's surprise to
set the alert threshold that meets `max_false_alarms_per_day`. This file computes exactly
the same numbers (float64 here, Double in Swift) so that the evaluation judges what the
daemon will do. Keep the two in step: `BaselineTests` checks the Swift side against
values printed by `python3 baseline.py --selftest`.
"""
import math

import numpy as np

# rows of the `baseline` input (Models/README.md, "the baseline state")
CENTER, SPREAD, CHANGE, FLOOR, MASK = range(5)
ROWS = 5
S0 = 5.0                 # score = S / (S + S0): S = 5 (p = 1e-5) scores 0.5
BINS, BIN_W = 128, 0.25  # surprise histogram: S in [0, 32), the last bin takes the rest
Q0 = 0.98                # the tail above this quantile is fitted as exponential
STUCK_P = 1e-6           # a field is stuck when an unchanged run this unlikely is seen...
REL_EPS = 1e-6
TAIL = "exp"
XI_MAX = 0.5           # changes below this share of the value are float rounding, not a step


class Field:
    __slots__ = ("c", "s", "f", "sf", "q", "last", "rho", "run")

    def __init__(self):
        self.c = self.s = self.f = self.sf = self.rho = 0.0
        self.q = math.inf
        self.last = None
        self.run = 0


class Device:
    """One device's baseline (all fields) and its threshold tracker."""

    def __init__(self, fields, window, horizon_s=3 * 86400.0, warmup_s=86400.0, warmup_n=None,
                 min_scale=None, budget=1.0):
        self.F = fields
        self.W = window
        self.horizon = horizon_s
        self.warmup_s = warmup_s
        self.warmup_n = warmup_n if warmup_n is not None else 4 * window
        self.min_scale = min_scale or [0.0] * fields
        self.budget = budget
        self.fields = [Field() for _ in range(fields)]
        self.w = 0.0           # decayed weight of the readings seen
        self.n = 0
        self.t_first = None
        self.t_last = None
        self.dt = 0.0          # decayed mean interval between readings, s
        self.wdt = 0.0         # its weight
        self.hist = np.zeros(BINS)

    # ---------------------------------------------------------------- baseline
    def stuck(self, fl):
        if fl.run < self.W or fl.rho <= 0:
            return False
        return fl.run * math.log1p(-min(fl.rho, 0.999999)) < math.log(STUCK_P)

    def state(self):
        """The `baseline` rows for the model, from the readings before the current one."""
        out = np.zeros((ROWS, self.F), np.float32)
        for i, fl in enumerate(self.fields):
            q = 0.0 if math.isinf(fl.q) else fl.q
            out[CENTER, i] = fl.c
            out[SPREAD, i] = fl.s
            out[CHANGE, i] = fl.sf
            out[FLOOR, i] = max(q, self.min_scale[i], 1e-6 * max(1.0, abs(fl.c)))
            out[MASK, i] = 0.0 if (self.n < 2 or self.stuck(fl)) else 1.0
        return out

    def update(self, t, x):
        dt = 0.0 if self.t_last is None else max(0.0, t - self.t_last)
        d = math.exp(-dt / self.horizon)
        self.w = self.w * d + 1.0
        if self.t_first is None:
            self.t_first = t
        else:
            self.wdt = self.wdt * d + 1.0
            self.dt += (dt - self.dt) / self.wdt
        self.t_last = t
        a = 1.0 / self.w
        af = 2.0 / (self.W + 1.0)
        for fl, v in zip(self.fields, x):
            v = float(np.float32(v))     # readings reach the daemon as float32
            if fl.last is None:
                fl.c = fl.f = fl.last = v
                continue
            delta = abs(v - fl.last)
            changed = delta > REL_EPS * max(abs(v), abs(fl.last))
            if changed:
                fl.q = min(fl.q, delta)
                fl.run = 0
            else:
                fl.run += 1
            fl.rho += ((1.0 if changed else 0.0) - fl.rho) * a
            fl.s += (abs(v - fl.c) - fl.s) * a
            fl.sf += (abs(v - fl.f) - fl.sf) * a
            fl.c += (v - fl.c) * a
            fl.f += (v - fl.f) * af
            fl.last = v
        self.n += 1
        return d

    def warm(self):
        return self.n >= self.warmup_n and self.t_last - self.t_first >= self.warmup_s

    # ---------------------------------------------------------------- threshold
    def observe(self, score, d, threshold=math.inf):
        """Adds the model's score to the surprise histogram (decayed like the baseline).
        A score at or over the threshold in force is counted at the threshold (censored):
        its share of the tail stays, but a fault's size does not fatten the tail and lift
        the bar for the next one."""
        self.hist *= d
        score = min(score, threshold)
        S = S0 * score / max(1e-9, 1.0 - score)
        self.hist[min(BINS - 1, int(S / BIN_W))] += 1.0

    def threshold_surprise(self):
        total = self.hist.sum()
        if total <= 0:
            return math.inf
        tail = (1.0 - Q0) * total
        acc = 0.0
        u = 0.0
        for b in range(BINS - 1, -1, -1):
            if acc + self.hist[b] >= tail:
                # interpolate inside bin b: the part above u holds `tail - acc`
                frac = (tail - acc) / self.hist[b] if self.hist[b] > 0 else 0.0
                u = (b + 1 - frac) * BIN_W
                break
            acc += self.hist[b]
        # mean excess over u, bins taken at their centres (the part of u's bin above u counts)
        num = den = 0.0
        for b in range(BINS):
            lo, hi = b * BIN_W, (b + 1) * BIN_W
            if hi <= u:
                continue
            part = self.hist[b] * (hi - max(lo, u)) / BIN_W
            num += part * ((max(lo, u) + hi) / 2 - u)
            den += part
        m = max(num / den if den > 0 else 0.0, BIN_W / 2)
        per_day = 86400.0 / max(self.dt, 1e-3)
        r = self.budget / per_day
        if r >= 1.0 - Q0:
            return u
        if TAIL == "exp":
            return u + m * math.log((1.0 - Q0) / r)
        # generalised Pareto by moments: lighter tails (xi < 0) than exponential are common
        num2 = 0.0
        for b in range(BINS):
            lo, hi = b * BIN_W, (b + 1) * BIN_W
            if hi <= u:
                continue
            part = self.hist[b] * (hi - max(lo, u)) / BIN_W
            num2 += part * ((max(lo, u) + hi) / 2 - u) ** 2
        v = max(num2 / den - m * m if den > 0 else 0.0, 1e-6) + BIN_W ** 2 / 12
        xi = min(XI_MAX, max(-0.5, 0.5 * (1 - m * m / v)))
        sigma = 0.5 * m * (m * m / v + 1)
        k = (1.0 - Q0) / r
        if abs(xi) < 1e-6:
            return u + sigma * math.log(k)
        return u + sigma / xi * (k ** xi - 1)

    def threshold(self):
        """The score at or above which this device alerts (inf while warming up)."""
        if not self.warm():
            return math.inf
        T = self.threshold_surprise()
        return T / (T + S0)


def selftest():
    """Numbers BaselineTests checks the Swift implementation against (deterministic input)."""
    dev = Device(2, 8, horizon_s=3600.0, warmup_s=60.0, warmup_n=16, budget=1.0)
    for i in range(200):
        x = [20.0 + 0.1 * math.sin(i / 10.0), float(round(1013.0 + 2.0 * math.sin(i / 7.0)))]
        d = dev.update(i * 5.0, x)
        dev.observe(0.1 + 0.3 * ((i * 7919) % 101) / 101.0, d)
    print("state", [[round(float(v), 6) for v in r] for r in dev.state()])
    print("threshold", round(dev.threshold(), 6), "dt", round(dev.dt, 6), "w", round(dev.w, 6))


if __name__ == "__main__":
    selftest()
