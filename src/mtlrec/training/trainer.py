"""One Trainer for every model: joint, staged and single-task training with callbacks.

The loop only does what every run needs: forward, masked per-task losses, the weighting
strategy's backward (loss- or gradient-level), clipping, accumulation, mixed precision,
the optimizer and schedule step, validation at each epoch end, checkpoints with exact
resume. Early stopping, logging and progress are callbacks.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from mtlrec.config.experiment import TrainingConfig
from mtlrec.core.atomic import atomic_file
from mtlrec.core.types import Batch, TaskSpec
from mtlrec.models.losses import masked_task_loss
from mtlrec.models.multitask import TaskModel
from mtlrec.training.averaging import WeightAverage
from mtlrec.training.callbacks import Callback
from mtlrec.training.optim import OptimizerName, ScheduleName, build_optimizer, build_scheduler
from mtlrec.training.seeding import (
    deterministic_kernels,
    rng_state,
    seed_everything,
    set_rng_state,
)
from mtlrec.weighting import Weighting, WeightingContext, weighted_backward

Precision = Literal["fp32", "bf16", "fp16"]
Validate = Callable[[TaskModel], dict[str, float]]
"""Returns flat validation metrics, e.g. ``{"valid/like/auc": 0.78}``."""


class BatchSource(Protocol):
    """Training batches per epoch (:class:`~mtlrec.training.loader.ExampleLoader`,
    :class:`~mtlrec.training.sequences.SequenceLoader`); ``len`` is batches per epoch."""

    def __len__(self) -> int: ...

    def batches(self, epoch: int) -> Iterator[Batch]: ...


@dataclass(frozen=True)
class Stage:
    """A training stage: train only ``tasks`` (None = all) for ``epochs`` epochs."""

    epochs: int
    tasks: tuple[str, ...] | None = None


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    best: float | None = None
    best_epoch: int | None = None
    improved: bool = False
    should_stop: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class TrainerSettings:
    """How the :class:`Trainer` optimises: one value object instead of twenty arguments.

    ``stages`` (empty: one stage of ``max_epochs`` over every task) decide which tasks train
    in which epoch; with stages, the epochs run are their sum. ``monitor``/``mode`` name the
    validation metric that decides the best epoch (early stopping and best-weights restore).
    ``ema``: the decay of an exponential moving average of the weights
    (:class:`~mtlrec.training.averaging.WeightAverage`); validation, the best epoch's
    weights and the final weights are then the average's (bias-corrected with
    ``ema_debias``).
    Build it from a run's config with :meth:`from_config`; change one field with
    :func:`dataclasses.replace`.
    """

    optimizer: OptimizerName = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: ScheduleName = "cosine"
    warmup_steps: int = 0
    max_epochs: int = 10
    stages: tuple[Stage, ...] = ()
    grad_clip: float | None = None
    accumulate: int = 1
    precision: Precision = "fp32"
    device: str = "cpu"
    seed: int = 0
    deterministic: bool = True
    monitor: str | None = None
    mode: Literal["min", "max"] = "max"
    restore_best: bool = True
    ema: float | None = None
    ema_debias: bool = False

    @classmethod
    def from_config(cls, training: TrainingConfig, seed: int = 0) -> TrainerSettings:
        """The settings of a run's ``training`` section; the monitored metric and its mode
        come from ``training.early_stopping`` (none: no best epoch is tracked)."""
        stopping = training.early_stopping
        return cls(
            optimizer=training.optimizer,
            lr=training.lr,
            weight_decay=training.weight_decay,
            momentum=training.momentum,
            schedule=training.schedule,
            warmup_steps=training.warmup_steps,
            max_epochs=training.epochs,
            stages=tuple(
                # every stage has its epochs once validated (an open last stage is filled)
                Stage(s.epochs or training.epochs, tuple(s.tasks) if s.tasks else None)
                for s in training.stages
            ),
            grad_clip=training.grad_clip,
            accumulate=training.accumulate,
            precision=training.precision,
            device=training.device,
            seed=seed,
            deterministic=training.deterministic,
            ema=training.ema,
            ema_debias=training.ema_debias,
            monitor=stopping.monitor if stopping is not None else None,
            mode=stopping.mode if stopping is not None else "max",
        )


class Trainer:
    """Trains a :class:`~mtlrec.models.multitask.TaskModel` with a weighting strategy, as
    ``settings`` say.

    ``checkpoint_dir`` receives ``last.pt`` (model, optimizer, scheduler, weighting,
    callbacks, RNG) after every epoch and ``best.pt`` (weights) when the monitored metric
    (``settings.monitor``) improves. ``stages`` and ``max_epochs`` are read from the
    settings once; callbacks may read them.
    """

    def __init__(
        self,
        model: TaskModel,
        specs: Mapping[str, TaskSpec],
        weighting: Weighting,
        settings: TrainerSettings | None = None,
        *,
        checkpoint_dir: Path | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model, self.specs, self.weighting = model, dict(specs), weighting
        self.settings = settings if settings is not None else TrainerSettings()
        self.stages = self.settings.stages or (Stage(self.settings.max_epochs),)
        self.max_epochs = sum(s.epochs for s in self.stages)
        self.device = torch.device(self.settings.device)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.callbacks = list(callbacks)
        if self.settings.precision == "fp16" and self.device.type != "cuda":
            raise ValueError("fp16 mixed precision needs CUDA; use bf16 on the CPU")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.settings.precision == "fp16")
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.state = TrainState()
        self._best_weights: dict[str, Tensor] | None = None
        self.average: WeightAverage | None = None

    # ------------------------------------------------------------------ helpers
    def active_tasks(self, epoch: int) -> tuple[str, ...]:
        """Tasks trained in ``epoch`` (0-based) according to the stages."""
        start = 0
        for stage in self.stages:
            if epoch < start + stage.epochs:
                return stage.tasks or tuple(self.specs)
            start += stage.epochs
        return tuple(self.specs)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.settings.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.settings.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def task_losses(self, batch: Batch, tasks: Sequence[str]) -> dict[str, Tensor]:
        """Masked losses of ``tasks`` on ``batch`` (tasks without known labels are absent)."""
        with self._autocast():
            predictions = self.model(batch.features)
        losses = {}
        for task in tasks:
            if task not in batch.labels:
                continue
            loss = masked_task_loss(
                self.specs[task], predictions[task].float(), batch.labels[task], batch.masks[task]
            )
            if loss is not None:
                losses[task] = loss
        return losses

    def _parameters(self) -> Iterator[torch.nn.Parameter]:
        yield from self.model.parameters()
        yield from self.weighting.parameters()

    def _setup(self, steps_per_epoch: int) -> None:
        self.model.to(self.device)
        self.weighting.to(self.device)
        settings = self.settings
        self.optimizer = build_optimizer(
            self._parameters(),
            settings.optimizer,
            settings.lr,
            settings.weight_decay,
            settings.momentum,
        )
        total = max(1, self.max_epochs * steps_per_epoch)
        self.scheduler = build_scheduler(
            self.optimizer, total, settings.warmup_steps, settings.schedule
        )
        self.state.steps_per_epoch = steps_per_epoch
        if settings.ema is not None:
            self.average = WeightAverage(self.model, settings.ema, settings.ema_debias)

    # ---------------------------------------------------------------- training
    def fit(
        self,
        train: BatchSource,
        validate: Validate | None = None,
        resume_from: Path | None = None,
    ) -> TrainState:
        """Train for the configured epochs (or until a callback stops), then restore the best
        (with deterministic kernels when ``settings.deterministic``)."""
        with deterministic_kernels(self.settings.deterministic):
            return self._fit(train, validate, resume_from)

    def _fit(
        self, train: BatchSource, validate: Validate | None, resume_from: Path | None
    ) -> TrainState:
        seed_everything(self.settings.seed)
        self._setup(-(-len(train) // self.settings.accumulate))
        if resume_from is not None:
            self.load_checkpoint(resume_from)
            for callback in self.callbacks:
                callback.on_resume(self, self.state)
        else:  # a checkpoint before the first epoch: an interrupted run can always resume
            self._save_last()
        for callback in self.callbacks:
            callback.on_fit_start(self, self.state)
        while self.state.epoch < self.max_epochs and not self.state.should_stop:
            start = time.perf_counter()
            examples = self._train_epoch(train)
            seconds = time.perf_counter() - start
            throughput = {
                "train/epoch_s": seconds,
                "train/samples_per_s": examples / seconds if seconds > 0 else 0.0,
            }
            metrics = self._end_epoch(validate, throughput)
            for callback in self.callbacks:
                callback.on_epoch_end(self, self.state, metrics)
            self.state.epoch += 1
            self._save_last()
        for callback in self.callbacks:
            callback.on_fit_end(self, self.state)
        if self.average is not None:  # the final weights are the average (unless a best)
            self.average.copy_to(self.model)
        self._restore_best()
        return self.state

    def _train_epoch(self, train: BatchSource) -> int:
        """One pass over ``train``; returns the number of examples trained on."""
        assert self.optimizer is not None
        self.model.train()
        tasks = self.active_tasks(self.state.epoch)
        shared = list(self.model.shared_parameters())
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for callback in self.callbacks:
            callback.on_epoch_start(self, self.state)
        self.optimizer.zero_grad(set_to_none=True)
        pending = 0
        examples = 0
        for batch in train.batches(self.state.epoch):
            batch = batch.to(self.device)
            examples += batch.size
            losses = self.task_losses(batch, tasks)
            if not losses:
                continue
            scaled = {t: loss / self.settings.accumulate for t, loss in losses.items()}
            context = WeightingContext(
                step=self.state.step, epoch=self.state.epoch, shared_parameters=shared
            )
            weights = weighted_backward(self.weighting, scaled, context, scale=self.scaler.scale)
            pending += 1
            for task, loss in losses.items():
                sums[task] = sums.get(task, 0.0) + float(loss.detach())
                counts[task] = counts.get(task, 0) + 1
            if pending == self.settings.accumulate:
                self._optimizer_step(losses, weights)
                pending = 0
        if pending:
            self._optimizer_step(losses, weights)
        self.weighting.end_epoch({t: sums[t] / counts[t] for t in sums})
        return examples

    def _optimizer_step(self, losses: Mapping[str, Tensor], weights: Mapping[str, float]) -> None:
        assert self.optimizer is not None
        if self.settings.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(list(self._parameters()), self.settings.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.average is not None:
            self.average.update(self.model)
        self.state.step += 1
        logs = {f"loss/{t}": float(v.detach()) for t, v in losses.items()}
        logs["loss"] = sum(logs.values())
        logs.update({f"weight/{t}": w for t, w in weights.items()})
        logs["lr"] = float(self.scheduler.get_last_lr()[0])
        for callback in self.callbacks:
            callback.on_step_end(self, self.state, logs)

    def _end_epoch(
        self, validate: Validate | None, throughput: Mapping[str, float]
    ) -> dict[str, float]:
        """Validate, track the best epoch and append the epoch to the history.

        ``throughput`` (``train/epoch_s``, ``train/samples_per_s``: the training pass only,
        validation not counted) joins the validation metrics in the history and the
        callbacks' epoch metrics. With a weight average, the average is validated (and kept
        as the best weights)."""
        average = self.average
        with average.swapped_in(self.model) if average else contextlib.nullcontext():
            return self._validate_epoch(validate, throughput)

    def _validate_epoch(
        self, validate: Validate | None, throughput: Mapping[str, float]
    ) -> dict[str, float]:
        metrics = validate(self.model) if validate is not None else {}
        metrics = {**metrics, **throughput}
        self.state.improved = False
        monitor = self.settings.monitor
        if monitor is not None:
            if monitor not in metrics:
                raise KeyError(f"monitored metric {monitor!r} not in {sorted(metrics)}")
            value = metrics[monitor]
            best = self.state.best
            maximise = self.settings.mode == "max"
            better = best is None or (value > best if maximise else value < best)
            if math.isfinite(value) and better:
                self.state.best, self.state.best_epoch, self.state.improved = (
                    value,
                    self.state.epoch,
                    True,
                )
                self._save_best()
        self.state.history.append({"epoch": float(self.state.epoch), **metrics})
        return metrics

    # ------------------------------------------------------------- checkpoints
    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to resume exactly at the current epoch boundary."""
        assert self.optimizer is not None
        return {
            "model": self.model.state_dict(),
            "weighting": self.weighting.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "average": self.average.state_dict() if self.average is not None else None,
            "state": self.state.__dict__.copy(),
            "callbacks": {type(c).__name__: c.state_dict() for c in self.callbacks},
            "rng": rng_state(),
        }

    def load_checkpoint(self, path: Path) -> None:
        """Restore a :meth:`checkpoint` written by :meth:`_save_last`."""
        assert self.optimizer is not None
        data = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(data["model"])
        self.weighting.load_state_dict(data["weighting"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.scheduler.load_state_dict(data["scheduler"])
        self.scaler.load_state_dict(data["scaler"])
        if self.average is not None:
            if data.get("average") is None:
                raise ValueError(f"{path}: the checkpoint has no weight average (training.ema)")
            self.average.load_state_dict(data["average"])
        self.state = TrainState(**data["state"])
        self.state.should_stop = False  # resuming means going on from this epoch boundary
        for callback in self.callbacks:
            saved = data["callbacks"].get(type(callback).__name__)
            if saved is not None:
                callback.load_state_dict(saved)
        set_rng_state(data["rng"])

    def _write(self, name: str, payload: dict[str, Any]) -> None:
        """Save ``payload`` as ``checkpoint_dir/name`` atomically: a full disk or a read-only
        folder is a :class:`~mtlrec.core.atomic.WriteError` naming the file, and leaves the
        previous checkpoint as it was and no temporary file."""
        if self.checkpoint_dir is None:
            return
        with atomic_file(self.checkpoint_dir / name) as handle:
            torch.save(payload, handle)

    def _save_last(self) -> None:
        self._write("last.pt", self.checkpoint())

    def _save_best(self) -> None:
        self._write("best.pt", {"model": self.model.state_dict(), "epoch": self.state.epoch})
        self._best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _restore_best(self) -> None:
        best = self._best_weights
        if (
            best is None
            and self.checkpoint_dir is not None
            and (self.checkpoint_dir / "best.pt").exists()
        ):
            best = torch.load(self.checkpoint_dir / "best.pt", map_location=self.device)["model"]
        if self.settings.restore_best and best is not None:
            self.model.load_state_dict(best)
