"""Evaluating a trained model: per-task metrics on a split, and full-ranking top-K metrics.

Ranking scores *every* item of the catalogue for each test user with one task's output
(the ranking task), excludes the user's training items (and validation items when testing),
and reports HR, Recall, NDCG and MRR at K overall and for the warm / cold-item slices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from mtlrec.core.types import Predictions, TaskSpec
from mtlrec.data.examples import SPLITS, EntityData, ExampleSet
from mtlrec.evaluation import MultiTaskMetrics, RankingEvaluator
from mtlrec.evaluation.ranking import ScoreFn
from mtlrec.models.multitask import MultiTaskModel
from mtlrec.training.loader import NegativeConfig, concat, negative_examples

EVAL_NEGATIVE_SEED = 2_147_483_647
"""Fixed seed of the sampled evaluation negatives, so every model sees the same ones."""


@torch.inference_mode()
def predict(
    model: MultiTaskModel,
    features: Mapping[str, Tensor],
    batch_size: int = 8192,
    device: str = "cpu",
) -> Predictions:
    """Model outputs for every row of ``features`` (each ``(N, ...)``), in batches."""
    model.eval()
    n = int(next(iter(features.values())).shape[0])
    parts: dict[str, list[Tensor]] = {}
    for start in range(0, n, batch_size):
        chunk = {k: v[start : start + batch_size].to(device) for k, v in features.items()}
        for task, value in model(chunk).items():
            parts.setdefault(task, []).append(value.float().cpu())
    return {task: torch.cat(values) for task, values in parts.items()}


def evaluation_set(
    examples: ExampleSet, split: str, entities: EntityData, negatives: NegativeConfig | None
) -> ExampleSet:
    """The examples of ``split`` plus fixed sampled negatives for implicit tasks, if any."""
    subset = examples.subset(split)
    if negatives is None or not negatives.per_positive or not len(subset):
        return subset
    drawn = negative_examples(
        subset,
        len(entities.item_ids),
        entities.item_vocab_index,
        negatives,
        seed=EVAL_NEGATIVE_SEED,
        known=examples,
    )
    return concat(subset, drawn)


def task_metrics(
    model: MultiTaskModel,
    examples: ExampleSet,
    specs: Mapping[str, TaskSpec],
    batch_size: int = 8192,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """Per-task metrics on ``examples``; tasks without known labels there are left out."""
    predictions = predict(model, examples.features, batch_size, device)
    tracked = list(specs.values())
    metrics = MultiTaskMetrics(tracked)
    labels = {s.name: examples.labels[s.name] for s in tracked}
    masks = {s.name: examples.masks[s.name] for s in tracked}
    metrics.update({s.name: predictions[s.name] for s in tracked}, labels, masks)
    return {task: values for task, values in metrics.compute().items() if values.get("n", 0)}


def item_scores(
    model: MultiTaskModel, task: str, entities: EntityData, device: str = "cpu"
) -> ScoreFn:
    """A ``score_fn(user_rows (b,)) -> (b, N_items)`` scoring every item with ``task``."""
    n_items = len(entities.item_ids)
    item_rows = torch.arange(n_items)
    item_idx = entities.item_vocab_index

    @torch.inference_mode()
    def score(user_rows: Tensor) -> Tensor:
        model.eval()
        b = int(user_rows.shape[0])
        users = user_rows.repeat_interleave(n_items)  # (b * I,)
        features = {
            "user_row": users,
            "user_idx": entities.user_vocab_index[users],
            "item_row": item_rows.repeat(b),
            "item_idx": item_idx.repeat(b),
        }
        for name, table in entities.user_dense.items():  # per-user stand-ins (B*I, D)
            features[name] = table[users]
        out = predict(model, features, batch_size=65536, device=device)[task]
        return out.view(b, n_items)

    return score


def ranking_metrics(
    model: MultiTaskModel,
    examples: ExampleSet,
    entities: EntityData,
    task: str,
    split: str,
    ks: Sequence[int] = (5, 10, 20),
    chunk_size: int = 128,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """Full ranking over all items for the users of ``split``; slices ``all``/``warm``/``cold``.

    Relevant items are the user's examples in ``split``; excluded are the user's examples in
    the earlier splits (train, and valid when ``split`` is test).
    """
    at = SPLITS.index(split)
    test = examples.subset(split)
    seen = examples.select(examples.split < at)
    evaluator = RankingEvaluator(
        item_scores(model, task, entities, device),
        (test.features["user_row"].numpy(), test.features["item_row"].numpy()),
        (seen.features["user_row"].numpy(), seen.features["item_row"].numpy()),
        cold=test.cold_item.numpy(),
        n_items=len(entities.item_ids),
        ks=tuple(ks),
        chunk_size=chunk_size,
    )
    return evaluator.evaluate()


def flatten(results: Mapping[str, Mapping[str, float]], prefix: str) -> dict[str, float]:
    """``{"like": {"auc": .8}}`` -> ``{"<prefix>/like/auc": .8}``."""
    return {
        f"{prefix}/{row}/{metric}": float(value)
        for row, values in results.items()
        for metric, value in values.items()
    }
