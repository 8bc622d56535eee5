"""Evaluation: pure metric functions, per-task accumulators, full-ranking top-K metrics and
result reports."""

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
from mtlrec.evaluation.ranking import (
    RankingEvaluator,
    TopKMetrics,
    UserItems,
    merge_slices,
    rank_metrics,
    sampled_rank_metrics,
    scores_from_matrix,
)
from mtlrec.evaluation.report import load_results, print_results, results_to_json

__all__ = [
    "TASK_METRICS",
    "BinaryMetrics",
    "MultiTaskMetrics",
    "MulticlassMetrics",
    "MultilabelMetrics",
    "RankingEvaluator",
    "RegressionMetrics",
    "TaskMetrics",
    "TopKMetrics",
    "UserItems",
    "load_results",
    "make_task_metrics",
    "merge_slices",
    "print_results",
    "rank_metrics",
    "results_to_json",
    "sampled_rank_metrics",
    "scores_from_matrix",
]
