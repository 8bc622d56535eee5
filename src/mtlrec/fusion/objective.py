"""The validation objective of the fusions: binary NDCG@k over a full score matrix.

Each user's items are ranked by decreasing score among the items that are not excluded;
tied scores are ordered by item index (what ``np.argsort(-scores, kind="stable")`` does),
so the metric is deterministic. nan scores rank like ``-inf``. The ideal DCG of a user
with ``|R|`` relevant (non-excluded) items is that of ``min(|R|, k)`` hits at the top.

Only the position of each relevant item is needed, so instead of sorting whole rows the
position is counted directly (items scoring higher, plus tied items with a lower index):
``O(n_relevant * n_items)`` work, chunked to bound memory.
"""

from __future__ import annotations

import numpy as np

_CHUNK_CELLS = 1 << 22  # compared cells per chunk of relevant pairs


def ndcg_per_user(
    scores: np.ndarray, relevant: np.ndarray, exclude: np.ndarray | None, k: int
) -> np.ndarray:
    """Binary NDCG@``k`` of each user ``(b,)`` float64, nan for users without a relevant
    non-excluded item.

    ``scores`` ``(b, n)`` (higher is better), ``relevant`` and ``exclude`` ``(b, n)`` bool.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    s = np.asarray(scores, dtype=np.float64)
    rel = np.asarray(relevant, dtype=bool)
    if s.ndim != 2 or rel.shape != s.shape:
        raise ValueError(f"scores {s.shape} and relevant {rel.shape} must be the same (b, n)")
    allowed = np.ones(s.shape, dtype=bool) if exclude is None else ~np.asarray(exclude, bool)
    if allowed.shape != s.shape:
        raise ValueError(f"exclude has shape {allowed.shape}, scores have {s.shape}")
    b, n = s.shape
    s = np.where(np.isnan(s), -np.inf, s)
    rel = rel & allowed
    users, items = np.nonzero(rel)
    gains = np.zeros(users.size, dtype=np.float64)
    step = max(1, _CHUNK_CELLS // max(n, 1))
    columns = np.arange(n)
    for start in range(0, users.size, step):
        u, i = users[start : start + step], items[start : start + step]
        rows, ok = s[u], allowed[u]  # (c, n)
        own = s[u, i][:, None]
        ahead = ok & ((rows > own) | ((rows == own) & (columns[None, :] < i[:, None])))
        position = ahead.sum(axis=1)  # 0-based
        gains[start : start + step] = np.where(position < k, 1.0 / np.log2(position + 2.0), 0.0)
    dcg = np.bincount(users, weights=gains, minlength=b)
    n_rel = rel.sum(axis=1)
    discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    ideal = discounts[np.minimum(n_rel, k)]
    out = np.full(b, np.nan)
    has = n_rel > 0
    out[has] = dcg[has] / ideal[has]
    return out


def ndcg_at_k(
    scores: np.ndarray, relevant: np.ndarray, exclude: np.ndarray | None, k: int
) -> float:
    """Mean binary NDCG@``k`` over the users with at least one relevant non-excluded
    item (nan when there is none). Shapes as in :func:`ndcg_per_user`."""
    per_user = ndcg_per_user(scores, relevant, exclude, k)
    has = ~np.isnan(per_user)
    return float(per_user[has].mean()) if has.any() else float("nan")
