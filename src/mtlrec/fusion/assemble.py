"""A cascade from its parts: a multi-task model's heads (as a :data:`HeadScorer`), fitted
retrievers, a fitted fusion and the re-ranking settings of a fusion config. Needs no
dataset, so a loaded artifact builds its cascade the same way ``mtlrec fuse`` does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mtlrec.baselines.base import Recommender
from mtlrec.config.fusion import FusionConfig
from mtlrec.core.types import HeadScorer
from mtlrec.fusion.base import Fusion
from mtlrec.fusion.cascade import Cascade
from mtlrec.fusion.rerank import MMRReranker

FUSION_DIR = "fusion"
"""The folder of a fitted cascade beside a run (``RUN/fusion/``) and inside an artifact."""


def cascade_from_parts(
    fusion_config: FusionConfig,
    head_scorer: HeadScorer | None,
    tasks: Sequence[str],
    retrievers: Mapping[str, Recommender],
    fusion: Fusion,
    *,
    item_vectors: np.ndarray | None,
    item_popularity: np.ndarray,
    user_activity: np.ndarray,
) -> Cascade:
    """The cascade of ``fusion_config`` from its parts, with no dataset at hand (a loaded
    artifact): ``head_scorer`` gives the model's values of ``tasks`` (already checked
    against the model) per (user, item) pair; ``item_vectors`` ``(n_items, D)`` for MMR
    (None without re-ranking), ``item_popularity`` ``(n_items,)`` and ``user_activity``
    ``(n_users,)`` training counts."""
    rerank = fusion_config.rerank
    return Cascade(
        retrievers,
        fusion,
        head_scorer=head_scorer if tasks else None,
        tasks=tasks,
        candidates=fusion_config.candidates,
        retriever_scores=fusion_config.retriever_scores,
        reranker=None
        if rerank is None
        else MMRReranker(trade_off=rerank.trade_off, k=max(fusion_config.ks)),
        item_vectors=item_vectors,
        depth=rerank.depth if rerank is not None else 50,
        item_popularity=item_popularity,
        user_activity=user_activity,
    )
