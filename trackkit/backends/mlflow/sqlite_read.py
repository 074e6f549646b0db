"""``SqliteReadClient``: the read-only part of ``MlflowClient`` the reader uses, over a sqlite store read
with the standard library's ``sqlite3``, so that reading a store never imports SQLAlchemy and alembic
(0.9 s and ~50 MB at a migrate's peak: ``MlflowClient("sqlite:...")`` loads MLflow's ``SqlAlchemyStore``).

It returns MLflow's own entities (``mlflow.entities.Run``, ``Experiment``, ``FileInfo``), built as
``SqlAlchemyStore`` builds them (``dbmodels.models``: ``to_mlflow_entity``), from the tables every
schema the installed mlflow reads has (the revision is checked first, ``connection.check_store``).
Whatever it does not do itself goes to the real client, made on first use (``fallback``): a run with
``log_input`` datasets (its inputs), an artifact store that is not a local directory or a run with MLflow 3
logged models (whose files MLflow lists beside the run's), a search filter
other than one tag's equality, experiments in more than the default workspace.
docs/backends/mlflow.md ("Reading: lists, streams, the fastest path") is the truth.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

__all__ = ["SqliteReadClient"]

_TAG_EQ = re.compile(r"^tags\.`([^`]+)` = (['\"])(.*)\2$", re.S)


def _local_dir(uri: str | None) -> str | None:
    """The directory of a local artifact URI (``file:///...`` or a plain absolute path), else None."""
    if not uri:
        return None
    if uri.startswith("file:"):
        parts = urlsplit(uri)
        return unquote(parts.path) if parts.netloc in ("", "localhost") else None
    return uri if os.path.isabs(uri) else None


class SqliteReadClient:
    """``search_experiments``, ``get_experiment(_by_name)``, ``search_runs``, ``get_run``,
    ``list_artifacts`` and ``download_artifacts`` of a sqlite MLflow store, opened read-only."""

    def __init__(self, path: str, fallback: Callable[[], Any]) -> None:
        self._db = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, check_same_thread=False)
        self._make_fallback = fallback
        self._fallback: Any = None
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        #: a store with MLflow's tables (an empty database has none: MLflow's client answers for it)
        self.usable = {"experiments", "runs", "tags", "params", "latest_metrics"} <= tables
        self._has_inputs = "inputs" in tables
        self._has_models = "logged_models" in tables
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(experiments)")} if self.usable else set()
        #: experiments outside the default workspace: MLflow's own client decides what is listed
        self._workspaces = "workspace" in cols and self._db.execute(
            "SELECT 1 FROM experiments WHERE workspace != 'default' LIMIT 1").fetchone() is not None

    @property
    def real(self) -> Any:
        """MLflow's own client on the same store (made on first use)."""
        if self._fallback is None:
            self._fallback = self._make_fallback()
        return self._fallback

    def __getattr__(self, name: str) -> Any:  # anything else MlflowClient has: the real client's
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.real, name)

    # ---- experiments

    def _experiments(self, where: str, args: Sequence[Any]) -> list[Any]:
        from mlflow.entities import Experiment, ExperimentTag

        rows = self._db.execute(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time "
            f"FROM experiments WHERE {where} ORDER BY creation_time DESC, experiment_id ASC", tuple(args)).fetchall()
        out = []
        for eid, name, location, stage, created, updated in rows:
            tags = [ExperimentTag(k, v) for k, v in self._db.execute(
                "SELECT key, value FROM experiment_tags WHERE experiment_id = ?", (eid,))]
            out.append(Experiment(experiment_id=str(eid), name=name, artifact_location=location,
                                  lifecycle_stage=stage, tags=tags, creation_time=created, last_update_time=updated))
        return out

    def search_experiments(self, *args: Any, **kwargs: Any) -> Any:
        from mlflow.store.entities.paged_list import PagedList

        extra = {k: v for k, v in kwargs.items() if k not in ("max_results", "page_token") and v is not None}
        if args or extra or self._workspaces:
            return self.real.search_experiments(*args, **kwargs)
        return PagedList(self._experiments("lifecycle_stage = 'active'", ()), None)

    def get_experiment(self, experiment_id: str) -> Any:
        found = self._experiments("experiment_id = ?", (experiment_id,)) if not self._workspaces else []
        return found[0] if found else self.real.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Any:
        if self._workspaces:
            return self.real.get_experiment_by_name(name)
        found = self._experiments("name = ?", (name,))
        return found[0] if found else None

    # ---- runs

    def _runs(self, where: str, args: Sequence[Any]) -> list[Any]:
        from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag

        db = self._db
        rows = db.execute(
            "SELECT run_uuid, name, experiment_id, user_id, status, start_time, end_time, lifecycle_stage, "
            f"artifact_uri FROM runs WHERE {where} ORDER BY start_time DESC, run_uuid ASC", tuple(args)).fetchall()
        out = []
        for rid, name, eid, user, status, start, end, stage, uri in rows:
            if self._has_inputs and db.execute(
                "SELECT 1 FROM inputs WHERE destination_type = 'RUN' AND destination_id = ? LIMIT 1", (rid,)
            ).fetchone():
                out.append(self.real.get_run(rid))  # its log_input datasets: MLflow's own entity
                continue
            tags = [RunTag(k, v) for k, v in db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (rid,))]
            if not name:  # as MLflow does: the name from the mlflow.runName tag
                name = next((t.value for t in tags if t.key == "mlflow.runName"), None) or name
            info = RunInfo(run_id=rid, run_name=name, experiment_id=str(eid), user_id=user, status=status,
                           start_time=start, end_time=end, lifecycle_stage=stage, artifact_uri=uri)
            params = [Param(k, v) for k, v in db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (rid,))]
            metrics = [
                Metric(key=k, value=math.nan if is_nan else v, timestamp=ts, step=step)
                for k, v, ts, step, is_nan in db.execute(
                    "SELECT key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid = ?", (rid,))
            ]
            out.append(Run(run_info=info, run_data=RunData(metrics=metrics, params=params, tags=tags)))
        return out

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str = "", *args: Any, **kwargs: Any) -> Any:
        """Active runs of the experiments (newest first, as MLflow orders them), all in one page; a filter
        is one tag's equality (``tags.`KEY` = 'VALUE'``) or MLflow's own client answers."""
        from mlflow.store.entities.paged_list import PagedList

        extra = {k: v for k, v in kwargs.items() if k not in ("max_results", "page_token") and v is not None}
        tag = _TAG_EQ.match(filter_string) if filter_string else None
        if args or extra or (filter_string and tag is None) or kwargs.get("page_token"):
            return self.real.search_runs(experiment_ids, filter_string, *args, **kwargs)
        ids = [str(e) for e in experiment_ids]
        if not ids:
            return PagedList([], None)
        where = f"lifecycle_stage = 'active' AND CAST(experiment_id AS TEXT) IN ({', '.join('?' * len(ids))})"
        params: list[Any] = list(ids)
        if tag is not None:
            where += " AND run_uuid IN (SELECT run_uuid FROM tags WHERE key = ? AND value = ?)"
            params += [tag.group(1), tag.group(3)]
        runs = self._runs(where, params)
        limit = kwargs.get("max_results")
        if tag is not None and isinstance(limit, int):
            runs = runs[:limit]
        return PagedList(runs, None)

    def get_run(self, run_id: str) -> Any:
        found = self._runs("run_uuid = ?", (run_id,))
        if found:
            return found[0]
        return self.real.get_run(run_id)  # MLflow's own error for a run it does not have

    # ---- artifacts

    def _repository(self, run_id: str) -> Any | None:
        """MLflow's own artifact repository of a run whose artifacts are in a local directory (what
        ``MlflowClient`` uses for it), else None (the real client resolves the URI)."""
        row = self._db.execute("SELECT artifact_uri FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
        if not row or _local_dir(row[0]) is None:
            return None
        if self._has_models and self._db.execute(
            "SELECT 1 FROM logged_models WHERE source_run_id = ? LIMIT 1", (run_id,)
        ).fetchone():
            return None  # MLflow 3 lists a logged model's files beside the run's own: its client does
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(row[0])

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[Any]:
        repo = self._repository(run_id)
        return list((repo or self.real).list_artifacts(*((path,) if repo else (run_id, path))))

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        repo = self._repository(run_id)
        if repo is None:
            return str(self.real.download_artifacts(run_id, path, dst_path))
        return str(repo.download_artifacts(path, dst_path))

    def close(self) -> None:
        self._db.close()
