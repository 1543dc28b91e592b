#!/usr/bin/env python3
"""Publishes YAMNet log-mel patches of WAV files as `f32le` frames, for a vigil pipeline
serving a spectrogram-input classifier (e.g. yamnet_spectra_in.onnx, input [1, 96, 64]).

    python3 scripts/publish_logmel.py --topic sensors/mic1/spectra clip.wav [more.wav ...]
    python3 scripts/publish_logmel.py --check-model yamnet_spectra_in.onnx --labels yamnet_class_map.csv clip.wav

Features follow YAMNet's published parameters: 16 kHz mono, 25 ms periodic-Hann STFT
(512-point FFT) every 10 ms, magnitude, 64 HTK mel bands 125-7500 Hz (TensorFlow's
linear_to_mel_weight_matrix), log(mel + 0.001), patches of 96 frames (0.96 s) every 48.
Only numpy is needed; publishing uses mosquitto_pub. --check-model runs the model with
onnxruntime instead of publishing, to compare vigil's rows with a direct run.
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np

RATE, WIN, HOP, NFFT, BANDS = 16000, 400, 160, 512, 64
PATCH, PATCH_HOP = 96, 48


def read_wav(path):
    with wave.open(path) as w:
        if w.getsampwidth() != 2:
            sys.exit(f"{path}: only 16-bit PCM WAV")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
        x = x.reshape(-1, w.getnchannels()).mean(axis=1)
        rate = w.getframerate()
    if rate != RATE:  # linear interpolation is enough for a demo
        t = np.arange(0, len(x) * RATE // rate) * rate / RATE
        x = np.interp(t, np.arange(len(x)), x).astype(np.float32)
    return x


def mel_matrix():
    hz_to_mel = lambda f: 1127.0 * np.log1p(f / 700.0)
    bins = NFFT // 2 + 1
    freqs = np.linspace(0, RATE / 2, bins)[1:]
    mel = hz_to_mel(freqs)[:, None]
    edges = np.linspace(hz_to_mel(125.0), hz_to_mel(7500.0), BANDS + 2)
    lo, c, hi = edges[:-2], edges[1:-1], edges[2:]
    w = np.maximum(0, np.minimum((mel - lo) / (c - lo), (hi - mel) / (hi - c)))
    return np.vstack([np.zeros((1, BANDS)), w]).astype(np.float32)  # DC bin gets no weight


def patches(x):
    need = WIN + (PATCH - 1) * HOP
    if len(x) < need:
        x = np.pad(x, (0, need - len(x)))
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float32)  # periodic Hann
    n = 1 + (len(x) - WIN) // HOP
    frames = np.stack([x[i * HOP:i * HOP + WIN] * window for i in range(n)])
    mag = np.abs(np.fft.rfft(frames, NFFT, axis=1)).astype(np.float32)
    logmel = np.log(mag @ mel_matrix() + 0.001).astype(np.float32)
    return [logmel[s:s + PATCH] for s in range(0, n - PATCH + 1, PATCH_HOP)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wavs", nargs="+")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", default="1883")
    ap.add_argument("--topic", default="sensors/mic1/spectra")
    ap.add_argument("--check-model")
    ap.add_argument("--labels")
    a = ap.parse_args()
    if a.check_model:
        import onnxruntime as ort
        s = ort.InferenceSession(a.check_model)
        names = [r["display_name"] for r in csv.DictReader(open(a.labels))] if a.labels else None
        for path in a.wavs:
            for k, p in enumerate(patches(read_wav(path))):
                scores = s.run(None, {s.get_inputs()[0].name: p[None]})[0][0]
                top = np.argsort(-scores)[:3]
                print(os.path.basename(path), k, ", ".join(f"{names[i] if names else i}={scores[i]:.3f}" for i in top))
        return
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        sent = 0
        for path in a.wavs:
            for p in patches(read_wav(path)):
                f.seek(0); f.truncate(); f.write(p.astype("<f4").tobytes()); f.flush()
                subprocess.run(["mosquitto_pub", "-h", a.host, "-p", str(a.port), "-q", "1", "-t", a.topic, "-f", f.name], check=True)
                sent += 1
        print(f"published {sent} patches of {PATCH}x{BANDS} to {a.topic}")


if __name__ == "__main__":
    main()
