#!/usr/bin/env python3
"""rules_replay.py against the cases of Tests/VigilCoreTests/RulesTests.swift (same inputs,
same expected transitions). numpy only: python3 Models/training/test_rules_replay.py"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rules_replay import Rule, replay, read_config, configured_rule, poisson_interval  # noqa: E402

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


def test_combined_rule_holds_each_label_to_its_own():
    """eval_sound_rules.combined_rule: one alert whose min_score is the lowest label rule must not
    let the other label raise between the two bars (vigild gates a label with a rule to 0 until
    it has met that rule)."""
    from eval_sound_rules import combined_rule
    labels = ["normal", "glass_breaking", "smoke_alarm"]
    rule = combined_rule({"glass_breaking": Rule(["glass_breaking"], 0.9, for_frames=3),
                          "smoke_alarm": Rule(["smoke_alarm"], 0.99, for_frames=2)})
    assert rule.min_score == 0.9 and rule.label_rules == {"glass_breaking": (0.9, 3), "smoke_alarm": (0.99, 2)}
    feed = [(0, 0.95)] * 4 + [(0.95, 0)] * 2 + [(0, 0)] + [(0.95, 0)] * 3 + [(0, 0)] * 40 + [(0, 0.995)] * 2
    S = np.array([[1 - max(g, s), g, s] for g, s in feed])
    got = [(i, k, lab) for i, k, lab, _ in replay(rule, S, labels, np.arange(len(feed), dtype=float))]
    assert got == [(9, "raise", "glass_breaking"), (10, "clear", "glass_breaking"), (51, "raise", "smoke_alarm")], got


def test_configured_rule(tmp=None):
    import tempfile
    text = """// the audio pipeline, "quoted // not a comment" below
    { "pipelines": [
        { "name": "cam", "model": "motion", },
        { "name": "a//b", "model": "sound", /* block */
          "alert": { "labels": ["glass_breaking", "smoke_alarm"], "cooldown_s": 5,
                     "label_rules": { "smoke_alarm": { "min_score": 0.99, "for_frames": 2 }, }, }, },
    ], }"""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(text)
    assert read_config(f.name)["pipelines"][1]["name"] == "a//b"
    r = configured_rule(f.name, ["normal", "glass_breaking", "smoke_alarm", "door_bell"], 0.97)
    os.unlink(f.name)
    assert (r.labels, r.min_score, r.cooldown_s, r.label_rules) == (
        ["glass_breaking", "smoke_alarm"], 0.97, 5, {"smoke_alarm": (0.99, 2)}), vars(r)
    shipped = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "etc", "vigil.json")
    # etc/vigil.json's audio alert since glass left the default labels (Models/sound.md): smoke only.
    assert configured_rule(shipped, ["normal", "glass_breaking", "smoke_alarm", "door_bell"], 0.97).labels == ["smoke_alarm"]


def test_poisson_interval():
    lo, hi = poisson_interval(0, 1.0)
    assert lo == 0 and abs(hi - 3.689) < 1e-3, (lo, hi)
    lo, hi = poisson_interval(1, 2.0)
    assert abs(lo - 0.0253 / 2) < 1e-4 and abs(hi - 5.572 / 2) < 1e-3, (lo, hi)


if __name__ == "__main__":
    tests = [f for name, f in list(globals().items()) if name.startswith("test_")]
    for f in tests:
        f()
    print(f"{len(tests)} passed, 0 failed")
