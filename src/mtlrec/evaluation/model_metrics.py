"""A multi-task model's metrics: per-task metrics on a set of examples, and full ranking
through the one ranking protocol (:mod:`mtlrec.evaluation.protocol`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mtlrec.core.types import TaskSpec
from mtlrec.data.examples import EntityData, ExampleSet
from mtlrec.evaluation.accumulators import MultiTaskMetrics
from mtlrec.evaluation.protocol import RankingData, evaluate_ranking, ranking_data
from mtlrec.models.multitask import MultiTaskModel
from mtlrec.models.scoring import item_scores, predict


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


def ranking_metrics(
    model: MultiTaskModel,
    examples: ExampleSet,
    entities: EntityData,
    task: str,
    split: str,
    ks: Sequence[int] = (5, 10, 20),
    chunk_size: int = 128,
    device: str = "cpu",
    ranking: RankingData | None = None,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Full ranking over all items with ``task``'s raw output for the users of ``split``:
    ``all``/``warm``/``cold`` slices (see :func:`~mtlrec.evaluation.protocol.evaluate_ranking`:
    earlier splits' items excluded; intra-list diversity over the LM item embeddings when the
    run has them). ``ranking`` may hold the run's :class:`RankingData` already built.

    Every ``(user, item)`` pair goes through the network (:func:`item_scores`), ``chunk_size``
    users at a time: memory ``O(chunk_size * n_items)``, time ``O(n_users * n_items)``
    forward passes. ``progress`` shows a rich progress bar over the users."""
    if ranking is None:
        ranking = ranking_data(examples, len(entities.user_ids), len(entities.item_ids))
    vectors = entities.tables.get("items.text")
    return evaluate_ranking(
        ranking,
        split,
        item_scores(model, task, entities, device),
        ks,
        diversity_vectors=None if vectors is None else vectors.numpy(),
        chunk=chunk_size,
        progress=progress,
    )


def flatten(results: Mapping[str, Mapping[str, float]], prefix: str) -> dict[str, float]:
    """``{"like": {"auc": .8}}`` -> ``{"<prefix>/like/auc": .8}``."""
    return {
        f"{prefix}/{row}/{metric}": float(value)
        for row, values in results.items()
        for metric, value in values.items()
    }
