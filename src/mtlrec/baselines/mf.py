"""``als`` and ``bpr``: matrix factorisation, wrapping the ``implicit`` library (CPU).

``als`` is :class:`implicit.cpu.als.AlternatingLeastSquares` (Hu, Koren & Volinsky's
weighted ALS; confidence ``1 + alpha * r``), ``bpr`` is
:class:`implicit.cpu.bpr.BayesianPersonalizedRanking`. Scores are
``user_factors @ item_factors.T`` (for BPR the factors carry implicit's item-bias column).
``num_threads`` defaults to 1 so that a fixed ``random_state`` gives identical factors.
Only the factors are kept and saved; the ``implicit`` model object is not.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from mtlrec.baselines.base import BASELINES, ItemFeatures, Recommender


class _FactorRecommender(Recommender):
    """Scores from learnt user and item factors; subclasses build the ``implicit`` model."""

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def _make_model(self) -> Any:
        raise NotImplementedError

    def _fit(self, user_items: sp.csr_matrix, item_features: ItemFeatures | None) -> None:
        # implicit warns when BLAS runs multi-threaded; its own threads do the work.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*BLAS.*", category=RuntimeWarning)
            model = self._make_model()
            model.fit(user_items, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _score(self, user_ids: np.ndarray) -> np.ndarray:
        return np.asarray(self.user_factors_[user_ids] @ self.item_factors_.T)

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"user_factors_": self.user_factors_, "item_factors_": self.item_factors_}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.user_factors_ = np.asarray(state["user_factors_"], dtype=np.float32)
        self.item_factors_ = np.asarray(state["item_factors_"], dtype=np.float32)


@BASELINES.register("als")
class ALSRecommender(_FactorRecommender):
    """Implicit-feedback ALS (``implicit.cpu.als.AlternatingLeastSquares``)."""

    name = "als"
    example_params = {"factors": 8, "iterations": 15, "regularization": 0.1}

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        random_state: int | None = 0,
        num_threads: int = 1,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _make_model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
        )


@BASELINES.register("bpr")
class BPRRecommender(_FactorRecommender):
    """Bayesian personalised ranking (``implicit.cpu.bpr.BayesianPersonalizedRanking``)."""

    name = "bpr"
    example_params = {"factors": 8, "iterations": 200, "learning_rate": 0.05}

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int | None = 0,
        num_threads: int = 1,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _make_model(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
        )
