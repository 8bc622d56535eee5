"""Callbacks attached to the Trainer's events: early stopping, checkpoints, logs, progress.

Events, in order: ``on_resume`` (only when a checkpoint was loaded: the state is the
checkpoint's), ``on_fit_start``, then per epoch ``on_epoch_start``, ``on_step_end`` after
every optimizer step, ``on_epoch_end`` (with validation metrics), and ``on_fit_end``.

The logs are cut back to the checkpoint on resume: the steps between the last checkpoint
and a kill are trained again, and each must be logged once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mtlrec.core.atomic import reporting_write_errors, write_text_atomically

if TYPE_CHECKING:
    from mtlrec.training.trainer import Trainer, TrainState


class Callback:
    """Base class; override the events you need. Callbacks may set ``state.should_stop``."""

    def on_resume(self, trainer: Trainer, state: TrainState) -> None:
        """A checkpoint was loaded: training goes on from ``state.epoch`` / ``state.step``."""

    def on_fit_start(self, trainer: Trainer, state: TrainState) -> None: ...

    def on_epoch_start(self, trainer: Trainer, state: TrainState) -> None: ...

    def on_step_end(self, trainer: Trainer, state: TrainState, logs: dict[str, float]) -> None: ...

    def on_epoch_end(
        self, trainer: Trainer, state: TrainState, metrics: dict[str, float]
    ) -> None: ...

    def on_fit_end(self, trainer: Trainer, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EarlyStopping(Callback):
    """Stops when ``monitor`` (a validation metric) has not improved for ``patience`` epochs.

    Tracks the best value and epoch in ``state.best``; the Checkpoint callback saves the
    best weights, which the trainer restores at the end when ``restore_best`` is set there.
    """

    def __init__(
        self,
        monitor: str,
        mode: Literal["min", "max"] = "max",
        patience: int = 3,
        min_delta: float = 0.0,
    ) -> None:
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        self.wait = 0

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: dict[str, float]) -> None:
        if self.monitor not in metrics:
            known = ", ".join(sorted(metrics))
            raise KeyError(f"early stopping monitors {self.monitor!r}; metrics: {known}")
        if state.improved:
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            state.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])


class JsonlLogger(Callback):
    """Appends one JSON line per step (losses, task weights, lr) and per epoch (metrics).

    A line is written whole or not at all (a full disk leaves no torn line: a
    :class:`~mtlrec.core.atomic.WriteError` names the file). On resume the log is cut back
    to the checkpoint (:func:`cut_train_log`)."""

    def __init__(self, path: Path, every: int = 1) -> None:
        self.path, self.every = Path(path), every

    def _write(self, record: dict[str, Any]) -> None:
        data = memoryview((json.dumps(record) + "\n").encode("utf-8"))
        with reporting_write_errors(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab", buffering=0) as handle:
                size = os.fstat(handle.fileno()).st_size
                try:
                    while data:
                        data = data[handle.write(data) or 0 :]
                except BaseException:
                    with contextlib.suppress(OSError):  # not a regular file (a pipe, /dev/full)
                        os.ftruncate(handle.fileno(), size)
                    raise

    def on_resume(self, trainer: Trainer, state: TrainState) -> None:
        if self.path.is_file():
            cut_train_log(self.path, state.step, state.epoch)

    def on_step_end(self, trainer: Trainer, state: TrainState, logs: dict[str, float]) -> None:
        if state.step % self.every == 0:
            self._write({"event": "step", "epoch": state.epoch, "step": state.step, **logs})

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: dict[str, float]) -> None:
        self._write({"event": "epoch", "epoch": state.epoch, "step": state.step, **metrics})


def cut_train_log(path: Path, step: int, epoch: int) -> int:
    """Cut a :class:`JsonlLogger` log back to a checkpoint taken after ``step`` optimizer
    steps and ``epoch`` finished epochs: keep the records up to ``step`` except those of
    epochs from ``epoch`` on, and drop lines that are not JSON objects (one torn by a kill).
    The file is replaced atomically; returns how many lines were removed."""
    kept: list[str] = []
    removed = 0
    for line in path.read_text("utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        keep = (
            isinstance(record, dict)
            and isinstance(record.get("step", 0), int)
            and record.get("step", 0) <= step
            and not (record.get("event") == "epoch" and record.get("epoch", 0) >= epoch)
        )
        if keep:
            kept.append(line + "\n")
        elif line.strip():
            removed += 1
    if removed:
        write_text_atomically(path, "".join(kept))
    return removed


class TensorBoardLogger(Callback):
    """Writes step logs and epoch metrics as TensorBoard scalars (needs ``tensorboard``).

    On resume the new event file starts with a purge at the step after the checkpoint's,
    so TensorBoard drops the events the killed session wrote after the checkpoint (steps
    trained again now; epoch metrics are logged at the epoch number, which is below). A
    full disk or a read-only folder is a :class:`~mtlrec.core.atomic.WriteError` naming
    ``log_dir``."""

    def __init__(self, log_dir: Path, every: int = 1) -> None:
        self.log_dir, self.every = Path(log_dir), every
        self.writer: Any = None
        self.purge_step: int | None = None

    def on_resume(self, trainer: Trainer, state: TrainState) -> None:
        self.purge_step = state.step + 1  # the first step trained again

    def on_fit_start(self, trainer: Trainer, state: TrainState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        with reporting_write_errors(self.log_dir, ours=True):
            self.writer = SummaryWriter(str(self.log_dir), purge_step=self.purge_step)

    def on_step_end(self, trainer: Trainer, state: TrainState, logs: dict[str, float]) -> None:
        if self.writer is not None and state.step % self.every == 0:
            with reporting_write_errors(self.log_dir):
                for key, value in logs.items():
                    self.writer.add_scalar(key, value, state.step)

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: dict[str, float]) -> None:
        if self.writer is not None:
            with reporting_write_errors(self.log_dir):
                for key, value in metrics.items():
                    if isinstance(value, float) and math.isfinite(value):
                        self.writer.add_scalar(key, value, state.epoch)
                self.writer.flush()

    def on_fit_end(self, trainer: Trainer, state: TrainState) -> None:
        if self.writer is not None:
            with reporting_write_errors(self.log_dir):
                self.writer.close()


def epoch_line(trainer: Trainer, state: TrainState, metrics: dict[str, float]) -> str:
    """One line per finished epoch: the monitored validation metric, the best so far and
    its epoch (1-based, as the progress bar counts), the epoch's training time."""
    parts = [f"epoch {state.epoch + 1}/{trainer.max_epochs}"]
    monitor = trainer.settings.monitor
    if monitor is not None and monitor in metrics:
        parts.append(f"{monitor} {metrics[monitor]:.4f}")
        if state.best is not None and state.best_epoch is not None:
            parts.append(f"best {state.best:.4f} at epoch {state.best_epoch + 1}")
    if "train/epoch_s" in metrics:
        parts.append(f"{metrics['train/epoch_s']:.0f}s")
    return ", ".join(parts)


class ProgressBar(Callback):
    """A rich progress bar per epoch with the running loss, then a line per epoch (see
    :func:`epoch_line`) on ``console``."""

    def __init__(self, console: Console | None = None) -> None:
        self.progress: Progress | None = None
        self.task: Any = None
        self.console = console or Console()

    def on_epoch_start(self, trainer: Trainer, state: TrainState) -> None:
        self.progress = Progress(
            TextColumn(f"epoch {state.epoch + 1}/{trainer.max_epochs}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.steps_per_epoch, loss=float("nan"))

    def on_step_end(self, trainer: Trainer, state: TrainState, logs: dict[str, float]) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, loss=logs.get("loss", float("nan")))

    def on_epoch_end(self, trainer: Trainer, state: TrainState, metrics: dict[str, float]) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        self.console.print(epoch_line(trainer, state, metrics), highlight=False)
