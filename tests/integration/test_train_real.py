"""``mtlrec train`` / ``evaluate`` end to end on a real dataset, with the real MiniLM encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtlrec.cli.main import app

pytestmark = pytest.mark.integration
runner = CliRunner()

CONFIG = """
name: gift-cards-smoke
data: {dataset: {name: amazon-2018-gift-cards}}
tasks:
  like: {negative_label: 0.0}
  rating: {loss: huber}
  sentiment: {}
  brand: {}
  review_text: {loss: infonce, head: {name: cosine}}
text: {item: true, user: true, reviews: true, batch_size: 32}
model:
  inputs: {name: features, params: {embedding_dim: 8, text_dim: 16}}
  backbone: {name: ple, params: {levels: 1, expert: [32], tower: [16]}}
weighting: {name: pcgrad}
training:
  epochs: 2
  batch_size: 256
  negatives: {per_positive: 1}
  early_stopping: {monitor: valid/like/auc, patience: 1}
evaluation: {ranking_task: like, ks: [10]}
"""


def test_train_then_evaluate_a_run(shared_data: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    run = tmp_path / "run"
    common = ["--mirror", str(shared_data), "--cache-dir", str(tmp_path / "cache"), "--offline"]
    result = runner.invoke(app, ["train", "--config", str(config), "--out", str(run), *common])
    assert result.exit_code == 0, result.output
    payload = json.loads((run / "results.json").read_text())
    test = payload["results"]["test"]
    assert set(payload["tasks"]) == {"like", "rating", "sentiment", "brand", "review_text"}
    # the similarity task: predicted review embeddings rank their own review above chance
    assert test["review_text"]["n"] > 400 and test["review_text"]["target_mrr"] > 0.0
    assert 0.5 < test["like"]["auc"] <= 1.0  # better than chance on sampled negatives
    assert test["rating"]["n"] == 458 and test["rating"]["rmse"] < 2.0
    assert test["ranking (all)"]["n_users"] == 458
    assert "recall@10" in test["ranking (all)"]
    for key in ("coverage@10", "diversity@10", "novelty@10", "arp@10"):  # beyond accuracy
        assert key in test["ranking (all)"] and key in test["ranking (cold)"], key
    assert payload["timings_s"]["text_encoded"] > 0
    steps = [json.loads(x) for x in (run / "train.jsonl").read_text().splitlines()]
    assert any("weight/brand" in s for s in steps)
    assert (run / "checkpoints" / "last.pt").exists() and (run / "model.pt").exists()

    # a second run reads every text embedding from the cache
    again = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(config),
            "--out",
            str(tmp_path / "r2"),
            "--set",
            "training.epochs=1",
            *common,
        ],
    )
    assert again.exit_code == 0, again.output
    second = json.loads((tmp_path / "r2" / "results.json").read_text())["timings_s"]
    assert second["text_encoded"] == 0 and second["text_cache_hits"] > 0

    evaluated = runner.invoke(app, ["evaluate", str(run), *common])
    assert evaluated.exit_code == 0, evaluated.output
    again_results = json.loads((run / "evaluation.json").read_text())
    assert again_results["test"]["like"]["auc"] == pytest.approx(test["like"]["auc"])
