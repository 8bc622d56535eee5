"""A real ``mtlrec train`` run on a tiny synthetic Amazon-style reviews file, in seconds.

Users like the items of their favourite of three item groups (high stars, positive words),
so the tasks are learnable; no LM is involved (``text: null``), so nothing is downloaded.
Used by the export tests: the run folder is the same shape ``mtlrec train`` writes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from rich.console import Console

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.data.fetch import FetchSettings
from mtlrec.pipeline.experiment import run_experiment

CONFIG = {
    "name": "tiny-export",
    "data": {
        "dataset": {"source": "amazon", "files": {"reviews": "REVIEWS"}},
        "split": {"strategy": "leave_one_out"},
        "labels": [{"name": "interest"}, {"name": "rating"}, {"name": "sentiment"}],
    },
    "tasks": {
        "interest": {"negative_label": 0.0},
        "rating": {"loss": "huber"},
        "sentiment": {},
    },
    "text": None,
    "model": {
        "inputs": {"name": "features", "params": {"embedding_dim": 8, "dot_interactions": True}},
        "backbone": {"name": "mmoe", "params": {"n_experts": 2, "expert": [16], "tower": [8]}},
    },
    "weighting": {"name": "uncertainty"},
    "training": {"epochs": 2, "batch_size": 64, "negatives": {"per_positive": 1}},
    "evaluation": {"ranking_task": "interest", "ks": [5]},
}


def write_reviews(path: Path, n_users: int = 40, n_items: int = 30, seed: int = 0) -> Path:
    """A 2014-style reviews JSON-lines file: every user reviews 6 to 10 items over time."""
    rng = random.Random(seed)
    lines = []
    for u in range(n_users):
        favourite = u % 3
        items = rng.sample(range(n_items), rng.randint(6, 10))
        for t, item in enumerate(items):
            liked = item % 3 == favourite
            stars = rng.choice([4.0, 5.0]) if liked else rng.choice([1.0, 2.0, 3.0])
            lines.append(
                json.dumps(
                    {
                        "reviewerID": f"U{u}",
                        "asin": f"I{item}",
                        "overall": stars,
                        "reviewText": "great sound" if liked else "poor build",
                        "summary": "good" if liked else "meh",
                        "unixReviewTime": 1_400_000_000 + 86_400 * (10 * u + t),
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")
    return path


def train_tiny_run(root: Path, **overrides: object) -> tuple[Path, FetchSettings]:
    """Train the tiny run into ``root/run`` (cache in ``root/cache``); returns the run folder
    and the fetch settings that read it back. ``overrides`` replace top-level config keys."""
    reviews = write_reviews(root / "reviews.json")
    raw = json.loads(json.dumps(CONFIG))
    raw["data"]["dataset"]["files"]["reviews"] = str(reviews)
    raw.update(overrides)
    config = ExperimentConfig.model_validate(raw)
    settings = FetchSettings(cache_dir=root / "cache", offline=True)
    run_dir = root / "run"
    run_experiment(config, run_dir, settings, Console(quiet=True))
    return run_dir, settings


TINY_FUSION: dict[str, object] = {
    "retrievers": {
        "popularity": {"baseline": "popularity"},
        "item_knn": {"baseline": "item_knn", "params": {"neighbours": 10}},
    },
    "candidates": 10,
    "fusion": {"name": "linear", "params": {"grid": 3, "rounds": 1}},
    "rerank": {"trade_off": 0.7, "depth": 10},
    "ks": [5],
}
"""A small cascade for the tiny run (``mtlrec fuse`` config): popularity + item kNN."""
