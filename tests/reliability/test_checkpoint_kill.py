"""SIGKILL at a random moment during a loop of checkpoint saves: every file under a final name loads,
no temporary file has a final name, and the agent (which outlives the trainer) still delivers the
checkpoints that were acknowledged (docs/checkpoints.md)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from .helpers import wait_agent_done

torch = pytest.importorskip("torch")

CHILD = r"""
import sys, warnings, torch, trackkit
warnings.simplefilter("ignore")
root, tb = sys.argv[1], sys.argv[2]
run = trackkit.init(project="kill", backend=f"tensorboard:{tb}", root=root, seed=0, capture=False)
ck = run.checkpoints(monitor="val/acc", keep_best=2, keep_last=2, every_n_epochs=5)
print("RUN", run.id, ck.dirpath, flush=True)
for epoch in range(100000):
    state = {"epoch": epoch, "w": torch.full((256, 1024), float(epoch))}  # 1 MiB
    ck.save(state, step=epoch, epoch=epoch, metrics={"val/acc": (epoch * 7919 % 101) / 100})
    # one write(2) (print writes each piece apart when PYTHONUNBUFFERED is set, and a kill between
    # them left a bare "SAVED"): an acknowledgement is whole or absent
    sys.stdout.write(f"SAVED {epoch}\n")
    sys.stdout.flush()
"""


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_mid_save_leaves_only_whole_checkpoints(tmp_path: Any, seed: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "tk"), str(tmp_path / "tb")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    assert first and first[0] == "RUN", proc.stderr.read() if proc.stderr else ""
    run_id, ckdir = first[1], first[2]
    line = proc.stdout.readline()
    assert line.startswith("SAVED"), line
    time.sleep(random.Random(seed).uniform(0.05, 1.5))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    saved = [int(x.split()[1]) for x in [line, *out.splitlines()] if x.startswith("SAVED")]
    assert saved, "no save acknowledged"
    finals = [f for f in os.listdir(ckdir) if f.endswith(".pt")]
    assert finals
    for f in finals:
        assert ".tmp-" not in f
        obj = torch.load(os.path.join(ckdir, f), weights_only=True)  # whole: it loads
        assert f"epoch={obj['epoch']:04d}" in f and torch.equal(obj["w"], torch.full((256, 1024), float(obj["epoch"])))
    for f in os.listdir(ckdir):  # a save cut by the kill: a temporary name that never ends in .pt
        assert f.endswith(".pt") or f == "checkpoints.jsonl" or ".tmp-" in f, f
    # the last acknowledged checkpoint is kept and, after the kill, delivered to TensorBoard
    assert any(f"epoch={saved[-1]:04d}" in f for f in finals)
    run_dir = os.path.join(str(tmp_path / "tk"), "kill", run_id)
    log = wait_agent_done(run_dir, timeout=180)
    assert "marked the run killed" in log
    import trackkit

    entries = trackkit.checkpoints.list_checkpoints(run_id, backend=f"tensorboard:{tmp_path / 'tb'}")
    assert any(e.epoch == saved[-1] for e in entries), (saved[-1], [e.epoch for e in entries])
    for e in entries:
        assert torch.load(e.path, weights_only=True)["epoch"] == e.epoch
