"""Ranks (issue 13, part 5): under torchrun/SLURM/accelerate a rank other than 0 gets a run that records
nothing and costs nothing (no directory, journal, agent, thread, hook or SDK), unless ``ranks="all"``:
then one run per rank, grouped, tagged with the rank. Proof by a real ``torchrun`` of two processes and
by a process with ``RANK=1 WORLD_SIZE=2`` that logs into every backend and leaves its directory empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trackkit
from trackkit.noop import NoopRun
from trackkit.ranks import process_rank
from trackkit.run import Run

_DIST_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID",
              "MASTER_ADDR", "MASTER_PORT", "SLURM_JOB_ID", "TRACKKIT_RANKS")


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DIST_VARS}
    env.update(TRACKKIT_ROOT=str(tmp / ".trackkit"), PYTHONPATH=str(Path(trackkit.__file__).parents[1]), **extra)
    return env


CHILD = textwrap.dedent("""
    import json, os, sys, threading
    import trackkit
    run = trackkit.init({"lr": 0.1}, backend=["tensorboard:./runs", "mlflow:./mlflow.db",
                        "wandb:p?mode=offline&dir=./wb"], name=sys.argv[1] if len(sys.argv) > 1 else None)
    run.define_metric("acc", goal="max")
    run.summary["test/acc"] = 0.9
    for i in range(200):
        run.log({"acc": i / 200})
        trackkit.log({"loss": 1.0})
    run.set_tags({"a": "b"}); run.log_config({"x": 1}); run.log_artifact(__file__)
    run.watch(None).remove()
    with run:
        pass
    run.finish()
    sdks = sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "wandb", "tensorboard", "torch"))
    print(json.dumps({"records": run.records, "name": run.name, "group": run.group, "tags": run.tags,
                      "dir": run.dir, "threads": threading.active_count(), "sdks": sdks,
                      "agent": "trackkit.agent" in sys.modules, "finished": run.finished,
                      "status": run.status.value, "step": run.step}))
""")


def _child(tmp: Path, *args: str, **env: str) -> dict[str, object]:
    script = tmp / "child.py"
    script.write_text(CHILD)
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    out = subprocess.run([sys.executable, str(script), *args], cwd=work, env=_env(tmp, **env), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_rank_1_of_2_creates_nothing_on_disk_and_starts_nothing(tmp_path: Path) -> None:
    got = _child(tmp_path, RANK="1", WORLD_SIZE="2", LOCAL_RANK="1")
    assert got["records"] is False and got["finished"] is True and got["step"] is None and got["dir"] == ""
    assert got["threads"] == 1 and got["agent"] is False and got["sdks"] == []  # no agent, no thread, no SDK
    assert _files(tmp_path / "work") == []  # no journal, no runs/, no mlflow.db, no wandb dir
    assert not (tmp_path / ".trackkit").exists()


def test_slurm_procid_counts_only_when_the_step_runs_several_tasks() -> None:
    assert process_rank({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}) is None  # one task: not distributed
    r = process_rank({"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_JOB_ID": "77"})
    assert r is not None and (r.rank, r.world_size, r.source, r.launch) == (3, 4, "SLURM_PROCID", "slurm-77.0")
    r = process_rank({"RANK": "2", "LOCAL_RANK": "0", "WORLD_SIZE": "8", "TORCHELASTIC_RUN_ID": "abc"})
    assert r is not None and (r.rank, r.world_size, r.launch) == (2, 8, "ddp-abc")
    assert process_rank({"LOCAL_RANK": "1"}) is not None and process_rank({}) is None
    assert process_rank({"RANK": ""}) is None and process_rank({"RANK": "x"}) is None


def test_torchrun_records_rank_0_only_by_default_and_every_rank_with_ranks_all(tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent("""
        import os, sys, trackkit
        run = trackkit.init({"model": "mlp"}, backend="tensorboard:./runs", capture=False, agent="thread",
                            ranks=sys.argv[1])
        for i in range(3):
            run.log({"loss": 1.0 / (i + 1)})
        run.finish()
        print("RANK", os.environ["RANK"], run.records, run.name, run.group, run.tags.get("rank"), flush=True)
    """))
    for mode in ("zero", "all"):
        work = tmp_path / mode
        work.mkdir()
        out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                              str(script), mode], cwd=work, env=_env(work), capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        lines = sorted(line.split() for line in out.stdout.splitlines() if line.startswith("RANK"))
        journals = sorted((work / ".trackkit").rglob("journal.jsonl"))
        if mode == "zero":
            assert [ln[2] for ln in lines] == ["True", "False"]
            assert len(journals) == 1
        else:
            assert [ln[2] for ln in lines] == ["True", "True"]
            assert len(journals) == 2
            assert lines[0][3].endswith("-rank0") and lines[1][3].endswith("-rank1")
            assert lines[0][4] == lines[1][4] and lines[0][4].startswith("ddp-")  # one group for the launch
            assert [ln[5] for ln in lines] == ["0", "1"]
            tb = sorted(p.name for p in (work / "runs" / "default" / lines[0][4]).iterdir())
            assert tb == sorted([lines[0][3], lines[1][3]])  # TensorBoard: the group's directory holds both


def test_the_noop_run_has_runs_api_and_every_method_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) \
        -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    run = trackkit.init({"lr": 0.1}, backend="tensorboard:./runs", root=str(tmp_path / "j"))
    assert isinstance(run, NoopRun) and isinstance(run, Run) and trackkit.current_run() is run
    public = [n for n in dir(Run) if not n.startswith("_")]
    for name in public:
        assert hasattr(run, name), name
    assert run.native("mlflow") is None and run.pending() == [] and run.log_artifact("/nonexistent") is None
    run.finish("crashed")
    assert run.status.value == "crashed" and not (tmp_path / "j").exists()
    monkeypatch.setenv("TRACKKIT_RANKS", "bogus")
    with pytest.raises(trackkit.ConfigError, match=r"ranks: .*TRACKKIT_RANKS.*'zero'.*'all'"):
        trackkit.init(backend="memory:x", root=str(tmp_path / "j"))  # a bad setting still says so on every rank
