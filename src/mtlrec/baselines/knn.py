"""``item_knn`` and ``user_knn``: neighbourhood models on shrunk cosine similarity.

The similarity of two rows ``a``, ``b`` of a matrix (items: columns of ``user_items``;
users: its rows) is ``a.b / (|a| |b| + shrink)``: the shrinkage term pulls down the
similarity of pairs supported by few co-occurrences. Only each row's ``neighbours``
largest positive similarities are kept (a sparse matrix), and the self-similarity is 0.

- item kNN: ``scores = user_items @ S_items`` (an item scores by its similarity to the
  user's items);
- user kNN: ``scores = S_users @ user_items`` (an item scores by how many similar users
  took it, weighted by similarity).

Everything is sparse matrix algebra, processed ``chunk`` rows at a time.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from mtlrec.baselines.base import BASELINES, ItemFeatures, Recommender, pack_csr, unpack_csr

_CHUNK_CELLS = 1 << 22  # dense cells per similarity chunk (16 MiB of float32)


def shrunk_cosine_topk(rows: sp.csr_matrix, neighbours: int, shrink: float) -> sp.csr_matrix:
    """Top-``neighbours`` shrunk cosine similarities between the rows of ``rows`` ``(n, d)``.

    Returns a CSR ``(n, n)`` float32 matrix holding, in row ``a``, the ``neighbours``
    largest positive values of ``rows[a].rows[b] / (|rows[a]| |rows[b]| + shrink)`` over
    ``b != a``.
    """
    if neighbours <= 0:
        raise ValueError(f"neighbours must be positive, got {neighbours}")
    if shrink < 0:
        raise ValueError(f"shrink must be non-negative, got {shrink}")
    rows = sp.csr_matrix(rows, dtype=np.float64)
    n = rows.shape[0]
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).reshape(-1))
    cols_t = rows.T.tocsc()
    keep = min(neighbours, max(n - 1, 1))
    step = max(1, _CHUNK_CELLS // max(n, 1))
    out_rows: list[np.ndarray] = []
    out_cols: list[np.ndarray] = []
    out_vals: list[np.ndarray] = []
    for start in range(0, n, step):
        stop = min(start + step, n)
        dot = (rows[start:stop] @ cols_t).toarray()  # (c, n)
        denom = norms[start:stop, None] * norms[None, :] + shrink
        sim = np.divide(dot, denom, out=np.zeros_like(dot), where=denom > 0)
        local = np.arange(stop - start)
        sim[local, local + start] = 0.0
        if keep < n:
            top = np.argpartition(-sim, keep - 1, axis=1)[:, :keep]
        else:
            top = np.broadcast_to(np.arange(n), sim.shape).copy()
        vals = np.take_along_axis(sim, top, axis=1)
        positive = vals > 0
        out_rows.append(np.repeat(local + start, keep)[positive.reshape(-1)])
        out_cols.append(top[positive])
        out_vals.append(vals[positive])
    if not out_rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix(
        (
            np.concatenate(out_vals).astype(np.float32),
            (np.concatenate(out_rows), np.concatenate(out_cols)),
        ),
        shape=(n, n),
    )


class _KNNRecommender(Recommender):
    """Shared parameters and persistence of the two neighbourhood models."""

    similarity_: sp.csr_matrix

    def __init__(self, neighbours: int = 50, shrink: float = 10.0) -> None:
        self.neighbours = neighbours
        self.shrink = shrink

    def _get_state(self) -> dict[str, np.ndarray]:
        return pack_csr("similarity_", self.similarity_)

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.similarity_ = unpack_csr("similarity_", state)


@BASELINES.register("item_knn")
class ItemKNNRecommender(_KNNRecommender):
    """Item-based kNN: ``scores = user_items[u] @ S`` with ``S`` ``(n_items, n_items)``."""

    name = "item_knn"
    example_params = {"neighbours": 10, "shrink": 1.0}

    def _fit(self, user_items: sp.csr_matrix, item_features: ItemFeatures | None) -> None:
        self.similarity_ = shrunk_cosine_topk(user_items.T.tocsr(), self.neighbours, self.shrink)

    def _score(self, user_ids: np.ndarray) -> np.ndarray:
        return np.asarray((self.user_items_[user_ids] @ self.similarity_).toarray())


@BASELINES.register("user_knn")
class UserKNNRecommender(_KNNRecommender):
    """User-based kNN: ``scores = S[u] @ user_items`` with ``S`` ``(n_users, n_users)``."""

    name = "user_knn"
    example_params = {"neighbours": 15, "shrink": 1.0}

    def _fit(self, user_items: sp.csr_matrix, item_features: ItemFeatures | None) -> None:
        self.similarity_ = shrunk_cosine_topk(user_items, self.neighbours, self.shrink)

    def _score(self, user_ids: np.ndarray) -> np.ndarray:
        return np.asarray((self.similarity_[user_ids] @ self.user_items_).toarray())
