"""A trainer that prints to stdout and stderr every 0.1 s (the console tests start and kill it).

Usage: python printer.py BACKENDS ROOT [--interval S] [--mode loop|crash|finish] [--n N] [--system S]
Prints ``RUN <id> <dir>`` once, then ``out <i>`` on stdout and ``err <i>`` on stderr each step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import trackkit

p = argparse.ArgumentParser()
p.add_argument("backend")
p.add_argument("root")
p.add_argument("--interval", type=float, default=0.1)
p.add_argument("--mode", default="loop")
p.add_argument("--n", type=int, default=10_000)
p.add_argument("--system", type=float, default=0.0, help="system_metrics_interval; 0: off")
a = p.parse_args()

run = trackkit.init(
    project="console", backend=a.backend.split(","), root=a.root, advisories=False, seed=0,
    system_metrics=a.system > 0, system_metrics_interval=a.system or 10.0, linger=120,
)
print(f"RUN {run.id} {run.dir}", flush=True)
for i in range(a.n):
    print(f"out {i} password=hunter2-{i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
    if i % 10 == 0:
        os.system(f"echo from-a-subprocess {i}")  # a child process writes to the same fds
    run.log({"i": i})
    time.sleep(a.interval)
if a.mode == "crash":
    raise RuntimeError("boom at the end")
run.finish()
