"""Optuna: a study is a parent run, each trial a child run (docs/integrations.md#optuna).

::

    from trackkit.integrations.optuna import TrackkitCallback

    cb = TrackkitCallback(project="mnist-sweep", backend="mlflow:./mlflow.db", metric_name="val/acc")
    study.optimize(cb.wrap(objective), n_trials=50, callbacks=[cb])  # wrap: a failed trial's exception
    cb.finish()  # the study's run; also at exit, or use ``with TrackkitCallback(...) as cb:``

Each finished trial becomes a child run of the study's run: its params as config, its value as a
summary (its intermediate values, ``trial.report(value, step)``, are the metric's points; a trial
without any has its value as the one point at step 0),
its user attributes as summary values, its state as the status — ``COMPLETE`` completed, ``PRUNED``
killed (reason: pruned at step N), ``FAIL`` crashed (reason: the exception, when the objective is
passed through ``cb.wrap``). The study's run
keeps the best value and trial so far as summary values, and every run carries the tags
``sweep.objective`` / ``sweep.goal`` that ``trackkit report`` draws its sweep view from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import TrackkitWarning
from ..events import Status
from ..run import Run
from ..session import init
from ..util import warn
from .common import check_init_kwargs

__all__ = ["TrackkitCallback"]


def _state(trial: Any, error: str | None) -> tuple[Status, str]:
    name = getattr(getattr(trial, "state", None), "name", "")
    if name == "COMPLETE":
        return Status.COMPLETED, ""
    if name == "PRUNED":
        step = trial.last_step
        return Status.KILLED, "pruned by optuna" + ("" if step is None else f" at step {step}")
    if name == "FAIL":
        why = error or (trial.system_attrs or {}).get("fail_reason") or (
            "the objective raised or returned no valid value (study.optimize(cb.wrap(objective)) records which)")
        return Status.CRASHED, f"optuna trial failed: {why}"
    return Status.KILLED, f"optuna trial ended in state {name or '?'}"


class TrackkitCallback:
    """``study.optimize(..., callbacks=[TrackkitCallback(project=..., backend=..., metric_name=...)])``.

    ``metric_name``: the name of the objective value (a list for a multi-objective study);
    ``init_kwargs``: further ``trackkit.init`` keywords for the study's run (checked now). Logging
    never raises into the study: a problem is warned once per kind."""

    def __init__(self, project: str | None = None, backend: str | list[str] | None = None,
                 metric_name: str | Sequence[str] = "value", **init_kwargs: Any) -> None:
        check_init_kwargs("TrackkitCallback", init_kwargs)
        self.metric_names = [metric_name] if isinstance(metric_name, str) else list(metric_name)
        self._kwargs = {"project": project, "backend": backend, **init_kwargs}
        self.run: Run | None = None
        self.trials: dict[int, str] = {}
        self._warned: set[str] = set()
        #: trial number -> the exception its objective raised (``wrap``)
        self._errors: dict[int, str] = {}

    def wrap(self, objective: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """The objective, recording the exception a failing trial raises (the failed child run's
        reason; optuna itself keeps only "failed"). The exception still reaches optuna."""

        def tracked(trial: Any) -> Any:
            try:
                return objective(trial)
            except Exception as exc:
                if type(exc).__name__ != "TrialPruned":
                    self._errors[trial.number] = f"{type(exc).__name__}: {exc}"
                raise

        return tracked

    def _names(self, n: int) -> list[str]:
        if len(self.metric_names) == n:
            return self.metric_names
        base = self.metric_names[0] if self.metric_names else "value"
        return [base] if n == 1 else [f"{base}_{i}" for i in range(n)]

    def _goals(self, study: Any) -> list[str]:
        return ["min" if getattr(d, "name", "") == "MINIMIZE" else "max" for d in study.directions]

    def _parent(self, study: Any) -> Run:
        if self.run is None:
            goals = self._goals(study)
            names = self._names(len(goals))
            config = {"optuna": {"study": study.study_name, "directions": goals,
                                 "sampler": type(study.sampler).__name__, "pruner": type(study.pruner).__name__}}
            kwargs = {"name": study.study_name, "reinit": "create_new", **self._kwargs}
            tags = {"sweep.objective": names[0], "sweep.goal": goals[0], "optuna.study": study.study_name}
            kwargs["tags"] = {**tags, **dict(kwargs.get("tags") or {})}
            kwargs["config"] = {**config, **dict(kwargs.get("config") or {})}
            self.run = init(**{k: v for k, v in kwargs.items() if v is not None})
        return self.run

    def __call__(self, study: Any, trial: Any) -> None:
        try:
            self._record(study, trial)
        except Exception as exc:  # never into the study
            kind = type(exc).__name__
            if kind not in self._warned:
                self._warned.add(kind)
                warn(f"trackkit optuna: trial {getattr(trial, 'number', '?')} not recorded: {exc}", TrackkitWarning)

    def _record(self, study: Any, trial: Any) -> None:
        parent = self._parent(study)
        goals = self._goals(study)
        values = list(trial.values) if trial.values is not None else []
        names = self._names(len(goals))
        status, reason = _state(trial, self._errors.pop(trial.number, None))
        tags = {"optuna.trial": str(trial.number), "optuna.state": getattr(trial.state, "name", ""),
                "sweep.objective": names[0], "sweep.goal": goals[0]}
        child = parent.child(name=f"{study.study_name}-trial-{trial.number}", config=dict(trial.params), tags=tags,
                             capture=False)
        try:
            last = -1
            for step, v in sorted(trial.intermediate_values.items()):
                child.log({names[0]: v}, step=step)
                last = step
            summary: dict[str, Any] = {f"user.{k}": v for k, v in trial.user_attrs.items()}
            if values:
                if last < 0:  # no intermediate values: the value is the trial's one point too
                    child.log(dict(zip(names, values)), step=0)
                summary.update(zip(names, values))
            if trial.duration is not None:
                summary["optuna.duration_s"] = trial.duration.total_seconds()
            child.summary.update(summary)
        finally:
            child.finish(status, reason)
        self.trials[trial.number] = child.id
        self._best(study, parent, names)

    def _best(self, study: Any, parent: Run, names: list[str]) -> None:
        if len(study.directions) != 1:
            return
        try:
            best = study.best_trial
        except ValueError:  # no completed trial yet
            return
        parent.summary.update({f"best/{names[0]}": best.value, "best/trial": best.number,
                               "best/run": self.trials.get(best.number, ""),
                               **{f"best/params.{k}": v for k, v in best.params.items()}})

    def finish(self, status: Status | str | None = None, reason: str = "") -> None:
        """End the study's run (completed unless said otherwise)."""
        if self.run is not None:
            self.run.finish(status, reason)

    def __enter__(self) -> TrackkitCallback:
        return self

    def __exit__(self, et: object, ev: object, tb: object) -> None:
        if ev is None:
            self.finish()
        else:
            self.finish(Status.CRASHED, f"the study raised {type(ev).__name__}: {ev}")

    def __repr__(self) -> str:
        run = self.run.id if self.run is not None else "not started"
        return f"<trackkit optuna TrackkitCallback run={run} trials={len(self.trials)}>"


