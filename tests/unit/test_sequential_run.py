"""A real ``mtlrec train`` run of the sequential architecture on the tiny reviews file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from mtlrec.pipeline.experiment import evaluate_saved_run
from mtlrec.pipeline.trained_run import load_trained_run
from tiny_run import train_tiny_run

SEQUENTIAL = {
    "name": "sequential",
    "params": {"dim": 16, "max_len": 8, "layers": 1, "heads": 2, "dropout": 0.0},
    "head": {"name": "fc", "params": {}},
}


def test_sequential_run_trains_evaluates_and_reloads(tmp_path: Path) -> None:
    run_dir, settings = train_tiny_run(
        tmp_path,
        model=SEQUENTIAL,
        tasks={"interest": {}, "rating": {"loss": "huber"}, "sentiment": {}},
        training={"epochs": 2, "batch_size": 16},
        weighting={"name": "static"},
    )
    results = json.loads((run_dir / "results.json").read_text())
    assert results["architecture"] == "sequential"
    assert results["tasks"]["interest"] == "multiclass"  # one class per item: full softmax
    test = results["results"]["test"]
    assert test["ranking (all)"]["n_users"] == 40  # leave-one-out: one test item per user
    assert 0.0 <= test["ranking (all)"]["ndcg@5"] <= 1.0
    assert {"rating", "sentiment"} <= set(test)
    assert json.loads((run_dir / "prepared.json").read_text())["manifest_sha256"]
    again = evaluate_saved_run(run_dir, settings, Console(quiet=True))
    assert again["test"]["ranking (all)"] == pytest.approx(test["ranking (all)"])
    with pytest.raises(ValueError, match="sequential run cannot be fused"):
        load_trained_run(run_dir, settings, Console(quiet=True))


@pytest.mark.parametrize(
    "extra",
    [
        {"item_reviews": True, "item_item": True, "stride": 4, "temperature": 8.0},
        {"sampled_negatives": 8},
    ],
    ids=["review-content-item-to-item", "sampled-softmax"],
)
def test_sequential_run_with_review_content_or_sampled_softmax(
    tmp_path: Path, extra: dict[str, object]
) -> None:
    model = {**SEQUENTIAL, "params": {**SEQUENTIAL["params"], **extra}}  # type: ignore[dict-item]
    run_dir, _ = train_tiny_run(
        tmp_path,
        model=model,
        # review content reads the reviews' LM embeddings (the packaged MiniLM, offline)
        text={"item": False} if extra.get("item_reviews") else None,
        tasks={"interest": {}, "rating": {"loss": "huber"}},
        training={"epochs": 2, "batch_size": 16},
        weighting={"name": "static"},
    )
    test = json.loads((run_dir / "results.json").read_text())["results"]["test"]
    assert test["ranking (all)"]["n_users"] == 40
    assert 0.0 <= test["ranking (all)"]["ndcg@5"] <= 1.0
    assert test["rating"]["n"] > 0
