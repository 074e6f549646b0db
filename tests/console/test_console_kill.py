"""The bar: a trainer printing to stdout and stderr every 0.1 s is SIGKILLed; the last line it
printed is in TensorBoard's, W&B's and MLflow's storage once the agent (which outlives it) drained.

Read back through each tool's own storage: tensorboard's event-file reader, the offline W&B run's
``files/output.log``, the MLflow store's ``console.log`` artifact.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.reliability.helpers import read_run, three_backends, wait_agent_done
from trackkit.events import Console, Status
from trackkit.journal import read_journal

from .helpers import mlflow_console, tensorboard_console, wandb_output_log

PRINTER = os.path.join(os.path.dirname(__file__), "printer.py")


def _last(text: str, prefix: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith(prefix)]
    assert lines, f"no {prefix!r} line in:\n{text[-2000:]}"
    return lines[-1]


@pytest.mark.slow
def test_sigkill_keeps_the_last_printed_lines_in_every_backend(tmp_path: object) -> None:
    tmp = str(tmp_path)
    backends = three_backends(tmp)
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    proc = subprocess.Popen([sys.executable, PRINTER, ",".join(backends), f"{tmp}/j"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    run_id = run_dir = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # what the terminal shows comes through the agent
        line = proc.stdout.readline()
        if line.startswith("RUN "):
            _, run_id, run_dir = line.split()
        if line.startswith("out 15 "):
            break
    else:
        raise AssertionError("the printer never printed 'out 15'")
    time.sleep(0.35)
    proc.send_signal(signal.SIGKILL)
    rest, err = proc.communicate(timeout=30)  # the agent lets go of the terminal once the pipes end
    assert proc.returncode == -signal.SIGKILL
    last_out = _last(rest, "out ").replace("hunter2", "***REDACTED***").split(" password")[0]
    last_err = _last(err, "err ")
    assert int(last_out.split()[1]) >= 15

    log = wait_agent_done(run_dir, timeout=150)
    assert "marked the run killed" in log and "everything delivered" in log, log
    with open(os.path.join(run_dir, "console.log"), encoding="utf-8") as fh:
        kept = fh.read()
    # the journal holds every kept line exactly once: the records the trainer wrote of those the agent relayed
    # to it, then what the trainer did not live to write and the rest, written by the agent (docs/journal.md)
    journaled = "".join(str(r["text"]) for r in read_journal(os.path.join(run_dir, "journal.jsonl"))
                        if r.get("k") == "console")
    assert journaled.splitlines() == kept.splitlines()
    stored = {
        "console.log": kept,
        "journal": journaled,
        "tensorboard": tensorboard_console(f"{tmp}/tb"),
        "wandb": wandb_output_log(f"{tmp}/wb"),
        "mlflow": mlflow_console(backends[2].split(":", 1)[1], run_id),
    }
    for where, text in stored.items():
        assert last_out in text, (where, last_out, text[-500:])
        assert last_err in text, (where, last_err, text[-500:])
        assert "from-a-subprocess 10" in text, where  # a child process's output, caught at the fd
        assert "hunter2" not in text, where  # redacted by the provenance rules
    # the killed run's reason carries its last lines
    rec = read_run(backends[0], run_id)
    assert rec.info.status is Status.KILLED
    assert last_err in rec.info.reason, rec.info.reason
    # the readers of W&B (output.log) and TensorBoard (the console text) give it back as Console events
    for backend in backends[:2]:
        back = read_run(backend, run_id)
        assert last_out in "".join(ev.text for ev in back.events if isinstance(ev, Console)), backend
        assert not back.media(), backend  # not as media values
