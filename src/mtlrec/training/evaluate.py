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
from mtlrec.evaluation.beyond import popularity_counts
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


def pair_features(entities: EntityData, user_rows: Tensor, item_rows: Tensor) -> dict[str, Tensor]:
    """Model inputs for parallel ``(P,)`` user and item rows (ids, per-user dense stand-ins)."""
    features = {
        "user_row": user_rows,
        "user_idx": entities.user_vocab_index[user_rows],
        "item_row": item_rows,
        "item_idx": entities.item_vocab_index[item_rows],
    }
    for name, table in entities.user_dense.items():  # per-user stand-ins (P, D)
        features[name] = table[user_rows]
    return features


SCORABLE_KINDS: tuple[str, ...] = ("binary", "regression", "multiclass")
"""Task kinds that give one number per (user, item): see :func:`head_value`."""


def head_value(spec: TaskSpec, output: Tensor) -> Tensor:
    """One number per example from a head's output ``(P,)`` or ``(P, C)``: the probability
    for binary tasks, the prediction for regression, and for multiclass the expected class
    position scaled to ``[0, 1]`` (``sum_c p_c * c / (C - 1)``: for ordered classes such as
    negative / neutral / positive sentiment, how positive)."""
    if spec.kind == "binary":
        return torch.sigmoid(output.reshape(-1))
    if spec.kind == "regression":
        return output.reshape(-1)
    if spec.kind == "multiclass":
        n = output.shape[-1]
        position = torch.arange(n, dtype=output.dtype, device=output.device) / max(n - 1, 1)
        return torch.softmax(output, dim=-1) @ position
    raise ValueError(f"task {spec.name!r} ({spec.kind}) gives no score per (user, item)")


@torch.inference_mode()
def pair_scores(
    model: MultiTaskModel,
    entities: EntityData,
    user_rows: Tensor,
    item_rows: Tensor,
    tasks: Sequence[str],
    device: str = "cpu",
    batch_size: int = 65536,
) -> dict[str, Tensor]:
    """:func:`head_value` of each task in ``tasks`` for ``(P,)`` user/item row pairs: ``(P,)``."""
    model.eval()
    outputs = predict(model, pair_features(entities, user_rows, item_rows), batch_size, device)
    return {task: head_value(model.specs[task], outputs[task]) for task in tasks}


def item_scores(
    model: MultiTaskModel, task: str, entities: EntityData, device: str = "cpu"
) -> ScoreFn:
    """A ``score_fn(user_rows (b,)) -> (b, N_items)`` scoring every item with ``task``'s raw
    output (logit for binary tasks)."""
    n_items = len(entities.item_ids)
    item_rows = torch.arange(n_items)

    @torch.inference_mode()
    def score(user_rows: Tensor) -> Tensor:
        model.eval()
        b = int(user_rows.shape[0])
        features = pair_features(
            entities, user_rows.repeat_interleave(n_items), item_rows.repeat(b)
        )
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
    the earlier splits (train, and valid when ``split`` is test). Each slice also reports
    coverage, novelty and average popularity (training counts) and, when the run has LM
    item embeddings, intra-list diversity over them.
    """
    at = SPLITS.index(split)
    test = examples.subset(split)
    seen = examples.select(examples.split < at)
    n_items = len(entities.item_ids)
    train_items = examples.subset("train").features["item_row"]
    vectors = entities.tables.get("items.text")
    evaluator = RankingEvaluator(
        item_scores(model, task, entities, device),
        (test.features["user_row"].numpy(), test.features["item_row"].numpy()),
        (seen.features["user_row"].numpy(), seen.features["item_row"].numpy()),
        cold=test.cold_item.numpy(),
        n_items=n_items,
        ks=tuple(ks),
        chunk_size=chunk_size,
        item_popularity=popularity_counts(train_items, n_items),
        item_vectors=None if vectors is None else vectors.numpy(),
        popularity_users=len(entities.user_ids),
    )
    return evaluator.evaluate()


def flatten(results: Mapping[str, Mapping[str, float]], prefix: str) -> dict[str, float]:
    """``{"like": {"auc": .8}}`` -> ``{"<prefix>/like/auc": .8}``."""
    return {
        f"{prefix}/{row}/{metric}": float(value)
        for row, values in results.items()
        for metric, value in values.items()
    }
