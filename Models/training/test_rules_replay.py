#!/usr/bin/env python3
"""rules_replay.py against the cases of Tests/VigilCoreTests/RulesTests.swift (same inputs,
same expected transitions). numpy only: python3 Models/training/test_rules_replay.py"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rules_replay import Rule, replay  # noqa: E402

L1 = ["normal", "x"]


def run(rule, scores, step=1.0):
    S = np.array([[1 - s, s] for s in scores])
    return [(i, k) for i, k, _, _ in replay(rule, S, L1, np.arange(len(scores)) * step)]


def test_hysteresis():
    noisy = [0.5 + 0.03 * np.sin(i * 1.7) for i in range(200)]
    naive = run(Rule(["x"], 0.5, cooldown_s=0), noisy)
    assert sum(k == "raise" for _, k in naive) > 20
    t = run(Rule(["x"], 0.5, for_frames=2, clear_below=0.3, clear_frames=3, cooldown_s=0), noisy + [0.1] * 5)
    assert [k for _, k in t] == ["raise", "clear"] and t[-1][0] == 202, t


def test_debounce():
    assert run(Rule(["x"], 0.5, for_frames=3), [0.9, 0.9, 0.2, 0.9, 0.9, 0.1]) == []
    assert [i for i, _ in run(Rule(["x"], 0.5, for_frames=3), [0.9, 0.9, 0.9])] == [2]


def test_cooldown():
    t = run(Rule(["x"], 0.5, cooldown_s=30), [0.9, 0.1] + [0.9] * 29)
    assert t == [(0, "raise"), (1, "clear"), (30, "raise")], t


def test_label_rule():
    labels = ["normal", "glass_breaking", "smoke_alarm"]
    rule = Rule(["glass_breaking", "smoke_alarm"], 0.95, cooldown_s=0, label_rules={"smoke_alarm": (0.99, 2)})
    feed = [(0, 0.97), (0, 0.995), (0, 0.5), (0, 0.995), (0, 0.996), (0, 0.96), (0, 0.1), (0.96, 0)]
    S = np.array([[1 - max(g, s), g, s] for g, s in feed])
    got = [(i, k, lab) for i, k, lab, _ in replay(rule, S, labels, np.arange(1, len(feed) + 1, dtype=float))]
    assert got == [(4, "raise", "smoke_alarm"), (6, "clear", "smoke_alarm"), (7, "raise", "glass_breaking")], got


if __name__ == "__main__":
    for name, f in list(globals().items()):
        if name.startswith("test_"):
            f()
    print("4 passed, 0 failed")
