"""Pure metric functions on CPU or device tensors.

Every function takes whole arrays (no state), computes in float64 and returns a Python
``float``. Accumulators in :mod:`mtlrec.evaluation.accumulators` collect batches and call
these. Definitions follow scikit-learn, and the unit tests check them against it:

- :func:`auc` is ``roc_auc_score`` (tied scores get their average rank);
- :func:`logloss` is ``log_loss`` computed from logits (binary or multiclass);
- :func:`accuracy` is ``accuracy_score`` on the predicted classes;
- :func:`macro_f1` is ``f1_score(average="macro")`` over the classes present in the labels
  or the predictions;
- :func:`multilabel_f1` is ``f1_score(average="micro" | "macro")`` at probability 0.5;
- :func:`average_precision` is ``average_precision_score``;
- :func:`rmse` and :func:`mae` are ``sqrt(mean_squared_error)`` and ``mean_absolute_error``.

Undefined values (AUC with one class, F1 with no class at all, any metric on zero examples)
are ``nan``, never a silent 0.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

NAN = float("nan")


def _binary_labels(labels: Tensor, name: str = "labels") -> Tensor:
    """``labels`` as a bool tensor; fails unless every value is 0 or 1."""
    if labels.dtype == torch.bool:
        return labels
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"{name} must be 0/1 (or bool) for a binary metric")
    return labels != 0


def _check_same_length(a: Tensor, b: Tensor, what: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{what}: {a.shape[0]} predictions but {b.shape[0]} labels")


def average_ranks(values: Tensor) -> Tensor:
    """1-based ranks of ``values`` ``(N,)`` in ascending order; ties share their mean rank.

    Returns a float64 tensor ``(N,)`` (``scipy.stats.rankdata(method="average")``).
    """
    x = values.reshape(-1)
    if x.numel() == 0:
        return torch.empty(0, dtype=torch.float64, device=x.device)
    sorted_x, order = torch.sort(x)
    _, counts = torch.unique_consecutive(sorted_x, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)  # 1-based rank of each group's last
    starts = ends - counts.to(torch.float64) + 1.0
    group_rank = torch.repeat_interleave((starts + ends) / 2.0, counts)
    ranks = torch.empty_like(group_rank)
    ranks[order] = group_rank
    return ranks


def auc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve of ``scores`` ``(N,)`` for 0/1 ``labels`` ``(N,)``.

    Any monotone score works (logits or probabilities). Ties are handled like
    ``sklearn.metrics.roc_auc_score``: a tied positive/negative pair counts one half (the
    Mann-Whitney statistic with average ranks). Returns ``nan`` when only one class is
    present (the ROC curve is undefined); fails on ``nan`` scores.
    """
    scores = scores.reshape(-1)
    positive = _binary_labels(labels.reshape(-1))
    _check_same_length(scores, positive, "auc")
    if bool(torch.isnan(scores).any()):
        raise ValueError("auc: scores contain nan")
    n_pos = int(positive.sum())
    n_neg = int(positive.numel()) - n_pos
    if n_pos == 0 or n_neg == 0:
        return NAN
    ranks = average_ranks(scores.to(torch.float64))
    rank_sum = float(ranks[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def average_precision(scores: Tensor, labels: Tensor) -> float:
    """Average precision of ``scores`` ``(N,)`` for 0/1 ``labels`` ``(N,)``.

    ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, as
    ``sklearn.metrics.average_precision_score`` (tied scores enter together). ``nan`` when
    there is no positive.
    """
    scores = scores.reshape(-1).to(torch.float64)
    positive = _binary_labels(labels.reshape(-1))
    _check_same_length(scores, positive, "average_precision")
    n_pos = int(positive.sum())
    if n_pos == 0:
        return NAN
    sorted_scores, order = torch.sort(scores, descending=True, stable=True)
    hits = positive[order].to(torch.float64)
    # last index of every group of tied scores: the thresholds of the PR curve
    last = torch.ones_like(sorted_scores, dtype=torch.bool)
    last[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    tps = torch.cumsum(hits, 0)[last]
    seen = (torch.nonzero(last).reshape(-1) + 1).to(torch.float64)
    precision = tps / seen
    recall = tps / n_pos
    recall_step = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((recall_step * precision).sum())


def logloss(logits: Tensor, labels: Tensor) -> float:
    """Mean negative log-likelihood from raw logits.

    Binary: ``logits`` ``(N,)`` with 0/1 ``labels`` ``(N,)``; the stable
    ``binary_cross_entropy_with_logits``. Multiclass: ``logits`` ``(N, C)`` with integer class
    ``labels`` ``(N,)``; the cross-entropy of the softmax. Equals
    ``sklearn.metrics.log_loss`` on ``sigmoid`` / ``softmax`` probabilities (sklearn clips
    probabilities at machine epsilon, so the two differ only for ``|logit| > ~36``).
    ``nan`` for ``N == 0``.
    """
    _check_same_length(logits, labels, "logloss")
    if logits.shape[0] == 0:
        return NAN
    if logits.ndim == 1:
        target = _binary_labels(labels.reshape(-1)).to(torch.float64)
        return float(F.binary_cross_entropy_with_logits(logits.to(torch.float64), target))
    if logits.ndim == 2:
        return float(F.cross_entropy(logits.to(torch.float64), labels.reshape(-1).long()))
    raise ValueError(f"logloss: logits must be (N,) or (N, C), got {tuple(logits.shape)}")


def predicted_classes(logits: Tensor) -> Tensor:
    """Hard predictions from logits: ``(N,)`` binary logits -> bool ``logit > 0`` (probability
    above 0.5); ``(N, C)`` multiclass logits -> int64 ``argmax`` ``(N,)``."""
    if logits.ndim == 1:
        return logits > 0
    if logits.ndim == 2:
        return logits.argmax(dim=1)
    raise ValueError(f"logits must be (N,) or (N, C), got {tuple(logits.shape)}")


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Fraction of correct hard predictions.

    ``logits`` ``(N,)`` are binary logits (predicted positive when ``logit > 0``) with 0/1
    ``labels``; ``logits`` ``(N, C)`` are multiclass logits (``argmax``) with integer
    ``labels`` ``(N,)``. ``nan`` for ``N == 0``.
    """
    _check_same_length(logits, labels, "accuracy")
    if logits.shape[0] == 0:
        return NAN
    predicted = predicted_classes(logits)
    if logits.ndim == 1:
        correct = predicted == _binary_labels(labels.reshape(-1))
    else:
        correct = predicted == labels.reshape(-1).long()
    return float(correct.to(torch.float64).mean())


def confusion_matrix(pred_classes: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """Counts ``(C, C)`` int64: row = true class, column = predicted class."""
    pred = pred_classes.reshape(-1).long()
    true = labels.reshape(-1).long()
    _check_same_length(pred, true, "confusion_matrix")
    if pred.numel() and (
        int(pred.min()) < 0
        or int(true.min()) < 0
        or int(pred.max()) >= n_classes
        or int(true.max()) >= n_classes
    ):
        raise ValueError(f"confusion_matrix: class indices must lie in [0, {n_classes})")
    flat = torch.bincount(true * n_classes + pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def macro_f1_from_confusion(matrix: Tensor) -> float:
    """Unweighted mean F1 over the classes that occur in the labels or the predictions.

    A class absent from both (an all-zero row and column) has an undefined F1 and is left
    out, as ``f1_score(average="macro")`` does with its default ``labels`` (the classes
    present). ``nan`` when no class is present at all.
    """
    m = matrix.to(torch.float64)
    tp = torch.diagonal(m)
    support = m.sum(dim=1)  # true count per class
    predicted = m.sum(dim=0)
    present = (support + predicted) > 0
    if not bool(present.any()):
        return NAN
    f1 = 2 * tp[present] / (support[present] + predicted[present])
    return float(f1.mean())


def macro_f1(pred_classes: Tensor, labels: Tensor, n_classes: int) -> float:
    """Macro F1 of hard class predictions ``(N,)`` against integer labels ``(N,)``.

    See :func:`macro_f1_from_confusion` for which classes are averaged.
    """
    return macro_f1_from_confusion(confusion_matrix(pred_classes, labels, n_classes))


def multilabel_counts(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class true positives, false positives and false negatives ``(C,)`` (float64)
    for multilabel ``logits`` ``(N, C)`` thresholded at probability 0.5 (``logit > 0``)
    against multi-hot ``labels`` ``(N, C)``."""
    if logits.ndim != 2 or logits.shape != labels.shape:
        raise ValueError(
            f"multilabel: logits {tuple(logits.shape)} and labels {tuple(labels.shape)} "
            "must both be (N, C)"
        )
    pred = logits > 0
    true = _binary_labels(labels)
    tp = (pred & true).sum(dim=0).to(torch.float64)
    fp = (pred & ~true).sum(dim=0).to(torch.float64)
    fn = (~pred & true).sum(dim=0).to(torch.float64)
    return tp, fp, fn


def f1_from_counts(tp: Tensor, fp: Tensor, fn: Tensor, average: Literal["micro", "macro"]) -> float:
    """Micro or macro F1 from per-class counts ``(C,)``.

    Micro pools the counts; macro averages the per-class F1 over the classes with at least
    one positive label or prediction (the others have an undefined F1 and are left out,
    like ``f1_score(..., labels=<those classes>, average="macro")``). ``nan`` when there is
    no positive label or prediction anywhere.
    """
    if average == "micro":
        pooled = float(2 * tp.sum() + fp.sum() + fn.sum())
        return NAN if pooled == 0 else float(2 * tp.sum()) / pooled
    if average == "macro":
        denominator = 2 * tp + fp + fn
        present = denominator > 0
        if not bool(present.any()):
            return NAN
        return float((2 * tp[present] / denominator[present]).mean())
    raise ValueError(f"average must be 'micro' or 'macro', got {average!r}")


def multilabel_f1(
    logits: Tensor, labels: Tensor, average: Literal["micro", "macro"] = "micro"
) -> float:
    """F1 of multilabel ``logits`` ``(N, C)`` at probability 0.5 against multi-hot
    ``labels`` ``(N, C)``; see :func:`f1_from_counts` for the averages."""
    return f1_from_counts(*multilabel_counts(logits, labels), average=average)


def _per_class(logits: Tensor, labels: Tensor, metric: str) -> list[float]:
    if logits.ndim != 2 or logits.shape != labels.shape:
        raise ValueError(f"{metric}: logits and labels must both be (N, C)")
    fn = auc if metric == "auc" else average_precision
    return [fn(logits[:, c], labels[:, c]) for c in range(logits.shape[1])]


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else NAN


def multilabel_auc(logits: Tensor, labels: Tensor) -> float:
    """Macro AUC over the classes of ``(N, C)`` that have both positive and negative labels;
    ``nan`` when no class has both."""
    return _nanmean(_per_class(logits, labels, "auc"))


def multilabel_map(logits: Tensor, labels: Tensor) -> float:
    """Mean over classes (with at least one positive) of the per-class
    :func:`average_precision` of ``(N, C)`` scores; ``nan`` when no class has a positive."""
    return _nanmean(_per_class(logits, labels, "average_precision"))


def _regression_pair(prediction: Tensor, target: Tensor, what: str) -> tuple[Tensor, Tensor]:
    pred = prediction.reshape(-1).to(torch.float64)
    true = target.reshape(-1).to(torch.float64)
    _check_same_length(pred, true, what)
    return pred, true


def rmse(prediction: Tensor, target: Tensor) -> float:
    """Root mean squared error of ``prediction`` ``(N,)`` against ``target`` ``(N,)``;
    ``nan`` for ``N == 0``."""
    pred, true = _regression_pair(prediction, target, "rmse")
    if pred.numel() == 0:
        return NAN
    return math.sqrt(float(((pred - true) ** 2).mean()))


def mae(prediction: Tensor, target: Tensor) -> float:
    """Mean absolute error of ``prediction`` ``(N,)`` against ``target`` ``(N,)``;
    ``nan`` for ``N == 0``."""
    pred, true = _regression_pair(prediction, target, "mae")
    if pred.numel() == 0:
        return NAN
    return float((pred - true).abs().mean())
