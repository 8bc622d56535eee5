"""The one ranking protocol (mtlrec.evaluation.protocol): which items are excluded, which
are relevant, and that the model path (`mtlrec train`'s ranking) goes through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtlrec.data.examples import ExampleSet
from mtlrec.evaluation import protocol
from mtlrec.evaluation.model_metrics import ranking_metrics
from mtlrec.evaluation.protocol import evaluate_ranking, ranking_data, rows_score_fn

# one user, 5 items: train {0, 1}, valid {2}, test {3}; item 4 never seen
USERS = [0, 0, 0, 0]
ITEMS = [0, 1, 2, 3]
SPLIT = [0, 0, 1, 2]


def _examples() -> ExampleSet:
    n = len(USERS)
    return ExampleSet(
        "interaction",
        {"user_row": torch.tensor(USERS), "item_row": torch.tensor(ITEMS)},
        {},
        {},
        torch.tensor(SPLIT),
        torch.zeros(n, dtype=torch.bool),
    )


def test_valid_excludes_train_items_and_test_excludes_train_and_valid() -> None:
    data = ranking_data(_examples(), n_users=1, n_items=5)
    users = np.array([0])
    assert np.flatnonzero(data.excluded("valid", users)[0]).tolist() == [0, 1]
    assert np.flatnonzero(data.excluded("test", users)[0]).tolist() == [0, 1, 2]
    assert np.flatnonzero(data.relevant("valid", users)[0]).tolist() == [2]
    assert np.flatnonzero(data.relevant("test", users)[0]).tolist() == [3]


@pytest.mark.parametrize(("split", "expected_ndcg"), [("valid", 1.0), ("test", 1.0)])
def test_excluded_items_cannot_take_the_top(split: str, expected_ndcg: float) -> None:
    """Scores put the seen items first, then the relevant one: with the seen items excluded
    the relevant item is ranked first, so NDCG@1 is 1 on both splits."""
    data = ranking_data(_examples(), n_users=1, n_items=5)
    target = 2 if split == "valid" else 3
    scores = np.array([[9.0, 8.0, 7.0 if split == "test" else 1.0, 0.5, 0.0]])
    scores[0, target] = 5.0
    result = evaluate_ranking(data, split, rows_score_fn(np.array([0]), scores), ks=(1,))
    assert result["all"]["ndcg@1"] == pytest.approx(expected_ndcg)


def test_train_ranking_goes_through_the_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mtlrec train`'s ranking numbers come from the same evaluate_ranking: a model's
    ranking_metrics equals evaluate_ranking of the same scores."""
    calls: list[str] = []
    original = protocol.evaluate_ranking

    def spy(*args: object, **kwargs: object) -> dict[str, dict[str, float]]:
        calls.append(str(args[1]))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    import mtlrec.evaluation.model_metrics as model_metrics

    monkeypatch.setattr(model_metrics, "evaluate_ranking", spy)

    class Fixed(torch.nn.Module):
        specs: dict[str, object] = {}

        def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            scores = torch.tensor([9.0, 8.0, 1.0, 5.0, 0.0])
            return {"interest": scores[features["item_row"]]}

    from mtlrec.data.examples import EntityData

    entities = EntityData(["u"], [f"i{k}" for k in range(5)], torch.tensor([1]), torch.arange(5))
    out = ranking_metrics(Fixed(), _examples(), entities, "interest", "test", ks=(1,))  # type: ignore[arg-type]
    assert calls == ["test"]
    assert out["all"]["ndcg@1"] == pytest.approx(1.0)  # item 3 first once 0, 1, 2 are out
