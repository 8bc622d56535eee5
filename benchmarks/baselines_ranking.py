"""CF and content baselines beside the multi-task model, same split, same full-ranking evaluator.

For a preset (default: MovieLens-100K), fits every registered baseline on the training
interactions and ranks ALL items for each test user (training and validation items
excluded), with the same :class:`RankingEvaluator` that scores the multi-task model; the
MTL row comes from training the preset once. Results go to ``--out`` (JSON).

    python benchmarks/baselines_ranking.py --config configs/ml-100k.yaml
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from mtlrec.baselines import BASELINES, make_baseline
from mtlrec.config.experiment import ExperimentConfig
from mtlrec.config.loading import load_config
from mtlrec.data.fetch import FetchSettings
from mtlrec.evaluation.model_metrics import ranking_metrics
from mtlrec.evaluation.protocol import evaluate_ranking, ranking_data
from mtlrec.pipeline.experiment import train_model
from mtlrec.pipeline.item_content import item_content_embeddings, item_content_texts
from mtlrec.pipeline.run_data import load_run_data

ROOT = Path(__file__).resolve().parents[1]
PARAMS: dict[str, dict[str, Any]] = {
    "als": {"factors": 64, "iterations": 15, "regularization": 0.05},
    "bpr": {"factors": 64, "iterations": 100},
    "item_knn": {"neighbours": 100, "shrink": 10.0},
    "user_knn": {"neighbours": 100, "shrink": 10.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/ml-100k.yaml")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/baselines_ranking_ml-100k.json"
    )
    parser.add_argument("--mirror", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cache-dir", type=Path, default=FetchSettings().cache_dir)
    args = parser.parse_args()
    console = Console()
    config = load_config(ExperimentConfig, args.config)
    settings = FetchSettings(cache_dir=args.cache_dir, mirrors=(args.mirror,))
    data = load_run_data(config, settings, console)
    examples = data.examples
    ranking = ranking_data(examples, len(data.entities.user_ids), len(data.entities.item_ids))
    side = {
        "texts": item_content_texts(data),
        "embeddings": item_content_embeddings(config, data, settings),
    }
    results: dict[str, Any] = {}
    for name in BASELINES.names():
        model = make_baseline(name, **PARAMS.get(name, {}))
        start = time.perf_counter()
        model.fit(ranking.train, side.get(model.needs or ""))
        fitted = time.perf_counter() - start
        evaluated = evaluate_ranking(ranking, "test", model.score_fn(), (10, 20))
        results[name] = {**evaluated, "fit_s": round(fitted, 2)}
        console.print(name, {k: round(v, 4) for k, v in results[name]["all"].items()})
    if config.evaluation.ranking_task is not None:
        start = time.perf_counter()
        model, _ = train_model(config, data, ROOT / "runs" / "bench-baselines", progress=False)
        fitted = time.perf_counter() - start
        results["mtlrec (" + config.name + ")"] = {
            **ranking_metrics(
                model, examples, data.entities, config.evaluation.ranking_task, "test", (10, 20)
            ),
            "fit_s": round(fitted, 2),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "baselines_ranking",
                "config": str(args.config),
                "protocol": "full ranking over all items, test split, train+valid items excluded",
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    for name, rows in results.items():
        console.print(
            f"{name:32s} ndcg@10 {rows['all']['ndcg@10']:.4f} "
            f"recall@10 {rows['all']['recall@10']:.4f} (fit {rows['fit_s']}s)"
        )


if __name__ == "__main__":
    main()
