"""``ease``: EASE^R (Steck, WWW 2019), a closed-form item-item linear autoencoder.

The item-item weight matrix ``B`` ``(n_items, n_items)`` minimises
``|X - X B|^2 + l2 |B|^2`` subject to ``diag(B) = 0``, with ``X`` the binary
``(n_users, n_items)`` training matrix. With ``P = (X^T X + l2 I)^-1`` the solution is
``B = I - P diag(1 / diag(P))`` (its diagonal is zero), and ``scores = X[u] @ B``.

``B`` is dense: fitting inverts an ``(n_items, n_items)`` matrix, so catalogues above
``max_items`` are refused with a clear error (use item kNN or the two-tower there).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from mtlrec.baselines.base import BASELINES, ItemFeatures, Recommender


@BASELINES.register("ease")
class EASERecommender(Recommender):
    """EASE^R: ``scores = user_items[u] @ B`` with ``B`` the closed-form item-item weights."""

    name = "ease"

    def __init__(self, l2: float = 500.0, max_items: int = 30_000) -> None:
        self.l2 = l2
        self.max_items = max_items

    def _fit(self, user_items: sp.csr_matrix, item_features: ItemFeatures | None) -> None:
        if self.l2 <= 0:
            raise ValueError(f"ease: l2 must be positive, got {self.l2}")
        n_items = user_items.shape[1]
        if n_items > self.max_items:
            raise ValueError(
                f"ease: {n_items:,} items exceed max_items={self.max_items:,} (a dense "
                "item-item inverse); use item_knn or two_tower for this catalogue"
            )
        binary = (user_items > 0).astype(np.float64)
        gram = np.asarray((binary.T @ binary).todense())  # (n_items, n_items)
        gram[np.diag_indices(n_items)] += self.l2
        inverse = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        weights = -inverse / np.diag(inverse)[None, :]  # B = I - P diag(1/diag(P))
        weights[np.diag_indices(n_items)] = 0.0
        self.weights_ = weights.astype(np.float32)

    def _score(self, user_ids: np.ndarray) -> np.ndarray:
        rows = (self.user_items_[user_ids] > 0).astype(np.float32)
        return np.asarray(rows @ self.weights_)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"weights_": self.weights_}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.weights_ = np.asarray(state["weights_"], dtype=np.float32)
