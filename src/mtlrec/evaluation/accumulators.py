"""Metric accumulators per task kind: ``reset() / update(...) / compute()``.

An accumulator receives the model's raw output for one task and the task's labels and
label mask, batch by batch; masked-out rows are dropped before anything else (their labels
may be padding such as ``-1`` or ``nan``). ``compute()`` returns ``{metric: value}`` with
``"n"``, the number of known labels seen, first. Values come from the pure functions in
:mod:`mtlrec.evaluation.metrics`, so accumulating in several batches equals one call on
the concatenated arrays.

==========  =======================  =========================================
kind        prediction               metrics
==========  =======================  =========================================
binary      logit ``(B,)``           ``auc``, ``logloss``, ``accuracy``
multiclass  logits ``(B, C)``        ``accuracy``, ``macro_f1``, ``logloss``
multilabel  logits ``(B, C)``        ``micro_f1``, ``macro_f1``, ``auc``, ``map``
regression  value ``(B,)``           ``rmse``, ``mae``
==========  =======================  =========================================

``similarity`` tasks (embeddings) have no pointwise metric; evaluate them with
:mod:`mtlrec.evaluation.ranking`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from mtlrec.core.types import Predictions, TaskKind, TaskSpec
from mtlrec.evaluation import metrics as M


class TaskMetrics(ABC):
    """Accumulates one task's predictions and labels; ``compute`` turns them into metrics."""

    kind: ClassVar[TaskKind]
    metric_names: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        self._n = 0
        self.reset()

    @property
    def n(self) -> int:
        """Number of known (unmasked) labels accumulated since the last reset."""
        return self._n

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._n = 0
        self._reset()

    def update(self, prediction: Tensor, label: Tensor, mask: Tensor | None = None) -> None:
        """Add one batch: raw model output, labels and an optional bool mask ``(B,)``
        (True where the label is known; ``None`` means all known)."""
        if prediction.shape[0] != label.shape[0]:
            raise ValueError(
                f"{self.kind} metrics: prediction batch {prediction.shape[0]} != "
                f"label batch {label.shape[0]}"
            )
        prediction = prediction.detach()
        label = label.detach()
        if mask is not None:
            mask = mask.detach().reshape(-1).to(device=prediction.device, dtype=torch.bool)
            if mask.shape[0] != prediction.shape[0]:
                raise ValueError(
                    f"{self.kind} metrics: mask has {mask.shape[0]} rows, batch has "
                    f"{prediction.shape[0]}"
                )
            prediction = prediction[mask]
            label = label[mask.to(label.device)]
        prediction = prediction.cpu()
        label = label.cpu()
        self._n += int(prediction.shape[0])
        self._update(prediction, label)

    def compute(self) -> dict[str, float]:
        """``{"n": known labels, <metric>: value, ...}``; metrics are ``nan`` when n is 0."""
        values = self._compute() if self._n else dict.fromkeys(self.metric_names, M.NAN)
        return {"n": self._n, **values}

    @abstractmethod
    def _reset(self) -> None: ...

    @abstractmethod
    def _update(self, prediction: Tensor, label: Tensor) -> None: ...

    @abstractmethod
    def _compute(self) -> dict[str, float]: ...


def _vector(prediction: Tensor, kind: str) -> Tensor:
    """``(B,)`` or ``(B, 1)`` -> ``(B,)``."""
    if prediction.ndim == 2 and prediction.shape[1] == 1:
        return prediction[:, 0]
    if prediction.ndim != 1:
        raise ValueError(f"{kind} prediction must be (B,), got {tuple(prediction.shape)}")
    return prediction


class BinaryMetrics(TaskMetrics):
    """Binary task: logit ``(B,)`` against 0/1 labels ``(B,)`` -> auc, logloss, accuracy.

    Keeps every logit (exact AUC needs all scores): 4-8 bytes per example.
    """

    kind = "binary"
    metric_names = ("auc", "logloss", "accuracy")

    def _reset(self) -> None:
        self._logits: list[Tensor] = []
        self._labels: list[Tensor] = []

    def _update(self, prediction: Tensor, label: Tensor) -> None:
        self._logits.append(_vector(prediction, self.kind))
        self._labels.append(M._binary_labels(label.reshape(-1)))

    def _compute(self) -> dict[str, float]:
        logits = torch.cat(self._logits)
        labels = torch.cat(self._labels)
        return {
            "auc": M.auc(logits, labels),
            "logloss": M.logloss(logits, labels),
            "accuracy": M.accuracy(logits, labels),
        }


class MulticlassMetrics(TaskMetrics):
    """Multiclass task: logits ``(B, C)`` against class indices ``(B,)`` -> accuracy,
    macro_f1, logloss (cross-entropy).

    Streams a ``(C, C)`` confusion matrix and the summed cross-entropy; ``n_classes`` is
    taken from the first batch when not given.
    """

    kind = "multiclass"
    metric_names = ("accuracy", "macro_f1", "logloss")

    def __init__(self, n_classes: int | None = None) -> None:
        self.n_classes = n_classes
        super().__init__()

    def _reset(self) -> None:
        self._confusion: Tensor | None = None
        self._ce_sum = 0.0

    def _update(self, prediction: Tensor, label: Tensor) -> None:
        if prediction.ndim != 2:
            raise ValueError(f"multiclass prediction must be (B, C), got {tuple(prediction.shape)}")
        n_classes = int(prediction.shape[1])
        if self.n_classes is not None and n_classes != self.n_classes:
            raise ValueError(
                f"multiclass prediction has {n_classes} classes, expected {self.n_classes}"
            )
        target = label.reshape(-1).long()
        confusion = M.confusion_matrix(prediction.argmax(dim=1), target, n_classes)
        if self._confusion is None:
            self._confusion = confusion
        elif self._confusion.shape != confusion.shape:
            raise ValueError("multiclass prediction changed its number of classes between batches")
        else:
            self._confusion += confusion
        if target.numel():
            self._ce_sum += float(
                F.cross_entropy(prediction.to(torch.float64), target, reduction="sum")
            )

    def _compute(self) -> dict[str, float]:
        assert self._confusion is not None  # n > 0
        confusion = self._confusion
        return {
            "accuracy": float(torch.diagonal(confusion).sum()) / self._n,
            "macro_f1": M.macro_f1_from_confusion(confusion),
            "logloss": self._ce_sum / self._n,
        }


class MultilabelMetrics(TaskMetrics):
    """Multilabel task: logits ``(B, C)`` against multi-hot labels ``(B, C)`` -> micro_f1 and
    macro_f1 at probability 0.5, auc (macro over classes with both labels present) and map
    (mean average precision over classes with a positive). Keeps every logit."""

    kind = "multilabel"
    metric_names = ("micro_f1", "macro_f1", "auc", "map")

    def _reset(self) -> None:
        self._logits: list[Tensor] = []
        self._labels: list[Tensor] = []

    def _update(self, prediction: Tensor, label: Tensor) -> None:
        if prediction.ndim != 2 or prediction.shape != label.shape:
            raise ValueError(
                f"multilabel prediction {tuple(prediction.shape)} and label "
                f"{tuple(label.shape)} must both be (B, C)"
            )
        self._logits.append(prediction)
        self._labels.append(M._binary_labels(label))

    def _compute(self) -> dict[str, float]:
        logits = torch.cat(self._logits)
        labels = torch.cat(self._labels)
        counts = M.multilabel_counts(logits, labels)
        return {
            "micro_f1": M.f1_from_counts(*counts, average="micro"),
            "macro_f1": M.f1_from_counts(*counts, average="macro"),
            "auc": M.multilabel_auc(logits, labels),
            "map": M.multilabel_map(logits, labels),
        }


class RegressionMetrics(TaskMetrics):
    """Regression task: value ``(B,)`` against targets ``(B,)`` -> rmse, mae (streamed)."""

    kind = "regression"
    metric_names = ("rmse", "mae")

    def _reset(self) -> None:
        self._squared = 0.0
        self._absolute = 0.0

    def _update(self, prediction: Tensor, label: Tensor) -> None:
        pred = _vector(prediction, self.kind).to(torch.float64)
        error = pred - label.reshape(-1).to(torch.float64)
        if error.shape != pred.shape:
            raise ValueError("regression label must be (B,)")
        self._squared += float((error**2).sum())
        self._absolute += float(error.abs().sum())

    def _compute(self) -> dict[str, float]:
        return {"rmse": (self._squared / self._n) ** 0.5, "mae": self._absolute / self._n}


class SimilarityMetrics(TaskMetrics):
    """Similarity task: embedding ``(B, D)`` against target embeddings ``(B, D)``.

    ``mean_cosine`` between each prediction and its own target, and ``target_mrr`` /
    ``target_hit@10``: the rank of the own target among all targets seen (ties count
    against it), computed in chunks of 1024 rows.
    """

    kind = "similarity"
    metric_names = ("mean_cosine", "target_mrr", "target_hit@10")

    def _reset(self) -> None:
        self._predictions: list[Tensor] = []
        self._targets: list[Tensor] = []

    def _update(self, prediction: Tensor, label: Tensor) -> None:
        if prediction.dim() != 2 or prediction.shape != label.shape:
            raise ValueError("similarity predictions and labels must both be (B, D)")
        self._predictions.append(torch.nn.functional.normalize(prediction.double(), dim=-1))
        self._targets.append(torch.nn.functional.normalize(label.double(), dim=-1))

    def _compute(self) -> dict[str, float]:
        predictions, targets = torch.cat(self._predictions), torch.cat(self._targets)
        own = (predictions * targets).sum(-1)  # (N,)
        ranks = []
        for start in range(0, len(predictions), 1024):
            scores = predictions[start : start + 1024] @ targets.T  # (b, N)
            rows = torch.arange(len(scores))
            mine = scores[rows, start + rows]  # the own score from the same product
            ranks.append((scores >= mine[:, None]).sum(-1))
        rank = torch.cat(ranks).double()
        return {
            "mean_cosine": float(own.mean()),
            "target_mrr": float((1 / rank).mean()),
            "target_hit@10": float((rank <= 10).double().mean()),
        }


TASK_METRICS: dict[str, type[TaskMetrics]] = {
    "binary": BinaryMetrics,
    "multiclass": MulticlassMetrics,
    "multilabel": MultilabelMetrics,
    "regression": RegressionMetrics,
    "similarity": SimilarityMetrics,
}
"""Accumulator class per task kind."""


def make_task_metrics(kind: TaskKind, n_outputs: int | None = None) -> TaskMetrics:
    """A fresh accumulator for ``kind``; ``n_outputs`` fixes the class count of multiclass
    tasks (checked against every batch). Fails for kinds without pointwise metrics."""
    if kind not in TASK_METRICS:
        known = ", ".join(sorted(TASK_METRICS))
        raise ValueError(
            f"no pointwise metrics for {kind!r} tasks (known kinds: {known}); "
            "evaluate similarity tasks with mtlrec.evaluation.ranking"
        )
    if kind == "multiclass":
        return MulticlassMetrics(n_classes=n_outputs)
    return TASK_METRICS[kind]()


class MultiTaskMetrics:
    """One accumulator per task of a multi-task model.

    Tasks whose kind has no pointwise metric (``similarity``) are not tracked; their names
    are in :attr:`untracked`. ``compute()`` returns ``{task: {"n": known labels, metric:
    value}}`` for every tracked task (metrics ``nan`` for a task never labelled).
    """

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        self.tasks = tasks
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        self.accumulators: dict[str, TaskMetrics] = {
            t.name: make_task_metrics(t.kind, t.n_outputs if t.kind == "multiclass" else None)
            for t in tasks
            if t.kind in TASK_METRICS
        }
        self.untracked: tuple[str, ...] = tuple(n for n in names if n not in self.accumulators)

    def reset(self) -> None:
        """Reset every task."""
        for acc in self.accumulators.values():
            acc.reset()

    def update(
        self,
        predictions: Predictions,
        labels: Mapping[str, Tensor],
        masks: Mapping[str, Tensor] | None = None,
    ) -> None:
        """Add one batch. Only tracked tasks present in ``labels`` are updated (a batch
        carries labels for some tasks only); a missing mask means every label is known."""
        masks = masks or {}
        for name, label in labels.items():
            acc = self.accumulators.get(name)
            if acc is None:
                if name in self.untracked:
                    continue
                known = sorted(self.accumulators)
                raise KeyError(f"labels for unknown task {name!r}; tasks: {known}")
            if name not in predictions:
                raise KeyError(f"labels for task {name!r} but no prediction for it")
            acc.update(predictions[name], label, masks.get(name))

    def compute(self) -> dict[str, dict[str, float]]:
        """``{task: {"n": ..., metric: value}}`` in task order."""
        return {name: acc.compute() for name, acc in self.accumulators.items()}
