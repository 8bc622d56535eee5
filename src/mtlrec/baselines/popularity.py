"""``popularity``: every user gets the items with the most interacting users."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from mtlrec.baselines.base import BASELINES, ItemFeatures, Recommender


@BASELINES.register("popularity")
class PopularityRecommender(Recommender):
    """Scores item ``i`` by the number of users who interacted with it (the same list for
    everyone). The floor any personalised baseline should beat."""

    name = "popularity"
    personalised = False

    def __init__(self) -> None:
        pass

    def _fit(self, user_items: sp.csr_matrix, item_features: ItemFeatures | None) -> None:
        counts = np.bincount(user_items.indices, minlength=user_items.shape[1])
        self.item_counts_ = counts.astype(np.float32)

    def _score(self, user_ids: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_counts_, (user_ids.size, self.item_counts_.size)).copy()

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"item_counts_": self.item_counts_}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.item_counts_ = np.asarray(state["item_counts_"], dtype=np.float32)
