"""Beyond-accuracy metrics: coverage, intra-list diversity, novelty, ARP, the accumulator and
their integration in the ranking evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mtlrec.evaluation.beyond import (
    BeyondAccuracy,
    average_popularity,
    catalog_coverage,
    intra_list_diversity,
    novelty,
    popularity_counts,
)
from mtlrec.evaluation.ranking import (
    RankingEvaluator,
    UserItems,
    per_user_metrics,
    rank_chunk,
    scores_from_matrix,
)

# 5 items; item 4 has a zero vector. cos(0, 1) = 1, cos(0, 2) = 0, cos(0, 3) = 1/sqrt(2)
VECTORS = np.array(
    [
        [1.0, 0.0],
        [2.0, 0.0],
        [0.0, 3.0],
        [1.0, 1.0],
        [0.0, 0.0],
    ]
)
POP = np.array([10.0, 0.0, 3.0, 1.0, 7.0])
N_USERS = 15
TOP = np.array(
    [
        [0, 1, 2],
        [3, -1, -1],
        [2, 4, -1],
        [-1, -1, -1],
    ]
)


def test_catalog_coverage_counts_distinct_items_and_ignores_pads() -> None:
    assert catalog_coverage(TOP, 5) == pytest.approx(5 / 5)
    assert catalog_coverage(TOP[:2], 5) == pytest.approx(4 / 5)
    assert catalog_coverage(np.array([[1, 1], [1, -1]]), 4) == pytest.approx(1 / 4)
    assert catalog_coverage(torch.tensor([[0, 2]]), 10) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="only 3 items"):
        catalog_coverage(TOP, 3)


def test_intra_list_diversity_hand_computed() -> None:
    got = intra_list_diversity(TOP, VECTORS)
    # list 0: pairs (0,1) sim 1, (0,2) sim 0, (1,2) sim 0 -> mean sim 1/3
    assert got[0] == pytest.approx(1 - 1 / 3)
    assert math.isnan(got[1])  # one item
    assert got[2] == pytest.approx(1.0)  # a zero vector is dissimilar to everything
    assert math.isnan(got[3])  # all pads
    two = intra_list_diversity(np.array([[0, 3], [3, 0], [1, 0]]), VECTORS)
    np.testing.assert_allclose(two, [1 - 1 / math.sqrt(2), 1 - 1 / math.sqrt(2), 0.0], atol=1e-12)


def test_intra_list_diversity_matches_pairwise_loop_on_random_vectors() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 8))
    vectors[5] = 0.0
    top = rng.choice(30, size=(12, 6), replace=True)
    top[::3, 4:] = -1
    got = intra_list_diversity(top, vectors)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-300)
    for row, items in zip(got, top, strict=True):
        items = items[items >= 0]
        sims = [
            unit[i] @ unit[j] for a, i in enumerate(items) for b, j in enumerate(items) if a != b
        ]
        assert row == pytest.approx(1 - np.mean(sims))


def test_sparse_and_dense_vectors_give_the_same_diversity() -> None:
    categories = np.array(
        [[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=float
    )
    dense = intra_list_diversity(TOP, categories)
    for matrix in (sp.csr_matrix(categories), sp.coo_matrix(categories), sp.csr_array(categories)):
        np.testing.assert_allclose(intra_list_diversity(TOP, matrix), dense, equal_nan=True)
    # list 0 = items 0, 1, 2: cos(0,1) = 1/sqrt(2), the others 0
    assert dense[0] == pytest.approx(1 - (1 / math.sqrt(2)) / 3)


def test_novelty_is_smoothed_self_information() -> None:
    got = novelty(TOP, POP, N_USERS)
    info = -np.log2((POP + 1) / (N_USERS + 1))
    assert got[0] == pytest.approx((info[0] + info[1] + info[2]) / 3)
    assert got[1] == pytest.approx(info[3])
    assert got[2] == pytest.approx((info[2] + info[4]) / 2)
    assert math.isnan(got[3])
    # a never-seen item is finite: log2(n_users + 1) bits; one everyone saw is 0 bits
    assert novelty(np.array([[1]]), POP, N_USERS)[0] == pytest.approx(math.log2(16))
    assert novelty(np.array([[0]]), np.array([15.0]), N_USERS)[0] == pytest.approx(0.0)


def test_average_popularity_is_mean_count() -> None:
    got = average_popularity(TOP, POP)
    np.testing.assert_allclose(got[:3], [13 / 3, 1.0, 5.0])
    assert math.isnan(got[3])
    with pytest.raises(ValueError, match="non-negative"):
        average_popularity(TOP, -POP)


def test_popularity_counts() -> None:
    np.testing.assert_array_equal(popularity_counts([0, 2, 2, 4], 6), [1, 0, 2, 0, 1, 0])
    with pytest.raises(ValueError, match="lie in"):
        popularity_counts([6], 6)


def test_accumulator_cuts_lists_to_k_and_averages_over_chunks() -> None:
    acc = BeyondAccuracy((1, 3), POP, N_USERS, item_vectors=VECTORS)
    acc.update(TOP[:2])
    acc.update(torch.from_numpy(TOP[2:]))
    got = acc.compute()
    assert list(got) == [
        "coverage@1",
        "coverage@3",
        "diversity@1",
        "diversity@3",
        "novelty@1",
        "novelty@3",
        "arp@1",
        "arp@3",
    ]
    assert got["coverage@1"] == pytest.approx(3 / 5)  # items 0, 3, 2
    assert got["coverage@3"] == pytest.approx(1.0)
    assert math.isnan(got["diversity@1"])  # no list has two items
    div = intra_list_diversity(TOP, VECTORS)
    assert got["diversity@3"] == pytest.approx((div[0] + div[2]) / 2)
    for name, fn in (("novelty", novelty), ("arp", average_popularity)):
        args = (POP, N_USERS) if name == "novelty" else (POP,)
        assert got[f"{name}@1"] == pytest.approx(np.nanmean(fn(TOP[:, :1], *args)))
        assert got[f"{name}@3"] == pytest.approx(np.nanmean(fn(TOP, *args)))
    acc.reset()
    assert acc.compute()["coverage@3"] == 0.0 and math.isnan(acc.compute()["arp@3"])
    assert "diversity@1" not in BeyondAccuracy((1,), POP, N_USERS).compute()


def test_accumulator_validates_sizes() -> None:
    with pytest.raises(ValueError, match="n_items is 6"):
        BeyondAccuracy((1,), POP, N_USERS, n_items=6)
    with pytest.raises(ValueError, match="rows for 5 items"):
        BeyondAccuracy((1,), POP, N_USERS, item_vectors=VECTORS[:3])
    with pytest.raises(ValueError, match="ks"):
        BeyondAccuracy((0,), POP, N_USERS)


def _masked_top(scores: torch.Tensor, seen: list[list[int]], k: int) -> np.ndarray:
    masked = scores.masked_fill(
        UserItems.from_lists(seen).dense(torch.arange(scores.shape[0]), scores.shape[1]),
        float("-inf"),
    )
    top = torch.topk(masked, k, dim=1).indices
    values = masked.gather(1, top)
    return torch.where(values == float("-inf"), -1, top).numpy()


def test_evaluator_beyond_metrics_match_pure_functions_on_masked_top_k() -> None:
    gen = torch.Generator().manual_seed(3)
    n_users, n_items, k = 9, 12, 4
    scores = torch.rand(n_users, n_items, generator=gen)
    seen = [[u % n_items, (3 * u + 1) % n_items] for u in range(n_users)]
    seen[8] = list(range(n_items - 2))  # only 2 items left: a padded list
    test = [[(5 * u + 2) % n_items] for u in range(n_users - 1)] + [[10, 11]]
    test[0] = []  # user 0 has no test item: not averaged
    test_users = [u for u in range(n_users) for _ in test[u]]
    test_items = [i for u in range(n_users) for i in test[u]]
    train_users = [u for u in range(n_users) for _ in seen[u]]
    train_items = [i for u in range(n_users) for i in seen[u]]
    pop = popularity_counts(train_items, n_items)
    vectors = torch.rand(n_items, 5, generator=gen).numpy() - 0.5

    evaluator = RankingEvaluator(
        scores_from_matrix(scores),
        (test_users, test_items),
        (train_users, train_items),
        ks=(2, k),
        chunk_size=4,
        item_popularity=pop,
        item_vectors=vectors,
    )
    got = evaluator.evaluate()["all"]
    top = _masked_top(scores, seen, k)[1:]  # users 1..8
    assert (top[-1, 2:] == -1).all()
    for kk in (2, k):
        cut = top[:, :kk]
        assert got[f"coverage@{kk}"] == pytest.approx(catalog_coverage(cut, n_items))
        assert got[f"diversity@{kk}"] == pytest.approx(
            np.nanmean(intra_list_diversity(cut, vectors))
        )
        assert got[f"novelty@{kk}"] == pytest.approx(np.mean(novelty(cut, pop, n_users)))
        assert got[f"arp@{kk}"] == pytest.approx(np.mean(average_popularity(cut, pop)))
    custom = RankingEvaluator(
        scores_from_matrix(scores),
        (test_users, test_items),
        (train_users, train_items),
        ks=(k,),
        item_popularity=torch.from_numpy(pop),
        popularity_users=100,
    ).evaluate()["all"]
    assert custom[f"novelty@{k}"] == pytest.approx(np.mean(novelty(top, pop, 100)))
    assert f"diversity@{k}" not in custom


def test_evaluator_slices_use_their_own_lists_and_users() -> None:
    # user 0: warm item 0 (top-scored), cold item 5; user 1: only cold item 4
    scores = torch.tensor(
        [
            [0.9, 0.8, 0.1, 0.2, 0.3, 0.7],
            [0.1, 0.2, 0.9, 0.8, 0.7, 0.3],
        ]
    )
    pop = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    out = RankingEvaluator(
        scores_from_matrix(scores),
        ([0, 0, 1], [0, 5, 4]),
        cold=[False, True, True],
        ks=(2,),
        item_popularity=pop,
    ).evaluate()
    # warm: user 0 only, cold item 5 masked -> [0, 1]
    assert out["warm"]["n_users"] == 1
    assert out["warm"]["coverage@2"] == pytest.approx(2 / 6)
    assert out["warm"]["arp@2"] == pytest.approx(4.5)
    # cold: user 0 with warm item 0 masked -> [1, 5]; user 1 -> [2, 3]
    assert out["cold"]["coverage@2"] == pytest.approx(4 / 6)
    assert out["cold"]["arp@2"] == pytest.approx((2.0 + 2.5) / 2)
    # all: user 0 -> [0, 1]; user 1 -> [2, 3]
    assert out["all"]["coverage@2"] == pytest.approx(4 / 6)
    assert out["all"]["novelty@2"] == pytest.approx(
        np.mean(novelty(np.array([[0, 1], [2, 3]]), pop, 2))
    )


def test_evaluator_without_popularity_is_unchanged_and_checks_sizes() -> None:
    scores = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
    pairs = ([0, 1, 2], [1, 2, 3])
    plain = RankingEvaluator(scores_from_matrix(scores), pairs, ks=(2,)).evaluate()
    assert list(plain["all"]) == ["n_users", "hr@2", "recall@2", "ndcg@2", "mrr@2"]
    extra = RankingEvaluator(
        scores_from_matrix(scores), pairs, ks=(2,), item_popularity=np.ones(5)
    ).evaluate()
    assert {k: extra["all"][k] for k in plain["all"]} == plain["all"]
    with pytest.raises(ValueError, match="item_popularity has 4 items"):
        RankingEvaluator(
            scores_from_matrix(scores), pairs, ks=(2,), item_popularity=np.ones(4)
        ).evaluate()


def test_rank_chunk_pads_excluded_items_and_per_user_metrics_keeps_its_signature() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4]])
    relevant = torch.tensor([[False, True, False, False], [True, False, False, False]])
    excluded = torch.tensor([[True, False, True, True], [False, False, False, False]])
    chunk = rank_chunk(scores, relevant, excluded, ks=(1, 3))
    assert chunk.top.tolist() == [[1, -1, -1], [3, 2, 1]]  # only item 1 is left for user 0
    assert chunk.n_relevant.tolist() == [1, 1]
    values, n_rel = per_user_metrics(scores, relevant, excluded, (1, 3))
    assert values.keys() == chunk.values.keys() and torch.equal(n_rel, chunk.n_relevant)
    assert chunk.values["hr@1"].tolist() == [1.0, 0.0]
