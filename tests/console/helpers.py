"""Reading a run's console back from what each backend stored (their own files and APIs)."""

from __future__ import annotations

import glob
import os
import tempfile


def tensorboard_console(tb_root: str) -> str:
    """The ``console`` text summaries of every event file under ``tb_root``, through tensorboard's reader."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    chunks: list[tuple[int, str]] = []
    for path in glob.glob(os.path.join(tb_root, "**", "events.out.tfevents.*"), recursive=True):
        for ev in EventFileLoader(path).Load():
            for v in ev.summary.value:
                if v.tag == "console":
                    text = tensor_util.make_ndarray(v.tensor).item()
                    chunks.append((ev.step, text.decode() if isinstance(text, bytes) else str(text)))
    chunks.sort(key=lambda c: c[0])
    return "".join(t for _, t in chunks)


def wandb_output_log(wb_root: str) -> str:
    """``files/output.log`` of the offline W&B run(s) under ``wb_root``."""
    out = ""
    for path in sorted(glob.glob(os.path.join(wb_root, "wandb", "*run-*", "files", "output.log"))):
        with open(path, encoding="utf-8") as fh:
            out += fh.read()
    return out


def mlflow_console(db: str, run_id: str) -> str:
    """The ``console.log`` artifact of the MLflow run tagged with trackkit's ``run_id``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, filter_string=f"tags.`trackkit.run_id` = '{run_id}'")
    assert runs, f"no MLflow run tagged {run_id}"
    dest = client.download_artifacts(runs[0].info.run_id, "console.log", tempfile.mkdtemp())
    with open(dest, encoding="utf-8") as fh:
        return fh.read()


def mlflow_metric_history(db: str, run_id: str) -> dict[str, list[float]]:
    """Every metric of the MLflow run with trackkit's ``run_id``: key -> values, from MLflow's store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exps = [e.experiment_id for e in client.search_experiments()]
    run = client.search_runs(exps, filter_string=f"tags.`trackkit.run_id` = '{run_id}'")[0]
    return {k: [m.value for m in client.get_metric_history(run.info.run_id, k)] for k in run.data.metrics}
