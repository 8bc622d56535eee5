"""Per-user normalisation of one source's scores, and per-user ranks.

Sources score on different scales (a dot product, a probability, a kNN sum), so most
fusions first map each source's row of scores onto a common scale. Statistics are taken
per user row over the entries that are *valid*: finite (the source scores the item) and
not excluded. Every other entry (``-inf``, or excluded) gets the row's smallest
normalised value, so the output is always finite; a row whose valid entries are all equal
(or that has none) becomes all zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mtlrec.fusion.base import FusionInput

NORMALIZATIONS: tuple[str, ...] = ("none", "minmax", "zscore", "rank")
"""Known normalisation methods, for :func:`normalize_scores`."""


def valid_mask(scores: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    """``(b, n)`` bool: finite and not excluded."""
    valid: np.ndarray = np.isfinite(scores)
    if exclude is not None:
        valid &= ~exclude
    return valid


def ordinal_ranks(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """1-based rank ``(b, n)`` int64 of each valid item in its row by decreasing score,
    ties broken by the lower item index first; invalid items get rank 0."""
    # valid items first (descending score, stable), invalid ones after them
    key = np.where(valid, -np.asarray(scores, dtype=np.float64), np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    ranks = np.empty(order.shape, dtype=np.int64)
    positions = np.broadcast_to(np.arange(1, order.shape[1] + 1, dtype=np.int64), order.shape)
    np.put_along_axis(ranks, order, positions, axis=1)
    ranks[~valid] = 0
    return ranks


def average_ranks(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """1-based rank ``(b, n)`` float64 of each valid item by decreasing score, tied items
    sharing the mean of their ranks; invalid items get 0."""
    b, n = valid.shape
    key = np.where(valid, -np.asarray(scores, dtype=np.float64), np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    sorted_key = np.take_along_axis(key, order, axis=1)
    starts = np.ones((b, n), dtype=bool)
    starts[:, 1:] = sorted_key[:, 1:] != sorted_key[:, :-1]
    group = np.cumsum(starts, axis=1) - 1 + (np.arange(b) * n)[:, None]  # global tie group
    positions = np.broadcast_to(np.arange(1, n + 1, dtype=np.float64), (b, n))
    flat = group.reshape(-1)
    mean = np.bincount(flat, weights=positions.reshape(-1), minlength=b * n) / np.maximum(
        np.bincount(flat, minlength=b * n), 1
    )
    ranks = np.empty((b, n), dtype=np.float64)
    np.put_along_axis(ranks, order, mean[group], axis=1)
    ranks[~valid] = 0.0
    return ranks


def normalize_scores(
    scores: np.ndarray, method: str, exclude: np.ndarray | None = None
) -> np.ndarray:
    """One source's scores ``(b, n)`` normalised per user row, as float32 ``(b, n)``.

    - ``"none"``: the raw scores;
    - ``"minmax"``: ``(x - min) / (max - min)``, in ``[0, 1]``;
    - ``"zscore"``: ``(x - mean) / std``;
    - ``"rank"``: ``1 - (rank - 1) / n_valid`` with 1-based ranks by decreasing score
      (ties share their mean rank), so the best item gets 1.0.

    Statistics use the valid entries of the row (finite, not in ``exclude`` ``(b, n)``
    bool); the others get the row's smallest normalised value (``minmax``: 0). Rows whose
    valid entries are constant, or that have none, become all zeros. Never nan or inf.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {method!r}; known: {', '.join(NORMALIZATIONS)}")
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"scores must be (b, n), got {x.shape}")
    if exclude is not None and exclude.shape != x.shape:
        raise ValueError(f"exclude has shape {exclude.shape}, scores have {x.shape}")
    valid = valid_mask(x, exclude)
    count = valid.sum(axis=1)
    has = count > 0
    lo = np.where(has, np.where(valid, x, np.inf).min(axis=1), 0.0)
    hi = np.where(has, np.where(valid, x, -np.inf).max(axis=1), 0.0)
    constant = hi <= lo  # also rows without valid entries
    xv = np.where(valid, x, 0.0)
    if method == "none":
        out = xv
    elif method == "minmax":
        span = np.where(constant, 1.0, hi - lo)
        out = (xv - lo[:, None]) / span[:, None]
    elif method == "zscore":
        n_valid = np.maximum(count, 1)
        mean = xv.sum(axis=1) / n_valid
        var = (np.where(valid, x - mean[:, None], 0.0) ** 2).sum(axis=1) / n_valid
        std = np.sqrt(var)
        std = np.where(constant | (std <= 0), 1.0, std)
        out = (xv - mean[:, None]) / std[:, None]
    else:  # rank
        ranks = average_ranks(x, valid)
        out = 1.0 - (ranks - 1.0) / np.maximum(count, 1)[:, None]
    out = np.where(constant[:, None], 0.0, out)
    floor = np.where(has, np.where(valid, out, np.inf).min(axis=1), 0.0)
    out = np.where(valid, out, floor[:, None])
    return out.astype(np.float32)


def normalized_sources(
    inputs: FusionInput, sources: Sequence[str], method: str
) -> list[np.ndarray]:
    """:func:`normalize_scores` of each source in ``sources`` order: ``(b, n_items)`` each."""
    return [normalize_scores(inputs.scores[m], method, inputs.exclude) for m in sources]
