"""``TwoTower`` and the ``two_tower`` baseline: FAISS recommend path vs exact ranking, cold
items, training, determinism and persistence, on a clustered toy with content features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from mtlrec.baselines import Recommender, TwoTowerRecommender
from mtlrec.models.two_tower import TwoTower, in_batch_softmax_loss

N_USERS, N_ITEMS, N_CLUSTERS, D_TEXT = 120, 200, 4, 12
COLD = np.arange(N_ITEMS - 20, N_ITEMS)  # the last 20 items: nobody interacted with them
PARAMS: dict[str, Any] = {"dim": 16, "hidden": 32, "epochs": 12, "batch_size": 128, "lr": 0.01}


def make_toy() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Users like the items of their cluster; content = cluster one-hot + noise (D_TEXT)."""
    rng = np.random.default_rng(0)
    item_cluster = np.arange(N_ITEMS) % N_CLUSTERS
    content = np.zeros((N_ITEMS, D_TEXT), np.float32)
    content[np.arange(N_ITEMS), item_cluster] = 1.0
    content += 0.3 * rng.normal(size=content.shape).astype(np.float32)
    warm = np.setdiff1d(np.arange(N_ITEMS), COLD)
    rows, cols = [], []
    for u in range(N_USERS):
        mine = warm[item_cluster[warm] == u % N_CLUSTERS]
        picked = set(rng.choice(mine, size=8, replace=False).tolist())
        picked.add(int(rng.choice(warm)))  # one random item anywhere
        rows += [u] * len(picked)
        cols += sorted(picked)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), (N_USERS, N_ITEMS))
    return matrix, content, item_cluster


@pytest.fixture(scope="module")
def toy() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    return make_toy()


@pytest.fixture(scope="module")
def flat(toy: tuple[sp.csr_matrix, np.ndarray, np.ndarray]) -> TwoTowerRecommender:
    return TwoTowerRecommender(**PARAMS).fit(toy[0], toy[1])


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    hits = [len(set(x.tolist()) & set(y.tolist())) for x, y in zip(a, b, strict=True)]
    return float(np.mean(hits)) / a.shape[1]


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_flat_index_recommend_equals_exact_ranking(
    flat: TwoTowerRecommender, exclude_seen: bool
) -> None:
    users = np.arange(N_USERS)
    items, scores = flat.recommend(users, 10, exclude_seen=exclude_seen)
    exact_items, exact_scores = Recommender.recommend(flat, users, 10, exclude_seen=exclude_seen)
    np.testing.assert_array_equal(items, exact_items)
    np.testing.assert_array_equal(scores, exact_scores)
    retrieved = flat.retrieve(users, 10, exclude_seen=exclude_seen)
    np.testing.assert_array_equal(retrieved[0], items)


@pytest.mark.parametrize("index", ["hnsw", "ivf"])
def test_approximate_index_recommend_overlaps_exact(
    toy: tuple[sp.csr_matrix, np.ndarray, np.ndarray], flat: TwoTowerRecommender, index: str
) -> None:
    model = TwoTowerRecommender(**PARAMS, index=index, nlist=4, nprobe=2).fit(toy[0], toy[1])
    np.testing.assert_array_equal(model.item_vectors_, flat.item_vectors_)  # same training
    users = np.arange(N_USERS)
    items, scores = model.recommend(users, 10)
    assert overlap(items, flat.recommend(users, 10)[0]) >= 0.9
    seen = toy[0].toarray() > 0
    assert not np.take_along_axis(seen, items, axis=1).any()
    # scores are exact, whichever index found the items
    np.testing.assert_array_equal(np.take_along_axis(model.score(users), items, axis=1), scores)


def test_padding_when_few_items_are_unseen(
    toy: tuple[sp.csr_matrix, np.ndarray, np.ndarray],
) -> None:
    train = toy[0].tolil()
    train[0, : N_ITEMS - 3] = 1.0  # user 0 has seen all but 3 items
    model = TwoTowerRecommender(**{**PARAMS, "epochs": 1}).fit(train.tocsr(), toy[1])
    items, scores = model.recommend([0, 1], 5)
    assert sorted(items[0, :3].tolist()) == [N_ITEMS - 3, N_ITEMS - 2, N_ITEMS - 1]
    assert np.all(items[0, 3:] == -1) and np.all(np.isneginf(scores[0, 3:]))
    assert np.all(items[1] >= 0)
    all_items, _ = model.recommend([1], N_ITEMS + 5, exclude_seen=False)  # k cut to catalogue
    assert sorted(all_items[0].tolist()) == list(range(N_ITEMS))


def test_cold_items_are_scored_and_retrieved(
    toy: tuple[sp.csr_matrix, np.ndarray, np.ndarray], flat: TwoTowerRecommender
) -> None:
    _, _, item_cluster = toy
    users = np.arange(N_USERS)
    scores = flat.score(users)
    assert np.isfinite(scores[:, COLD]).all()
    # content alone places a cold item near its cluster: its own cluster's users score it higher
    same = item_cluster[COLD][None, :] == (users % N_CLUSTERS)[:, None]  # (users, cold)
    cold_scores = scores[:, COLD]
    assert cold_scores[same].mean() > cold_scores[~same].mean() + 0.2
    items, _ = flat.retrieve(users, 20)
    assert np.isin(items, COLD).any()


def test_training_loss_decreases(flat: TwoTowerRecommender) -> None:
    assert flat.losses_.shape == (PARAMS["epochs"],)
    assert flat.losses_[-1] < 0.8 * flat.losses_[0]


def test_deterministic_and_leaves_global_state_alone(
    toy: tuple[sp.csr_matrix, np.ndarray, np.ndarray], flat: TwoTowerRecommender
) -> None:
    rng_state, threads = torch.get_rng_state(), torch.get_num_threads()
    again = TwoTowerRecommender(**PARAMS).fit(toy[0], toy[1])
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads
    np.testing.assert_array_equal(again.user_vectors_, flat.user_vectors_)
    np.testing.assert_array_equal(again.item_vectors_, flat.item_vectors_)
    np.testing.assert_array_equal(again.index_.to_bytes(), flat.index_.to_bytes())
    other = TwoTowerRecommender(**{**PARAMS, "seed": 1}).fit(toy[0], toy[1])
    assert not np.array_equal(other.item_vectors_, flat.item_vectors_)


def test_hnsw_save_load_round_trip(
    toy: tuple[sp.csr_matrix, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    model = TwoTowerRecommender(**{**PARAMS, "epochs": 2}, index="hnsw").fit(toy[0], toy[1])
    model.save(tmp_path / "tt.npz")
    loaded = TwoTowerRecommender.load(tmp_path / "tt.npz")
    assert loaded.index_.kind == "hnsw"
    users = np.arange(N_USERS)
    for a, b in zip(loaded.retrieve(users, 15), model.retrieve(users, 15), strict=True):
        np.testing.assert_array_equal(a, b)
    # the torch model came back too: it recomputes the saved vectors
    with torch.no_grad():
        np.testing.assert_allclose(
            loaded.model_.item_vectors().numpy(), model.item_vectors_, rtol=1e-6, atol=1e-6
        )
    with np.load(tmp_path / "tt.npz", allow_pickle=False) as saved:
        assert "model.content" in saved.files and "index_" in saved.files


def test_item_features_are_required(toy: tuple[sp.csr_matrix, np.ndarray, np.ndarray]) -> None:
    train, content, _ = toy
    with pytest.raises(ValueError, match=r"dense \(n_items, D\) float LM item embeddings"):
        TwoTowerRecommender(**PARAMS).fit(train)
    with pytest.raises(ValueError, match=r"dense \(n_items, D\) float LM item embeddings"):
        TwoTowerRecommender(**PARAMS).fit(train, [f"item {i}" for i in range(N_ITEMS)])
    with pytest.raises(ValueError, match="nan or inf"):
        TwoTowerRecommender(**PARAMS).fit(train, np.full_like(content, np.nan))
    with pytest.raises(ValueError, match="known kinds: flat, ivf, hnsw"):
        TwoTowerRecommender(**PARAMS, index="lsh").fit(train, content)
    with pytest.raises(ValueError, match="n must be positive"):
        TwoTowerRecommender(**{**PARAMS, "epochs": 1}).fit(train, content).retrieve([0], 0)


def test_in_batch_softmax_loss_by_hand() -> None:
    torch.manual_seed(0)
    users = F.normalize(torch.randn(4, 3), dim=1)
    items = F.normalize(torch.randn(4, 3), dim=1)
    item_ids = torch.tensor([0, 2, 0, 1])  # item 0 twice: not a negative of itself
    log_q = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    logits = (users @ items.T) / 0.5 - log_q[item_ids]
    want = 0.0
    for i in range(4):
        keep = [j for j in range(4) if j == i or item_ids[j] != item_ids[i]]
        want += -torch.log_softmax(logits[i, keep], dim=0)[keep.index(i)].item() / 4
    got = in_batch_softmax_loss(users, items, item_ids, log_q, temperature=0.5)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_model_shapes_and_cold_masks(toy: tuple[sp.csr_matrix, np.ndarray, np.ndarray]) -> None:
    train, content, _ = toy
    model = TwoTower(torch.from_numpy(content), train, dim=8, hidden=16).eval()
    with torch.no_grad():
        items = model.item_vectors()
        users = model.user_vectors(torch.tensor([0, 5, 7]))
    assert items.shape == (N_ITEMS, 8) and users.shape == (3, 8)
    torch.testing.assert_close(items.norm(dim=1), torch.ones(N_ITEMS))
    assert model.warm_items[torch.from_numpy(COLD)].sum() == 0
    assert model.warm_items.sum() == N_ITEMS - len(COLD)
    assert set(model.state_dict()) >= {"content", "user_embedding.weight"}
    assert "history_sum" not in model.state_dict()  # rebuilt from user_items, not saved
    with pytest.raises(ValueError, match=r"content must be \(200, D\)"):
        TwoTower(torch.from_numpy(content[:10]), train)
