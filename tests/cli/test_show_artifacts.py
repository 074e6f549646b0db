"""``trackkit show --backend`` prints where the backend keeps each artifact, never the reader's
temporary copy (found by the smoke test: ``show`` on MLflow and W&B runs printed
``/tmp/trackkit-wandb-artifacts-.../d.json``, a directory removed when the command exits). The runs
are written by the SDKs themselves; the CLI runs in its own process, so its temporary directories
are gone when the paths are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

#: the worktree whose trackkit the subprocess imports
REPO = str(Path(__file__).resolve().parents[2])
#: where trackkit's readers keep what they download (removed when the process exits)
SCRATCH = os.path.join(os.path.realpath(tempfile.gettempdir()), "trackkit-")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
           "COLUMNS": "400"}
    res = subprocess.run([sys.executable, "-m", "trackkit", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def _shown(res: subprocess.CompletedProcess[str], name: str) -> str:
    """The path cell of the artifact row ``name`` in ``show``'s table."""
    (row,) = [ln for ln in res.stdout.splitlines() if ln.startswith(f"│ {name} ")]
    return row.strip("│ ").split("│")[-1].strip()


def _json_paths(res: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {a["name"]: a["path"] for a in json.loads(res.stdout)["artifacts"]}


def _mlflow_run(tmp_path: Path) -> Path:
    """An MLflow run (sqlite store, local artifact root) with a text and a file artifact, written by
    mlflow itself; returns the run's artifact directory."""
    mlflow: Any = pytest.importorskip("mlflow")
    (tmp_path / "weights.bin").write_bytes(b"w" * 2048)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/ml.db")
    try:
        exp = mlflow.create_experiment("arts", artifact_location=str(tmp_path / "mlart"))
        with mlflow.start_run(run_name="parent", experiment_id=exp) as run:
            mlflow.log_metric("loss", 1.0, step=0)
            mlflow.log_text("notes of the run", "notes/readme.txt")
            mlflow.log_artifact(str(tmp_path / "weights.bin"), artifact_path="ckpt")
    finally:
        mlflow.set_tracking_uri("")
    return tmp_path / "mlart" / run.info.run_id / "artifacts"


def test_show_prints_where_the_mlflow_store_keeps_each_artifact(tmp_path: Path) -> None:
    root = _mlflow_run(tmp_path)
    backend = f"mlflow:{tmp_path}/ml.db"
    table = _cli("show", "parent", "--backend", backend, cwd=tmp_path)
    paths = _json_paths(_cli("show", "parent", "--backend", backend, "--json", cwd=tmp_path))
    for name, want in (("notes/readme.txt", "notes of the run"), ("ckpt/weights.bin", "w" * 2048)):
        for path in (_shown(table, name), paths[name]):
            assert path == str(root / name), (name, path)
            assert not os.path.realpath(path).startswith(SCRATCH), path
            with open(path) as fh:  # there after the command has exited
                assert fh.read() == want


def test_show_of_a_wandb_copy_names_the_wandb_artifact_not_the_gone_download(tmp_path: Path) -> None:
    """The smoke test's case: an MLflow run migrated to W&B; trackkit's record in the W&B artifact
    names the file the migration read (a download, gone), so ``show`` names the W&B artifact."""
    pytest.importorskip("wandb")
    _mlflow_run(tmp_path)
    target = f"wandb:copy?dir={tmp_path}/wb"
    _cli("migrate", "--from", f"mlflow:{tmp_path}/ml.db", "--to", target, "--all", cwd=tmp_path)
    table = _cli("show", "parent", "--backend", target, cwd=tmp_path)
    paths = _json_paths(_cli("show", "parent", "--backend", target, "--json", cwd=tmp_path))
    for name, file in (("notes/readme.txt", "readme.txt"), ("ckpt/weights.bin", "weights.bin")):
        for path in (_shown(table, name), paths[name]):
            assert path.startswith("artifact ") and path.endswith(f":latest/{file}"), (name, path)
    assert SCRATCH not in table.stdout + json.dumps(paths), table.stdout


def test_where_a_reader_found_an_artifact_is_never_written_to_a_record() -> None:
    from trackkit.events import Artifact, event_from_record, event_to_record

    ev = Artifact(path="/p/m.pt", name="m", kind="model", sha256="ab", size=1, location="artifact m:v0/m.pt")
    rec = event_to_record(ev)
    assert "location" not in rec  # a copy's backend has its own place; the journal's path is its place
    assert event_from_record(rec) == Artifact(path="/p/m.pt", name="m", kind="model", sha256="ab", size=1)


def test_show_prints_the_wandb_artifact_or_the_users_own_file(tmp_path: Path) -> None:
    """A W&B offline run wandb wrote: a staged file (W&B's staging copy goes once it has uploaded
    it) is named as the W&B artifact; a file W&B took from where it is, by its own path."""
    wandb: Any = pytest.importorskip("wandb")
    (tmp_path / "weights.bin").write_bytes(b"w" * 2048)
    (tmp_path / "kept.txt").write_text("a file that stays")
    run = wandb.init(project="arts", dir=str(tmp_path), mode="offline")
    run.log({"loss": 1.0}, step=0)
    staged = wandb.Artifact("weights", type="model")  # W&B copies it into its staging area
    staged.add_file(str(tmp_path / "weights.bin"))
    run.log_artifact(staged, aliases=["best"])
    own = wandb.Artifact("notes", type="dataset")  # W&B takes it from where it is
    own.add_file(str(tmp_path / "kept.txt"), policy="immutable")
    run.log_artifact(own)
    run.finish()
    backend = f"wandb:arts?dir={tmp_path}"
    table = _cli("show", run.id, "--backend", backend, cwd=tmp_path)
    paths = _json_paths(_cli("show", run.id, "--backend", backend, "--json", cwd=tmp_path))
    for path in (_shown(table, "weights"), paths["weights"]):
        assert path == "artifact weights:best/weights.bin", path
    for path in (_shown(table, "notes"), paths["notes"]):
        assert path == str(tmp_path / "kept.txt"), path
        assert os.path.isfile(path)
    assert SCRATCH not in table.stdout + json.dumps(paths), table.stdout
