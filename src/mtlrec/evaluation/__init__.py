"""Evaluation: pure metric functions, per-task accumulators, full-ranking top-K metrics,
beyond-accuracy metrics (coverage, diversity, novelty, popularity) and result reports."""

from mtlrec.evaluation.accumulators import (
    TASK_METRICS,
    BinaryMetrics,
    MulticlassMetrics,
    MultilabelMetrics,
    MultiTaskMetrics,
    RegressionMetrics,
    TaskMetrics,
    make_task_metrics,
)
from mtlrec.evaluation.beyond import (
    BeyondAccuracy,
    average_popularity,
    catalog_coverage,
    intra_list_diversity,
    novelty,
    popularity_counts,
)
from mtlrec.evaluation.ranking import (
    RankedChunk,
    RankingEvaluator,
    TopKMetrics,
    UserItems,
    merge_slices,
    rank_chunk,
    rank_metrics,
    sampled_rank_metrics,
    scores_from_matrix,
)
from mtlrec.evaluation.results import load_results, print_results, results_to_json

__all__ = [
    "TASK_METRICS",
    "BeyondAccuracy",
    "BinaryMetrics",
    "MultiTaskMetrics",
    "MulticlassMetrics",
    "MultilabelMetrics",
    "RankedChunk",
    "RankingEvaluator",
    "RegressionMetrics",
    "TaskMetrics",
    "TopKMetrics",
    "UserItems",
    "average_popularity",
    "catalog_coverage",
    "intra_list_diversity",
    "load_results",
    "make_task_metrics",
    "merge_slices",
    "novelty",
    "popularity_counts",
    "print_results",
    "rank_chunk",
    "rank_metrics",
    "results_to_json",
    "sampled_rank_metrics",
    "scores_from_matrix",
]
