"""The cascade over fitted baselines and a stand-in head scorer, on a block-structured toy."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import scipy.sparse as sp

from mtlrec.baselines import Recommender, make_baseline
from mtlrec.fusion import make_fusion
from mtlrec.fusion.cascade import Cascade, CascadeOutput, HeadScorer, top_n
from mtlrec.fusion.rerank import MMRReranker

N_USERS, N_ITEMS, N_BLOCKS = 40, 30, 3
PER_BLOCK = N_ITEMS // N_BLOCKS


def _toy() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Users take 4 items of their block; one more block item is the held-out target."""
    rng = np.random.default_rng(0)
    rows, cols, target = [], [], np.zeros(N_USERS, dtype=np.int64)
    for u in range(N_USERS):
        block = u % N_BLOCKS
        picked = block * PER_BLOCK + rng.choice(PER_BLOCK, size=5, replace=False)
        target[u] = picked[0]
        rows += [u] * 4
        cols += list(picked[1:])
    train = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(N_USERS, N_ITEMS))
    vectors = np.eye(N_BLOCKS)[np.arange(N_ITEMS) // PER_BLOCK].astype(np.float32)
    return train, target, vectors


def _head_scorer(target: np.ndarray) -> HeadScorer:
    """Stand-in multi-task heads: ``good`` knows the target, ``noise`` does not."""
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(N_USERS, N_ITEMS)).astype(np.float32)

    def score(users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        good = (target[users] == items).astype(np.float32) + 0.01 * noise[users, items]
        return {"good": good, "noise": noise[users, items]}

    return score


class Parts(NamedTuple):
    train: sp.csr_matrix
    target: np.ndarray
    vectors: np.ndarray
    retrievers: dict[str, Recommender]


@pytest.fixture(scope="module")
def parts() -> Parts:
    train, target, vectors = _toy()
    retrievers = {
        "item_knn": make_baseline("item_knn", neighbours=10, shrink=1.0).fit(train),
        "popularity": make_baseline("popularity").fit(train),
    }
    return Parts(train, target, vectors, retrievers)


def _cascade(parts: Parts, reranker: MMRReranker | None = None, candidates: int = 12) -> Cascade:
    train, target, vectors, retrievers = parts
    return Cascade(
        retrievers,
        make_fusion("linear", normalization="zscore", k=5),
        head_scorer=_head_scorer(target),
        tasks=("good", "noise"),
        candidates=candidates,
        reranker=reranker,
        item_vectors=vectors,
        depth=10,
        item_popularity=np.asarray(train.sum(axis=0)).ravel(),
        user_activity=np.asarray(train.sum(axis=1)).ravel(),
    )


def test_top_n_orders_and_pads() -> None:
    scores = np.array([[0.1, 3.0, -np.inf, 2.0], [-np.inf, -np.inf, 1.0, -np.inf]])
    np.testing.assert_array_equal(top_n(scores, 3), [[1, 3, 0], [2, -1, -1]])


def test_retrieval_is_the_union_without_excluded_items(parts: Parts) -> None:
    train = parts[0]
    cascade = _cascade(parts, candidates=5)
    users = np.arange(N_USERS)
    exclude = train.toarray() > 0
    found = cascade.retrieve(users, exclude)
    assert not (found.mask & exclude).any()
    for name, rank in found.ranks.items():
        assert ((rank > 0).sum(axis=1) <= 5).all(), name
    union = np.zeros_like(found.mask)
    for rank in found.ranks.values():
        union |= rank > 0
    np.testing.assert_array_equal(found.mask, union)
    item = int(np.nonzero(found.ranks["popularity"][0] == 1)[0][0])
    assert ("popularity", 1) in found.retrieved_by(0, item)


def test_fitted_cascade_puts_the_target_first(parts: Parts) -> None:
    train, target, _, _ = parts
    users = np.arange(N_USERS)
    exclude = train.toarray() > 0
    relevant = np.zeros_like(exclude)
    relevant[users, target] = True
    cascade = _cascade(parts).fit(users, exclude, relevant)
    weights = cascade.fusion.weights()
    assert weights["good"] > weights["noise"]
    out = cascade.run(users, exclude, k=5)
    assert isinstance(out, CascadeOutput) and out.items.shape == (N_USERS, 5)
    retrieved = out.candidates.mask[users, target]
    assert retrieved.mean() > 0.9  # item kNN finds the block
    assert (out.items[retrieved, 0] == target[retrieved]).all()
    assert np.isneginf(out.fused[exclude]).all()
    assert np.isneginf(out.fused[~out.candidates.mask]).all()
    ranking = out.ranking_scores()
    first = np.argmax(ranking, axis=1)
    np.testing.assert_array_equal(first, out.items[:, 0])


def test_mmr_rerank_trades_relevance_for_diversity(parts: Parts) -> None:
    train, target, vectors, _ = parts
    users = np.arange(N_USERS)
    exclude = train.toarray() > 0
    relevant = np.zeros_like(exclude)
    relevant[users, target] = True
    plain = _cascade(parts).fit(users, exclude, relevant).run(users, exclude, k=5)
    diverse = _cascade(parts, MMRReranker(trade_off=0.3, k=5)).fit(users, exclude, relevant)
    out = diverse.run(users, exclude, k=5)
    assert out.reranked and not plain.reranked

    def blocks_per_list(items: np.ndarray) -> float:
        return float(np.mean([len({int(i) // PER_BLOCK for i in row if i >= 0}) for row in items]))

    assert blocks_per_list(out.items) > blocks_per_list(plain.items)
    assert vectors.shape == (N_ITEMS, N_BLOCKS)


def test_needs_sources_and_vectors(parts: Parts) -> None:
    retrievers = parts[3]
    fusion = make_fusion("linear")
    with pytest.raises(ValueError, match="retriever"):
        Cascade({}, fusion)
    with pytest.raises(ValueError, match="no fusion sources"):
        Cascade(retrievers, fusion, retriever_scores=False)
    with pytest.raises(ValueError, match="item_vectors"):
        Cascade(retrievers, fusion, reranker=MMRReranker())
