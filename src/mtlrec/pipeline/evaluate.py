"""Evaluating a run's model: per-task metrics (all examples and the cold-item slice) on
each split with fixed sampled negatives for implicit tasks, and full ranking through the
one ranking protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.data.examples import EntityData, ExampleSet
from mtlrec.evaluation.model_metrics import ranking_metrics, task_metrics
from mtlrec.evaluation.protocol import RankingData, ranking_data
from mtlrec.models.multitask import MultiTaskModel
from mtlrec.pipeline.run_data import RunData
from mtlrec.training.loader import NegativeConfig, concat, negative_examples

EVAL_NEGATIVE_SEED = 2_147_483_647
"""Fixed seed of the sampled evaluation negatives, so every model sees the same ones."""


def negative_config(config: ExperimentConfig, per_positive: int) -> NegativeConfig | None:
    """Sampled negatives for tasks with a ``negative_label`` (None when there are none)."""
    labels = {
        n: t.negative_label for n, t in (config.tasks or {}).items() if t.negative_label is not None
    }
    if not labels or not per_positive:
        return None
    return NegativeConfig(per_positive, config.training.negatives.strategy, labels)


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


def evaluation_sets(
    config: ExperimentConfig, data: RunData, splits: tuple[str, ...]
) -> dict[str, ExampleSet]:
    """Examples of each split plus their fixed sampled negatives for implicit tasks."""
    negatives = negative_config(config, config.training.eval_negatives)
    return {s: evaluation_set(data.examples, s, data.entities, negatives) for s in splits}


def run_ranking_data(data: RunData) -> RankingData | None:
    """The run's :class:`RankingData` (None unless its examples are interactions)."""
    if data.examples.unit != "interaction":
        return None
    return ranking_data(data.examples, len(data.entities.user_ids), len(data.entities.item_ids))


def evaluate_run(
    config: ExperimentConfig,
    data: RunData,
    model: MultiTaskModel,
    splits: tuple[str, ...] = ("valid", "test"),
    ranking: bool = True,
    sets: Mapping[str, ExampleSet] | None = None,
    ranking_inputs: RankingData | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Per-task metrics (all examples and the cold-item slice) and full ranking per split.

    ``sets`` may hold the evaluation sets already built by :func:`evaluation_sets` (the
    validation set is evaluated every epoch; its fixed negatives are drawn once), and
    ``ranking_inputs`` the run's :class:`RankingData` (built here when needed).
    ``progress`` shows a rich progress bar over each split's users during full ranking.
    """
    sets = sets if sets is not None else evaluation_sets(config, data, splits)
    device, batch = config.training.device, config.evaluation.batch_size
    ranked = ranking and config.evaluation.ranking_task is not None
    if ranked and ranking_inputs is None:
        ranking_inputs = run_ranking_data(data)
    results: dict[str, Any] = {}
    for split in splits:
        subset = sets[split]
        rows: dict[str, dict[str, float]] = task_metrics(model, subset, data.specs, batch, device)
        cold = subset.select(subset.cold_item)
        if len(cold):
            rows.update(
                {
                    f"{t} (cold items)": m
                    for t, m in task_metrics(model, cold, data.specs, batch, device).items()
                }
            )
        if ranked:
            assert config.evaluation.ranking_task is not None
            slices = ranking_metrics(
                model,
                data.examples,
                data.entities,
                config.evaluation.ranking_task,
                split,
                config.evaluation.ks,
                device=device,
                ranking=ranking_inputs,
                progress=progress,
            )
            rows.update({f"ranking ({name})": values for name, values in slices.items()})
        results[split] = rows
    return results
