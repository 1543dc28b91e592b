#!/usr/bin/env python3
"""Per-window latency of sound models (1 intra-op thread, ORT CPU), e.g.

  taskset -c 1 python3 Models/training/bench_sound.py Models/sound.onnx [other.onnx ...]

Runs each model on one real-looking window (noise + tone) `--runs` times (default 2000,
after 200 warm-up runs), interleaving the models in rounds so a busy neighbour affects
all of them alike; prints median and p95 in ms.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import session  # noqa: E402


def main():
    paths = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = 2000
    for a in sys.argv[1:]:
        if a.startswith("--runs="):
            runs = int(a.split("=")[1])
    rng = np.random.default_rng(0)
    t = np.arange(15600) / 16000
    x = (0.05 * rng.normal(size=15600) + 0.3 * np.sin(2 * np.pi * 3100 * t)).astype(np.float32)[None]
    sess = [session(p) for p in paths]
    times = [[] for _ in paths]
    for s in sess:
        for _ in range(200):
            s.run(None, {"audio": x})
    rounds = 10
    for _ in range(rounds):
        for s, tt in zip(sess, times):
            for _ in range(runs // rounds):
                t0 = time.perf_counter()
                s.run(None, {"audio": x})
                tt.append((time.perf_counter() - t0) * 1000)
    for p, tt in zip(paths, times):
        tt = np.array(tt)
        print(f"{p}: median {np.median(tt):.3f} ms, p95 {np.percentile(tt, 95):.3f} ms "
              f"({len(tt)} runs, {os.path.getsize(p) / 1024:.1f} KB)")


if __name__ == "__main__":
    main()
