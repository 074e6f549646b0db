"""``benchmarks/bench_log.py --in-step`` runs and prints every call it times, with numbers."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_bench_log_in_step_prints_each_call() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_log.py"), "--in-step",
                          "--rounds", "1", "--block", "20"], capture_output=True, text=True, timeout=240, cwd=ROOT,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("trackkit run.log", "MetricLines.encode", "journal store", "repr of 2 floats", "struct.pack",
                 "time.time()", "an empty call", "SummaryWriter.add_scalar"):
        line = next((ln for ln in out.stdout.splitlines() if name in ln), None)
        assert line is not None, out.stdout
        assert re.search(r"\d+\.\d\d\s+\d+\.\d\d$", line), line  # mean and median, µs
