"""``tfidf`` and ``lm_content``: content-based recommenders that can rank cold items.

Both represent each item by an L2-normalised vector, build a user profile as the mean of
the vectors of the user's items (from the fitted ``user_items``; weights ignored, so every
item counts once) and score every item by the cosine between profile and item vector.
Items nobody interacted with are scored like any other, which is the point of these
baselines. A user without items scores 0 everywhere.

``item_features`` (the second argument of :meth:`Recommender.fit`, required here):

- ``tfidf``: a sequence of ``n_items`` strings (item texts), turned into TF-IDF vectors by
  scikit-learn's :class:`~sklearn.feature_extraction.text.TfidfVectorizer`;
- ``lm_content``: a dense ``(n_items, D)`` float matrix of precomputed LM item embeddings
  (``center=True`` subtracts their mean first, which helps with anisotropic embeddings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from mtlrec.baselines.base import BASELINES, ItemFeatures, Recommender, pack_csr, unpack_csr


class _ContentRecommender(Recommender):
    """Cosine between the mean of a user's item vectors and every item vector."""

    item_vectors_: Any  # (n_items, D) L2-normalised rows: csr_matrix or ndarray

    def _item_vectors(self, item_features: ItemFeatures) -> Any:
        raise NotImplementedError

    def _fit(self, user_items: sp.csr_matrix, item_features: ItemFeatures | None) -> None:
        if item_features is None:
            raise ValueError(f"{self.name} needs item_features (one row per item)")
        self.item_vectors_ = normalize(self._item_vectors(item_features))

    def _score(self, user_ids: np.ndarray) -> np.ndarray:
        taken = self.user_items_[user_ids]
        binary = sp.csr_matrix(
            (np.ones_like(taken.data), taken.indices, taken.indptr), shape=taken.shape
        )
        profile = normalize(binary @ self.item_vectors_)  # mean direction == sum direction
        scores = profile @ self.item_vectors_.T
        return np.asarray(scores.toarray() if sp.issparse(scores) else scores)


@BASELINES.register("tfidf")
class TfidfRecommender(_ContentRecommender):
    """Content baseline on TF-IDF vectors of item texts (``item_features``: ``n_items``
    strings). ``min_df``/``max_df``/``sublinear_tf``/``ngram_max`` go to
    :class:`~sklearn.feature_extraction.text.TfidfVectorizer` (``ngram_range=(1, ngram_max)``).
    """

    name = "tfidf"
    needs = "texts"

    def __init__(
        self,
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        sublinear_tf: bool = True,
        ngram_max: int = 1,
    ) -> None:
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.ngram_max = ngram_max

    def _item_vectors(self, item_features: ItemFeatures) -> Any:
        texts = [str(t) for t in item_features]
        vectorizer = TfidfVectorizer(
            min_df=self.min_df,
            max_df=self.max_df,
            sublinear_tf=self.sublinear_tf,
            ngram_range=(1, self.ngram_max),
            dtype=np.float32,
        )
        return sp.csr_matrix(vectorizer.fit_transform(texts))

    def _get_state(self) -> dict[str, np.ndarray]:
        return pack_csr("item_vectors_", self.item_vectors_)

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.item_vectors_ = unpack_csr("item_vectors_", state)


@BASELINES.register("lm_content")
class LMContentRecommender(_ContentRecommender):
    """Content baseline on precomputed LM item embeddings (``item_features``:
    ``(n_items, D)`` floats)."""

    name = "lm_content"
    needs = "embeddings"

    def __init__(self, center: bool = False) -> None:
        self.center = center

    def _item_vectors(self, item_features: ItemFeatures) -> Any:
        emb = np.asarray(item_features, dtype=np.float32)
        if emb.ndim != 2:
            raise ValueError(f"lm_content needs (n_items, D) embeddings, got {emb.shape}")
        if not np.isfinite(emb).all():
            raise ValueError("lm_content embeddings contain nan or inf")
        if self.center:
            emb = emb - emb.mean(axis=0, keepdims=True)
        return emb

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"item_vectors_": np.asarray(self.item_vectors_, dtype=np.float32)}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.item_vectors_ = np.asarray(state["item_vectors_"], dtype=np.float32)
