"""Disk trouble: the journal's disk fills up mid-run, or the journal cannot be created at all.

A full disk is simulated with RLIMIT_FSIZE in the training process (the tests run as root,
where a read-only chmod does not stop writes): once the journal reaches the limit a write
is cut short (a torn record) and every later write fails with EFBIG, exactly as on a disk
that is full. The trainer's mapped journal (docs/journal.md) first fills the window it had
allocated before the limit; the next window cannot be allocated, so it cuts its filler off and
goes on with ``pwrite(2)``, which meets the limit like the plain writer's ``write(2)``.
"""

from __future__ import annotations

import json
import os

import pytest

import trackkit
from trackkit.errors import ConfigError, TrackkitError
from trackkit.events import Status

from .helpers import journal_steps, read_run, run_line, start_child, wait_agent_done

#: (journal_mapped, steps): a mapped journal needs more steps than its 1 MiB window holds (~85 bytes a record)
CASES = [(False, 300), (True, 20_000)]
#: the trainer's drain_timeout. Waiting it out (the bug this guards against) makes finish() take
#: DRAIN s; without the bug finish() returns once the agent delivered 300 points (~1-2 s, the agent
#: was started at init), and DRAIN - 15 leaves a loaded machine 45 s for that
DRAIN = 60


@pytest.mark.slow
@pytest.mark.parametrize(("mapped", "steps"), CASES, ids=["write", "mapped"])
def test_journal_disk_full_mid_run_warns_once_trains_on_and_claims_nothing_unsaved(
    tmp_path: object, mapped: bool, steps: int,
) -> None:
    tmp = str(tmp_path)
    backend = f"tensorboard:{tmp}/tb"
    proc = start_child(backend, f"{tmp}/j", "--hz", "1000" if not mapped else "1000000", "--steps", str(steps),
                       "--fsize-extra", "3000", "--drain-timeout", str(DRAIN),
                       env_extra={"TRACKKIT_JOURNAL_MAPPED": "1" if mapped else "0"})
    out, err = proc.communicate(timeout=DRAIN + 90)

    # training went on to the end and exited normally
    assert proc.returncode == 0, err
    assert f"DONE {steps - 1}" in out
    run_id, run_dir = run_line(out)

    # one clear warning while training (warned once), naming the journal and the loss
    during = [line for line in err.splitlines() if "TrackkitWarning" in line and "journal write failed" in line]
    assert len(during) == 1, err
    assert "NOT saved" in during[0]
    # the finish report says records were lost, and does not pretend delivery is pending
    assert "could not be written to the journal and are lost" in err, err
    assert "not yet delivered" not in err, err

    problems_line = next(line for line in out.splitlines() if line.startswith("PROBLEMS "))
    problems_json, _written, logs_lost = problems_line.removeprefix("PROBLEMS ").rsplit(" ", 2)
    problems = json.loads(problems_json)
    assert problems["journal"] > 0

    # what the journal holds was logged (a prefix of the steps), what it lacks is counted as lost
    journaled = journal_steps(run_dir)
    assert 0 < len(journaled) < steps
    assert journaled == list(range(len(journaled)))
    assert int(logs_lost) == steps - len(journaled)
    # + the status and finish records, which did not fit either
    assert problems["journal"] == steps - len(journaled) + 2

    # the agent ends the run with the trainer's own status (left beside the full journal)
    # right away, instead of waiting out the drain deadline and calling it killed
    log = wait_agent_done(run_dir, timeout=120)
    assert "everything delivered" in log, log
    finish_s = float(next(line for line in out.splitlines() if line.startswith("FINISH_S ")).split()[1])
    assert finish_s < DRAIN - 15, f"finish() waited {finish_s:.1f}s for an agent that could not see the finish record"
    rec = read_run(backend, run_id)
    assert rec.info.status is Status.COMPLETED, rec.info.reason
    assert "journal lost" in rec.info.reason
    # every journaled step reached the backend, and nothing else is claimed
    assert sorted(s for s, _ in rec.metrics()["loss"]) == journaled


def test_init_raises_a_clear_error_when_the_journal_cannot_be_created(tmp_path: object) -> None:
    root = os.path.join(str(tmp_path), "not-a-dir")
    with open(root, "w") as fh:
        fh.write("a file where the journal root should be")
    with pytest.raises(ConfigError) as info:
        trackkit.init(project="disk", backend="memory:disk", root=root, capture=False)
    msg = str(info.value)
    assert root in msg and "Fix:" in msg and "writable directory" in msg
    assert isinstance(info.value, TrackkitError)
    assert trackkit.current_run() is None


def test_init_raises_when_the_project_dir_is_a_file(tmp_path: object) -> None:
    root = str(tmp_path)
    with open(os.path.join(root, "disk"), "w") as fh:  # <root>/<project> is taken by a file
        fh.write("x")
    with pytest.raises(ConfigError, match="Fix:"):
        trackkit.init(project="disk", backend="memory:disk", root=root, capture=False)
