"""A training process for the reliability tests: logs at --hz and prints each step after log() returned.

Usage: python child.py BACKEND ROOT [--hz N] [--steps N] [--mode normal|raise|exit3|sigterm-self]
"""

from __future__ import annotations

import argparse
import sys
import time

import trackkit

p = argparse.ArgumentParser()
p.add_argument("backend")
p.add_argument("root")
p.add_argument("--hz", type=float, default=100.0)
p.add_argument("--steps", type=int, default=10**9)
p.add_argument("--mode", default="normal")
p.add_argument("--agent", default="process")
a = p.parse_args()

run = trackkit.init(project="rel", backend=a.backend.split(","), root=a.root, capture=False, agent=a.agent,
                    config={"hz": a.hz})
print(f"RUN {run.id} {run.dir}", flush=True)
period = 1.0 / a.hz
for step in range(a.steps):
    run.log({"loss": 1.0 / (step + 1), "step_copy": step}, step=step)
    print(f"ACK {step}", flush=True)
    if a.mode == "raise" and step == 20:
        raise RuntimeError("exploded at step 20")
    if a.mode == "exit3" and step == 20:
        sys.exit(3)
    time.sleep(period)
run.finish()
