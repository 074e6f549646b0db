"""Hugging Face ``Trainer`` callback.

    from trackkit.integrations.transformers import TrackkitCallback

    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      callbacks=[TrackkitCallback(project="glue", backend="tensorboard:./runs")])
    trainer.train()

Only the world process zero records: ``on_train_begin`` starts the run (or reuses the
active one), the ``TrainingArguments`` and the model's config become config
(``training_args.*`` and ``model_config.*``), every ``on_log`` becomes ``run.log(logs,
step=state.global_step)`` (numeric values only: ``loss``, ``learning_rate``, ``epoch``,
``eval_*`` ...), ``on_save`` can snapshot the checkpoint folder, and ``on_train_end``
finishes a run the callback started (completed, or diverged after a NaN loss).
"""

from __future__ import annotations

import numbers
import os
from typing import Any

from ..checkpoints.manager import CheckpointManager
from ..errors import MissingDependency
from ..run import Run
from .common import check_run_or_init_kwargs, open_run

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as exc:  # pragma: no cover - exercised only without transformers
    raise MissingDependency(
        "trackkit.integrations.transformers needs Hugging Face transformers. "
        "Fix: pip install transformers accelerate"
    ) from exc

__all__ = ["TrackkitCallback"]


class TrackkitCallback(TrainerCallback):
    """Record a Hugging Face ``Trainer`` run.

    ``TrackkitCallback(**init_kwargs)`` takes the keywords of :func:`trackkit.init` and starts
    a run at ``on_train_begin`` (world process zero only), which it finishes at ``on_train_end``.
    ``TrackkitCallback(run=run)`` (or no arguments while a run is active) logs into that run and
    leaves finishing it to you: with ``with trackkit.init(...) as run:`` an exception out of
    ``trainer.train()`` is recorded as ``crashed`` with its traceback (the Trainer has no
    exception hook, so a callback alone cannot see one).

    ``log_checkpoints=True`` records each ``checkpoint-<step>`` folder the Trainer saves with the
    run's checkpoint manager (docs/checkpoints.md): where it is, no copy (the journal and the local
    backends hold hard links), with the latest evaluation's metrics; ``best`` follows
    ``metric_for_best_model``/``greater_is_better``. The Trainer rotates its folders itself
    (``save_total_limit``): a folder it deletes is recorded as pruned everywhere.
    """

    def __init__(self, run: Run | None = None, *, log_checkpoints: bool = False, **init_kwargs: Any) -> None:
        check_run_or_init_kwargs("TrackkitCallback", run, init_kwargs)
        self._given = run
        self._init_kwargs = init_kwargs
        self._run: Run | None = None
        self._owned = False
        self.log_checkpoints = log_checkpoints
        self._ckpts: CheckpointManager | None = None

    @property
    def run(self) -> Run | None:
        """The run being recorded (None before ``on_train_begin`` and on other processes)."""
        return self._run

    # ------------------------------------------------------------------ Trainer events

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        run = self._run
        if run is None or run.finished:
            run, self._owned = open_run(self._given, self._init_kwargs)
            self._run = run
        config: dict[str, Any] = {}
        targs: Any = args  # TrainingArguments.to_dict is untyped
        try:
            config["training_args"] = targs.to_dict()
        except Exception:  # a user subclass whose to_dict fails must not stop training
            config["training_args"] = repr(args)
        model_config = getattr(model, "config", None)
        if model_config is not None:
            to_dict = getattr(model_config, "to_dict", None)
            config["model_config"] = to_dict() if callable(to_dict) else model_config
        if model is not None:
            config["model_class"] = f"{type(model).__module__}.{type(model).__qualname__}"
        run.log_config(config)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        run = self._live(state)
        if run is None or not logs:
            return
        # the Trainer logs strings now and then (e.g. in eval summaries); keep numbers only
        values = {k: v for k, v in logs.items() if isinstance(v, numbers.Real)}
        if values:
            run.log(values, step=state.global_step)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        run = self._live(state)
        if run is None or not self.log_checkpoints:
            return
        path = os.path.join(str(args.output_dir or ""), f"checkpoint-{state.global_step}")
        if not os.path.isdir(path):
            return
        if self._ckpts is None:
            key = args.metric_for_best_model
            monitor = None if not key else (key if key.startswith("eval_") else f"eval_{key}")
            self._ckpts = run.checkpoints(monitor=monitor, mode="max" if args.greater_is_better else "min")
        metrics: dict[str, float] = {}
        for rec in state.log_history:  # the latest evaluation's values
            metrics.update({k: float(v) for k, v in rec.items()
                            if k.startswith("eval_") and isinstance(v, (int, float))})
        self._ckpts.adopt(path, step=state.global_step, epoch=int(state.epoch) if state.epoch is not None else None,
                          metrics=metrics, metadata={"best_model_checkpoint": state.best_model_checkpoint})
        self._reflect_deletions()

    def _reflect_deletions(self) -> None:
        """The Trainer's own rotation (``save_total_limit``) deleted checkpoint folders: record them as pruned."""
        if self._ckpts is None:
            return
        for e in self._ckpts.list():
            if not os.path.exists(e.path):
                self._ckpts.forget(e.path, "deleted by the Trainer (save_total_limit)")

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        run = self._live(state)
        self._reflect_deletions()
        if run is not None and self._owned:
            run.finish()  # completed, or diverged when a NaN/inf was logged

    # ------------------------------------------------------------------ helpers

    def _live(self, state: TrainerState) -> Run | None:
        if not state.is_world_process_zero:
            return None
        run = self._run
        return None if run is None or run.finished else run
