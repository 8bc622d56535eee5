"""Beyond-accuracy metrics of top-K recommendation lists: coverage, diversity, novelty, ARP.

All functions take the recommended lists as ``top`` ``(U, K)`` int64 item indices, best
first; ``-1`` marks a padding slot (a user with fewer than ``K`` recommendable items) and is
ignored everywhere. Per list, with ``L`` the list's non-pad items:

- ``catalog_coverage``     distinct items recommended to anyone / ``n_items`` (one number);
- ``intra_list_diversity`` mean over the pairs ``i != j`` of ``L`` of ``1 - cos(v_i, v_j)``
  on item vectors (dense embeddings or sparse multi-hot categories); a zero vector has
  similarity 0 with everything, so pairs with it count as fully diverse; ``nan`` for lists
  with fewer than two items;
- ``novelty``              mean self-information ``-log2((pop_i + 1) / (n_users + 1))`` of
  ``L``'s items, where ``pop_i`` is the number of training interactions of item ``i`` and
  ``n_users`` the number of users (Zhou et al. 2010, "Solving the apparent diversity-accuracy
  dilemma"). The ``+1`` in numerator and denominator (add-one smoothing) keeps an item never
  seen in training finite (``log2(n_users + 1)`` bits) instead of infinite, and maps an item
  everyone interacted with to 0 bits. If ``pop`` counts repeated interactions it can exceed
  ``n_users`` and give negative values; pass distinct-user counts to avoid that;
- ``average_popularity``   ARP, the mean training interaction count of ``L``'s items.

Per-list values are ``nan`` for an all-pad list; :class:`BeyondAccuracy` averages over the
lists with a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
from torch import Tensor

ItemVectors: TypeAlias = "np.ndarray | sp.spmatrix | sp.sparray"
"""Item representations ``(n_items, D)``: a dense array or a scipy sparse matrix."""

TopLike: TypeAlias = "np.ndarray | Tensor"
"""Top-K item indices ``(U, K)`` with ``-1`` pads, as a numpy array or a tensor."""

BEYOND_METRICS: tuple[str, ...] = ("coverage", "diversity", "novelty", "arp")


def _as_top(top: TopLike) -> np.ndarray:
    arr = top.detach().cpu().numpy() if isinstance(top, Tensor) else np.asarray(top)
    if arr.ndim != 2:
        raise ValueError(f"top must be (U, K), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"top must hold integer item indices, got {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and int(arr.min()) < -1:
        raise ValueError("top holds negative item indices other than the -1 pad")
    return arr


def _check_items(top: np.ndarray, n_items: int) -> None:
    if top.size and int(top.max()) >= n_items:
        raise ValueError(f"top holds item {int(top.max())} but there are only {n_items} items")


def _list_mean(values: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Mean of ``values[item]`` over each row's non-pad items; ``nan`` for empty rows."""
    valid = top >= 0
    per_slot = np.where(valid, values[np.where(valid, top, 0)], 0.0)
    counts = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, per_slot.sum(axis=1) / np.maximum(counts, 1), np.nan)


def _popularity(item_popularity: Any) -> np.ndarray:
    if isinstance(item_popularity, Tensor):
        item_popularity = item_popularity.detach().cpu().numpy()
    pop = np.asarray(item_popularity, dtype=np.float64).reshape(-1)
    if pop.size and (np.isnan(pop).any() or pop.min() < 0):
        raise ValueError("item_popularity must be non-negative counts")
    return pop


def normalize_rows(
    item_vectors: ItemVectors, dtype: type[np.floating[Any]] = np.float64
) -> np.ndarray | sp.csr_matrix:
    """L2-normalise each row (as ``dtype``); zero rows stay zero. Sparse input stays sparse
    (CSR)."""
    if sp.issparse(item_vectors):
        mat = sp.csr_matrix(item_vectors, dtype=dtype)
        norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).reshape(-1))
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(scale) @ mat)
    arr = np.asarray(item_vectors, dtype=dtype)
    if arr.ndim != 2:
        raise ValueError(f"item_vectors must be (n_items, D), got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.divide(arr, norms, out=np.zeros_like(arr), where=norms > 0)


def catalog_coverage(top: TopLike, n_items: int) -> float:
    """Fraction of the ``n_items`` catalogue that appears in at least one list."""
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    arr = _as_top(top)
    _check_items(arr, n_items)
    return float(np.unique(arr[arr >= 0]).size / n_items)


def intra_list_diversity(top: TopLike, item_vectors: ItemVectors) -> np.ndarray:
    """Per list ``(U,)`` float64: mean pairwise cosine distance ``1 - cos`` of its items.

    Rows of ``item_vectors`` ``(n_items, D)`` (dense or scipy sparse) are L2-normalised here.
    Uses ``sum_{i != j} v_i . v_j = |sum_i v_i|^2 - sum_i |v_i|^2`` on unit vectors, so the cost
    is one sparse ``(U, n_items) @ (n_items, D)`` product, never a ``(U, K, K)`` Gram tensor.
    Lists with fewer than two items are ``nan``.
    """
    arr = _as_top(top)
    _check_items(arr, item_vectors.shape[0])
    return _diversity(arr, normalize_rows(item_vectors))


def _diversity(top: np.ndarray, unit: np.ndarray | sp.csr_matrix) -> np.ndarray:
    """:func:`intra_list_diversity` on already L2-normalised rows ``unit``."""
    n_lists, width = top.shape
    valid = top >= 0
    rows = np.repeat(np.arange(n_lists), width)[valid.reshape(-1)]
    cols = top[valid]
    # (U, n_items) counts: a list's vector sum is one row of picks @ unit
    picks = sp.csr_matrix(
        (np.ones(cols.size), (rows, cols)), shape=(n_lists, unit.shape[0]), dtype=np.float64
    )
    sums = picks @ unit  # (U, D)
    if sp.issparse(sums):
        sq_sum = np.asarray(sums.multiply(sums).sum(axis=1)).reshape(-1)
    else:
        sq_sum = np.einsum("ud,ud->u", sums, sums)
    if isinstance(unit, np.ndarray):
        item_sq = np.einsum("id,id->i", unit, unit)
    else:
        item_sq = np.asarray(unit.multiply(unit).sum(axis=1)).reshape(-1)
    self_sq = np.where(valid, item_sq[np.where(valid, top, 0)], 0.0).sum(axis=1)
    n = valid.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_sim = (sq_sum - self_sq) / (n * (n - 1.0))
    return np.where(n >= 2, 1.0 - mean_sim, np.nan)


def novelty(top: TopLike, item_popularity: Any, n_users: int) -> np.ndarray:
    """Per list ``(U,)`` float64: mean ``-log2((pop_i + 1) / (n_users + 1))`` of its items.

    ``item_popularity`` ``(n_items,)`` holds training interaction counts; the add-one
    smoothing keeps never-seen items finite (see the module docstring)."""
    if n_users <= 0:
        raise ValueError(f"n_users must be positive, got {n_users}")
    arr = _as_top(top)
    pop = _popularity(item_popularity)
    _check_items(arr, pop.size)
    information = -np.log2((pop + 1.0) / (n_users + 1.0))
    return _list_mean(information, arr)


def average_popularity(top: TopLike, item_popularity: Any) -> np.ndarray:
    """Per list ``(U,)`` float64: ARP, the mean training interaction count of its items."""
    arr = _as_top(top)
    pop = _popularity(item_popularity)
    _check_items(arr, pop.size)
    return _list_mean(pop, arr)


def popularity_counts(items: Any, n_items: int) -> np.ndarray:
    """Interaction count per item ``(n_items,)`` float64 from training item indices ``(N,)``.

    Pass each (user, item) pair once to count distinct users."""
    if isinstance(items, Tensor):
        items = items.detach().cpu().numpy()
    arr = np.asarray(items, dtype=np.int64).reshape(-1)
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= n_items):
        raise ValueError(f"item indices must lie in [0, {n_items})")
    return np.bincount(arr, minlength=n_items).astype(np.float64)


class BeyondAccuracy:
    """Accumulator of beyond-accuracy metrics over chunks of top-K lists (``reset/update/
    compute``).

    ``item_popularity`` ``(n_items,)`` training interaction counts, ``n_users`` the user count
    for :func:`novelty`, ``item_vectors`` ``(n_items, D)`` (dense or sparse) enables
    ``diversity@K``, ``n_items`` the catalogue size for coverage (default
    ``len(item_popularity)``). Each list is cut to its first ``K`` slots for the ``@K`` metrics.
    """

    def __init__(
        self,
        ks: Sequence[int],
        item_popularity: Any,
        n_users: int,
        item_vectors: ItemVectors | None = None,
        n_items: int | None = None,
    ) -> None:
        self.ks = ks
        self.item_popularity = item_popularity
        self.n_users = n_users
        self.item_vectors = item_vectors
        self.n_items = n_items
        self.reset()

    def _catalogue(self) -> int:
        return int(self._pop.size if self.n_items is None else self.n_items)

    def reset(self) -> None:
        ks = tuple(int(k) for k in self.ks)
        if not ks or any(k <= 0 for k in ks):
            raise ValueError(f"ks must be positive integers, got {ks}")
        if self.n_users <= 0:
            raise ValueError(f"n_users must be positive, got {self.n_users}")
        self._ks = ks
        self._pop = _popularity(self.item_popularity)
        n_items = self._catalogue()
        if n_items <= 0:
            raise ValueError("the catalogue is empty: give item_popularity or n_items")
        if self._pop.size != n_items:
            raise ValueError(f"item_popularity has {self._pop.size} items, n_items is {n_items}")
        if self.item_vectors is not None and self.item_vectors.shape[0] != n_items:
            raise ValueError(
                f"item_vectors has {self.item_vectors.shape[0]} rows for {n_items} items"
            )
        self._unit = None if self.item_vectors is None else normalize_rows(self.item_vectors)
        self._information = -np.log2((self._pop + 1.0) / (self.n_users + 1.0))
        self._seen = {k: np.zeros(n_items, dtype=bool) for k in ks}
        names = ["novelty", "arp"] + (["diversity"] if self._unit is not None else [])
        self._sums = {(m, k): 0.0 for m in names for k in ks}
        self._counts = {(m, k): 0 for m in names for k in ks}

    def update(self, top: TopLike) -> None:
        """Add a chunk of lists ``(b, k_max)`` int64 (``-1`` pads), best first."""
        arr = _as_top(top)
        _check_items(arr, self._catalogue())
        for k in self._ks:
            cut = arr[:, :k]
            self._seen[k][cut[cut >= 0]] = True
            values = {
                "novelty": _list_mean(self._information, cut),
                "arp": _list_mean(self._pop, cut),
            }
            if self._unit is not None:
                values["diversity"] = _diversity(cut, self._unit)
            for name, v in values.items():
                keep = ~np.isnan(v)
                self._sums[name, k] += float(v[keep].sum())
                self._counts[name, k] += int(keep.sum())

    def compute(self) -> dict[str, float]:
        """``{"coverage@K": ..., "diversity@K": ..., "novelty@K": ..., "arp@K": ...}``; a
        mean over no lists is ``nan``; ``diversity@K`` only with ``item_vectors``."""
        n_items = self._catalogue()
        out: dict[str, float] = {}
        for metric in BEYOND_METRICS:
            for k in self._ks:
                if metric == "coverage":
                    out[f"coverage@{k}"] = float(self._seen[k].sum() / n_items)
                elif (metric, k) in self._sums:
                    count = self._counts[metric, k]
                    out[f"{metric}@{k}"] = self._sums[metric, k] / count if count else float("nan")
        return out
