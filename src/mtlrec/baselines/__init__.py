"""Collaborative-filtering and content-based baselines behind one interface.

Every baseline is a :class:`Recommender` following the ``implicit`` contract:
``fit(user_items, item_features=None) -> self``, ``score(user_ids) -> (b, n_items)``,
``recommend(user_ids, k, exclude_seen=True) -> (item_ids, scores)``, ``save``/``load``
and ``score_fn()`` for :class:`mtlrec.evaluation.ranking.RankingEvaluator`.

Registered in :data:`BASELINES` (one module each): ``popularity``, ``item_knn``,
``user_knn``, ``ease``, ``als``, ``bpr``, ``tfidf``, ``lm_content``, ``two_tower``.
"""

from __future__ import annotations

from mtlrec.baselines.base import BASELINES, ItemFeatures, Recommender, make_baseline
from mtlrec.baselines.content import LMContentRecommender, TfidfRecommender
from mtlrec.baselines.ease import EASERecommender
from mtlrec.baselines.knn import ItemKNNRecommender, UserKNNRecommender, shrunk_cosine_topk
from mtlrec.baselines.mf import ALSRecommender, BPRRecommender
from mtlrec.baselines.popularity import PopularityRecommender
from mtlrec.baselines.two_tower import TwoTowerRecommender

__all__ = [
    "BASELINES",
    "ALSRecommender",
    "BPRRecommender",
    "EASERecommender",
    "ItemFeatures",
    "ItemKNNRecommender",
    "LMContentRecommender",
    "PopularityRecommender",
    "Recommender",
    "TfidfRecommender",
    "TwoTowerRecommender",
    "UserKNNRecommender",
    "make_baseline",
    "shrunk_cosine_topk",
]
