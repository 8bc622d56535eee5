"""``mtlrec fuse``: a trained run + a fusion config -> the cascade.

:func:`fuse_run` fits the retrievers on the run's training interactions, fits the fusion
on the validation split only, evaluates the cascade on validation and test with the same
full-ranking evaluator as every other model (plus retrieval recall@N and beyond-accuracy
metrics), and writes ``RUN_DIR/fusion/``:

- ``fusion.yaml``   the resolved fusion config,
- ``retrievers/<name>.npz``   each fitted retriever (:meth:`Recommender.save`),
- ``fusion.json``   the fitted fusion (:meth:`Fusion.save`),
- ``results.json``  the metrics.

:func:`load_fused_run` reads it all back (:mod:`mtlrec.pipeline.recommend` explains one
user's list).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from mtlrec.baselines.base import Recommender
from mtlrec.config.fusion import FusionConfig
from mtlrec.data.fetch import FetchSettings
from mtlrec.fusion.assemble import FUSION_DIR
from mtlrec.fusion.base import Fusion, make_fusion
from mtlrec.fusion.cascade import Cascade
from mtlrec.pipeline.cascade import build_cascade, evaluate_cascade, fit_cascade, fit_retrievers
from mtlrec.pipeline.experiment import load_config_file
from mtlrec.pipeline.trained_run import TrainedRun, load_trained_run


def fuse_run(
    run_dir: Path,
    fusion_config: FusionConfig,
    settings: FetchSettings,
    console: Console,
) -> dict[str, Any]:
    """Fit, evaluate and save the cascade of ``fusion_config`` beside the run in ``run_dir``."""
    start = time.perf_counter()
    check_fusion_tasks(run_dir, fusion_config)
    run = load_trained_run(run_dir, settings, console)
    run.ranking_tasks(fusion_config.tasks)  # every task a source, before any fitting
    retrievers = fit_retrievers(fusion_config, run, console)
    fusion = make_fusion(fusion_config.fusion.name, **fusion_config.fusion.params)
    # fitted on validation with the users as known before it; the same fitted fusion
    # then ranks each split with the users as known before that split
    fit_cascade(build_cascade(fusion_config, run, retrievers, fusion, "valid"), run.ranking)
    fitted_s = time.perf_counter() - start
    vectors = run.item_embeddings()
    results = {
        split: evaluate_cascade(
            build_cascade(fusion_config, run, retrievers, fusion, split),
            run.ranking,
            split,
            fusion_config.ks,
            vectors,
        )
        for split in ("valid", "test")
    }
    out = run_dir / FUSION_DIR
    (out / "retrievers").mkdir(parents=True, exist_ok=True)
    (out / "fusion.yaml").write_text(
        yaml.safe_dump(fusion_config.model_dump(mode="json"), sort_keys=False)
    )
    for name, model in retrievers.items():  # with what serving knows: train + valid
        model.with_history(run.ranking.seen["test"]).save(out / "retrievers" / f"{name}.npz")
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


def check_fusion_tasks(run_dir: Path, fusion_config: FusionConfig) -> None:
    """Fail before any data is read when the fusion config names tasks the run's config
    does not train (a run whose config leaves its tasks to the dataset is checked once its
    model is loaded)."""
    path = run_dir / "config.yaml"
    if fusion_config.tasks is None or not path.is_file():
        return
    trained = load_config_file(run_dir).tasks
    if trained is None:
        return
    unknown = [t for t in fusion_config.tasks if t not in trained]
    if unknown:
        raise ValueError(
            f"the fusion config's tasks {unknown} are not tasks of the run in {run_dir} "
            f"(its tasks: {', '.join(trained)}); name some of those, or leave 'tasks' out "
            "to use every head that scores a (user, item) pair"
        )


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
