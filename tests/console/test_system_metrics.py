"""System metrics, sampled by the agent: the bar (MLflow, system_metrics_interval=1), TensorBoard and
W&B read back through their own files, GPU selection by CUDA_VISIBLE_DEVICES, and no GPU = no error."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.reliability.helpers import read_run, run_line, three_backends, wait_agent_done
from trackkit.journal import read_journal
from trackkit.sysmetrics import Sampler, visible_gpus

from .helpers import mlflow_metric_history

PRINTER = os.path.join(os.path.dirname(__file__), "printer.py")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE" and not k.startswith("TRACKKIT_")}


@pytest.mark.slow
def test_a_few_seconds_at_interval_1_give_several_samples_of_several_keys_in_every_backend(tmp_path: object) -> None:
    tmp = str(tmp_path)
    backends = three_backends(tmp)
    proc = subprocess.run([sys.executable, PRINTER, ",".join(backends), f"{tmp}/j", "--n", "50", "--interval", "0.1",
                           "--system", "1"], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id, run_dir = run_line(proc.stdout)
    wait_agent_done(run_dir, timeout=150)
    samples = [r for r in read_journal(os.path.join(run_dir, "journal.jsonl")) if r.get("k") == "sys"]
    assert len(samples) >= 3, len(samples)

    # MLflow: the names of MLflow's own system-metrics view, several points each (the bar)
    history = mlflow_metric_history(backends[2].split(":", 1)[1], run_id)
    system = {k: v for k, v in history.items() if k.startswith("system/")}
    assert len(system) >= 2 and sum(len(v) >= 3 for v in system.values()) >= 2, {k: len(v) for k, v in system.items()}
    for key in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
                "system/process_memory_rss_megabytes"):
        assert len(history.get(key, [])) >= 3, (key, sorted(system))
    assert all(v > 0 for v in history["system/process_memory_rss_megabytes"])
    assert history["i"] and "system/cpu_utilization_percentage" not in read_run(backends[0], run_id).info.summary

    # read back through trackkit's readers: on their own axis, never mixed into the training metrics
    from trackkit.events import SystemMetrics

    for backend in (backends[0], backends[2]):
        rec = read_run(backend, run_id)
        seqs = {ev.seq for ev in rec.events if isinstance(ev, SystemMetrics)}
        assert len(seqs) >= 3, (backend, seqs)
        assert not any(k.startswith("system/") for k in rec.metrics()), backend
        assert rec.info.last_step == 49, (backend, rec.info.last_step)

    # TensorBoard: scalars system/... at the sample numbers, through tensorboard's reader
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps: dict[str, list[int]] = {}
    for path in glob.glob(os.path.join(tmp, "tb", "**", "events.out.tfevents.*"), recursive=True):
        for ev in EventFileLoader(path).Load():
            for v in ev.summary.value:
                if v.tag.startswith("system/"):
                    steps.setdefault(v.tag, []).append(ev.step)
    assert sorted(steps["system/cpu_utilization_percentage"]) == list(range(len(samples)))

    # W&B: stats records (its "System" panels) in the offline run file, with W&B's names
    from trackkit.backends.wandb.framing import iter_run_file

    keys: dict[str, int] = {}
    for path in glob.glob(os.path.join(tmp, "wb", "wandb", "*run-*", "*.wandb")):
        for rec in iter_run_file(path):
            if rec.WhichOneof("record_type") == "stats":
                for item in rec.stats.item:
                    keys[item.key] = keys.get(item.key, 0) + 1
    assert keys.get("cpu", 0) >= 3 and keys.get("memory", 0) >= 3 and keys.get("proc.memory.rssMB", 0) >= 3, keys


def test_no_system_metrics_when_off(tmp_path: object) -> None:
    tmp = str(tmp_path)
    proc = subprocess.run([sys.executable, PRINTER, f"tensorboard:{tmp}/tb", f"{tmp}/j", "--n", "15", "--interval",
                           "0.1"], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, run_dir = run_line(proc.stdout)
    assert not [r for r in read_journal(os.path.join(run_dir, "journal.jsonl")) if r.get("k") == "sys"]


def test_a_sample_of_this_machine_without_a_gpu_has_no_gpu_keys_and_no_error() -> None:
    sampler = Sampler(os.getpid(), os.getcwd())
    try:
        values = sampler.sample()
    finally:
        sampler.close()
    assert values["system/process_count"] >= 1 and values["system/process_memory_rss_megabytes"] > 0
    assert 0 <= values["system/system_memory_usage_percentage"] <= 100
    has_gpu = os.path.exists("/dev/nvidiactl")
    assert has_gpu or not any(k.startswith("system/gpu_") for k in values)


class _Nvml:
    """An NVML stand-in for the index arithmetic only (four GPUs with UUIDs GPU-a ... GPU-d)."""

    def nvmlDeviceGetCount(self) -> int:  # NVML's names
        return 4

    def nvmlDeviceGetHandleByIndex(self, i: int) -> Any:
        return f"phys{i}"

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> Any:
        if uuid not in ("GPU-a", "GPU-b", "GPU-c", "GPU-d"):
            raise RuntimeError("not found")
        return f"phys{'abcd'.index(uuid[-1])}"


@pytest.mark.parametrize(("cvd", "want"), [
    (None, [(0, "phys0"), (1, "phys1"), (2, "phys2"), (3, "phys3")]),
    ("2,3", [(0, "phys2"), (1, "phys3")]),
    ("3", [(0, "phys3")]),
    ("", []),
    ("GPU-c,1", [(0, "phys2"), (1, "phys1")]),
    ("1,9,2", [(0, "phys1")]),  # CUDA stops at the first invalid entry
    ("-1", []),
])
def test_visible_gpus_follow_cuda_visible_devices(cvd: str | None, want: list[tuple[int, str]]) -> None:
    env = {} if cvd is None else {"CUDA_VISIBLE_DEVICES": cvd}
    assert visible_gpus(_Nvml(), env) == want
