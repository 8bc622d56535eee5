"""Typed contracts shared by models, losses, weighting, training and evaluation.

Labels and predictions are always dicts keyed by task name, never column positions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import numpy as np
import torch
from torch import Tensor

TaskKind = Literal["binary", "multiclass", "multilabel", "regression", "similarity"]
Predictions = dict[str, Tensor]
"""Model outputs by task: logits ``(B,)`` for binary/regression, ``(B, C)`` for
multiclass/multilabel, embeddings ``(B, D)`` for similarity tasks."""

ScoreFn: TypeAlias = Callable[[Tensor], Tensor]
"""A ranking score function: user rows ``(b,)`` int64 -> scores of every item ``(b, N_items)``
(higher ranks first). Models, baselines and fusions are all ranked through one."""

HeadScorer: TypeAlias = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]
"""``(users (P,), items (P,)) -> {task: (P,) float32}``: a multi-task model's head values
for parallel (user row, item row) pairs."""


@dataclass(frozen=True)
class TaskSpec:
    """One task of a multi-task model.

    ``n_outputs`` is 1 for binary and regression, the number of classes for multiclass and
    multilabel, and the embedding size for similarity tasks. ``loss`` names an entry of
    :data:`mtlrec.models.losses.LOSSES`; ``weight`` is the static lambda of this task.
    """

    name: str
    kind: TaskKind
    n_outputs: int = 1
    loss: str | None = None
    weight: float = 1.0
    class_weights: tuple[float, ...] | None = None
    level: str = "interaction"


@dataclass(frozen=True)
class Batch:
    """A mini-batch: model inputs, labels and label masks, all keyed by name.

    ``features`` holds model inputs such as ``user_idx`` ``(B,)`` int64, ``item_idx``
    ``(B,)`` int64, ``cat.<table>.<column>`` ``(B,)`` int64, ``num.<table>.<column>``
    ``(B,)`` float32, ``item_text_emb`` ``(B, D)`` float32, or token ids ``(B, L)``.
    ``labels[task]`` is ``(B,)`` (binary: float 0/1, multiclass: int64 class, regression:
    float) or ``(B, C)`` (multilabel multi-hot); ``masks[task]`` is ``(B,)`` bool, True where
    the label is known. Tasks without labels in this batch are absent from both dicts.
    """

    features: Mapping[str, Tensor]
    labels: Mapping[str, Tensor] = field(default_factory=dict)
    masks: Mapping[str, Tensor] = field(default_factory=dict)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor moved to ``device``."""

        def move(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
            return {k: v.to(device, non_blocking=non_blocking) for k, v in tensors.items()}

        return Batch(move(self.features), move(self.labels), move(self.masks))

    @property
    def size(self) -> int:
        """Number of examples ``B``."""
        first = next(iter(self.features.values()))
        return int(first.shape[0])
