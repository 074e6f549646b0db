"""Resume THE SAME run after preemption (docs/resume.md): a job is SIGKILLed mid-run, requeued, and goes on.

Runs offline in a few seconds and writes only below the current directory::

    python examples/resume_after_preemption.py

It starts the training job below twice, as a SLURM requeue would, with the same environment::

    TRACKKIT_RUN_ID=job-1001 TRACKKIT_RESUME=allow python examples/resume_after_preemption.py --train

The first start is killed (SIGKILL, like a preemption with no grace period) at step 35; the
second reloads the last checkpoint (step 30), logs steps 31-35 again and completes the run.
TensorBoard then holds one run, status completed, resumed once, with every step.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import trackkit

TB = "tensorboard:./runs"
CKPT = "checkpoint.json"
STEPS = 60


def train() -> None:
    """The training job: TRACKKIT_RUN_ID / TRACKKIT_RESUME come from the job's environment."""
    run = trackkit.init({"optimizer": {"name": "sgd", "lr": 0.1}, "steps": STEPS}, project="preempt", backend=TB,
                        seed=0)
    state = None
    if os.path.exists(CKPT):
        with open(CKPT) as fh:
            state = json.load(fh)
    start = state["step"] + 1 if state else 0
    print(f"job started: run {run.id}, resumed {run.resumed}x, last logged step {run.step}, "
          f"checkpoint step {state['step'] if state else None}", flush=True)
    kill_at = int(os.environ.get("PREEMPT_AT_STEP", "-1"))
    for step in range(start, STEPS):
        loss = math.exp(-step / 20)
        run.log({"train/loss": loss}, step=step)
        if step % 10 == 0:
            with open(CKPT + ".tmp", "w") as fh:
                json.dump({"step": step}, fh)
            os.replace(CKPT + ".tmp", CKPT)
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # preempted, no grace period
    run.finish()


def main() -> None:
    for old in (CKPT, os.path.join("runs", "preempt"), os.path.join(".trackkit", "preempt")):  # a fresh demo
        if os.path.isdir(old):
            shutil.rmtree(old)
        elif os.path.exists(old):
            os.remove(old)
    env = {**os.environ, "TRACKKIT_RUN_ID": "job-1001", "TRACKKIT_RESUME": "allow"}
    job = [sys.executable, os.path.abspath(__file__), "--train"]
    first = subprocess.run(job, env={**env, "PREEMPT_AT_STEP": "35"}, capture_output=True, text=True, timeout=120)
    print(first.stdout.strip(), f"-> killed (exit {first.returncode})")
    assert first.returncode == -signal.SIGKILL, first.stderr
    second = subprocess.run(job, env=env, capture_output=True, text=True, timeout=120)  # the requeued job
    print(second.stdout.strip(), f"-> exit {second.returncode}")
    assert second.returncode == 0, second.stderr

    from trackkit.registry import load_reader, parse_backend

    reader = load_reader(parse_backend(TB))
    deadline = time.monotonic() + 60
    while True:  # the delivery agent finishes in the background
        rec = reader.read_run("job-1001")
        if rec.info.status is trackkit.Status.COMPLETED or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    runs = [i for i in reader.list_runs("preempt") if i.run_id == "job-1001"]
    steps = sorted(s for s, _ in rec.metrics()["train/loss"])
    print(f"TensorBoard: {len(runs)} run, status {rec.info.status.value}, resumed {rec.info.resumed}x, "
          f"{len(steps)} points, steps 31-35 twice: {[s for s in steps if steps.count(s) > 1][::2]}")
    assert len(runs) == 1 and rec.info.status is trackkit.Status.COMPLETED and rec.info.resumed == 1
    assert sorted(set(steps)) == list(range(STEPS)) and len(steps) == STEPS + 5
    print("see it: trackkit runs   (or: tensorboard --logdir runs)")


if __name__ == "__main__":
    if "--train" in sys.argv:
        train()
    else:
        main()
