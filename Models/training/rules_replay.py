"""vigild's alert rule, replayed in Python over a stream of window scores, so that quality
is measured the way a user meets it: alerts raised per hour, not scores per window.

A line-by-line copy of Sources/VigilCore/Alerting/Rules/AlertRule.swift (AlertRule.update),
RulesEngine.gated (per-label `label_rules`) and ScoreSelector.pick; tests in
test_rules_replay.py check the cases of Tests/VigilCoreTests/RulesTests.swift that matter here.
Defaults are vigild's: `min_score` = the model's `vigil.threshold`, `for_frames` 1,
`clear_below` = `min_score`, `clear_frames` 1, `cooldown_s` 30.
"""
import numpy as np
from common import wilson  # noqa: F401  (eval_sound_rules and enroll_eval take it from here)


class Rule:
    def __init__(self, labels, min_score, for_frames=1, clear_below=None, clear_frames=1, cooldown_s=30.0,
                 label_rules=None, background="normal"):
        self.labels = list(labels)
        self.min_score = min_score
        self.for_frames = for_frames
        self.clear_below = clear_below
        self.clear_frames = clear_frames
        self.cooldown_s = cooldown_s
        self.label_rules = dict(label_rules or {})    # label -> (min_score or None, for_frames)
        self.background = background

    def describe(self):
        base = f"{'+'.join(self.labels)} >= {self.min_score}" + (f" x{self.for_frames}" if self.for_frames > 1 else "")
        extra = "".join(f"; {k} >= {v[0] if v[0] is not None else self.min_score} x{v[1]}" for k, v in self.label_rules.items())
        return base + extra


def replay(rule, scores, model_labels, ts):
    """scores [n, K] of one device's consecutive windows at times ts [n] (s).
    Returns [(index, 'raise'|'clear', label, score)]."""
    active = False
    above = below = 0
    last_raise = None
    runs = {}
    raised_label = None
    out = []
    idx = [(model_labels.index(l), l) for l in model_labels
           if (l in rule.labels if rule.labels else l != rule.background)]
    clear_below = rule.clear_below if rule.clear_below is not None else rule.min_score
    for i in range(len(scores)):
        row = scores[i]
        # RulesEngine.gated
        gated = {}
        for j, l in idx:
            s = float(row[j])
            if l in rule.label_rules:
                ms, ff = rule.label_rules[l]
                run = runs.get(l, 0) + 1 if s >= (ms if ms is not None else rule.min_score) else 0
                runs[l] = run
                if not active and run < ff:
                    s = 0.0
            gated[l] = s
        # ScoreSelector.pick: the highest; the first in model order on a tie
        best = None
        for _, l in idx:
            if best is None or gated[l] > best[1]:
                best = (l, gated[l])
        label, score = best
        t = ts[i]
        # AlertRule.update (for_s / clear_after_s not used here)
        if not active:
            if score < rule.min_score:
                above = 0
                continue
            above += 1
            if above < rule.for_frames:
                continue
            if last_raise is not None and t - last_raise < rule.cooldown_s:
                continue
            active = True
            last_raise = t
            above = below = 0
            raised_label = label
            out.append((i, "raise", label, score))
        else:
            if score >= clear_below:
                below = 0
                continue
            below += 1
            if below < rule.clear_frames:
                continue
            active = False
            above = below = 0
            out.append((i, "clear", raised_label, score))
    return out


def raises(rule, scores, model_labels, hop_s):
    ts = np.arange(len(scores)) * hop_s
    return [(i, lab, s) for i, kind, lab, s in replay(rule, scores, model_labels, ts) if kind == "raise"]


def poisson_upper(k, hours, conf=0.95):
    """One-sided upper bound on a rate (per hour) after k events in `hours` (exact, chi-square)."""
    from scipy.stats import chi2
    return chi2.ppf(conf, 2 * (k + 1)) / 2 / hours


def poisson_interval(k, hours, conf=0.95):
    """Two-sided exact (Garwood) interval on a rate per hour after k events in `hours`."""
    from scipy.stats import chi2
    a = 1 - conf
    lo = chi2.ppf(a / 2, 2 * k) / 2 / hours if k else 0.0
    return lo, chi2.ppf(1 - a / 2, 2 * (k + 1)) / 2 / hours


def read_config(path):
    """A vigild config file (JSON with // and /* */ comments and trailing commas) as a dict."""
    import json
    import re
    s = open(path).read()
    out, i, in_str = [], 0, False
    while i < len(s):
        c = s[i]
        if in_str:
            out.append(s[i:i + 2] if c == "\\" else c)
            i += 2 if c == "\\" else 1
            in_str = c != '"'
            continue
        if s.startswith("//", i):
            i = s.find("\n", i) if "\n" in s[i:] else len(s)
            continue
        if s.startswith("/*", i):
            end = s.find("*/", i + 2)
            if end < 0:
                raise ValueError(f"{path}: unterminated comment")
            i = end + 2
            continue
        in_str = c == '"'
        out.append(c)
        i += 1
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", "".join(out)))


def configured_rule(path, model_labels, model_threshold, model="sound"):
    """The alert rule of the first pipeline in config `path` that uses `model`, with vigild's
    defaults (min_score: the model's threshold; every label but the background when `labels`
    is left out)."""
    cfg = read_config(path)
    p = next(p for p in cfg["pipelines"] if p.get("model") == model)
    a = p.get("alert") or {}
    ms = a.get("min_score")
    lr = {k: (v.get("min_score"), v.get("for_frames", 1)) for k, v in (a.get("label_rules") or {}).items()}
    return Rule(a.get("labels") or [l for l in model_labels if l != "normal"],
                model_threshold if ms is None else ms, for_frames=a.get("for_frames", 1),
                clear_below=a.get("clear_below"), clear_frames=a.get("clear_frames", 1),
                cooldown_s=a.get("cooldown_s", 30.0), label_rules=lr)
