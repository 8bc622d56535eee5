"""The :class:`Recommender` interface shared by every baseline, and its registry.

Baselines follow the ``implicit`` contract: ``fit(user_items) -> self`` and
``recommend(user_ids, k, exclude_seen=True) -> (item_ids, scores)``. A subclass only
implements :meth:`Recommender._fit`, :meth:`Recommender.score` and the two state hooks
used by :meth:`Recommender.save` / :meth:`Recommender.load`; ranking, exclusion of seen
items and persistence live here, once.

``user_items`` is a ``(n_users, n_items)`` sparse matrix of implicit feedback (any
non-negative weights; 1 for "interacted"). ``item_features`` is optional side
information for content baselines: a dense ``(n_items, D)`` float matrix (precomputed LM
embeddings) or a sequence of ``n_items`` strings (item texts); see
:mod:`mtlrec.baselines.content`.

Persistence is one ``.npz`` file (no pickle): the fitted arrays plus a JSON string with
the registry name, the constructor parameters and the shape.
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeAlias

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from mtlrec.core.params import KeywordParams
from mtlrec.core.registry import Registry

ItemFeatures: TypeAlias = "np.ndarray | Sequence[str]"
"""Side information of the items: ``(n_items, D)`` floats, or ``n_items`` texts."""

_META_KEY = "__meta__"
_FORMAT_VERSION = 1


def pack_csr(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """The arrays of a CSR matrix under ``prefix``-named keys (for ``np.savez``)."""
    m = sp.csr_matrix(matrix)
    return {
        f"{prefix}.data": np.asarray(m.data),
        f"{prefix}.indices": np.asarray(m.indices),
        f"{prefix}.indptr": np.asarray(m.indptr),
        f"{prefix}.shape": np.asarray(m.shape, dtype=np.int64),
    }


def unpack_csr(prefix: str, state: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    """Inverse of :func:`pack_csr`."""
    shape = tuple(int(s) for s in state[f"{prefix}.shape"])
    return sp.csr_matrix(
        (state[f"{prefix}.data"], state[f"{prefix}.indices"], state[f"{prefix}.indptr"]),
        shape=shape,
    )


class Recommender(KeywordParams, ABC):
    """A top-K recommender over a fixed item catalogue.

    Subclasses take explicit keyword arguments in ``__init__`` and store them untouched
    as attributes of the same name (scikit-learn's estimator rule), so
    :meth:`get_params` can read them back; everything learnt lives in attributes ending
    with ``_``. ``name`` is the subclass's name in :data:`BASELINES`.
    """

    name: ClassVar[str]
    needs: ClassVar[Literal["texts", "embeddings"] | None] = None
    """What :meth:`fit` needs as ``item_features``: item texts, LM item embeddings, or nothing."""
    personalised: ClassVar[bool] = True
    """False for a baseline that ranks the same list for every user (``popularity``)."""
    example_params: ClassVar[dict[str, Any]] = {}
    """Keyword parameters sized for the contract tests' toy (60 users x 40 items);
    empty: the defaults."""
    user_items_: sp.csr_matrix

    # ------------------------------------------------------------------ parameters
    # ------------------------------------------------------------------ fitting
    def fit(self, user_items: Any, item_features: ItemFeatures | None = None) -> Self:
        """Learn from ``user_items`` ``(n_users, n_items)`` (sparse or dense, non-negative)
        and, for content baselines, ``item_features`` (``n_items`` rows). Returns self."""
        matrix = sp.csr_matrix(user_items, dtype=np.float32)
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        if matrix.ndim != 2:
            raise ValueError(f"user_items must be (n_users, n_items), got {matrix.shape}")
        if matrix.nnz and float(matrix.data.min()) < 0:
            raise ValueError("user_items must be non-negative")
        if item_features is not None and len(item_features) != matrix.shape[1]:
            raise ValueError(
                f"item_features has {len(item_features)} rows for {matrix.shape[1]} items"
            )
        self.user_items_ = matrix
        self._fit(matrix, item_features)
        return self

    @abstractmethod
    def _fit(self, user_items: sp.csr_matrix, item_features: ItemFeatures | None) -> None:
        """Learn the model state; ``user_items`` is CSR float32 without duplicates."""

    @property
    def n_users(self) -> int:
        self._check_fitted()
        return int(self.user_items_.shape[0])

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return int(self.user_items_.shape[1])

    def _check_fitted(self) -> None:
        if not hasattr(self, "user_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def _user_ids(self, user_ids: Any) -> np.ndarray:
        """``user_ids`` as a checked 1-D int64 array."""
        self._check_fitted()
        ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        n = int(self.user_items_.shape[0])
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise IndexError(f"user ids must lie in [0, {n})")
        return ids

    # ------------------------------------------------------------------ scoring
    def score(self, user_ids: Any) -> np.ndarray:
        """Scores ``(b, n_items)`` float32 of every item for the users ``user_ids`` ``(b,)``;
        higher is better. Seen items are *not* masked here (see :meth:`recommend`)."""
        ids = self._user_ids(user_ids)
        out = np.asarray(self._score(ids), dtype=np.float32)
        if out.shape != (ids.size, self.n_items):
            raise AssertionError(f"{self.name} scored {out.shape}, not {(ids.size, self.n_items)}")
        return out

    @abstractmethod
    def _score(self, user_ids: np.ndarray) -> np.ndarray:
        """Scores ``(b, n_items)`` for checked int64 ``user_ids`` ``(b,)``."""

    def recommend(
        self, user_ids: Any, k: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per user: ``(item_ids (b, k) int64, scores (b, k) float32)``,
        best first.

        With ``exclude_seen`` the items of each user's fitted ``user_items`` row are never
        returned; when a user has fewer than ``k`` unseen items the remaining slots hold
        item ``-1`` with score ``-inf``. ``k`` larger than the catalogue is cut to it.
        """
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        ids = self._user_ids(user_ids)
        scores = self.score(ids)
        n_items = scores.shape[1]
        k = min(int(k), n_items)
        seen: np.ndarray | None = None
        if exclude_seen:
            seen = self.user_items_[ids].toarray() > 0
            scores = np.where(seen, np.float32(-np.inf), scores)
        if k < n_items:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(n_items), scores.shape).copy()
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        items = np.take_along_axis(part, order, axis=1).astype(np.int64)
        top = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
        if seen is not None:
            hidden = np.take_along_axis(seen, items, axis=1)
            items[hidden] = -1
            top[hidden] = -np.inf
        return items, top

    def with_history(self, user_items: Any) -> Self:
        """This fitted model scoring users from ``user_items`` ``(n_users, n_items)``
        instead of the interactions it was fitted on, without refitting: e.g. train +
        valid, what is known of each user before the test split (the multi-task models
        read the same). A shallow copy; this model is unchanged.

        Models that score from the user's interactions take the new ones in whole
        (EASE, item kNN, content: history times item weights; user kNN: the neighbours
        found in training, with their interactions now). Factor models (ALS, BPR,
        two-tower) keep the user vectors learnt in training; only what :meth:`recommend`
        excludes as seen changes for them."""
        self._check_fitted()
        matrix = sp.csr_matrix(user_items, dtype=np.float32)
        if matrix.shape != self.user_items_.shape:
            raise ValueError(
                f"history of shape {matrix.shape} for a model fitted on {self.user_items_.shape}"
            )
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        view = copy.copy(self)
        view.user_items_ = matrix
        return view

    def score_fn(self) -> Callable[[Tensor], Tensor]:
        """Adapter for :class:`mtlrec.evaluation.ranking.RankingEvaluator`:
        ``(user_idx (b,) Tensor) -> scores (b, n_items) float32 Tensor`` on the same device.
        """

        def fn(user_idx: Tensor) -> Tensor:
            ids = user_idx.detach().cpu().numpy()
            return torch.from_numpy(self.score(ids)).to(user_idx.device)

        return fn

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> dict[str, np.ndarray]:
        """Fitted arrays besides ``user_items_`` (keys without ``/``)."""
        return {}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:  # noqa: B027
        """Restore what :meth:`_get_state` returned."""

    def save(self, path: str | Path) -> None:
        """Write the fitted model to one ``.npz`` file at exactly ``path``."""
        self._check_fitted()
        meta = {
            "format": _FORMAT_VERSION,
            "baseline": self.name,
            "params": self.get_params(),
        }
        arrays: dict[str, Any] = {
            **pack_csr("user_items_", self.user_items_),
            **self._get_state(),
        }
        if _META_KEY in arrays:
            raise ValueError(f"{_META_KEY} is a reserved key")
        with open(path, "wb") as fh:
            arrays[_META_KEY] = np.array(json.dumps(meta))
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`. On :class:`Recommender` itself the class
        comes from the file; on a subclass the file must hold that subclass."""
        with np.load(path, allow_pickle=False) as data:
            state = {key: np.array(data[key]) for key in data.files}
        meta = json.loads(str(state.pop(_META_KEY)))
        if meta.get("format") != _FORMAT_VERSION:
            raise ValueError(f"unsupported baseline file format {meta.get('format')!r}")
        klass = BASELINES.get(meta["baseline"])
        if not issubclass(klass, cls):
            raise TypeError(f"{path} holds a {klass.__name__}, not a {cls.__name__}")
        model = klass(**meta["params"])
        model.user_items_ = unpack_csr("user_items_", state)
        model._set_state(state)
        return model


BASELINES: Registry[type[Recommender]] = Registry("baseline")
"""Registered baselines by name (``popularity``, ``item_knn``, ``user_knn``, ``als``,
``bpr``, ``tfidf``, ``lm_content``)."""


def make_baseline(name: str, **params: Any) -> Recommender:
    """The baseline ``name`` built with ``params``; unknown names list the known ones."""
    return BASELINES.get(name)(**params)
