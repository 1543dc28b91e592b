#!/usr/bin/env python3
"""Rebuild all shipped models and fixtures: motion, anomaly, sound (with its held-out CV).

  python3 Models/training/train_all.py [--no-cv]
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    extra = [a for a in sys.argv[1:] if a == "--no-cv"]
    for script in ["train_motion.py", "train_anomaly.py", "train_sound.py"]:
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, script)] + (extra if script == "train_sound.py" else []),
                       check=True)
