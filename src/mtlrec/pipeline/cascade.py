"""The cascade of a trained run: retrievers fitted on its training interactions, the
fusion fitted on its validation split only, and the cascade's evaluation with the one
ranking protocol (plus the retrieval stage's candidate recall)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from rich.console import Console

from mtlrec.baselines.base import Recommender, make_baseline
from mtlrec.config.fusion import FusionConfig
from mtlrec.evaluation.protocol import RankingData, evaluate_ranking
from mtlrec.fusion.assemble import cascade_from_parts
from mtlrec.fusion.base import Fusion
from mtlrec.fusion.cascade import Cascade
from mtlrec.pipeline.trained_run import TrainedRun, item_features_for, rerank_vectors


def fit_retrievers(
    fusion_config: FusionConfig, run: TrainedRun, console: Console | None = None
) -> dict[str, Recommender]:
    """Each configured retriever fitted on the run's training interactions."""
    retrievers: dict[str, Recommender] = {}
    for name, spec in fusion_config.retrievers.items():
        start = time.perf_counter()
        model = make_baseline(spec.baseline, **spec.params)
        # a spinner while it fits (minutes for the slow ones)
        status = console.status(f"fitting retriever {name} ({spec.baseline})") if console else None
        with status or nullcontext():
            retrievers[name] = model.fit(run.ranking.train, item_features_for(model, run))
        if console is not None:
            console.print(
                f"fitted retriever {name} ({spec.baseline}) in {time.perf_counter() - start:.1f}s"
            )
    return retrievers


def full_head_scores(
    run: TrainedRun, tasks: Sequence[str], users: np.ndarray, chunk: int = 64, split: str = "test"
) -> dict[str, np.ndarray]:
    """Every task's head value for ``users`` ``(b,)`` over ALL items: ``(b, n_items)`` each
    (the sequential model reads the histories known before ``split``)."""
    scorer = run.head_scorer(tasks, split)
    n_items = run.ranking.n_items
    out = {t: np.empty((len(users), n_items), dtype=np.float32) for t in tasks}
    for start in range(0, len(users), chunk):
        rows = users[start : start + chunk]
        heads = scorer(np.repeat(rows, n_items), np.tile(np.arange(n_items), len(rows)))
        for task in tasks:
            out[task][start : start + len(rows)] = heads[task].reshape(len(rows), n_items)
    return out


def build_cascade(
    fusion_config: FusionConfig,
    run: TrainedRun,
    retrievers: dict[str, Recommender],
    fusion: Fusion,
    split: str = "test",
) -> Cascade:
    """The cascade of ``fusion_config`` over the run's model and fitted ``retrievers``,
    scoring users as known before ``split`` (``valid`` to fit the fusion; ``test`` to
    evaluate and to recommend: see :meth:`TrainedRun.head_scorer`); the retrievers,
    fitted on the training interactions, read each user's interactions of the earlier
    splits too (:meth:`Recommender.with_history`)."""
    tasks = run.ranking_tasks(fusion_config.tasks)
    known = run.ranking.seen[split]
    return cascade_from_parts(
        fusion_config,
        run.head_scorer(tasks, split),
        tasks,
        {name: model.with_history(known) for name, model in retrievers.items()},
        fusion,
        item_vectors=rerank_vectors(fusion_config, run),
        item_popularity=run.ranking.item_popularity,
        user_activity=run.ranking.user_activity,
    )


def fit_cascade(cascade: Cascade, ranking: RankingData) -> Cascade:
    """Fit the cascade's fusion on the validation split (validation users, train excluded)."""
    users = ranking.pairs["valid"].user_rows
    if users.size == 0:
        raise ValueError("the run has no validation interactions to fit the fusion on")
    cascade.fit(users, ranking.excluded("valid", users), ranking.relevant("valid", users))
    return cascade


def evaluate_cascade(
    cascade: Cascade,
    ranking: RankingData,
    split: str,
    ks: Sequence[int],
    diversity_vectors: Any = None,
    chunk: int = 256,
) -> dict[str, dict[str, float]]:
    """Full-ranking metrics of the cascade on ``split`` (``all``/``warm``/``cold`` slices with
    beyond-accuracy metrics) and a ``retrieval`` row: ``candidate_recall@NxR`` (share of the
    relevant items in the union of ``R`` retrievers' ``N`` candidates) and ``candidates@NxR``
    (mean size of that union per user)."""
    recalls: list[np.ndarray] = []
    sizes: list[np.ndarray] = []

    def score(user_idx: torch.Tensor) -> torch.Tensor:
        users = user_idx.cpu().numpy()
        exclude = ranking.excluded(split, users)
        out = cascade.run(users, exclude, max(ks))
        relevant = ranking.relevant(split, users) & ~exclude
        n_rel = relevant.sum(axis=1)
        hit = (relevant & out.candidates.mask).sum(axis=1)
        recalls.append(hit[n_rel > 0] / n_rel[n_rel > 0])
        sizes.append((out.candidates.mask & ~exclude).sum(axis=1))
        return torch.from_numpy(out.ranking_scores())

    results = evaluate_ranking(ranking, split, score, ks, diversity_vectors, chunk)
    tag = f"{cascade.candidates}x{len(cascade.retrievers)}"
    results["retrieval"] = {
        "n_users": float(sum(r.size for r in recalls)),
        f"candidate_recall@{tag}": float(np.concatenate(recalls).mean()),
        f"candidates@{tag}": float(np.concatenate(sizes).mean()),
    }
    return results
