"""``mtlrec train`` -> ``mtlrec fuse`` -> ``mtlrec recommend`` on a real dataset (Gift Cards)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtlrec.cli.main import app

pytestmark = pytest.mark.integration
runner = CliRunner()

RUN = """
name: gift-cards-fuse
data: {dataset: {name: amazon-2018-gift-cards}}
tasks:
  interest: {negative_label: 0.0}
  rating: {loss: huber}
  sentiment: {}
text: {item: true, user: true, batch_size: 32}
model:
  inputs: {name: features, params: {embedding_dim: 8, text_dim: 16}}
  backbone: {name: mmoe, params: {n_experts: 2, expert: [32], tower: [16]}}
training:
  epochs: 1
  batch_size: 256
  negatives: {per_positive: 2}
evaluation: {ranking_task: interest, ks: [10]}
"""

FUSION = """
retrievers:
  popularity: {baseline: popularity}
  item_knn: {baseline: item_knn, params: {neighbours: 20}}
  two_tower: {baseline: two_tower, params: {epochs: 2, index: hnsw}}
  lm_content: {baseline: lm_content}
candidates: 30
fusion: {name: linear, params: {grid: 5, rounds: 1}}
rerank: {trade_off: 0.7, depth: 20}
ks: [5, 10]
"""


def test_fuse_then_recommend(shared_data: Path, tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(RUN)
    (tmp_path / "fusion.yaml").write_text(FUSION)
    run = tmp_path / "run"
    common = ["--mirror", str(shared_data), "--cache-dir", str(tmp_path / "cache"), "--offline"]
    trained = runner.invoke(
        app, ["train", "--config", str(tmp_path / "run.yaml"), "--out", str(run), *common]
    )
    assert trained.exit_code == 0, trained.output

    missing = runner.invoke(app, ["recommend", "--run", str(run), "--user", "x", *common])
    assert missing.exit_code == 2 and "mtlrec fuse" in missing.output

    fused = runner.invoke(
        app, ["fuse", "--run", str(run), "--config", str(tmp_path / "fusion.yaml"), *common]
    )
    assert fused.exit_code == 0, fused.output
    payload = json.loads((run / "fusion" / "results.json").read_text())
    assert set(payload["sources"]) == {
        "interest",
        "rating",
        "sentiment",
        "popularity",
        "item_knn",
        "two_tower",
        "lm_content",
    }
    assert abs(sum(payload["weights"].values()) - 1.0) < 1e-6
    test = payload["results"]["test"]
    assert test["all"]["n_users"] > 400
    for key in ("ndcg@10", "recall@10", "coverage@10", "diversity@10", "novelty@10", "arp@10"):
        assert key in test["all"], key
    retrieval = test["retrieval"]
    assert 0.0 < retrieval["candidate_recall@30x4"] <= 1.0 and retrieval["candidates@30x4"] >= 30
    assert sorted(p.name for p in (run / "fusion" / "retrievers").iterdir()) == [
        "item_knn.npz",
        "lm_content.npz",
        "popularity.npz",
        "two_tower.npz",
    ]

    user = _first_user(shared_data)
    shown = runner.invoke(
        app,
        ["recommend", "--run", str(run), "--user", user, "-k", "5", *common],
        env={"COLUMNS": "100"},  # the table reads whole at 100 columns (issue 13)
    )
    assert shown.exit_code == 0, shown.output
    for word in ("interest", "rating", "sentiment", "fused", "retrieved by", "mmr #"):
        assert word in shown.output, word

    unknown = runner.invoke(app, ["recommend", "--run", str(run), "--user", "nobody", *common])
    assert unknown.exit_code == 2 and "unknown user" in unknown.output


def _first_user(shared_data: Path) -> str:
    """A reviewer id of the Gift Cards file (the first line's)."""
    import gzip

    folder = shared_data / "amazon-2018-gift-cards"
    path = next(p for p in folder.iterdir() if "Gift" in p.name and "meta" not in p.name)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return str(json.loads(fh.readline())["reviewerID"])
