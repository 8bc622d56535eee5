"""Full ranking's memory is bounded by the chunk, not by the number of users.

Deterministic checks, no timing: whatever the number of users, the ranking protocol only
ever asks the score function for ``chunk`` users, only ever builds dense masks of ``chunk``
rows, never calls the dense all-users conversions of :class:`RankingData`, and a pointwise
model's :func:`item_scores` only ever builds the inputs of ``batch_size`` pairs at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from mtlrec.core.types import ScoreFn
from mtlrec.data.examples import EntityData, ExampleSet
from mtlrec.evaluation import protocol, ranking
from mtlrec.evaluation.protocol import RankingData, evaluate_ranking, ranking_data
from mtlrec.models import scoring
from mtlrec.models.scoring import item_scores

N_ITEMS = 40
CHUNK = 16


def _examples(n_users: int, seed: int = 0) -> ExampleSet:
    """Per user: 4 train items, 1 valid, 2 test (random, distinct), item 39 never trained."""
    rng = np.random.default_rng(seed)
    users, items, split = [], [], []
    for user in range(n_users):
        picked = rng.choice(N_ITEMS, size=7, replace=False)
        users += [user] * 7
        items += picked.tolist()
        split += [0, 0, 0, 0, 1, 2, 2]
    split_t = torch.tensor(split)
    items_t = torch.tensor(items)
    trained = torch.zeros(N_ITEMS, dtype=torch.bool)
    trained[items_t[split_t == 0]] = True
    return ExampleSet(
        "interaction",
        {"user_row": torch.tensor(users), "item_row": items_t},
        {},
        {},
        split_t,
        ~trained[items_t],
    )


def _scores(n_users: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n_users, N_ITEMS)).astype(np.float32)


class _Spy:
    """Records the largest number of users asked of a score function, and of mask rows."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.score_rows: list[int] = []
        self.dense_rows: list[int] = []
        original = ranking.UserItems.dense

        def dense(
            self_: ranking.UserItems, rows: Tensor, n_items: int, device: str = "cpu"
        ) -> Tensor:
            self.dense_rows.append(int(rows.numel()))
            return original(self_, rows, n_items, device)

        def refuse(*args: object, **kwargs: object) -> np.ndarray:
            raise AssertionError("full ranking built a dense (all users, n_items) matrix")

        monkeypatch.setattr(ranking.UserItems, "dense", dense)
        monkeypatch.setattr(RankingData, "relevant", refuse)
        monkeypatch.setattr(RankingData, "excluded", refuse)

    def wrap(self, score_fn: ScoreFn) -> ScoreFn:
        def score(user_rows: Tensor) -> Tensor:
            self.score_rows.append(int(user_rows.numel()))
            out: Tensor = score_fn(user_rows)
            return out

        return score


@pytest.mark.parametrize("n_users", [10, 100, 1000])
def test_protocol_asks_for_at_most_a_chunk_of_users(
    monkeypatch: pytest.MonkeyPatch, n_users: int
) -> None:
    spy = _Spy(monkeypatch)
    data = ranking_data(_examples(n_users), n_users, N_ITEMS)
    matrix = _scores(n_users)
    fn = spy.wrap(protocol.rows_score_fn(np.arange(n_users), matrix))
    out = evaluate_ranking(data, "test", fn, ks=(5, 10), chunk=CHUNK)
    assert sum(spy.score_rows) == n_users  # every user scored once
    assert max(spy.score_rows) == min(CHUNK, n_users)  # never more than a chunk
    assert max(spy.dense_rows) == min(CHUNK, n_users)  # masks are (chunk, n_items)
    assert out["all"]["n_users"] == n_users


def test_chunk_size_does_not_change_the_metrics() -> None:
    n_users = 100
    data = ranking_data(_examples(n_users), n_users, N_ITEMS)
    fn = protocol.rows_score_fn(np.arange(n_users), _scores(n_users))
    whole = evaluate_ranking(data, "test", fn, ks=(5, 10), chunk=n_users)
    chunked = evaluate_ranking(data, "test", fn, ks=(5, 10), chunk=7)
    assert chunked.keys() == whole.keys()
    for name in whole:
        assert chunked[name] == pytest.approx(whole[name], nan_ok=True)


class _Pointwise(torch.nn.Module):
    """A stand-in pointwise model: score = user profile . item vector, read per pair."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.item_vectors = torch.randn(N_ITEMS, 4, generator=gen)
        self.pairs_seen: list[int] = []

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        self.pairs_seen.append(int(features["item_row"].numel()))
        profile = features["profile"]  # (P, 4) per-user dense stand-in, gathered per pair
        return {"interest": (profile * self.item_vectors[features["item_row"]]).sum(-1)}


def _entities(n_users: int) -> EntityData:
    entities = EntityData(
        [f"u{u}" for u in range(n_users)],
        [f"i{i}" for i in range(N_ITEMS)],
        torch.arange(n_users) + 1,
        torch.arange(N_ITEMS) + 1,
    )
    gen = torch.Generator().manual_seed(2)
    entities.user_dense["profile"] = torch.randn(n_users, 4, generator=gen)
    return entities


@pytest.mark.parametrize("n_users", [10, 200])
def test_item_scores_builds_at_most_a_batch_of_pair_features(
    monkeypatch: pytest.MonkeyPatch, n_users: int
) -> None:
    """Pair inputs (with their per-user dense rows) exist for one batch of pairs at a time,
    and the scores equal the dense (user, item) product."""
    spy = _Spy(monkeypatch)
    built: list[int] = []
    original = scoring.pair_features

    def pair_features(entities: EntityData, users: Tensor, items: Tensor) -> dict[str, Tensor]:
        built.append(int(users.numel()))
        return original(entities, users, items)

    monkeypatch.setattr(scoring, "pair_features", pair_features)
    entities = _entities(n_users)
    model = _Pointwise()
    batch = 50  # not a multiple of N_ITEMS: batches straddle users
    fn = spy.wrap(item_scores(model, "interest", entities, batch_size=batch))  # type: ignore[arg-type]
    data = ranking_data(_examples(n_users), n_users, N_ITEMS)
    evaluate_ranking(data, "test", fn, ks=(5,), chunk=CHUNK)
    assert max(built) == batch and max(model.pairs_seen) == batch
    assert sum(built) == n_users * N_ITEMS
    assert max(spy.score_rows) == min(CHUNK, n_users)

    rows = torch.tensor([3, 0, 7])
    expected = entities.user_dense["profile"][rows] @ model.item_vectors.T  # (3, N_ITEMS)
    assert torch.allclose(fn(rows), expected, atol=1e-6)


def test_item_scores_matches_between_batch_sizes() -> None:
    entities = _entities(12)
    model = _Pointwise()
    rows = torch.arange(12)
    one = item_scores(model, "interest", entities, batch_size=7)(rows)  # type: ignore[arg-type]
    big = item_scores(model, "interest", entities, batch_size=10_000)(rows)  # type: ignore[arg-type]
    assert one.shape == (12, N_ITEMS)
    assert torch.equal(one, big)
