"""A real ``mtlrec train`` run of the sequential architecture on the tiny reviews file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from mtlrec.baselines import Recommender
from mtlrec.config.fusion import FusionConfig
from mtlrec.export.artifact import load_artifact
from mtlrec.export.run import ExportOptions, export_trained
from mtlrec.export.write import write_artifact
from mtlrec.models.sequential_factory import sequential_head_scorer, sequential_params
from mtlrec.pipeline.experiment import evaluate_saved_run
from mtlrec.pipeline.fuse import fuse_run, load_fused_run
from mtlrec.pipeline.recommend import recommend_rows
from mtlrec.pipeline.sequential import (
    SequentialData,
    evaluate_sequential,
    held_out_outputs,
    states_score_fn,
    user_score_fn,
    user_states,
)
from mtlrec.pipeline.trained_run import load_trained_run
from mtlrec.serving.engine import ServingModel
from mtlrec.serving.schemas import RecommendRequest
from mtlrec.training.sequences import held_out_batches
from tiny_run import train_tiny_run

SEQUENTIAL = {
    "name": "sequential",
    "params": {"dim": 16, "max_len": 8, "layers": 1, "heads": 2, "dropout": 0.0},
    "head": {"name": "fc", "params": {}},
}


def assert_states_score_as_histories(run_dir: Path, settings: object) -> None:
    """Evaluation's states, computed once per split, give the same held-out outputs as the
    model's own forward pass over held-out batches, and the same ranking scores as
    :func:`user_score_fn` (every position of the history read again)."""
    run = load_trained_run(run_dir, settings, Console(quiet=True))  # type: ignore[arg-type]
    params = sequential_params(run.config)
    seq = SequentialData.of(run.data, params)
    model = run.model.eval()
    aux = [t for t in model.specs if t != params.retrieval_task]
    for split in (1, 2):
        outputs, labels, _ = held_out_outputs(
            run.data, model, seq, params, split, aux, batch_size=5
        )
        batches = held_out_batches(
            run.data.examples, seq.histories[split], split, params.scoring_len,
            params.retrieval_task, aux, batch_size=7, review_text=seq.review_text,
        )  # fmt: skip
        with torch.inference_mode():
            forward = [(model(b.features, aux), b.labels) for b in batches]
        for task in aux:
            expected = torch.cat([out[task].float() for out, _ in forward])
            torch.testing.assert_close(outputs[task], expected, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(labels[task], torch.cat([lab[task] for _, lab in forward]))
        users = run.ranking.pairs[("train", "valid", "test")[split]].user_rows
        states = user_states(model, seq.histories[split], users, params.scoring_len)
        some = torch.from_numpy(users[::3])
        torch.testing.assert_close(
            states_score_fn(model, states, seq.histories[split], params.scoring_len)(some),
            user_score_fn(model, seq.histories[split], params.scoring_len)(some),
            rtol=1e-5,
            atol=1e-5,
        )


def test_sequential_run_trains_evaluates_and_reloads(tmp_path: Path) -> None:
    run_dir, settings = train_tiny_run(
        tmp_path,
        model=SEQUENTIAL,
        tasks={"interest": {}, "rating": {"loss": "huber"}, "sentiment": {}},
        training={
            "epochs": 2,
            "batch_size": 16,
            "refit_heads": {"epochs": 2, "patience": 1, "calibrate": ["sentiment"]},
        },
        weighting={"name": "static"},
    )
    results = json.loads((run_dir / "results.json").read_text())
    assert results["architecture"] == "sequential"
    refit = json.loads((run_dir / "refit_heads.json").read_text())
    assert set(refit["best_epoch"]) == {"rating", "sentiment"} and refit["epochs_run"] >= 1
    calibration = refit["calibration"]["sentiment"]
    assert calibration["valid_macro_f1_after"] >= calibration["valid_macro_f1_before"]
    # the offsets live in the head's bias: the saved model's validation F1 is the calibrated one
    valid_f1 = results["results"]["valid"]["sentiment"]["macro_f1"]
    assert valid_f1 == pytest.approx(calibration["valid_macro_f1_after"])
    assert results["tasks"]["interest"] == "multiclass"  # one class per item: full softmax
    test = results["results"]["test"]
    assert test["ranking (all)"]["n_users"] == 40  # leave-one-out: one test item per user
    assert 0.0 <= test["ranking (all)"]["ndcg@5"] <= 1.0
    assert {"rating", "sentiment"} <= set(test)
    assert json.loads((run_dir / "prepared.json").read_text())["manifest_sha256"]
    again = evaluate_saved_run(run_dir, settings, Console(quiet=True))
    assert again["test"]["ranking (all)"] == pytest.approx(test["ranking (all)"])


def test_a_sequential_run_is_fused_and_recommends(tmp_path: Path) -> None:
    run_dir, settings = train_tiny_run(
        tmp_path,
        model=SEQUENTIAL,
        tasks={"interest": {}, "rating": {"loss": "huber"}, "sentiment": {}},
        training={"epochs": 1, "batch_size": 16},
        weighting={"name": "static"},
    )
    quiet = Console(quiet=True)
    run = load_trained_run(run_dir, settings, quiet)
    # without review text the sentiment head reads the pair, so it can score one
    # (a head that reads the review cannot: test_sequential.py)
    assert run.ranking_tasks(None) == ["interest", "rating", "sentiment"]
    with pytest.raises(ValueError, match="no score per"):
        run.ranking_tasks(["nope"])
    # the ranking source is the retrieval logit, as evaluation ranks by it; validation
    # scores read the training history only, test scores train + valid
    users = run.ranking.pairs["test"].user_rows[:3]
    n_items = run.ranking.n_items
    rows, items = np.repeat(users, n_items), np.tile(np.arange(n_items), len(users))
    scorer = run.head_scorer(["interest"], "test")
    assert run.model.__class__.__name__ == "SequentialRecommender"
    params = sequential_params(run.config)
    seq = SequentialData.of(run.data, params)
    expected = user_score_fn(run.model, seq.histories[2], params.max_len)(torch.from_numpy(users))
    np.testing.assert_allclose(
        scorer(rows, items)["interest"].reshape(len(users), n_items),
        expected.numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    valid = run.head_scorer(["interest"], "valid")(rows, items)["interest"]
    assert not np.allclose(valid, scorer(rows, items)["interest"])
    # the per-task metrics alone (what the head refit validates on): no ranking pass
    heads_only = evaluate_sequential(
        run.config, run.data, run.model, seq, ("valid",), ranking=False
    )
    assert set(heads_only["valid"]) == {"rating", "sentiment"}

    fusion = FusionConfig.model_validate(
        {
            "retrievers": {"popularity": {"baseline": "popularity"}},
            "candidates": 20,
            "tasks": ["interest", "rating"],
            "fusion": {"name": "linear", "params": {"grid": 3, "rounds": 1}},
            "ks": [5],
        }
    )
    payload = fuse_run(run_dir, fusion, settings, quiet)
    assert {"interest", "rating", "popularity"} <= set(payload["sources"])
    assert payload["results"]["test"]["all"]["n_users"] == 40
    # the saved retrievers know each user as the test split does: train + valid
    saved = Recommender.load(run_dir / "fusion" / "retrievers" / "popularity.npz")
    assert (saved.user_items_ != run.ranking.seen["test"]).nnz == 0
    assert run.ranking.seen["test"].nnz > run.ranking.train.nnz
    rows_out = recommend_rows(load_fused_run(run_dir, settings, quiet), "U0", 5)
    assert len(rows_out) == 5
    assert {"interest", "rating"} <= set(rows_out[0]["scores"])


@pytest.mark.parametrize(
    "extra",
    [
        {"item_reviews": True, "item_item": True, "stride": 4, "temperature": 8.0},
        {"sampled_negatives": 8},
        {
            "encoder": "pooled",
            "history_order": "set",
            "history_len": 32,
            "item_item": True,
            "item_item_ease": 50.0,
            "item_item_folds": 2,
        },
        {"future_window": 3, "future_weight": 0.3, "exclude_seen": True},
    ],
    ids=[
        "review-content-item-to-item",
        "sampled-softmax",
        "sets-cross-fitted-ease",
        "future-targets",
    ],
)
def test_sequential_run_with_review_content_or_sampled_softmax(
    tmp_path: Path, extra: dict[str, object]
) -> None:
    model = {**SEQUENTIAL, "params": {**SEQUENTIAL["params"], **extra}}  # type: ignore[dict-item]
    run_dir, settings = train_tiny_run(
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
    assert_states_score_as_histories(run_dir, settings)


def test_a_sequential_run_exports_and_serves_known_users_and_ad_hoc_histories(
    tmp_path: Path,
) -> None:
    run_dir, settings = train_tiny_run(
        tmp_path,
        model=SEQUENTIAL,
        tasks={"interest": {}, "rating": {"loss": "huber"}},
        training={"epochs": 1, "batch_size": 16},
        weighting={"name": "static"},
    )
    quiet = Console(quiet=True)
    run = load_trained_run(run_dir, settings, quiet)
    with pytest.raises(ValueError, match="pointwise multi-task"):
        export_trained(run, tmp_path / "artifacts", ExportOptions(onnx=True), quiet)
    path = write_artifact(run, tmp_path / "artifacts", name="tiny-seq")
    artifact = load_artifact(path)
    assert artifact.sequential and artifact.manifest["model"]["architecture"] == "sequential"
    # the bundle holds each user's history in time order, as the run ranks test users
    histories = run.histories("test")
    assert artifact.histories is not None and set(artifact.histories) == set(histories)
    for user, items in histories.items():
        np.testing.assert_array_equal(artifact.histories[user], items)

    served = ServingModel(artifact)
    assert served.tasks == ["interest", "rating"] and served.ranking_task == "interest"
    # the service computes the item vectors once; its scores equal a fresh computation's
    pairs = (np.full(8, 3), np.arange(8))
    kept = served.heads.known(*pairs)
    fresh_scorer = sequential_head_scorer(
        artifact.model,
        artifact.histories,
        SEQUENTIAL["params"]["max_len"],  # type: ignore[index]
        served.tasks,
    )
    fresh = fresh_scorer(*pairs)
    for task in served.tasks:
        np.testing.assert_allclose(kept[task], fresh[task], rtol=1e-5, atol=1e-6)
    # one user's scorer (the state encoded once) gives the same, for a known user or a
    # given history, and runs only the heads asked for
    one_user = served.heads.for_user(3, np.zeros(0, np.int64))
    stranger_history = np.asarray(artifact.histories[3][:4])
    given = served.heads.for_user(None, stranger_history)
    as_unknown = served.heads.unknown(stranger_history, pairs[1])
    for task in served.tasks:
        np.testing.assert_allclose(one_user(pairs[1])[task], fresh[task], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(given(pairs[1])[task], as_unknown[task], rtol=1e-5)
    assert set(one_user(pairs[1], ["interest"])) == {"interest"}
    user = artifact.parts.entities.user_ids[3]
    response = served.recommend(RecommendRequest(user_id=user, k=5))
    assert response.strategy == "model" and len(response.items) == 5
    # the same order as the run's own full-ranking scores, seen items excluded
    scores = user_score_fn(run.model, histories, SEQUENTIAL["params"]["max_len"])(  # type: ignore[index]
        torch.tensor([3])
    )[0].numpy()
    seen = run.ranking.excluded("test", np.array([3]))[0]
    expected = [
        run.data.entities.item_ids[i] for i in np.argsort(-np.where(seen, -np.inf, scores))[:5]
    ]
    assert [item.item_id for item in response.items] == expected
    # the catalogue is ranked by the logit alone; each pick's task values are its pair's
    rows = np.array([artifact.parts.entities.item_ids.index(i.item_id) for i in response.items])
    picked = fresh_scorer(np.full(5, 3), rows)
    for position, item in enumerate(response.items):
        for task in served.tasks:
            assert item.scores[task] == pytest.approx(float(picked[task][position]), rel=1e-5)
    # a stranger's ad-hoc history is ranked by the model too, not by the cold-start rule
    history = [artifact.parts.entities.item_ids[i] for i in histories[3][:3]]
    stranger = served.recommend(RecommendRequest(history=history, k=5))
    assert stranger.strategy == "model" and not stranger.known_user
    assert not {item.item_id for item in stranger.items} & set(history)
    assert {"interest", "rating"} <= set(stranger.items[0].scores)

    fuse_run(
        run_dir,
        FusionConfig.model_validate(
            {
                "retrievers": {"popularity": {"baseline": "popularity"}},
                "candidates": 20,
                "fusion": {"name": "linear", "params": {"grid": 3, "rounds": 1}},
                "ks": [5],
            }
        ),
        settings,
        quiet,
    )
    fused = ServingModel(
        load_artifact(
            write_artifact(
                load_fused_run(run_dir, settings, quiet).run,
                tmp_path / "artifacts",
                name="tiny-seq-fused",
            )
        )
    )
    answer = fused.recommend(RecommendRequest(user_id=user, k=5))
    assert answer.strategy == "fused" and len(answer.items) == 5


def test_a_run_with_the_lm_tuned_on_review_sentiment_first(tmp_path: Path) -> None:
    model = {
        **SEQUENTIAL,
        "params": {
            **SEQUENTIAL["params"],  # type: ignore[dict-item]
            "item_reviews": True,
            "task_inputs": {"sentiment": "review"},
        },
    }
    tuning = {"top_k": 1, "epochs": 1, "batch_size": 16, "max_length": 16}
    run_dir, settings = train_tiny_run(
        tmp_path,
        model=model,
        text={"item": False, "tune_reviews": tuning},
        tasks={"interest": {}, "sentiment": {}},
        training={"epochs": 1, "batch_size": 16},
        weighting={"name": "static"},
    )
    results = json.loads((run_dir / "results.json").read_text())
    assert results["timings_s"]["review_tuning_s"] > 0  # stage one ran
    assert results["results"]["test"]["sentiment"]["n"] > 0
    # the review task reads the tuned LM's vectors; the items' review content the frozen
    run = load_trained_run(run_dir, settings, Console(quiet=True))
    features = run.data.examples.features
    assert not torch.equal(features["own_review"], features["review_content"])
    assert run.data.timings.get("review_tuning_s") is None  # the second load tunes nothing
    assert_states_score_as_histories(run_dir, settings)  # the review task reads its review
