"""Audio data for the sound model: ESC-50 clips (normal + glass_breaking), the four real
smoke-alarm recordings, and synthesised door chimes (and synthetic smoke-alarm beeps used
only as extra training data).

Held-out protocol (5 folds): the clips here are nearly all from ESC-50's fold 4, so folds
are made by *source recording*: every ESC-50 clip cut from one Freesound source (the
second field of the file name) lands in the same fold, and within each category the
sources are dealt round-robin over the 5 folds (so the 6 glass sources spread over all
folds). Fold k (k = 1..4) also holds out smoke recording k (fold 5 holds out none), and
door chimes are synthesised with seeds and backgrounds disjoint between train and test.
"""
import csv
import os
import wave

import numpy as np
from scipy.signal import butter, sosfilt

from common import DATA_DIR

SR = 16000
N = 15600          # model window: 0.975 s, the same patch YAMNet sees (96 x 10 ms frames)
HOP = N // 2       # the daemon's 50 % hop
LABELS = ["normal", "glass_breaking", "smoke_alarm", "door_bell"]
SOUND_DIR = os.path.join(DATA_DIR, "sound")


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return x.astype(np.float32) / 32768.0


def esc_clips():
    """[(path, category, fold, source_id)]"""
    out = []
    with open(os.path.join(SOUND_DIR, "clips.csv")) as f:
        for row in csv.DictReader(f):
            base = os.path.basename(row["file"])
            fold, src = int(base.split("-")[0]), base.split("-")[1]
            out.append((os.path.join(SOUND_DIR, row["file"]), row["category"], fold, src))
    return out


def assign_folds(clips, k=5):
    """{source_id: fold 1..k}, round-robin over each category's sorted sources."""
    folds = {}
    cats = sorted(set(c for _, c, _, _ in clips))
    offset = 0
    for cat in cats:
        srcs = sorted(set(s for _, c, _, s in clips if c == cat))
        for i, s in enumerate(srcs):
            folds.setdefault(s, (i + offset) % k + 1)
        offset += len(srcs)
    return folds


def smoke_recordings():
    d = os.path.join(SOUND_DIR, "smoke_alarm")
    return [os.path.join(d, f"smoke_alarm_{i}.wav") for i in range(1, 5)]


def windows(x, hop=HOP):
    """The daemon's framing: windows of N with 50 % hop (zero-padded tail if shorter)."""
    if len(x) < N:
        x = np.pad(x, (0, N - len(x)))
    starts = range(0, len(x) - N + 1, hop)
    return np.stack([x[s:s + N] for s in starts])


def frame_db(w):
    """Per-25 ms-frame energy in dB (for finding where the event is)."""
    f = w[: len(w) // 400 * 400].reshape(-1, 400)
    return 10 * np.log10(np.mean(f ** 2, axis=1) + 1e-10)


def event_windows(x, rel_db):
    """Label windows of a positive recording: +1 contains the event (a 25 ms frame within
    rel_db of the recording's loudest frame), 0 otherwise (ambiguous, not used)."""
    ref = frame_db(x).max()
    ws = windows(x)
    lab = np.array([frame_db(w).max() >= ref - rel_db for w in ws])
    return ws, lab


# ---------------------------------------------------------------- synthesis
def _bg_window(rng, bg_pool, n=N):
    clip = bg_pool[rng.integers(len(bg_pool))]
    if len(clip) < n:
        clip = np.pad(clip, (0, n - len(clip)))
    s = rng.integers(0, len(clip) - n + 1)
    return clip[s:s + n]


def mix(sig, bg, snr_db, rng):
    ps = np.mean(sig ** 2) + 1e-10
    pb = np.mean(bg ** 2) + 1e-10
    out = sig + bg * np.sqrt(ps / pb / 10 ** (snr_db / 10))
    return out


def random_gain(x, rng, lo=-30, hi=-1):
    """Scale so the peak sits at a random level in dBFS."""
    peak = np.max(np.abs(x)) + 1e-9
    return (x / peak * 10 ** (rng.uniform(lo, hi) / 20)).astype(np.float32)


def room(x, rng):
    """Cheap device / room colouring: random band-limit."""
    lo = rng.uniform(80, 400)
    hi = rng.uniform(3500, 7800)
    sos = butter(2, [lo, hi], btype="band", fs=SR, output="sos")
    return sosfilt(sos, x).astype(np.float32)


def chime(rng, length=N):
    """A synthetic door chime inside `length` samples: ding-dong (two tones), a single
    ding, or a 4-note Westminster-like phrase; bell-like partials with per-partial
    exponential decay, random pitch, interval, timing and timbre."""
    t = np.arange(length) / SR
    out = np.zeros(length, np.float32)
    kind = rng.choice(["dingdong", "ding", "westminster", "electronic"], p=[0.55, 0.1, 0.2, 0.15])
    f0 = np.exp(rng.uniform(np.log(450), np.log(1500)))
    if kind == "dingdong":
        ratio = rng.choice([5 / 4, 6 / 5, 4 / 3, 3 / 2, 9 / 8])
        notes = [f0, f0 / ratio]
    elif kind == "ding":
        notes = [f0]
    elif kind == "westminster":
        scale = np.array([1, 9 / 8, 5 / 4, 3 / 2])
        notes = list(f0 * scale[rng.permutation(4)])
    else:
        notes = [f0, f0 / rng.choice([5 / 4, 4 / 3])]
    gap = rng.uniform(0.2, 0.6) if kind != "westminster" else rng.uniform(0.15, 0.3)
    onset = rng.uniform(0.0, 0.35)
    tau = rng.uniform(0.25, 1.5)
    partials = np.array([1.0, 2.0, 3.0, 4.2, 5.4]) * rng.uniform(0.99, 1.01, 5)
    amps = np.array([1.0, rng.uniform(0.1, 0.7), rng.uniform(0.05, 0.5), rng.uniform(0, 0.3), rng.uniform(0, 0.2)])
    for i, f in enumerate(notes):
        st = onset + i * gap
        tt = t - st
        m = tt >= 0
        env = np.where(m, (1 - np.exp(-np.maximum(tt, 0) / 0.003)), 0.0)
        for p, a in zip(partials, amps):
            fp = f * p
            if fp > 7800:
                continue
            dec = np.exp(-np.maximum(tt, 0) / (tau / (1 + 0.6 * (p - 1))))
            if kind == "electronic":
                wave_ = np.sign(np.sin(2 * np.pi * fp * tt)) * 0.5 if p == 1.0 else np.sin(2 * np.pi * fp * tt)
            else:
                wave_ = np.sin(2 * np.pi * fp * tt + rng.uniform(0, 2 * np.pi))
            out += (m * env * dec * a * wave_).astype(np.float32)
    return out


def synth_glass(rng, length=N):
    """A procedural glass break: a short broadband crack followed by many shard 'tinkles'
    (damped inharmonic sinusoids, 1.5-7.5 kHz) scattered over 0.2-0.9 s. Training aid only."""
    t = np.arange(length) / SR
    out = np.zeros(length, np.float32)
    onset = rng.uniform(0.0, 0.5)
    i0 = int(onset * SR)
    nb = int(rng.uniform(0.01, 0.06) * SR)
    burst = rng.normal(0, 1, nb) * np.exp(-np.arange(nb) / (nb / 4))
    sos = butter(2, rng.uniform(800, 2500), btype="high", fs=SR, output="sos")
    burst = sosfilt(sos, burst)
    out[i0:i0 + nb] += burst[: max(0, min(nb, length - i0))]
    spread = rng.uniform(0.2, 0.9)
    for _ in range(rng.integers(15, 80)):
        st = onset + rng.exponential(spread / 3)
        tt = t - st
        m = tt >= 0
        f = rng.uniform(1500, 7500)
        tau = rng.uniform(0.005, 0.08)
        a = rng.uniform(0.05, 1.0) * np.exp(-(st - onset) / spread)
        out += (m * a * np.exp(-np.maximum(tt, 0) / tau) * np.sin(2 * np.pi * f * tt)).astype(np.float32)
    return out


def pitch_shift(x, rng, lo=0.85, hi=1.15):
    """Resample by a random factor (changes pitch and speed together)."""
    from scipy.signal import resample_poly
    f = rng.uniform(lo, hi)
    up, down = int(round(f * 100)), 100
    y = resample_poly(x, down, up).astype(np.float32)   # f > 1: shorter, higher pitch
    if len(y) >= len(x):
        return y[: len(x)]
    return np.pad(y, (0, len(x) - len(y)))


def synth_smoke(rng, length=N):
    """A synthetic piezo smoke/fire alarm: 2.2-4.2 kHz tone with odd harmonics, in a T3
    pattern (0.5 s on / 0.5 s off x3, 1.5 s pause) or beeping at random period and duty
    cycle. Training aid only."""
    t = np.arange(length) / SR
    f = rng.uniform(2200, 4200) * (1 + 0.003 * np.sin(2 * np.pi * rng.uniform(2, 8) * t))
    ph = 2 * np.pi * np.cumsum(f) / SR
    tone = np.sin(ph) + rng.uniform(0, 0.4) * np.sin(3 * ph)
    if rng.random() < 0.6:
        period, on = 4.5, [(0, .5), (1, 1.5), (2, 2.5)]
        t0 = rng.uniform(0, 3.0)
        tt = (t + t0) % period
        gate = np.zeros_like(t)
        for a, b in on:
            gate += (tt >= a) & (tt < b)
    else:
        p = rng.uniform(0.15, 0.8)
        duty = rng.uniform(0.3, 0.9)
        gate = (((t + rng.uniform(0, p)) % p) < duty * p).astype(float)
    if gate.sum() < 0.1 * SR:               # make sure the window holds a beep
        gate[: int(0.3 * SR)] = 1
    return (tone * gate).astype(np.float32)


def synth_set(kind, n, rng, bg_pool):
    """n windows of synthetic `kind` mixed with real backgrounds at 0..30 dB SNR."""
    fn = {"door_bell": chime, "smoke_alarm": synth_smoke, "glass_breaking": synth_glass}[kind]
    out = []
    for _ in range(n):
        s = fn(rng)
        if rng.random() < 0.5:
            s = room(s, rng)
        bg = _bg_window(rng, bg_pool)
        x = mix(s, bg, rng.uniform(0, 30), rng)
        out.append(random_gain(x, rng))
    return np.stack(out)
