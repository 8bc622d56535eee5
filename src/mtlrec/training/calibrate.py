"""Decision offsets for a multiclass head, chosen on validation macro-F1.

A class-weighted classifier trained by cross-entropy decides by ``argmax`` of its logits;
when the measure is macro-F1 over imbalanced classes (review sentiment: most reviews are
positive, few are neutral) the best decision rule is rarely the plain ``argmax``. This
module searches per-class additive offsets ``b`` (``(C,)``, class 0 fixed at 0) so that
``argmax(logits + b)`` maximises macro-F1 on the validation split, by coordinate ascent
over a grid. The offsets are then added to the head's output bias, so every later
prediction (test, export, serving) uses the same rule with no extra step.

::

    calibration = macro_f1_offsets(valid_logits, valid_labels)  # (N, C), (N,)
    add_offsets(head.output_bias(), calibration.offsets)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class Calibration:
    """The offsets (``(C,)``) added to a head's logits and its validation macro-F1
    before and after them."""

    offsets: list[float]
    valid_macro_f1_before: float
    valid_macro_f1_after: float


def macro_f1(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over ``n_classes`` (a class absent from both labels and predictions
    scores 0, as in scikit-learn with ``labels=range(n_classes)``)."""
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    tp = np.diag(confusion).astype(np.float64)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(f1.mean())


def macro_f1_offsets(
    logits: Tensor,
    labels: Tensor,
    grid: np.ndarray | None = None,
    rounds: int = 3,
) -> Calibration:
    """Offsets for ``logits`` ``(N, C)`` and integer ``labels`` ``(N,)`` that maximise
    macro-F1 of ``argmax(logits + offsets)``: coordinate ascent over classes ``1..C-1``
    (class 0 is the reference), each over ``grid`` (default ``-4..4`` step ``0.05``),
    ``rounds`` passes. Ties keep the offset nearest 0, so with no gain the offsets stay 0.
    """
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"logits (N, C) and labels (N,) expected; got {logits.shape}, {labels.shape}"
        )
    if logits.shape[0] == 0:
        raise ValueError("no validation examples to calibrate on")
    values = logits.detach().float().cpu().numpy()
    target = labels.detach().cpu().numpy().astype(np.int64)
    n_classes = values.shape[1]
    steps = np.round(np.arange(-4.0, 4.0001, 0.05), 4) if grid is None else grid
    steps = steps[np.argsort(np.abs(steps), kind="stable")]  # nearest 0 first wins ties
    offsets = np.zeros(n_classes)
    before = macro_f1(target, values.argmax(axis=1), n_classes)
    best = before
    for _ in range(rounds):
        changed = False
        for c in range(1, n_classes):
            for step in steps:
                trial = offsets.copy()
                trial[c] = step
                score = macro_f1(target, (values + trial).argmax(axis=1), n_classes)
                if score > best + 1e-12:
                    best, offsets, changed = score, trial, True
        if not changed:
            break
    return Calibration([float(o) for o in offsets], before, best)


@torch.no_grad()
def add_offsets(bias: Tensor, offsets: list[float]) -> None:
    """Add ``offsets`` ``(C,)`` to an output layer's ``bias`` ``(C,)`` in place."""
    if bias.shape != (len(offsets),):
        raise ValueError(f"bias of shape {tuple(bias.shape)} for {len(offsets)} offsets")
    bias.add_(torch.tensor(offsets, dtype=bias.dtype, device=bias.device))
