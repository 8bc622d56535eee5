"""MMR re-ranking for diversity and multi-hot category vectors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mtlrec.evaluation.beyond import intra_list_diversity
from mtlrec.fusion.rerank import MMRReranker, category_vectors, mmr_rerank


def _clusters() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items 0-3 near-identical (cluster A), 4-7 near-identical (cluster B); the four most
    relevant candidates are all in A."""
    rng = np.random.default_rng(0)
    a = np.array([1.0, 0.0, 0.0]) + 0.01 * rng.normal(size=(4, 3))
    b = np.array([0.0, 1.0, 0.0]) + 0.01 * rng.normal(size=(4, 3))
    vectors = np.vstack([a, b])
    candidates = np.array([[4, 0, 5, 1, 6, 2, 7, 3]])
    relevance = np.array([[0.5, 0.9, 0.4, 0.85, 0.3, 0.8, 0.2, 0.75]])
    return vectors, candidates, relevance


def _relevance_order(candidates: np.ndarray, relevance: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-relevance, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidates, order, axis=1)


def test_trade_off_one_is_the_relevance_order() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 6))
    candidates = np.stack([rng.permutation(50)[:20] for _ in range(7)])
    relevance = rng.normal(size=(7, 20)).round(1)  # rounding makes ties
    items, scores = mmr_rerank(candidates, relevance, vectors, k=10, trade_off=1.0)
    np.testing.assert_array_equal(items, _relevance_order(candidates, relevance, 10))
    assert items.dtype == np.int64 and scores.dtype == np.float32
    assert (np.diff(scores, axis=1) <= 0).all() and (scores[:, 0] == 1.0).all()


def test_mmr_moves_the_other_cluster_up_at_a_cost_in_relevance() -> None:
    vectors, candidates, relevance = _clusters()
    plain, _ = mmr_rerank(candidates, relevance, vectors, k=4, trade_off=1.0)
    diverse, scores = mmr_rerank(candidates, relevance, vectors, k=4, trade_off=0.5)
    np.testing.assert_array_equal(plain, [[0, 1, 2, 3]])
    assert diverse[0, 0] == 0 and diverse[0, 1] >= 4  # a cluster-B item in the top 2
    assert intra_list_diversity(diverse, vectors)[0] > intra_list_diversity(plain, vectors)[0]
    rel = dict(zip(candidates[0].tolist(), relevance[0].tolist(), strict=True))
    assert sum(rel[i] for i in diverse[0]) < sum(rel[i] for i in plain[0])
    # the first pick's MMR value is trade_off * 1 (no item picked yet)
    assert scores[0, 0] == pytest.approx(0.5)
    # hand check of the second pick: item 4 (rel 0.5 -> (0.5 - 0.2) / 0.7) vs item 1
    sim = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    want = 0.5 * (0.3 / 0.7) - 0.5 * float(sim[4] @ sim[0])
    assert diverse[0, 1] == 4 and scores[0, 1] == pytest.approx(want, rel=1e-5)


def test_trade_off_zero_alternates_clusters() -> None:
    vectors, candidates, relevance = _clusters()
    items, _ = mmr_rerank(candidates, relevance, vectors, k=2, trade_off=0.0)
    assert items[0, 0] == 0 and items[0, 1] >= 4


def test_pads_and_short_rows() -> None:
    vectors, _, _ = _clusters()
    candidates = np.array([[0, -1, 4, 1], [-1, -1, -1, -1], [2, 3, 5, -1]])
    relevance = np.array([[0.9, -np.inf, 0.5, 0.8], [-np.inf] * 4, [0.1, 0.2, -np.inf, -np.inf]])
    items, scores = mmr_rerank(candidates, relevance, vectors, k=5, trade_off=1.0)
    np.testing.assert_array_equal(items, [[0, 1, 4, -1, -1], [-1] * 5, [3, 2, -1, -1, -1]])
    assert np.isneginf(scores[items == -1]).all() and np.isfinite(scores[items >= 0]).all()
    # a single valid candidate normalises to relevance 1
    one, one_score = mmr_rerank(np.array([[7, -1]]), np.array([[3.0, -np.inf]]), vectors, 1, 0.3)
    assert one[0, 0] == 7 and one_score[0, 0] == pytest.approx(0.3)
    empty, _ = mmr_rerank(np.full((2, 3), -1), np.full((2, 3), -np.inf), vectors, 2, 0.5)
    assert (empty == -1).all()


def test_sparse_category_vectors_match_dense_and_tensors_work() -> None:
    categories = category_vectors(
        [["drama"], ["drama", "war"], "comedy|romance", None, "", ["comedy"], "drama|war"],
        sep="|",
    )
    assert categories.shape == (7, 4)  # comedy, drama, romance, war
    np.testing.assert_array_equal(
        categories.toarray(),
        [
            [0, 1, 0, 0],
            [0, 1, 0, 1],
            [1, 0, 1, 0],
            [0, 0, 0, 0],
            [0, 0, 0, 0],
            [1, 0, 0, 0],
            [0, 1, 0, 1],
        ],
    )
    candidates = np.array([[0, 1, 6, 2, 3, 5], [6, 5, 4, 3, 2, 1]])
    relevance = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])
    sparse = mmr_rerank(candidates, relevance, categories, k=4, trade_off=0.5)
    dense = mmr_rerank(
        torch.from_numpy(candidates), torch.from_numpy(relevance), categories.toarray(), 4, 0.5
    )
    np.testing.assert_array_equal(sparse[0], dense[0])
    np.testing.assert_allclose(sparse[1], dense[1], rtol=1e-6)
    # row 0: after drama (0), the drama/war items lose to comedy-romance (2)
    assert sparse[0][0, :2].tolist() == [0, 2]
    assert category_vectors(["a b"]).shape == (1, 1)  # no sep: the whole string
    assert category_vectors([None, []]).shape == (2, 0)


def test_reranker_stores_params_and_validates() -> None:
    reranker = MMRReranker(trade_off=0.3, k=2)
    assert reranker.get_params() == {"trade_off": 0.3, "k": 2}
    vectors, candidates, relevance = _clusters()
    items, _ = reranker.rerank(candidates, relevance, vectors)
    np.testing.assert_array_equal(
        items, mmr_rerank(candidates, relevance, vectors, k=2, trade_off=0.3)[0]
    )
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="trade_off"):
            MMRReranker(trade_off=bad)
        with pytest.raises(ValueError, match="trade_off"):
            mmr_rerank(candidates, relevance, vectors, k=2, trade_off=bad)
    with pytest.raises(ValueError, match="k must be positive"):
        MMRReranker(k=0)
    with pytest.raises(ValueError, match="differ in shape"):
        mmr_rerank(candidates, relevance[:, :3], vectors, k=2, trade_off=0.5)
    with pytest.raises(ValueError, match="finite"):
        mmr_rerank(candidates, np.full(candidates.shape, np.nan), vectors, k=2, trade_off=0.5)
    with pytest.raises(ValueError, match="of 8 items"):
        mmr_rerank(candidates + 1, relevance, vectors, k=2, trade_off=0.5)


def test_a_batch_of_users_reranks_as_each_user_alone() -> None:
    # (its speed is a benchmark's business, not a timed unit test's: the fusion benchmark
    # reranks every test user in one batch)
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(5000, 384)).astype(np.float32)
    candidates = rng.integers(0, 5000, size=(1000, 200))
    relevance = rng.normal(size=(1000, 200))
    items, _ = mmr_rerank(candidates, relevance, vectors, k=10, trade_off=0.7)
    assert items.shape == (1000, 10) and (items >= 0).all()
    # batching does not change a row's result
    single, _ = mmr_rerank(candidates[123:124], relevance[123:124], vectors, 10, 0.7)
    np.testing.assert_array_equal(single[0], items[123])
    assert sp.issparse(category_vectors(["x"]))
