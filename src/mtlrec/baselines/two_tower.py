"""``two_tower``: a two-tower retrieval model with a FAISS index for candidate generation.

Trains :class:`mtlrec.models.two_tower.TwoTower` (user tower: user id + mean LM content of
the user's items; item tower: item id + LM content; in-batch softmax with logQ
correction) on the (user, item) pairs of ``user_items`` (weights ignored), then indexes
the item vectors in an :class:`mtlrec.retrieval.ItemIndex` (``index``: ``flat`` exact,
``ivf`` or ``hnsw`` approximate).

Two ways to rank:

- :meth:`~TwoTowerRecommender.score` is exact: the dot product of the user vectors with
  every item vector, ``(b, n_items)``, which is what the shared full-ranking evaluator uses;
- :meth:`~TwoTowerRecommender.retrieve` (and :meth:`~TwoTowerRecommender.recommend`, the
  same call) is the candidate-generation path: the index returns the ``n`` + (most items
  seen by one of the batch's users) nearest items, seen items are dropped and the rest
  are rescored exactly. With ``index="flat"`` it returns what ranking :meth:`score` would;
  with ``ivf``/``hnsw`` the items come from the approximate search.

``item_features`` is required: dense ``(n_items, D)`` LM item embeddings. Items without
training interactions are still indexed and retrieved, from their content alone.
Everything is saved in the base class's ``.npz``: the torch state dict as numpy arrays
(``model.*`` keys), the user and item vectors, the losses and the FAISS index bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from mtlrec.baselines.base import BASELINES, ItemFeatures, Recommender
from mtlrec.models.two_tower import TwoTower, train_two_tower
from mtlrec.retrieval.faiss_index import INDEX_KINDS, ItemIndex

_MODEL_PREFIX = "model."
_CHUNK = 4096  # users per forward pass when computing all user vectors


def _content(item_features: ItemFeatures | None) -> np.ndarray:
    """``item_features`` as checked ``(n_items, D)`` float32 LM embeddings."""
    message = "two_tower needs item_features: dense (n_items, D) float LM item embeddings"
    if item_features is None:
        raise ValueError(message)
    try:
        emb = np.asarray(item_features, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{message}, got {type(item_features).__name__}") from err
    if emb.ndim != 2 or emb.shape[1] == 0:
        raise ValueError(f"{message}, got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise ValueError("two_tower item_features contain nan or inf")
    return emb


def _exact_scores(user_vectors: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """``(b, dim) x (n, dim) -> (b, n)`` dot products, summed in float64 then rounded to
    float32. Products of float32 numbers are exact in float64, so another summation order
    (rescoring a few candidates in :meth:`TwoTowerRecommender.retrieve`) moves the sum by
    ~1e-16 relative, far below float32 rounding: both give the same float32 score."""
    return (user_vectors.astype(np.float64) @ item_vectors.T.astype(np.float64)).astype(np.float32)


@BASELINES.register("two_tower")
class TwoTowerRecommender(Recommender):
    """Two-tower model (:mod:`mtlrec.models.two_tower`) + FAISS index (:class:`ItemIndex`).

    ``dim``/``hidden``/``id_dropout`` shape the towers; ``epochs``/``batch_size``/``lr``/
    ``weight_decay``/``temperature`` the training; ``index`` (``flat``, ``ivf``, ``hnsw``)
    with ``nlist``/``nprobe``/``hnsw_m``/``ef_search`` the index; ``seed`` both.
    """

    name = "two_tower"
    needs = "embeddings"
    example_params = {"dim": 16, "hidden": 32, "epochs": 15, "batch_size": 64, "lr": 0.01}
    model_: TwoTower
    user_vectors_: np.ndarray  # (n_users, dim) float32, L2-normalised
    item_vectors_: np.ndarray  # (n_items, dim) float32, L2-normalised
    losses_: np.ndarray  # (epochs,) mean training loss per epoch
    index_: ItemIndex

    def __init__(
        self,
        dim: int = 64,
        hidden: int = 128,
        epochs: int = 15,
        batch_size: int = 512,
        lr: float = 0.005,
        weight_decay: float = 1e-5,
        temperature: float = 0.1,
        id_dropout: float = 0.1,
        index: str = "flat",
        nlist: int = 64,
        nprobe: int = 8,
        hnsw_m: int = 32,
        ef_search: int = 64,
        seed: int = 0,
    ) -> None:
        self.dim = dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.id_dropout = id_dropout
        self.index = index
        self.nlist = nlist
        self.nprobe = nprobe
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def _make_index(self) -> ItemIndex:
        return ItemIndex(
            kind=self.index,
            nlist=self.nlist,
            nprobe=self.nprobe,
            hnsw_m=self.hnsw_m,
            ef_search=self.ef_search,
            seed=self.seed,
        )

    def _make_model(self, content: np.ndarray) -> TwoTower:
        """A fresh model initialised from ``seed`` (the global torch RNG is left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return TwoTower(
                torch.from_numpy(content),
                self.user_items_,
                dim=self.dim,
                hidden=self.hidden,
                id_dropout=self.id_dropout,
            )

    def _fit(self, user_items: sp.csr_matrix, item_features: ItemFeatures | None) -> None:
        content = _content(item_features)
        if self.index not in INDEX_KINDS:  # fail before training, not after
            raise ValueError(f"unknown index {self.index!r}; known kinds: {', '.join(INDEX_KINDS)}")
        model = self._make_model(content)
        pairs = user_items.tocoo()
        self.losses_ = np.asarray(
            train_two_tower(
                model,
                torch.from_numpy(pairs.row.astype(np.int64)),
                torch.from_numpy(pairs.col.astype(np.int64)),
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                weight_decay=self.weight_decay,
                temperature=self.temperature,
                seed=self.seed,
            ),
            dtype=np.float32,
        )
        self.model_ = model
        with torch.no_grad():
            users = torch.arange(model.n_users)
            self.user_vectors_ = torch.cat(
                [model.user_vectors(chunk) for chunk in torch.split(users, _CHUNK)]
            ).numpy()
            self.item_vectors_ = model.item_vectors().numpy()
        self.index_ = self._make_index().build(self.item_vectors_)

    # ------------------------------------------------------------------ ranking
    def _score(self, user_ids: np.ndarray) -> np.ndarray:
        return _exact_scores(self.user_vectors_[user_ids], self.item_vectors_)

    def retrieve(
        self, user_ids: Any, n: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` candidates per user from the FAISS index (the approximate path for
        ``ivf``/``hnsw``): ``(item_ids (b, n) int64, scores (b, n) float32)``, best first.

        The index is asked for ``n`` plus the largest number of seen items among the
        users, so that ``n`` remain after seen items are dropped; the remaining candidates
        are rescored exactly (the scores equal :meth:`score`'s). Empty slots hold item
        ``-1`` with score ``-inf``, as in :meth:`Recommender.recommend`.
        """
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        ids = self._user_ids(user_ids)
        n_items = self.n_items
        n = min(int(n), n_items)
        seen = self.user_items_[ids]  # (b, n_items) CSR
        extra = int(np.diff(seen.indptr).max(initial=0)) if exclude_seen else 0
        user_vectors = self.user_vectors_[ids]  # (b, dim)
        found, _ = self.index_.search(user_vectors, min(n + extra, n_items))  # (b, m), m >= n
        valid = found >= 0
        safe = np.where(valid, found, 0)
        scores = np.einsum(
            "bd,bmd->bm",
            user_vectors.astype(np.float64),
            self.item_vectors_[safe].astype(np.float64),
        ).astype(np.float32)  # (b, m), exact like _exact_scores
        if exclude_seen:  # (row, item) pairs as row * n_items + item keys
            rows = np.repeat(np.arange(ids.size, dtype=np.int64), np.diff(seen.indptr))
            seen_keys = rows * n_items + seen.indices
            found_keys = np.arange(ids.size, dtype=np.int64)[:, None] * n_items + safe
            valid &= ~np.isin(found_keys, seen_keys)
        scores = np.where(valid, scores, np.float32(-np.inf))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :n]  # (b, n)
        items = np.take_along_axis(np.where(valid, found, -1), order, axis=1)
        top = np.take_along_axis(scores, order, axis=1)
        return items.astype(np.int64), top.astype(np.float32)

    def recommend(
        self, user_ids: Any, k: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items through the FAISS index: :meth:`retrieve` with ``n = k``."""
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        return self.retrieve(user_ids, k, exclude_seen)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        state = {
            _MODEL_PREFIX + key: value.detach().cpu().numpy()
            for key, value in self.model_.state_dict().items()
        }
        return {
            **state,
            "user_vectors_": self.user_vectors_,
            "item_vectors_": self.item_vectors_,
            "losses_": self.losses_,
            "index_": self.index_.to_bytes(),
        }

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.model_ = self._make_model(np.asarray(state[_MODEL_PREFIX + "content"], np.float32))
        self.model_.load_state_dict(
            {
                key.removeprefix(_MODEL_PREFIX): torch.from_numpy(np.array(value))
                for key, value in state.items()
                if key.startswith(_MODEL_PREFIX)
            }
        )
        self.model_.eval()
        self.user_vectors_ = np.asarray(state["user_vectors_"], dtype=np.float32)
        self.item_vectors_ = np.asarray(state["item_vectors_"], dtype=np.float32)
        self.losses_ = np.asarray(state["losses_"], dtype=np.float32)
        self.index_ = ItemIndex.from_bytes(state["index_"], **self._make_index().get_params())
