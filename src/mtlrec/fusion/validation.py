"""Out-of-fold validation scores of a fusion method, for choosing between methods.

A fusion fitted on the validation split and scored on that same split is scored in
sample: the more freely a method fits validation (a coordinate search of weights, a
meta-model), the more its validation score overstates its test score, so comparing
methods by it favours the hungriest one. :func:`out_of_fold_ndcg` cross-fits instead:
the validation users are split into seeded folds, the method is fitted on the other
folds and fuses the held-out fold, and NDCG@k is computed on those held-out scores.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mtlrec.fusion.base import Fusion, FusionInput
from mtlrec.fusion.objective import ndcg_at_k


def cross_fitted_scores(
    make: Callable[[], Fusion],
    inputs: FusionInput,
    relevant: np.ndarray,
    n_folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Fused scores ``(b, n_items)`` where each user's row comes from a fusion (a fresh
    ``make()``) fitted on the users of the other ``n_folds - 1`` folds only."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    n = inputs.n_users
    if n < n_folds:
        raise ValueError(f"{n} users cannot be split into {n_folds} folds")
    folds = np.random.default_rng(seed).permutation(n) % n_folds
    out = np.full((n, inputs.n_items), -np.inf, dtype=np.float32)
    for fold in range(n_folds):
        held = np.flatnonzero(folds == fold)
        rest = np.flatnonzero(folds != fold)
        fusion = make().fit(inputs.subset(rest), relevant[rest])
        out[held] = fusion.fuse(inputs.subset(held))
    return out


def out_of_fold_ndcg(
    make: Callable[[], Fusion],
    inputs: FusionInput,
    relevant: np.ndarray,
    k: int = 10,
    n_folds: int = 5,
    seed: int = 0,
) -> float:
    """Validation NDCG@``k`` of :func:`cross_fitted_scores` (an honest estimate)."""
    scores = cross_fitted_scores(make, inputs, relevant, n_folds, seed)
    return ndcg_at_k(scores, relevant, inputs.exclude, k)
