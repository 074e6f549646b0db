"""A training process for the outage tests: it logs at --hz until a line arrives on stdin, then finishes,
and reports how long its slowest log() call took.

Usage: python timed_trainer.py BACKEND ROOT --drain S --linger S [--hz N]

The timed loop runs in its own process, as a user's training script does: in the pytest process the
same loop shares the GIL with the test's own threads (the outage's server control, SDK threads left by
earlier tests), and a wait for the GIL is neither trackkit's cost nor visible to a run-queue clock.

Lines on stdout (JSON): after init ``{"id", "dir", "init_wall", "init_own"}``; after finish()
``{"n", "worst", "worst_wall", "finish_s", "pending"}`` (``pending``: the backends still behind).
Times in seconds; ``init_own`` and ``worst`` leave out the time the thread waited for a CPU (another
process had it), from the kernel's ``/proc/thread-self/schedstat`` where it keeps one.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time

import trackkit


class RunQueueClock:
    """Seconds the calling thread has spent runnable but waiting for a CPU; 0.0 where the kernel does
    not keep schedstats. Open it in the thread that is measured."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def __call__(self) -> float:
        if self._fd is None:
            return 0.0
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("backend")
    p.add_argument("root")
    p.add_argument("--drain", type=float, required=True)
    p.add_argument("--linger", type=float, required=True)
    p.add_argument("--hz", type=float, default=200.0)
    a = p.parse_args()

    # the first init in a process imports trackkit's settings and backend modules (pydantic, ~0.5 s,
    # more on a loaded machine): a one-time cost of the process, not of init, kept out of init's figure
    with tempfile.TemporaryDirectory() as warm_root:
        trackkit.init(project="warm", backend="memory:outage-warm", capture=False, root=warm_root).finish()

    clock = RunQueueClock()
    perf = time.perf_counter
    q0, t0 = clock(), perf()
    run = trackkit.init(project="outage", backend=a.backend, root=a.root, agent="process", capture=False,
                        drain_timeout=a.drain, linger=a.linger)
    init_wall = perf() - t0
    init_own = init_wall - min(init_wall, clock() - q0)
    print(json.dumps({"id": run.id, "dir": run.dir, "init_wall": init_wall, "init_own": init_own}), flush=True)

    stop = threading.Event()

    def watch() -> None:
        sys.stdin.readline()  # blocked in read(2): it does not hold the GIL
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    # keep a full collection out of the timed calls
    gc.collect()
    gc.freeze()
    period = 1.0 / a.hz
    n, worst, worst_wall = 0, 0.0, 0.0
    while not stop.is_set():
        q0 = clock()
        t0 = perf()
        run.log({"loss": 1.0 / (n + 1), "acc": n * 1e-3}, step=n)
        dt = perf() - t0
        own = dt - min(dt, clock() - q0)
        worst = max(worst, own)
        worst_wall = max(worst_wall, dt)
        n += 1
        time.sleep(period)
    gc.unfreeze()
    t0 = time.monotonic()
    run.finish()
    finish_s = time.monotonic() - t0
    pending = run._agent.pending()
    print(json.dumps({"n": n, "worst": worst, "worst_wall": worst_wall, "finish_s": finish_s,
                      "pending": pending}), flush=True)


if __name__ == "__main__":
    main()
