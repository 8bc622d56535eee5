"""Baselines on hand-built matrices with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mtlrec.baselines import (
    BASELINES,
    ALSRecommender,
    EASERecommender,
    ItemKNNRecommender,
    LMContentRecommender,
    PopularityRecommender,
    Recommender,
    TfidfRecommender,
    UserKNNRecommender,
    make_baseline,
    shrunk_cosine_topk,
)
from mtlrec.core.registry import UnknownNameError


def csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    data = [(u, i) for u, items in enumerate(rows) for i in items]
    users, items = zip(*data, strict=True)
    return sp.csr_matrix((np.ones(len(data)), (users, items)), shape=(len(rows), n_items))


# Two blocks: items 0-2 (users 0-3) and 3-5 (users 4-6); user 3 has not seen item 2.
BLOCKS = csr([[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1], [3, 4, 5], [3, 4, 5], [3, 4]], 6)


def test_registry_names_and_unknown_name() -> None:
    assert BASELINES.names() == sorted(
        [
            "popularity",
            "item_knn",
            "user_knn",
            "ease",
            "als",
            "bpr",
            "tfidf",
            "lm_content",
            "two_tower",
        ]
    )
    for name in BASELINES.names():
        assert BASELINES.get(name).name == name
    with pytest.raises(UnknownNameError, match="item_knn"):
        make_baseline("nope")


def test_constructor_stores_params_untouched() -> None:
    model = make_baseline("item_knn", neighbours=7, shrink=2.5)
    assert model.get_params() == {"neighbours": 7, "shrink": 2.5}
    assert "ItemKNNRecommender(neighbours=7" in repr(model)
    assert PopularityRecommender().get_params() == {}


def test_popularity_orders_items_by_interaction_count() -> None:
    x = csr([[0, 1, 2], [1, 2], [2], [2, 3]], 5)  # counts: 1, 2, 4, 1, 0
    model = PopularityRecommender().fit(x)
    np.testing.assert_array_equal(model.score([0])[0], [1, 2, 4, 1, 0])
    items, scores = model.recommend([2], k=3, exclude_seen=False)
    np.testing.assert_array_equal(items[0][:2], [2, 1])
    assert items[0][2] in (0, 3)  # tied at one interaction each
    np.testing.assert_array_equal(scores[0], [4, 2, 1])
    items, _ = model.recommend([2], k=2)  # user 2 saw item 2
    assert items[0][0] == 1 and 2 not in items[0]


@pytest.mark.parametrize("klass", [ItemKNNRecommender, UserKNNRecommender])
def test_knn_recommends_the_blocks_unseen_item(
    klass: type[ItemKNNRecommender] | type[UserKNNRecommender],
) -> None:
    model = klass(neighbours=5, shrink=0.0).fit(BLOCKS)
    items, scores = model.recommend([3], k=1)
    assert items[0, 0] == 2
    assert scores[0, 0] > 0
    # the other block's items get nothing
    assert np.all(model.score([3])[0, 3:] == 0)


def test_shrunk_cosine_matches_hand_computation() -> None:
    # rows are entities; a=(1,1,0), b=(1,0,0): dot 1, norms sqrt2 * 1
    rows = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float))
    sim = shrunk_cosine_topk(rows, neighbours=5, shrink=0.0).toarray()
    np.testing.assert_allclose(sim[0, 1], 1 / np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(sim, sim.T, rtol=1e-6)
    assert np.all(np.diag(sim) == 0)
    assert sim[0, 2] == 0 and sim[1, 2] == 0
    shrunk = shrunk_cosine_topk(rows, neighbours=5, shrink=1.0).toarray()
    np.testing.assert_allclose(shrunk[0, 1], 1 / (np.sqrt(2) + 1), rtol=1e-6)


def test_shrinkage_lowers_rarely_cooccurring_pairs_more() -> None:
    # items 0,1 co-occur once (cosine 1); items 2,3 co-occur ten times (cosine 1)
    rows = [[0, 1]] + [[2, 3]] * 10
    x = csr(rows, 4)
    plain = shrunk_cosine_topk(x.T.tocsr(), neighbours=3, shrink=0.0).toarray()
    np.testing.assert_allclose([plain[0, 1], plain[2, 3]], [1.0, 1.0], rtol=1e-6)
    shrunk = shrunk_cosine_topk(x.T.tocsr(), neighbours=3, shrink=10.0).toarray()
    np.testing.assert_allclose(shrunk[0, 1], 1 / 11, rtol=1e-6)
    np.testing.assert_allclose(shrunk[2, 3], 10 / 20, rtol=1e-6)
    assert shrunk[0, 1] < shrunk[2, 3]


def test_knn_keeps_top_neighbours_per_row() -> None:
    rng = np.random.default_rng(0)
    x = sp.csr_matrix((rng.random((30, 12)) < 0.4).astype(float))
    full = shrunk_cosine_topk(x.T.tocsr(), neighbours=100, shrink=0.0).toarray()
    top2 = shrunk_cosine_topk(x.T.tocsr(), neighbours=2, shrink=0.0)
    assert np.all(np.diff(top2.indptr) <= 2)
    dense = top2.toarray()
    for i in range(12):
        kept = np.sort(dense[i][dense[i] > 0])[::-1]
        np.testing.assert_allclose(kept, np.sort(full[i])[::-1][: kept.size], rtol=1e-6)
    # chunked computation gives the same matrix as one big chunk
    model = ItemKNNRecommender(neighbours=100, shrink=0.0).fit(x)
    np.testing.assert_allclose(model.similarity_.toarray(), full, rtol=1e-6)


def test_exclude_seen_never_returns_a_seen_item_and_pads() -> None:
    model = PopularityRecommender().fit(BLOCKS)
    items, scores = model.recommend(np.arange(7), k=6)
    dense = BLOCKS.toarray() > 0
    for u in range(7):
        returned = items[u][items[u] >= 0]
        assert not dense[u, returned].any()
        n_unseen = int((~dense[u]).sum())
        assert returned.size == n_unseen
        assert np.all(items[u][n_unseen:] == -1)
        assert np.all(np.isneginf(scores[u][n_unseen:]))
    items, _ = model.recommend(np.arange(7), k=6, exclude_seen=False)
    assert np.all(np.sort(items, axis=1) == np.arange(6))


def test_recommend_k_larger_than_catalogue_and_bad_input() -> None:
    model = ItemKNNRecommender().fit(BLOCKS)
    items, scores = model.recommend([0, 1], k=50, exclude_seen=False)
    assert items.shape == (2, 6) and scores.shape == (2, 6)
    assert items.dtype == np.int64 and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 0)
    with pytest.raises(ValueError, match="k must be positive"):
        model.recommend([0], k=0)
    with pytest.raises(IndexError):
        model.recommend([7], k=1)
    with pytest.raises(RuntimeError, match="not fitted"):
        ItemKNNRecommender().score([0])
    with pytest.raises(ValueError, match="non-negative"):
        ItemKNNRecommender().fit(sp.csr_matrix(np.array([[1.0, -1.0]])))


def test_tfidf_recommends_a_cold_item_with_matching_text() -> None:
    texts = [
        "space rocket launch orbit",
        "rocket orbit astronaut",
        "cooking pasta recipe",
        "pasta sauce cooking",
        "astronaut space orbit mission",  # cold: nobody took it
        "garden flowers soil",  # cold, unrelated
    ]
    x = csr([[0, 1], [2, 3], [0], [3]], 6)
    model = TfidfRecommender().fit(x, texts)
    items, _ = model.recommend([0], k=1)
    assert items[0, 0] == 4
    scores = model.score([0, 1])
    assert scores[0, 4] > scores[0, 5] and scores[0, 4] > scores[0, 2]
    assert scores[1, 4] < scores[1, 2]  # the cooking user prefers cooking items
    with pytest.raises(ValueError, match="needs item_features"):
        TfidfRecommender().fit(x)
    with pytest.raises(ValueError, match="rows"):
        TfidfRecommender().fit(x, texts[:3])


def test_lm_content_recommends_a_cold_item_with_matching_embedding() -> None:
    emb = np.array(
        [[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0.95, 0.05, 0], [0, 0, 1]],
        dtype=np.float32,
    )
    x = csr([[0, 1], [2, 3]], 6)  # items 4 and 5 are cold
    model = LMContentRecommender().fit(x, emb)
    assert model.recommend([0], k=1)[0][0, 0] == 4
    assert model.recommend([1], k=1)[0][0, 0] != 4
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    profile = unit[[0, 1]].mean(axis=0)  # mean of the L2-normalised item vectors
    expected = unit @ profile / np.linalg.norm(profile)
    np.testing.assert_allclose(model.score([0])[0], expected, rtol=1e-5)
    # a user without items scores 0 everywhere (no nan)
    empty = LMContentRecommender().fit(sp.csr_matrix((1, 6)), emb)
    assert np.all(empty.score([0]) == 0)


def test_save_load_round_trip_gives_identical_scores(tmp_path: Path) -> None:
    texts = ["aa bb", "bb cc", "cc dd", "dd ee", "ee ff", "ff aa"]
    emb = np.random.default_rng(0).normal(size=(6, 4))
    for name in BASELINES.names():
        model = make_baseline(name)
        features = {"texts": texts, "embeddings": emb}.get(model.needs or "")
        model = model.fit(BLOCKS, features)
        path = tmp_path / f"{name}.model"
        model.save(path)
        assert path.exists()  # saved at exactly the given path
        loaded = Recommender.load(path)
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.score(np.arange(7)), model.score(np.arange(7)))
    with pytest.raises(TypeError, match="not a"):
        ALSRecommender.load(tmp_path / "item_knn.model")
    assert isinstance(ItemKNNRecommender.load(tmp_path / "item_knn.model"), ItemKNNRecommender)


def test_als_scores_are_factor_products_and_reproducible() -> None:
    a = ALSRecommender(factors=4, iterations=5, random_state=3).fit(BLOCKS)
    b = ALSRecommender(factors=4, iterations=5, random_state=3).fit(BLOCKS)
    assert a.user_factors_.shape == (7, 4) and a.item_factors_.shape == (6, 4)
    np.testing.assert_allclose(
        a.score([1, 5]), a.user_factors_[[1, 5]] @ a.item_factors_.T, rtol=1e-6
    )
    np.testing.assert_array_equal(a.score(np.arange(7)), b.score(np.arange(7)))


def test_score_fn_adapts_to_tensors() -> None:
    model = ItemKNNRecommender().fit(BLOCKS)
    fn = model.score_fn()
    out = fn(torch.tensor([3, 0]))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.shape == (2, 6)
    np.testing.assert_array_equal(out.numpy(), model.score([3, 0]))


def test_ease_solves_its_constrained_least_squares() -> None:
    """EASE's B minimises |X - XB|^2 + l2 |B|^2 with diag(B) = 0: zero diagonal, and the
    gradient vanishes off the diagonal (the KKT conditions; the diagonal carries the
    constraint's multipliers)."""
    x = sp.random(60, 25, density=0.2, format="csr", random_state=0)
    x.data[:] = 1.0
    l2 = 7.0
    model = EASERecommender(l2=l2).fit(x)
    b = model.weights_.astype(np.float64)
    dense = x.toarray()
    gradient = -(dense.T @ (dense - dense @ b)) + l2 * b
    assert np.abs(np.diag(b)).max() == 0.0
    assert np.abs(gradient - np.diag(np.diag(gradient))).max() < 1e-4
    np.testing.assert_allclose(model.score(np.arange(3)), dense[:3] @ b, rtol=1e-4, atol=1e-5)


def test_ease_refuses_a_catalogue_above_max_items_and_a_bad_l2() -> None:
    with pytest.raises(ValueError, match="max_items=4"):
        EASERecommender(max_items=4).fit(BLOCKS)
    with pytest.raises(ValueError, match="l2 must be positive"):
        EASERecommender(l2=0.0).fit(BLOCKS)
