"""Maximal Marginal Relevance (MMR) re-ranking for diversity (Carbonell & Goldstein, 1998).

Given each user's candidate list with relevance scores, MMR picks ``k`` items greedily; the
next pick is the remaining candidate maximising

``trade_off * rel(i) - (1 - trade_off) * max_{j picked} sim(i, j)``

where ``rel`` is the row's relevance min-max normalised to ``[0, 1]`` over its valid
candidates (all 1 when they are tied) and ``sim`` the cosine similarity of item vectors
(a zero vector has similarity 0 with everything). The max over no picked item is 0, so the
first pick is always the most relevant candidate. ``trade_off = 1`` returns the relevance
order; ``trade_off = 0`` only avoids items similar to those already picked. Ties go to the
higher raw relevance, then to the earlier candidate.

Item vectors are dense embeddings ``(n_items, D)`` or a scipy sparse matrix such as the
multi-hot categories of :func:`category_vectors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from torch import Tensor

from mtlrec.core.params import KeywordParams
from mtlrec.evaluation.beyond import ItemVectors, normalize_rows

_CHUNK_ROWS = 32  # users re-ranked at once: a dense chunk holds (32, N, D) float32 vectors


def _array(values: Any, dtype: type[np.generic], name: str) -> np.ndarray:
    arr = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (b, N), got shape {arr.shape}")
    return arr.astype(dtype, copy=False)


def _check_trade_off(trade_off: float) -> None:
    if not 0.0 <= trade_off <= 1.0:
        raise ValueError(f"trade_off must lie in [0, 1], got {trade_off}")


def mmr_rerank(
    candidates: np.ndarray | Tensor,
    relevance: np.ndarray | Tensor,
    item_vectors: ItemVectors,
    k: int,
    trade_off: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each row's candidates by MMR and keep the first ``k``.

    ``candidates`` ``(b, N)`` int64 item indices into ``item_vectors`` ``(n_items, D)`` (dense
    or scipy sparse), ``-1`` at pads; ``relevance`` ``(b, N)`` float, ``-inf`` at pads (a
    candidate with relevance ``-inf`` is treated as a pad). Returns ``(items (b, k) int64,
    mmr_scores (b, k) float32)``: the picks in order with their MMR value at the time they
    were picked; rows with fewer than ``k`` valid candidates end in ``-1`` / ``-inf``.
    Vectorised over the batch: the loop runs over the ``k`` picks.
    """
    _check_trade_off(trade_off)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    cand = _array(candidates, np.int64, "candidates")
    rel = _array(relevance, np.float64, "relevance")
    if cand.shape != rel.shape:
        raise ValueError(f"candidates {cand.shape} and relevance {rel.shape} differ in shape")
    n_items = item_vectors.shape[0]
    valid = (cand >= 0) & (rel != -np.inf)
    if np.isnan(rel[valid]).any() or np.isposinf(rel[valid]).any():
        raise ValueError("relevance of a valid candidate must be finite (-inf marks a pad)")
    if valid.any() and int(cand[valid].max()) >= n_items:
        raise ValueError(f"candidates hold item {int(cand[valid].max())} of {n_items} items")

    # candidates by raw relevance (stable), pads last: argmax then breaks ties that way
    order = np.argsort(np.where(valid, -rel, np.inf), axis=1, kind="stable")
    cand = np.take_along_axis(cand, order, axis=1)
    rel = np.take_along_axis(rel, order, axis=1)
    valid = np.take_along_axis(valid, order, axis=1)
    lo = np.where(valid, rel, np.inf).min(axis=1, keepdims=True, initial=np.inf)
    hi = np.where(valid, rel, -np.inf).max(axis=1, keepdims=True, initial=-np.inf)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(span > 0, (rel - lo) / np.where(span > 0, span, 1.0), 1.0)
    norm = np.where(valid, norm, 0.0)

    b = cand.shape[0]
    items = np.full((b, k), -1, dtype=np.int64)
    scores = np.full((b, k), -np.inf, dtype=np.float32)
    if not valid.any():
        return items, scores
    # only the vectors of items that are candidates somewhere, L2-normalised
    used = np.unique(cand[valid])
    local = np.where(valid, np.searchsorted(used, cand), 0)
    if sp.issparse(item_vectors):
        unit = normalize_rows(sp.csr_matrix(item_vectors)[used])
    else:
        unit = normalize_rows(np.asarray(item_vectors)[used], dtype=np.float32)

    for start in range(0, b, _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        items[rows], scores[rows] = _mmr_chunk(
            cand[rows], norm[rows], valid[rows], local[rows], unit, k, trade_off
        )
    return items, scores


def _mmr_chunk(
    cand: np.ndarray,
    norm: np.ndarray,
    valid: np.ndarray,
    local: np.ndarray,
    unit: np.ndarray | sp.csr_matrix,
    k: int,
    trade_off: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy MMR picks for one chunk of rows ``(c, N)``; see :func:`mmr_rerank`."""
    c, n = cand.shape
    arange = np.arange(c)
    items = np.full((c, k), -1, dtype=np.int64)
    scores = np.full((c, k), -np.inf, dtype=np.float32)
    sparse = sp.issparse(unit)
    vectors = unit[local.reshape(-1)] if sparse else unit[local]  # (c*N, D) | (c, N, D)
    available = valid.copy()
    max_sim = np.zeros((c, n), dtype=np.float64)  # max over no picked item is 0
    for t in range(min(k, n)):
        mmr = trade_off * norm - (1.0 - trade_off) * max_sim
        mmr = np.where(available, mmr, -np.inf)
        pick = mmr.argmax(axis=1)  # (c,): first maximum, i.e. the stable tie-break
        best = mmr[arange, pick]
        ok = best > -np.inf
        items[:, t] = np.where(ok, cand[arange, pick], -1)
        scores[:, t] = np.where(ok, best, -np.inf)
        available[arange[ok], pick[ok]] = False
        if not ok.any() or t == k - 1 or trade_off == 1.0:
            continue
        if sparse:
            picked = unit[local[arange, pick]]  # (c, D)
            products = vectors.multiply(picked[np.repeat(arange, n)])  # (c*N, D) sparse
            sim = np.asarray(products.sum(axis=1)).reshape(c, n)
        else:
            picked = vectors[arange, pick]  # (c, D)
            sim = np.matmul(vectors, picked[:, :, None])[..., 0]  # (c, N)
        max_sim = sim if t == 0 else np.maximum(max_sim, sim)
    return items, scores


class MMRReranker(KeywordParams):
    """MMR re-ranking with fixed settings: ``trade_off`` in ``[0, 1]`` (1 = relevance only)
    and ``k`` items kept per row. Arguments are stored untouched."""

    def __init__(self, trade_off: float = 0.7, k: int = 10) -> None:
        _check_trade_off(trade_off)
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.trade_off = trade_off
        self.k = k

    def rerank(
        self,
        candidates: np.ndarray | Tensor,
        relevance: np.ndarray | Tensor,
        item_vectors: ItemVectors,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`mmr_rerank` with this reranker's ``k`` and ``trade_off``."""
        return mmr_rerank(candidates, relevance, item_vectors, self.k, self.trade_off)


def category_vectors(
    values: Sequence[Sequence[str] | str | None], sep: str | None = None
) -> sp.csr_matrix:
    """Multi-hot ``(n_items, n_categories)`` float32 CSR from each item's categories.

    An item's value is a sequence of category names, or a string: split on ``sep`` (names
    are stripped; empty ones dropped), or one category when ``sep`` is None. ``None`` or no
    category gives a zero row. Columns follow the sorted category names; a repeated category
    counts once.
    """
    per_item: list[set[str]] = []
    for value in values:
        if value is None:
            names: list[str] = []
        elif isinstance(value, str):
            names = [value] if sep is None else value.split(sep)
        else:
            names = list(value)
        per_item.append({name.strip() for name in names if name.strip()})
    vocabulary = {name: j for j, name in enumerate(sorted(set().union(*per_item)))}
    rows = np.repeat(np.arange(len(per_item)), [len(names) for names in per_item])
    cols = np.array(
        [vocabulary[name] for names in per_item for name in sorted(names)], dtype=np.int64
    )
    return sp.csr_matrix(
        (np.ones(cols.size, dtype=np.float32), (rows, cols)),
        shape=(len(per_item), len(vocabulary)),
    )
