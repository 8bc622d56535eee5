"""LM tables for model inputs: no label leakage from the review being predicted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mtlrec.text.cache import EmbeddingCache
from mtlrec.text.tables import item_text_table, review_profiles


class LetterEncoder:
    """A fake encoder: the embedding of a text counts its letters a, b and c."""

    model_id = "letters"
    dim = 3

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        return np.array([[t.count("a"), t.count("b"), t.count("c")] for t in texts], np.float32)


def test_review_profile_leaves_out_the_own_review_and_other_splits(tmp_path: Path) -> None:
    reviews = pl.DataFrame(
        {
            "interaction_id": [0, 1, 2, 3, 4],
            "user_row": [0, 0, 0, 0, 1],
            "split": ["train", "train", "train", "test", "train"],
            "summary": ["aaaa", "bbbb", "cccc", "aaaaaaaa", "abc"],
            "text": [None] * 5,
        }
    )
    per_example, per_user = review_profiles(
        np.array([0, 1, 3, 4, 9]),
        np.array([0, 0, 0, 1, 0]),
        reviews,
        LetterEncoder(),
        EmbeddingCache(tmp_path),
    )
    # train review 0 sees the mean of reviews 1 and 2 (its own left out, test review 3 never)
    assert per_example[0].tolist() == pytest.approx([0.0, 2.0, 2.0])
    assert per_example[1].tolist() == pytest.approx([2.0, 0.0, 2.0])
    # the test example (3) sees all three training reviews of its user
    assert per_example[2].tolist() == pytest.approx([4 / 3, 4 / 3, 4 / 3])
    # user 1 has one training review: its own, so nothing is left
    assert per_example[3].tolist() == [0.0, 0.0, 0.0]
    # an example without a review of its own (9) sees the user's full training mean
    assert per_example[4].tolist() == pytest.approx([4 / 3, 4 / 3, 4 / 3])
    assert per_user[0].tolist() == pytest.approx([4 / 3, 4 / 3, 4 / 3])


def test_item_text_leaves_out_the_fields_a_task_predicts(tmp_path: Path) -> None:
    items = pl.DataFrame(
        {
            "item_id": ["1"],
            "title": ["Toy Story"],
            "year": [1995],
            "genres": [["Animation", "Comedy"]],
        }
    )
    _, with_genres = item_text_table(items, LetterEncoder(), EmbeddingCache(tmp_path))
    _, without = item_text_table(items, LetterEncoder(), EmbeddingCache(tmp_path), {"genres"})
    assert "Animation" in with_genres[0]
    assert without == ["Toy Story (1995)."]


def test_history_profile_leaves_out_the_own_training_item() -> None:
    import torch

    from mtlrec.text.tables import history_profiles

    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    history_users, history_items = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2])
    profile, per_user = history_profiles(
        torch.tensor([0, 0, 0, 1]),
        torch.tensor([0, 1, 2, 2]),
        torch.tensor([True, True, False, True]),
        history_users,
        history_items,
        items,
    )
    assert profile[0].tolist() == [0.0, 1.0]  # train pair (0, 0): only item 1 is left
    assert profile[1].tolist() == [1.0, 0.0]
    assert profile[2].tolist() == [0.5, 0.5]  # a held-out pair sees the whole history
    assert profile[3].tolist() == [0.0, 0.0]  # user 1's only training item is its own
    assert per_user[0].tolist() == [0.5, 0.5]
