"""A ``mtlrec train`` run loaded back for the pipeline: its config, data (same split),
model and ranking data, and the item side information retrievers and re-ranking read.

Both architectures load: the pointwise multi-task model scores a (user, item) pair from
the user's id and profile; the sequential model from what is known of the user's history
at the split being scored (training interactions for validation, train + valid for test
and for recommending), so the fusion fitted on validation never sees a validation item
in the history it scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from mtlrec.baselines.base import Recommender
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.fusion import FusionConfig
from mtlrec.core.types import HeadScorer
from mtlrec.data.examples import SPLITS
from mtlrec.data.fetch import FetchSettings
from mtlrec.evaluation.protocol import RankingData, ranking_data
from mtlrec.fusion.rerank import category_vectors
from mtlrec.models.architectures import Architecture
from mtlrec.models.multitask import TaskModel
from mtlrec.models.sequential_factory import (
    model_head_scorer,
    model_ranking_tasks,
    sequential_params,
)
from mtlrec.pipeline.experiment import build_run_model, check_prepared_record, load_config_file
from mtlrec.pipeline.item_content import item_content_embeddings, item_content_texts
from mtlrec.pipeline.run_data import RunData, load_run_data


@dataclass
class TrainedRun:
    """A ``mtlrec train`` run loaded back: config, data (same split) and model."""

    run_dir: Path
    config: ExperimentConfig
    data: RunData
    model: TaskModel
    ranking: RankingData
    settings: FetchSettings
    _embeddings: np.ndarray | None = None
    _histories: dict[int, dict[int, np.ndarray]] | None = None

    def ranking_tasks(self, tasks: Sequence[str] | None) -> list[str]:
        """The model's tasks used as fusion sources: ``tasks`` (checked) or all that give
        one number per (user, item) pair."""
        return model_ranking_tasks(self.model, tasks)

    def histories(self, split: str = "test") -> dict[int, np.ndarray]:
        """Each user's history as known before ``split`` (item rows, oldest first): what
        the sequential model encodes a user from (see the module)."""
        from mtlrec.pipeline.sequential import SequentialData

        if self._histories is None:
            params = sequential_params(self.config)
            self._histories = SequentialData.of(self.data, params).histories
        return self._histories[SPLITS.index(split)]

    def head_scorer(self, tasks: Sequence[str], split: str = "test") -> HeadScorer:
        """The model's values of ``tasks`` per (user row, item row) pair, as known before
        ``split`` (``test``: everything train and valid showed, as when recommending)."""
        return model_head_scorer(
            self.model,
            self.config,
            self.data.entities,
            lambda: self.histories(split),
            tasks,
            self.config.training.device,
        )

    def item_texts(self) -> list[str]:
        """One content text per item row (see :mod:`mtlrec.pipeline.item_content`)."""
        return item_content_texts(self.data)

    def item_embeddings(self) -> np.ndarray:
        """LM item embeddings ``(n_items, D)`` that tell items apart (computed once)."""
        if self._embeddings is None:
            self._embeddings = item_content_embeddings(self.config, self.data, self.settings)
        return self._embeddings


def load_trained_run(run_dir: Path, settings: FetchSettings, console: Console) -> TrainedRun:
    """Rebuild a run's data and model from ``run_dir`` (``config.yaml`` + ``model.pt``)."""
    if not (run_dir / "model.pt").is_file():
        raise FileNotFoundError(f"{run_dir}: no model.pt; is this a 'mtlrec train' run?")
    config = load_config_file(run_dir)
    data = load_run_data(config, settings, console)
    check_prepared_record(data, run_dir, console)
    model: TaskModel
    if Architecture.of(config).sequential:
        from mtlrec.pipeline.sequential import build_sequential_model

        model = build_sequential_model(config, data)
    else:
        model = build_run_model(config, data)
    model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu"))
    return trained_run(run_dir, config, data, model, settings)


def trained_run(
    run_dir: Path,
    config: ExperimentConfig,
    data: RunData,
    model: TaskModel,
    settings: FetchSettings,
) -> TrainedRun:
    """A :class:`TrainedRun` from parts already in memory (a model just trained)."""
    model.eval()
    ranking = ranking_data(data.examples, len(data.entities.user_ids), len(data.entities.item_ids))
    return TrainedRun(run_dir, config, data, model, ranking, settings)


def item_features_for(model: Recommender, run: TrainedRun) -> Any:
    """What ``model.fit`` needs as item features for this run (texts, embeddings, None)."""
    if model.needs == "texts":
        return run.item_texts()
    if model.needs == "embeddings":
        return run.item_embeddings()
    return None


def rerank_vectors(fusion_config: FusionConfig, run: TrainedRun) -> Any:
    """Item vectors of the MMR stage: LM embeddings or multi-hot categories ``(n_items, D)``."""
    rerank = fusion_config.rerank
    if rerank is None:
        return None
    if rerank.vectors == "lm":
        return run.item_embeddings()
    items = run.data.dataset.tables["items"]
    column = rerank.category_column
    if column not in items.columns:
        raise ValueError(
            f"rerank.category_column {column!r} is not an items column: {items.columns}"
        )
    return category_vectors(items[column].to_list())
