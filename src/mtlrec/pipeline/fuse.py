"""``mtlrec fuse`` / ``mtlrec recommend``: a trained run + a fusion config -> the cascade.

:func:`fuse_run` fits the retrievers on the run's training interactions, fits the fusion
on the validation split only, evaluates the cascade on validation and test with the same
full-ranking evaluator as every other model (plus retrieval recall@N and beyond-accuracy
metrics), and writes ``RUN_DIR/fusion/``:

- ``fusion.yaml``   the resolved fusion config,
- ``retrievers/<name>.npz``   each fitted retriever (:meth:`Recommender.save`),
- ``fusion.json``   the fitted fusion (:meth:`Fusion.save`),
- ``results.json``  the metrics.

:func:`load_fused_run` reads it all back, and :func:`recommend_rows` explains one user's list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rich.console import Console

from mtlrec.baselines.base import Recommender, make_baseline
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.fusion import FusionConfig
from mtlrec.data.examples import EntityData
from mtlrec.data.fetch import FetchSettings
from mtlrec.fusion.base import Fusion, make_fusion
from mtlrec.fusion.cascade import Cascade, HeadScorer
from mtlrec.fusion.rerank import MMRReranker, category_vectors
from mtlrec.models.multitask import MultiTaskModel
from mtlrec.pipeline.item_content import item_content_embeddings, item_content_texts
from mtlrec.pipeline.ranking_data import RankingData, evaluate_ranking, ranking_data
from mtlrec.training.evaluate import SCORABLE_KINDS, pair_scores
from mtlrec.training.experiment import build_model, load_config_file
from mtlrec.training.run_data import RunData, load_run_data

FUSION_DIR = "fusion"


@dataclass
class TrainedRun:
    """A ``mtlrec train`` run loaded back: config, data (same split) and model."""

    run_dir: Path
    config: ExperimentConfig
    data: RunData
    model: MultiTaskModel
    ranking: RankingData
    settings: FetchSettings
    _embeddings: np.ndarray | None = None

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
    model = build_model(config, data)
    model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu"))
    return trained_run(run_dir, config, data, model, settings)


def trained_run(
    run_dir: Path,
    config: ExperimentConfig,
    data: RunData,
    model: MultiTaskModel,
    settings: FetchSettings,
) -> TrainedRun:
    """A :class:`TrainedRun` from parts already in memory (a model just trained)."""
    model.eval()
    ranking = ranking_data(data.examples, len(data.entities.user_ids), len(data.entities.item_ids))
    return TrainedRun(run_dir, config, data, model, ranking, settings)


# ---------------------------------------------------------------------- item side information
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


# ---------------------------------------------------------------------- building
def fit_retrievers(
    fusion_config: FusionConfig, run: TrainedRun, console: Console | None = None
) -> dict[str, Recommender]:
    """Each configured retriever fitted on the run's training interactions."""
    retrievers: dict[str, Recommender] = {}
    for name, spec in fusion_config.retrievers.items():
        start = time.perf_counter()
        model = make_baseline(spec.baseline, **spec.params)
        retrievers[name] = model.fit(run.ranking.train, item_features_for(model, run))
        if console is not None:
            console.print(
                f"fitted retriever {name} ({spec.baseline}) in {time.perf_counter() - start:.1f}s"
            )
    return retrievers


def ranking_tasks(model: MultiTaskModel, tasks: Sequence[str] | None) -> list[str]:
    """The heads used as fusion sources: ``tasks`` (checked) or every head with one score per
    (user, item) pair (binary, regression, multiclass; not item-attribute tasks)."""
    if tasks is not None:
        unknown = [t for t in tasks if t not in model.specs]
        if unknown:
            raise ValueError(f"tasks {unknown} are not heads of the model: {sorted(model.specs)}")
        bad = [t for t in tasks if model.specs[t].kind not in SCORABLE_KINDS]
        if bad:
            raise ValueError(f"tasks {bad} give no score per (user, item) pair")
        return list(tasks)
    return [
        name
        for name, spec in model.specs.items()
        if spec.kind in SCORABLE_KINDS and spec.level == "interaction"
    ]


def model_head_scorer(run: TrainedRun, tasks: Sequence[str]) -> HeadScorer:
    """The run's multi-task heads as a :data:`HeadScorer` over (user row, item row) pairs."""
    return head_scorer(run.model, run.data.entities, tasks, run.config.training.device)


def head_scorer(
    model: MultiTaskModel, entities: EntityData, tasks: Sequence[str], device: str = "cpu"
) -> HeadScorer:
    """``model``'s heads ``tasks`` as a :data:`HeadScorer`: ``(users (P,), items (P,))`` rows
    -> ``{task: (P,) float32}`` head values (:func:`~mtlrec.training.evaluate.head_value`)."""

    def score(users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        out = pair_scores(
            model,
            entities,
            torch.from_numpy(np.asarray(users, dtype=np.int64)),
            torch.from_numpy(np.asarray(items, dtype=np.int64)),
            tasks,
            device,
        )
        return {t: v.numpy().astype(np.float32) for t, v in out.items()}

    return score


def full_head_scores(
    run: TrainedRun, tasks: Sequence[str], users: np.ndarray, chunk: int = 64
) -> dict[str, np.ndarray]:
    """Every task's head value for ``users`` ``(b,)`` over ALL items: ``(b, n_items)`` each."""
    scorer = model_head_scorer(run, tasks)
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
) -> Cascade:
    """The cascade of ``fusion_config`` over the run's model and fitted ``retrievers``."""
    return cascade_from_parts(
        fusion_config,
        run.model,
        run.data.entities,
        retrievers,
        fusion,
        item_vectors=rerank_vectors(fusion_config, run),
        item_popularity=run.ranking.item_popularity,
        user_activity=run.ranking.user_activity,
        device=run.config.training.device,
    )


def cascade_from_parts(
    fusion_config: FusionConfig,
    model: MultiTaskModel,
    entities: EntityData,
    retrievers: Mapping[str, Recommender],
    fusion: Fusion,
    *,
    item_vectors: np.ndarray | None,
    item_popularity: np.ndarray,
    user_activity: np.ndarray,
    device: str = "cpu",
) -> Cascade:
    """The cascade of ``fusion_config`` from its parts, with no dataset at hand (a loaded
    artifact): ``item_vectors`` ``(n_items, D)`` for MMR (None without re-ranking),
    ``item_popularity`` ``(n_items,)`` and ``user_activity`` ``(n_users,)`` training counts."""
    tasks = ranking_tasks(model, fusion_config.tasks)
    rerank = fusion_config.rerank
    return Cascade(
        retrievers,
        fusion,
        head_scorer=head_scorer(model, entities, tasks, device) if tasks else None,
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


def fit_cascade(cascade: Cascade, ranking: RankingData) -> Cascade:
    """Fit the cascade's fusion on the validation split (validation users, train excluded)."""
    users = ranking.pairs["valid"].user_rows
    if users.size == 0:
        raise ValueError("the run has no validation interactions to fit the fusion on")
    cascade.fit(users, ranking.excluded("valid", users), ranking.relevant("valid", users))
    return cascade


# ---------------------------------------------------------------------- evaluation
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


# ---------------------------------------------------------------------- run folder
def fuse_run(
    run_dir: Path,
    fusion_config: FusionConfig,
    settings: FetchSettings,
    console: Console,
) -> dict[str, Any]:
    """Fit, evaluate and save the cascade of ``fusion_config`` beside the run in ``run_dir``."""
    start = time.perf_counter()
    run = load_trained_run(run_dir, settings, console)
    retrievers = fit_retrievers(fusion_config, run, console)
    fusion = make_fusion(fusion_config.fusion.name, **fusion_config.fusion.params)
    cascade = fit_cascade(build_cascade(fusion_config, run, retrievers, fusion), run.ranking)
    fitted_s = time.perf_counter() - start
    vectors = run.item_embeddings()
    results = {
        split: evaluate_cascade(cascade, run.ranking, split, fusion_config.ks, vectors)
        for split in ("valid", "test")
    }
    out = run_dir / FUSION_DIR
    (out / "retrievers").mkdir(parents=True, exist_ok=True)
    (out / "fusion.yaml").write_text(
        yaml.safe_dump(fusion_config.model_dump(mode="json"), sort_keys=False)
    )
    for name, model in retrievers.items():
        model.save(out / "retrievers" / f"{name}.npz")
    fusion.save(out / "fusion.json")
    payload = {
        "run": str(run_dir),
        "fusion": fusion_config.fusion.name,
        "weights": fusion.weights(),
        "sources": list(fusion.sources_),
        "fit_s": round(fitted_s, 2),
        "results": results,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=float) + "\n")
    return payload


@dataclass
class FusedRun:
    """A run with its fitted cascade, ready to recommend."""

    run: TrainedRun
    fusion_config: FusionConfig
    cascade: Cascade


def load_fused_run(run_dir: Path, settings: FetchSettings, console: Console) -> FusedRun:
    """Read back what :func:`fuse_run` wrote (and the run itself)."""
    folder = run_dir / FUSION_DIR
    if not (folder / "fusion.yaml").is_file():
        raise FileNotFoundError(
            f"{run_dir}: no {FUSION_DIR}/fusion.yaml; run 'mtlrec fuse --run {run_dir}' first"
        )
    fusion_config = FusionConfig.model_validate(
        yaml.safe_load((folder / "fusion.yaml").read_text())
    )
    run = load_trained_run(run_dir, settings, console)
    retrievers = {
        name: Recommender.load(folder / "retrievers" / f"{name}.npz")
        for name in fusion_config.retrievers
    }
    fusion = Fusion.load(folder / "fusion.json")
    return FusedRun(run, fusion_config, build_cascade(fusion_config, run, retrievers, fusion))


def recommend_rows(fused: FusedRun, user_id: str, k: int) -> list[dict[str, Any]]:
    """The final top-``k`` list of one user (an original user id) with, per item: its id and
    title, every source's score (multi-task heads and retrievers), the fused score, the
    retrievers that proposed it (with their ranks) and its fused rank before re-ranking."""
    entities = fused.run.data.entities
    try:
        row = entities.user_ids.index(user_id)
    except ValueError:
        raise KeyError(
            f"unknown user {user_id!r} (the run knows {len(entities.user_ids)} users)"
        ) from None
    users = np.array([row], dtype=np.int64)
    exclude = fused.run.ranking.excluded("test", users)  # everything train + valid showed
    out = fused.cascade.run(users, exclude, k)
    fused_order = np.argsort(-out.fused[0], kind="stable")
    fused_rank = np.empty_like(fused_order)
    fused_rank[fused_order] = np.arange(1, fused_order.size + 1)
    items = fused.run.data.dataset.tables["items"]
    titles = items["title"].to_list() if "title" in items.columns else [None] * items.height
    rows = []
    for position, item in enumerate(out.items[0]):
        if item < 0:
            continue
        rows.append(
            {
                "rank": position + 1,
                "item_id": entities.item_ids[item],
                "title": titles[item],
                "scores": {
                    name: float(matrix[0, item]) for name, matrix in out.inputs.scores.items()
                },
                "fused": float(out.fused[0, item]),
                "retrieved_by": out.candidates.retrieved_by(0, int(item)),
                "fused_rank": int(fused_rank[item]),
                "stage": "mmr" if out.reranked else "fusion",
            }
        )
    return rows
