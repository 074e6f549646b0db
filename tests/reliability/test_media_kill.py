"""A SIGKILLed trainer that logged media loses none it acknowledged: the payload is in payloads.bin
before its record is in the journal, and the agent (which outlives the trainer) encodes and delivers
it — read back from TensorBoard's files and MLflow's store (docs/media.md)."""

from __future__ import annotations

import io
import json
import os
import signal
import time

import numpy as np
import pytest
from PIL import Image as PILImage

from trackkit.events import Status

from .helpers import acked_steps, mlflow_db, read_run, read_until_ack, start_child, wait_agent_done


@pytest.mark.slow
def test_sigkill_keeps_every_acknowledged_image_and_histogram(tmp_path: object) -> None:
    backends = [f"tensorboard:{tmp_path}/runs", f"mlflow:{mlflow_db(str(tmp_path))}"]
    proc = start_child(",".join(backends), f"{tmp_path}/j", "--hz", "100", "--media")
    run_id, run_dir = read_until_ack(proc, 10)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    acked = {*range(11), *acked_steps(out)}
    assert os.path.getsize(os.path.join(run_dir, "payloads.bin")) > 0
    log = wait_agent_done(run_dir, timeout=180)
    assert "marked the run killed" in log
    for backend in backends:
        rec = read_run(backend, run_id)
        assert rec.info.status is Status.KILLED
        images = {m.step: m for m in rec.media("image").get("img", [])}
        hists = {m.step: m for m in rec.media("histogram").get("hist", [])}
        assert acked <= set(images), (backend, sorted(acked - set(images))[:10])
        assert acked <= set(hists), (backend, sorted(acked - set(hists))[:10])
        for step in sorted(acked)[::7]:
            with PILImage.open(io.BytesIO(images[step].read_bytes())) as img:
                px = np.asarray(img.convert("L"))
            assert px.shape == (8, 8) and (px == step % 256).all(), (backend, step)
            assert sum(json.loads(hists[step].read_bytes())["counts"]) == 2
        steps = [m.step for m in rec.media("image")["img"]]
        assert len(steps) == len(set(steps)), f"{backend}: an image was delivered twice"
