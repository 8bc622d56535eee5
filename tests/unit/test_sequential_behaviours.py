"""The sequential model on pair-level multi-behaviour data (Retailrocket's shape: view,
add-to-cart and purchase events, no timestamps): one example per interacted (user, item)
pair, an order-free history, interest as retrieval and cart / purchase heads on the same
encoder."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.data.fetch import FetchSettings
from mtlrec.data.sources.retailrocket import RETAILROCKET_FILES
from mtlrec.evaluation.protocol import evaluate_ranking
from mtlrec.models.sequential_factory import sequential_params
from mtlrec.pipeline.experiment import run_experiment
from mtlrec.pipeline.sequential import SequentialData, user_score_fn
from mtlrec.pipeline.trained_run import load_trained_run

HEADER = "visitorid\titemid\tevent\n"


def write_events(folder: Path, n_users: int = 40, n_items: int = 30) -> dict[str, str]:
    """Users view items of their favourite group; some views go on to cart and purchase."""
    rng = random.Random(0)
    rows: dict[str, list[str]] = {role: [] for role in RETAILROCKET_FILES}
    for user in range(n_users):
        group = user % 3
        for item in rng.sample([i for i in range(n_items) if i % 3 == group], 8):
            rows["view"].append(f"{user}\t{item}\t1")
            if rng.random() < 0.4:
                rows["cart"].append(f"{user}\t{item}\t1")
                if rng.random() < 0.5:
                    rows["purchase"].append(f"{user}\t{item}\t1")
    files = {}
    for role, name in RETAILROCKET_FILES.items():
        path = folder / name
        path.write_text(HEADER + "\n".join(rows[role]) + "\n", encoding="utf-8")
        files[role] = str(path)
    return files


def config(files: dict[str, str], history_order: str) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "tiny-behaviours-seq",
            "data": {
                "dataset": {"source": "retailrocket", "files": files},
                "split": {"strategy": "random"},
                "labels": [{"name": "behaviour"}],
            },
            "tasks": {"interest": {}, "cart": {"weight": 0.5}, "purchase": {"weight": 0.5}},
            "text": None,
            "model": {
                "name": "sequential",
                "params": {
                    "dim": 16,
                    "encoder": "pooled",
                    "history_order": history_order,
                    "max_len": 8,
                    "item_item": True,
                },
                "head": {"name": "fc", "params": {}},
            },
            "weighting": {"name": "static"},
            "training": {"epochs": 2, "batch_size": 16},
            "evaluation": {"ranking_task": "interest", "ks": [5]},
        }
    )


def tiny_setup(tmp_path: Path) -> tuple[dict[str, Any], FetchSettings]:
    """The shuffled-history config as raw data (to edit) and offline fetch settings."""
    files = write_events(tmp_path)
    settings = FetchSettings(cache_dir=tmp_path / "cache", offline=True)
    return config(files, "shuffled").model_dump(mode="json"), settings


def test_pair_level_behaviours_train_as_retrieval_plus_heads(tmp_path: Path) -> None:
    files = write_events(tmp_path)
    settings = FetchSettings(cache_dir=tmp_path / "cache", offline=True)
    run_dir = tmp_path / "run"
    run_experiment(config(files, "shuffled"), run_dir, settings, Console(quiet=True))
    results = json.loads((run_dir / "results.json").read_text())
    assert results["architecture"] == "sequential"
    test = results["results"]["test"]
    assert test["ranking (all)"]["n_users"] > 0
    assert 0.0 <= test["ranking (all)"]["ndcg@5"] <= 1.0
    assert {"cart", "purchase"} <= set(test)
    assert 0.0 <= test["purchase"]["auc"] <= 1.0


def test_pair_level_data_refuses_a_time_ordered_history(tmp_path: Path) -> None:
    files = write_events(tmp_path)
    settings = FetchSettings(cache_dir=tmp_path / "cache", offline=True)
    with pytest.raises(ValueError, match="history_order: shuffled"):
        run_experiment(config(files, "time"), tmp_path / "run", settings, Console(quiet=True))


def test_calibrating_a_task_that_is_not_a_multiclass_head_fails_before_training(
    tmp_path: Path,
) -> None:
    raw, settings = tiny_setup(tmp_path)
    raw["training"]["refit_heads"] = {"epochs": 1, "calibrate": ["purchase"]}
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"\['purchase'\] are not multiclass tasks"):
        run_experiment(ExperimentConfig.model_validate(raw), run_dir, settings, Console(quiet=True))
    assert not (run_dir / "train.jsonl").exists()  # failed before the first epoch


def test_a_pooled_model_is_scored_after_history_len_items_a_causal_one_refuses(
    tmp_path: Path,
) -> None:
    raw, settings = tiny_setup(tmp_path)
    raw["model"]["params"].update(max_len=3, history_len=16)  # users hold ~6 train items
    run_dir = tmp_path / "run"
    run_experiment(ExperimentConfig.model_validate(raw), run_dir, settings, Console(quiet=True))
    test = json.loads((run_dir / "results.json").read_text())["results"]["test"]
    run = load_trained_run(run_dir, settings, Console(quiet=True))
    params = sequential_params(run.config)
    seq = SequentialData.of(run.data, params)
    ndcg = {
        length: evaluate_ranking(
            seq.ranking, "test", user_score_fn(run.model, seq.histories[2], length), (5,)
        )["all"]["ndcg@5"]
        for length in (3, 16)
    }
    # ranked after the whole history (16 >= every user's), not the 3-item training window
    assert test["ranking (all)"]["ndcg@5"] == pytest.approx(ndcg[16])
    assert ndcg[16] != pytest.approx(ndcg[3])
    raw["model"]["params"].update(encoder="causal", history_order="shuffled")
    with pytest.raises(ValueError, match="causal encoder has max_len positions"):
        run_experiment(
            ExperimentConfig.model_validate(raw), tmp_path / "r2", settings, Console(quiet=True)
        )
