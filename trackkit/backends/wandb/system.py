"""System metrics and console output into a W&B run, where W&B's own UI shows them.

System metrics (``trackkit/sysmetrics.py`` names) become a W&B *stats* record (the "System"
panels), with W&B's own names where it has one (``cpu``, ``memory``, ``gpu.0.gpu`` ...), at the
sample's time. The console goes to the run's ``output.log`` file (the "Logs" tab), as W&B's own
capture would write it; W&B's capture stays off (the agent's process has nothing to capture).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["OUTPUT_LOG", "output_log_path", "publish_stats", "stats_items"]

OUTPUT_LOG = "output.log"

#: trackkit name (after ``system/``) -> (W&B stats key, factor)
_NAMES: dict[str, tuple[str, float]] = {
    "process_cpu_utilization_percentage": ("cpu", 1.0),
    "system_memory_usage_percentage": ("memory", 1.0),
    "process_memory_rss_megabytes": ("proc.memory.rssMB", 1.0),
    "process_memory_usage_percentage": ("proc.memory.percent", 1.0),
    "disk_read_megabytes": ("disk.in", 1.0),
    "disk_write_megabytes": ("disk.out", 1.0),
    "network_receive_megabytes": ("network.recv", 1e6),
    "network_transmit_megabytes": ("network.sent", 1e6),
    "disk_usage_percentage": ("disk./.usagePercent", 1.0),
    "disk_usage_megabytes": ("disk./.usageGB", 1e-3),
}
_GPU = re.compile(r"gpu_(\d+)_(.+)")
_GPU_NAMES: dict[str, tuple[str, float]] = {
    "utilization_percentage": ("gpu", 1.0),
    "memory_usage_percentage": ("memoryAllocated", 1.0),
    "memory_usage_megabytes": ("memoryAllocatedBytes", 1e6),
    "temperature_celsius": ("temp", 1.0),
    "power_usage_watts": ("powerWatts", 1.0),
    "power_usage_percentage": ("powerPercent", 1.0),
}


def stats_items(values: Mapping[str, float]) -> dict[str, float]:
    """W&B stats keys (shown as ``system.<key>``) for trackkit's ``system/...`` values."""
    out: dict[str, float] = {}
    for key, v in values.items():
        name = key.split("/", 1)[1] if key.startswith("system/") else key
        hit = _NAMES.get(name)
        m = _GPU.fullmatch(name) if hit is None else None
        if m is not None and m.group(2) in _GPU_NAMES:
            sub, factor = _GPU_NAMES[m.group(2)]
            hit = (f"gpu.{m.group(1)}.{sub}", factor)
        wkey, factor = hit if hit is not None else (name, 1.0)
        out[wkey] = v * factor
    return out


def publish_stats(wandb: Any, run: Any, values: Mapping[str, float], when: float) -> bool:
    """One stats record at ``when``; False where this wandb version offers no way (then W&B gets none)."""
    interface = getattr(run, "_interface", None) or getattr(getattr(run, "_backend", None), "interface", None)
    make, publish = getattr(interface, "_make_record", None), getattr(interface, "_publish", None)
    if make is None or publish is None:
        return False
    from wandb.proto import wandb_internal_pb2 as pb

    stats = pb.StatsRecord(stats_type=pb.StatsRecord.StatsType.SYSTEM)  # type: ignore[attr-defined]
    stats.timestamp.FromNanoseconds(int(when * 1e9))
    for k, v in stats_items(values).items():
        item = stats.item.add()
        item.key = k
        item.value_json = repr(float(v)) if v == v and abs(v) != float("inf") else "null"
    publish(make(stats=stats))
    return True


def output_log_path(run: Any) -> str | None:
    d = getattr(run, "dir", None)
    return os.path.join(str(d), OUTPUT_LOG) if d else None
