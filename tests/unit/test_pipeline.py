"""Ranking data shared by every model of a run, and the head values used as fusion sources."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch

from mtlrec.core.types import TaskSpec
from mtlrec.data.examples import ExampleSet
from mtlrec.evaluation.protocol import evaluate_ranking, ranking_data, rows_score_fn
from mtlrec.models.scoring import head_value
from mtlrec.pipeline.item_content import item_content_texts, review_texts


def _examples() -> ExampleSet:
    """5 users x 6 items: 0/1 train, 2 valid, 3 test; user 4 has only a test item (5)."""
    pairs = [
        (0, 0, 0), (0, 1, 0), (0, 2, 1), (0, 3, 2),
        (1, 1, 0), (1, 1, 0), (1, 4, 1), (1, 0, 2),
        (2, 2, 0), (2, 3, 2),
        (4, 5, 2),
    ]  # fmt: skip
    users = torch.tensor([p[0] for p in pairs])
    items = torch.tensor([p[1] for p in pairs])
    split = torch.tensor([p[2] for p in pairs], dtype=torch.int8)
    cold = items == 5
    features = {"user_row": users, "item_row": items}
    return ExampleSet("interaction", features, {}, {}, split, cold)


def test_ranking_data_matrices_and_counts() -> None:
    data = ranking_data(_examples(), n_users=5, n_items=6)
    assert data.train.shape == (5, 6) and data.train.max() == 1.0  # duplicates count once
    np.testing.assert_array_equal(data.item_popularity, [1, 2, 1, 0, 0, 0])
    np.testing.assert_array_equal(data.user_activity, [2, 1, 1, 0, 0])
    users = np.array([0, 1])
    np.testing.assert_array_equal(
        data.excluded("test", users),
        [[1, 1, 1, 0, 0, 0], [0, 1, 0, 0, 1, 0]],  # train + valid
    )
    np.testing.assert_array_equal(data.excluded("valid", users)[0], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(
        data.relevant("test", users), [[0, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0]]
    )
    np.testing.assert_array_equal(data.pairs["test"].user_rows, [0, 1, 2, 4])
    assert data.pairs["test"].cold.tolist() == [False, False, False, True]


def test_ranking_data_needs_interaction_or_pair_examples() -> None:
    examples = _examples()
    examples.unit = "user"
    with pytest.raises(ValueError, match="interaction or pair examples"):
        ranking_data(examples, 5, 6)
    examples.unit = "pair"  # one example per interacted (user, item) pair counts the same
    assert ranking_data(examples, 5, 6).pairs["test"].users.tolist() == (
        ranking_data(_examples(), 5, 6).pairs["test"].users.tolist()
    )


def test_evaluate_ranking_of_a_perfect_matrix() -> None:
    data = ranking_data(_examples(), n_users=5, n_items=6)
    users = data.pairs["test"].user_rows
    perfect = data.relevant("test", users).astype(np.float32)
    result = evaluate_ranking(data, "test", rows_score_fn(users, perfect), ks=(1, 3))
    assert result["all"]["ndcg@1"] == 1.0 and result["all"]["n_users"] == 4
    assert result["cold"]["n_users"] == 1 and result["cold"]["recall@1"] == 1.0
    assert result["all"]["coverage@1"] == pytest.approx(3 / 6)  # items 3, 0, 3, 5
    assert "novelty@3" in result["all"] and "arp@3" in result["all"]


def test_head_values() -> None:
    logits = torch.tensor([0.0, 2.0])
    np.testing.assert_allclose(
        head_value(TaskSpec("like", "binary"), logits).numpy(), torch.sigmoid(logits).numpy()
    )
    rating = torch.tensor([[3.5], [4.0]])
    assert head_value(TaskSpec("rating", "regression"), rating).tolist() == [3.5, 4.0]
    sentiment = torch.log(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    got = head_value(TaskSpec("sentiment", "multiclass", 3), sentiment).tolist()
    assert got == pytest.approx([0.0, 1.0, 0.5])
    with pytest.raises(ValueError, match="no score"):
        head_value(TaskSpec("genres", "multilabel", 3), torch.zeros(2, 3))


def test_item_text_falls_back_to_training_reviews_only() -> None:
    items = pl.DataFrame(
        {"item_id": ["a", "b", "c"], "title": ["Blue Guitar", None, None]},
    )
    reviews = pl.DataFrame(
        {
            "interaction_id": [1, 2, 3, 4],
            "item_id": ["b", "b", "b", "a"],
            "timestamp": [3, 1, 2, 1],
            "summary": ["late", "first", "held out", "x"],
            "text": ["second review", "great strings", "SECRET", "y"],
            "split": ["train", "train", "test", "train"],
        }
    )
    assert review_texts(reviews, max_reviews=1) == {"a": "x. y", "b": "first. great strings"}
    data = SimpleNamespace(dataset=SimpleNamespace(tables={"items": items, "reviews": reviews}))
    texts = item_content_texts(data)  # type: ignore[arg-type]
    assert texts[0].startswith("Blue Guitar")  # catalogue text wins
    assert texts[1] == "first. great strings late. second review"  # time order, train only
    assert "SECRET" not in " ".join(texts) and texts[2] == ""  # no reviews, no text
