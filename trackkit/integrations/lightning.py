"""PyTorch Lightning logger.

    from trackkit.integrations.lightning import TrackkitLogger

    logger = TrackkitLogger(project="mnist", backend="tensorboard:./runs", config=cfg)
    trainer = pytorch_lightning.Trainer(logger=logger, ...)
    trainer.fit(model)          # status: completed / crashed / killed / diverged

The run is created lazily, on global rank 0 only: Lightning calls every logger method
on every rank, and each is guarded here, so a DDP job makes exactly one run (and one
delivery agent). Hyperparameters (``save_hyperparameters()``) become config, metrics
keep Lightning's step, checkpoints saved by ``ModelCheckpoint`` become artifacts with the
aliases ``best`` / ``latest``, and how ``fit`` ended becomes the run's status.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from ..checkpoints.manager import CheckpointManager
from ..errors import MissingDependency, TrackkitWarning
from ..events import Status
from ..run import Run
from .common import check_run_or_init_kwargs, open_run

try:
    from lightning_fabric.loggers.logger import rank_zero_experiment
    from lightning_fabric.utilities.rank_zero import rank_zero_only
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers.logger import Logger
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        "trackkit.integrations.lightning needs PyTorch Lightning. Fix: pip install 'trackkit[lightning]'"
    ) from exc

__all__ = ["TrackkitLogger"]


def _rank() -> int:
    """This process's global rank as Lightning knows it (set from the environment, then by the strategy)."""
    return int(getattr(rank_zero_only, "rank", 0) or 0)


class TrackkitLogger(Logger):
    """A Lightning ``Logger`` that records into a trackkit run.

    ``TrackkitLogger(**init_kwargs)`` takes the keywords of :func:`trackkit.init`
    (``project``, ``name``, ``group``, ``tags``, ``backend``, ``config``, ``seed`` ...) and
    creates the run on first use, on rank 0 only; the logger then owns it and finishes it
    when Lightning finalizes (``success`` -> completed, or diverged after a NaN/inf metric;
    ``failed`` -> crashed with the exception and traceback, killed for Ctrl-C, diverged for
    ``on_nan="stop"``; ``finished`` (SLURM auto-requeue) -> killed).

    ``TrackkitLogger(run=run)`` logs into a run you created (and finish yourself, e.g. with a
    ``with trackkit.init(...) as run:`` block): use it to keep ``fit`` and ``test`` in one run.
    ``TrackkitLogger()`` with no arguments reuses the active run when there is one.

    ``log_checkpoints`` (default on): every checkpoint ``ModelCheckpoint`` saves is recorded where
    it is by the run's checkpoint manager (``run.checkpoints()``, docs/checkpoints.md): no copy, the
    journal and the local backends hold hard links; the monitored score, epoch and step go with it;
    ``latest``/``best`` follow the callback's monitor and mode. Lightning keeps its top-k itself: a
    file it deletes (and an older ``last.ckpt`` it replaces) is recorded as pruned everywhere.

    ``save_dir``: where Lightning puts checkpoints (``save_dir/<project>/<run id>/checkpoints``);
    default ``Trainer(default_root_dir=...)``.
    """

    def __init__(
        self,
        run: Run | None = None,
        *,
        log_checkpoints: bool = True,
        save_dir: str | os.PathLike[str] | None = None,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        check_run_or_init_kwargs("TrackkitLogger", run, init_kwargs)
        self._init_kwargs = init_kwargs
        self._run = run
        self._owned = False
        self._log_checkpoints = log_checkpoints
        self._save_dir = os.fspath(save_dir) if save_dir is not None else None
        self._logged_checkpoints: set[tuple[str, float]] = set()
        self._ckpts: CheckpointManager | None = None
        self._warned_finished = False

    # ------------------------------------------------------------------ Logger API

    @property
    @rank_zero_experiment
    def experiment(self) -> Run:
        """The trackkit :class:`~trackkit.Run` (created on first access, rank 0 only; a no-op stand-in elsewhere)."""
        if self._run is None:
            self._run, self._owned = open_run(None, self._init_kwargs)
        return self._run

    @property
    def name(self) -> str | None:
        """The project (Lightning's "experiment name"; checkpoints go under ``save_dir/name/version``)."""
        if _rank() == 0:
            return str(self.experiment.project)
        project = self._init_kwargs.get("project")
        return str(project) if project is not None else None

    @property
    def version(self) -> str | None:
        """The run id (None on ranks other than 0, which Lightning replaces by rank 0's value)."""
        if _rank() == 0:
            return str(self.experiment.id)
        return None

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    @property
    def root_dir(self) -> str | None:
        return self._save_dir

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace | None, *args: Any, **kwargs: Any) -> None:
        """Record hyperparameters (dict, ``Namespace`` or ``AttributeDict``) as config; nested values stay nested."""
        if params is None:
            return
        if isinstance(params, Namespace):
            data: Mapping[str, Any] = vars(params)
        elif isinstance(params, Mapping):
            data = params
        else:
            data = {"hparams": params}
        run = self._live_run()
        if run is not None and data:
            run.log_config(dict(data))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        run = self._live_run()
        if run is not None:
            run.log(metrics, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        if not self._log_checkpoints:
            return
        run = self._live_run()
        if run is None:
            return
        cb = checkpoint_callback
        best = str(getattr(cb, "best_model_path", "") or "")
        last = str(getattr(cb, "last_model_path", "") or "")
        saved = str(getattr(cb, "_last_checkpoint_saved", "") or "")
        # the file this call is about; older Lightning versions lack _last_checkpoint_saved
        candidates = [saved] if saved else [p for p in (best, last) if p]
        if self._ckpts is None:  # Lightning keeps its top-k itself: this manager prunes only what it deletes
            monitor = getattr(cb, "monitor", None)
            mode = getattr(cb, "mode", "min")
            self._ckpts = run.checkpoints(monitor=monitor, mode=mode if mode in ("min", "max") else "min")
        mgr = self._ckpts
        for path in candidates:
            if not os.path.exists(path):
                continue
            key = (os.path.abspath(path), os.path.getmtime(path))
            if key in self._logged_checkpoints:
                continue
            self._logged_checkpoints.add(key)
            mgr.forget(path, "replaced by Lightning")  # last.ckpt saved again: the older one is gone
            score: Any = (getattr(cb, "best_k_models", {}) or {}).get(path, getattr(cb, "current_score", None))
            value = score.item() if score is not None and hasattr(score, "item") else score
            monitor = getattr(cb, "monitor", None)
            metrics = {monitor: value} if monitor and isinstance(value, (int, float)) else {}
            epoch = re.search(r"epoch=(\d+)", os.path.basename(path))
            mgr.adopt(path, step=run.step, epoch=int(epoch.group(1)) if epoch else None, metrics=metrics,
                      metadata={"lightning_path": os.path.abspath(path), "last": path == last})
        self._reflect_deletions()

    def _reflect_deletions(self) -> None:
        """Lightning's own deletions (a checkpoint that fell out of its top-k; it deletes after this
        hook, so the last one is seen at the next save or at ``finalize``) reach the record."""
        if self._ckpts is None:
            return
        for e in self._ckpts.list():
            if not os.path.exists(e.path):
                self._ckpts.forget(e.path, "deleted by Lightning's ModelCheckpoint")

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Lightning's end of ``fit``/``validate``/``test``: finish the run this logger created.

        ``failed`` is called from inside Lightning's ``except`` block, so the exception itself
        (and its traceback) is at hand; a run passed in by the user is left to the user."""
        run = self._run
        if run is not None and not run.finished:
            self._reflect_deletions()
        if run is None or not self._owned or run.finished:
            return
        if status == "success":
            run.finish()  # completed, or diverged when a NaN/inf was logged
        elif status == "failed":
            exc = sys.exc_info()[1]
            if exc is not None:
                run.finish_from_exception(exc)
            else:
                run.finish(Status.CRASHED, "Lightning fit failed", exit_code=1)
        elif status == "finished":  # SLURM auto-requeue (SIGUSR1): the job is preempted and resubmitted
            run.finish(Status.KILLED, "preempted: Lightning auto-requeue (finalize('finished'))")
        else:
            run.finish(reason=f"Lightning finalize({status!r})")

    # ------------------------------------------------------------------ helpers

    def _live_run(self) -> Run | None:
        run = self.experiment
        if not isinstance(run, Run):  # rank > 0: a dummy
            return None
        if run.finished:
            if not self._warned_finished:
                self._warned_finished = True
                warnings.warn(
                    f"TrackkitLogger: run {run.name} already finished (Lightning finalized it at the end of fit); "
                    "later metrics are not recorded. Fix: keep one run across fit and test with "
                    "`with trackkit.init(...) as run:` and TrackkitLogger(run=run)",
                    TrackkitWarning,
                    stacklevel=3,
                )
            return None
        return run

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles the logger into its workers: a Run (open journal, lock, agent) cannot travel
        state = self.__dict__.copy()
        if state.get("_run") is not None:
            raise RuntimeError(
                "TrackkitLogger: a trackkit Run cannot be sent to another process (ddp_spawn pickles the logger). "
                "Fix: with strategy='ddp_spawn' pass trackkit.init keywords (not run=) and do not touch "
                "logger.experiment/name/version before trainer.fit; or use strategy='ddp'"
            )
        return state
