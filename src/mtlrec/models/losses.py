"""Per-task losses, masked where a label is unknown. Losses live outside the model."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from mtlrec.core.registry import Registry
from mtlrec.core.types import TaskSpec

LossFn = Callable[[Tensor, Tensor, TaskSpec], Tensor]
"""``(prediction, label, spec) -> scalar`` on the known rows only."""

LOSSES: Registry[LossFn] = Registry("loss")

DEFAULT_LOSS: dict[str, str] = {
    "binary": "bce",
    "multilabel": "bce",
    "multiclass": "ce",
    "regression": "mse",
    "similarity": "cosine",
}


@LOSSES.register("bce")
def bce(prediction: Tensor, label: Tensor, spec: TaskSpec) -> Tensor:
    """Binary cross-entropy on logits: ``(N,)`` or multi-hot ``(N, C)``."""
    return F.binary_cross_entropy_with_logits(prediction, label.to(prediction.dtype))


@LOSSES.register("ce")
def cross_entropy(prediction: Tensor, label: Tensor, spec: TaskSpec) -> Tensor:
    """Cross-entropy on logits ``(N, C)`` and class indices ``(N,)``, or class
    probabilities ``(N, C)`` (float: a soft target); optional class weights."""
    weight = None
    if spec.class_weights is not None:
        weight = torch.tensor(spec.class_weights, dtype=prediction.dtype, device=prediction.device)
    if label.dim() == 2 and label.is_floating_point():
        return F.cross_entropy(prediction, label.to(prediction.dtype), weight=weight)
    return F.cross_entropy(prediction, label.long(), weight=weight)


@LOSSES.register("mse")
def mse(prediction: Tensor, label: Tensor, spec: TaskSpec) -> Tensor:
    """Mean squared error ``(N,)``."""
    return F.mse_loss(prediction, label.to(prediction.dtype))


@LOSSES.register("huber")
def huber(prediction: Tensor, label: Tensor, spec: TaskSpec) -> Tensor:
    """Huber (smooth L1, delta 1) ``(N,)``."""
    return F.huber_loss(prediction, label.to(prediction.dtype), delta=1.0)


@LOSSES.register("cosine")
def cosine(prediction: Tensor, label: Tensor, spec: TaskSpec) -> Tensor:
    """``1 - cos(prediction, label)`` for embeddings ``(N, D)``."""
    return (1.0 - F.cosine_similarity(prediction, label.to(prediction.dtype), dim=-1)).mean()


@LOSSES.register("infonce")
def info_nce(
    prediction: Tensor, label: Tensor, spec: TaskSpec, temperature: float = 0.05
) -> Tensor:
    """In-batch InfoNCE: row ``i`` of ``prediction (N, D)`` must pick row ``i`` of ``label``."""
    left = F.normalize(prediction, dim=-1)
    right = F.normalize(label.to(prediction.dtype), dim=-1)
    logits = left @ right.T / temperature  # (N, N)
    return F.cross_entropy(logits, torch.arange(len(left), device=left.device))


def loss_name(spec: TaskSpec) -> str:
    """The loss of ``spec``: its own choice, else the default for its kind."""
    return spec.loss or DEFAULT_LOSS[spec.kind]


def masked_task_loss(
    spec: TaskSpec, prediction: Tensor, label: Tensor, mask: Tensor
) -> Tensor | None:
    """Loss of one task over the rows where ``mask`` is True; ``None`` if there are none."""
    if not bool(mask.any()):
        return None
    return LOSSES.get(loss_name(spec))(prediction[mask], label[mask], spec)
