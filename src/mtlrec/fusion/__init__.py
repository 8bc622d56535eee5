"""Score fusion: combine several recommenders' (or task heads') score matrices into one.

Every fusion is a :class:`Fusion` fitted on **validation** data only:
``fit(FusionInput, relevant) -> self`` and ``fuse(FusionInput) -> (b, n_items)`` float32
scores (``-inf`` exactly at the excluded items), with ``weights()`` for reporting and
``save``/``load`` to one JSON file.

Registered in :data:`FUSIONS` (one module each): ``linear`` (weighted sum of normalised
scores, coordinate ascent on NDCG@k), ``softmax`` (softmax weights trained with a listwise
loss), ``rrf`` (reciprocal rank fusion), ``stacking`` (LightGBM / logistic meta-model
over candidates, out-of-fold) and ``formula`` (a safe hand-written formula over task
heads). Helpers: :func:`normalize_scores` and the NDCG@k objective.
"""

from __future__ import annotations

from mtlrec.fusion.base import FUSIONS, Fusion, FusionInput, finalize_scores, make_fusion
from mtlrec.fusion.formula import FUNCTIONS, FormulaFusion, evaluate_formula, parse_formula
from mtlrec.fusion.linear import LinearFusion
from mtlrec.fusion.normalize import (
    NORMALIZATIONS,
    average_ranks,
    normalize_scores,
    ordinal_ranks,
    valid_mask,
)
from mtlrec.fusion.objective import ndcg_at_k, ndcg_per_user
from mtlrec.fusion.rank import RRFFusion, rrf_scores, source_ranks
from mtlrec.fusion.softmax import SoftmaxFusion
from mtlrec.fusion.stacking import META_MODELS, StackingFusion, build_candidates
from mtlrec.fusion.validation import cross_fitted_scores, out_of_fold_ndcg

__all__ = [
    "cross_fitted_scores",
    "out_of_fold_ndcg",
    "FUNCTIONS",
    "FUSIONS",
    "META_MODELS",
    "NORMALIZATIONS",
    "FormulaFusion",
    "Fusion",
    "FusionInput",
    "LinearFusion",
    "RRFFusion",
    "SoftmaxFusion",
    "StackingFusion",
    "average_ranks",
    "build_candidates",
    "evaluate_formula",
    "finalize_scores",
    "make_fusion",
    "ndcg_at_k",
    "ndcg_per_user",
    "normalize_scores",
    "ordinal_ranks",
    "parse_formula",
    "rrf_scores",
    "source_ranks",
    "valid_mask",
]
