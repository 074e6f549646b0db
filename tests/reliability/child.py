"""A training process for the reliability tests: logs at --hz and prints each step after log() returned.

Usage: python child.py BACKEND ROOT [--hz N] [--steps N] [--mode normal|raise|exit3|sigterm-self]
                                    [--project P] [--name N] [--go-file PATH] [--user-sigterm]
                                    [--fsize-extra BYTES] [--drain-timeout S]
                                    [--id ID --resume allow|must|never [--continue]] [--media]

Lines on stdout: ``READY`` (with --go-file) once imported, ``RUN <id> <dir>`` after init,
``START <run.resumed> <run.step>`` after init (``--continue``: the loop starts at run.step + 1),
``ACK <step>`` after each log() returned, ``DONE <step>`` after the loop,
``PROBLEMS <problems json> <records written> <log() calls lost>`` after finish(), then
``FINISH_S <seconds finish() took>``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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
p.add_argument("--project", default="rel")
p.add_argument("--name", default=None)
#: print READY, then wait until this file exists before init: several processes start in the same
#: instant however long each took to start (a start time fixed in advance assumes a fast machine)
p.add_argument("--go-file", default="")
#: install the program's own SIGTERM handler before init (trackkit must chain to it)
p.add_argument("--user-sigterm", action="store_true")
#: after init, limit file sizes (RLIMIT_FSIZE) to the journal's size + this many bytes: the disk "fills up"
p.add_argument("--fsize-extra", type=int, default=-1)
p.add_argument("--drain-timeout", type=float, default=None)
#: run resumption (docs/resume.md): a chosen run id, the resume mode, and continue after the last logged step
p.add_argument("--id", default=None)
p.add_argument("--resume", default=None)
p.add_argument("--continue", dest="cont", action="store_true")
#: also log an 8x8 image (pixel value = step % 256) and a histogram of [step, step + 1] every step (docs/media.md)
p.add_argument("--media", action="store_true")
a = p.parse_args()

if a.user_sigterm:

    def _user_handler(signum: int, frame: object) -> None:
        print("USER HANDLER", flush=True)
        sys.exit(143)

    signal.signal(signal.SIGTERM, _user_handler)

if a.go_file:
    print("READY", flush=True)
    while not os.path.exists(a.go_file):
        time.sleep(0.001)

run = trackkit.init(project=a.project, name=a.name, backend=a.backend.split(","), root=a.root, capture=False,
                    agent=a.agent, config={"hz": a.hz}, drain_timeout=a.drain_timeout, id=a.id, resume=a.resume)
print(f"RUN {run.id} {run.dir}", flush=True)
print(f"START {run.resumed} {run.step}", flush=True)

if a.fsize_extra >= 0:
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    # past the file's end: a mapped journal's allocated window is filled first (docs/journal.md)
    limit = os.path.getsize(os.path.join(run.dir, "journal.jsonl")) + a.fsize_extra
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

period = 1.0 / a.hz
step = -1
first = (run.step if run.step is not None else -1) + 1 if a.cont else 0
for step in range(first, a.steps):
    if a.media:
        import numpy as np

        run.log({"loss": 1.0 / (step + 1), "step_copy": step,
                 "img": trackkit.Image(np.full((8, 8), step % 256, dtype=np.uint8)),
                 "hist": trackkit.Histogram([step, step + 1], bins=2)}, step=step)
    else:
        run.log({"loss": 1.0 / (step + 1), "step_copy": step}, step=step)
    print(f"ACK {step}", flush=True)
    if a.mode == "raise" and step == 20:
        raise RuntimeError("exploded at step 20")
    if a.mode == "exit3" and step == 20:
        sys.exit(3)
    time.sleep(period)
print(f"DONE {step}", flush=True)
t_finish = time.monotonic()
run.finish()
finish_s = time.monotonic() - t_finish
print(f"PROBLEMS {json.dumps(dict(run.problems))} {run.records_written} {getattr(run, 'logs_lost', -1)}", flush=True)
print(f"FINISH_S {finish_s:.3f}", flush=True)
