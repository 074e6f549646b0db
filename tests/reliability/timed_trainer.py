"""A training process for the outage tests: it logs at --hz until a line arrives on stdin, then finishes,
and reports how long its slowest log() call took.

Usage: python timed_trainer.py BACKEND ROOT --drain S --linger S [--hz N]

The timed loop runs in its own process, as a user's training script does: in the pytest process the
same loop shares the GIL with the test's own threads (the outage's server control, SDK threads left by
earlier tests), and a wait for the GIL is neither trackkit's cost nor visible to a run-queue clock.

Lines on stdout (JSON): after init ``{"id", "dir", "init_wall", "init_own"}``; after finish()
``{"n", "worst", "worst_wall", "worst_why", "finish_s", "pending"}`` (``pending``: the backends still behind;
``worst_why``: what the slowest call did, from the thread's own counters: CPU seconds, page faults, context
switches, when it came and which threads were alive, so a slow call says where its time went).
Times in seconds; ``init_own`` and ``worst`` leave out the time the thread waited for a CPU (another
process had it), from the kernel's ``/proc/thread-self/schedstat`` where it keeps one; ``worst`` also
the time the process's other threads waited for one during the call (``SiblingQueueClock``: a call
waiting for the GIL that a descheduled sibling holds waits for a CPU too).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
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


class SiblingQueueClock:
    """Seconds the process's *other* threads have spent runnable but waiting for a CPU, summed.

    A call that needs the GIL while a sibling holds it waits for as long as the sibling does: when the
    kernel has taken the CPU from that sibling (a loaded machine), the call waits for a CPU as surely
    as if it had been taken from the call's own thread, yet its own run-queue clock does not see it
    (it sleeps on the GIL). A sibling runnable during the call is the GIL holder or about to be (a
    thread waiting for the GIL sleeps, it is not runnable), so its run-queue time is that wait. The
    thread list is taken again when the number of threads changes (trackkit's start and end theirs)."""

    def __init__(self) -> None:
        self._me = threading.get_native_id()
        self._fds: list[int] = []
        self._count = -1

    def _refresh(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        try:
            tids = [int(t) for t in os.listdir("/proc/self/task") if int(t) != self._me]
        except OSError:
            return
        for tid in tids:
            try:
                self._fds.append(os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY))
            except OSError:
                pass  # ended meanwhile

    def __call__(self) -> float:
        if threading.active_count() != self._count:
            self._count = threading.active_count()
            self._refresh()
        total = 0
        for fd in self._fds:
            try:
                total += int(os.pread(fd, 128, 0).split()[1])
            except (OSError, ValueError, IndexError):
                pass  # ended: its wait no longer grows
        return total / 1e9


_RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def _counters() -> tuple[float, int, int, int, int]:
    """The calling thread's CPU seconds, minor and major faults, voluntary and involuntary switches."""
    r = resource.getrusage(_RUSAGE_THREAD)
    return time.thread_time(), r.ru_minflt, r.ru_majflt, r.ru_nvcsw, r.ru_nivcsw


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
    siblings = SiblingQueueClock()
    n, worst, worst_wall, why = 0, 0.0, 0.0, {}
    start = perf()
    while not stop.is_set():
        c0 = _counters()
        s0 = siblings()
        q0 = clock()
        t0 = perf()
        run.log({"loss": 1.0 / (n + 1), "acc": n * 1e-3}, step=n)
        dt = perf() - t0
        q = clock() - q0
        sq = siblings() - s0
        own = dt - min(dt, q + sq)
        if own > worst:
            c1 = _counters()
            worst = own
            why = {"own_queue": q, "siblings_queue": sq, "cpu": c1[0] - c0[0], "minflt": c1[1] - c0[1],
                   "majflt": c1[2] - c0[2], "nvcsw": c1[3] - c0[3], "nivcsw": c1[4] - c0[4], "wall": dt,
                   "at": t0 - start, "step": n, "threads": sorted(t.name for t in threading.enumerate())}
        worst_wall = max(worst_wall, dt)
        n += 1
        time.sleep(period)
    gc.unfreeze()
    t0 = time.monotonic()
    run.finish()
    finish_s = time.monotonic() - t0
    pending = run._agent.pending()
    print(json.dumps({"n": n, "worst": worst, "worst_wall": worst_wall, "worst_why": why, "finish_s": finish_s,
                      "pending": pending}), flush=True)


if __name__ == "__main__":
    main()
