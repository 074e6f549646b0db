"""System metrics, sampled by the agent (never the trainer) every ``system_metrics_interval`` seconds.

Keys are ``system/<name>`` with MLflow's own system-metrics names where MLflow has one
(``mlflow/system_metrics/metrics/*.py``: ``cpu_utilization_percentage``,
``system_memory_usage_megabytes``, ``gpu_0_utilization_percentage`` ...), so MLflow's UI shows
them in its system-metrics view; the trainer's process tree, disk I/O and GPU temperature add
names of the same form. GPUs come from NVML (``pip install 'trackkit[gpu]'``, the
``nvidia-ml-py`` package), only those ``CUDA_VISIBLE_DEVICES`` lets the trainer see, numbered as
the trainer sees them; no GPU or no NVML: no GPU keys, never an error. docs/console-and-system.md
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .events import SystemMetrics

__all__ = ["PREFIX", "Sampler", "SystemSampler", "visible_gpus"]

PREFIX = "system/"
MB = 1e6


def visible_gpus(nvml: Any, environ: dict[str, str] | None = None) -> list[tuple[int, Any]]:
    """``(index the trainer sees, NVML handle)`` for each GPU ``CUDA_VISIBLE_DEVICES`` lets it see."""
    env = os.environ if environ is None else environ
    count = int(nvml.nvmlDeviceGetCount())
    spec = env.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return [(i, nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
    out: list[tuple[int, Any]] = []
    for item in (x.strip() for x in spec.split(",")):
        if not item:
            break
        try:
            if item.isdigit():
                if int(item) >= count:
                    break  # CUDA stops at the first invalid entry too
                handle = nvml.nvmlDeviceGetHandleByIndex(int(item))
            else:  # GPU-<uuid> / MIG-<uuid>
                handle = nvml.nvmlDeviceGetHandleByUUID(item)
        except Exception:
            break
        out.append((len(out), handle))
    return out


class Sampler:
    """One sample of the machine, the process tree of ``pid`` and the visible GPUs."""

    def __init__(self, pid: int, disk_path: str) -> None:
        import psutil  # type: ignore[import-untyped]

        self._psutil = psutil
        self._pid = pid
        self._disk_path = disk_path
        self._procs: dict[int, Any] = {}
        psutil.cpu_percent(None)  # primes the machine's CPU figure: the first sample covers the interval
        net, disk = _counters(psutil)
        self._net0, self._disk0 = net, disk
        self._nvml: Any = None
        self._gpus: list[tuple[int, Any]] = []
        try:
            import importlib

            pynvml: Any = importlib.import_module("pynvml")  # nvidia-ml-py (trackkit[gpu])

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._gpus = visible_gpus(pynvml)
        except Exception:  # no package, no driver, no GPU: the GPU part is absent
            self._nvml, self._gpus = None, []
        self._tree()  # primes each process's CPU figure

    def _tree(self) -> list[Any]:
        ps = self._psutil
        try:
            root = self._procs.get(self._pid) or ps.Process(self._pid)
            procs = [root, *root.children(recursive=True)]
        except ps.Error:
            return []
        me = os.getpid()
        if me != self._pid:  # the process agent is the trainer's child: it and its SDK helpers are not the trainer's
            mine = {me}
            with contextlib.suppress(ps.Error):
                mine.update(p.pid for p in ps.Process(me).children(recursive=True))
            procs = [p for p in procs if p.pid not in mine]
        fresh: dict[int, Any] = {}
        for p in procs:
            known = self._procs.get(p.pid)
            if known is None:
                with contextlib.suppress(ps.Error):
                    p.cpu_percent(None)
                known = p
            fresh[p.pid] = known
        self._procs = fresh
        return list(fresh.values())

    def sample(self) -> dict[str, float]:
        ps = self._psutil
        v: dict[str, float] = {}
        v["cpu_utilization_percentage"] = float(ps.cpu_percent(None))
        mem = ps.virtual_memory()
        v["system_memory_usage_megabytes"] = mem.used / MB
        v["system_memory_usage_percentage"] = float(mem.percent)
        cpu = rss = 0.0
        n = 0
        for p in self._tree():
            try:
                cpu += p.cpu_percent(None)
                rss += p.memory_info().rss
                n += 1
            except ps.Error:
                continue
        if n:
            v["process_cpu_utilization_percentage"] = cpu
            v["process_memory_rss_megabytes"] = rss / MB
            v["process_memory_usage_percentage"] = rss / mem.total * 100 if mem.total else 0.0
            v["process_count"] = float(n)
        with contextlib.suppress(OSError):
            du = ps.disk_usage(self._disk_path)
            v["disk_usage_percentage"] = float(du.percent)
            v["disk_usage_megabytes"] = du.used / MB
            v["disk_available_megabytes"] = du.free / MB
        net, disk = _counters(ps)
        if net is not None and self._net0 is not None:
            v["network_receive_megabytes"] = (net.bytes_recv - self._net0.bytes_recv) / MB
            v["network_transmit_megabytes"] = (net.bytes_sent - self._net0.bytes_sent) / MB
        if disk is not None and self._disk0 is not None:
            v["disk_read_megabytes"] = (disk.read_bytes - self._disk0.read_bytes) / MB
            v["disk_write_megabytes"] = (disk.write_bytes - self._disk0.write_bytes) / MB
        for i, h in self._gpus:
            v.update(self._gpu(i, h))
        return {PREFIX + k: x for k, x in v.items()}

    def _gpu(self, i: int, h: Any) -> dict[str, float]:
        nv, out = self._nvml, {}
        with contextlib.suppress(Exception):
            m = nv.nvmlDeviceGetMemoryInfo(h)
            out[f"gpu_{i}_memory_usage_percentage"] = round(m.used / m.total * 100, 1) if m.total else 0.0
            out[f"gpu_{i}_memory_usage_megabytes"] = m.used / MB
        with contextlib.suppress(Exception):
            out[f"gpu_{i}_utilization_percentage"] = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
        with contextlib.suppress(Exception):
            mw = nv.nvmlDeviceGetPowerUsage(h)
            out[f"gpu_{i}_power_usage_watts"] = mw / 1000
            out[f"gpu_{i}_power_usage_percentage"] = mw / nv.nvmlDeviceGetEnforcedPowerLimit(h) * 100
        with contextlib.suppress(Exception):
            out[f"gpu_{i}_temperature_celsius"] = float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
        return out

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None


def _counters(ps: Any) -> tuple[Any, Any]:
    net = disk = None
    with contextlib.suppress(Exception):
        net = ps.net_io_counters()
    with contextlib.suppress(Exception):
        disk = ps.disk_io_counters()
    return net, disk


class SystemSampler:
    """A daemon thread of the agent: a ``SystemMetrics`` record every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float, disk_path: str, record: Callable[[Any], None],
                 log: Callable[[str], None], seq: int = 0) -> None:
        self._pid, self._interval, self._disk_path = pid, interval, disk_path
        self._record, self._log = record, log
        self._stop = threading.Event()
        self.seq = seq
        self._thread = threading.Thread(target=self._loop, name="trackkit-system-metrics", daemon=True)

    def start(self) -> SystemSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        try:
            sampler = Sampler(self._pid, self._disk_path)
        except Exception as exc:  # psutil missing or refused: no system metrics, said once
            self._log(f"system metrics: off ({exc!r})")
            return
        try:
            while not self._stop.wait(self._interval):
                try:
                    values = sampler.sample()
                except Exception as exc:
                    self._log(f"system metrics: a sample failed: {exc!r}")
                    continue
                if self._stop.is_set():
                    return
                self._record(SystemMetrics(time=time.time(), values=values, seq=self.seq))
                self.seq += 1
        finally:
            sampler.close()
