"""Contract of every registered baseline, on a synthetic implicit dataset with blocks.

60 users and 40 items in 4 blocks of 10; each user takes 4 items of their own block (one
held out as the test target) plus one random item anywhere (noise). Content baselines get
block-informative item features: embeddings = one-hot of the block + noise, texts = block
words + a random word. Popularity is the floor: every personalised baseline must beat its
recall@5. A new baseline is checked here by registering it: it is built with its own
``example_params`` and fed the item features its ``needs`` names (see
``docs/extending.md``); no table here names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mtlrec.baselines import BASELINES, Recommender, make_baseline
from mtlrec.evaluation.ranking import RankingEvaluator, rank_metrics

NAMES = BASELINES.names()
N_USERS, N_ITEMS, N_BLOCKS = 60, 40, 4
PER_BLOCK = N_ITEMS // N_BLOCKS


def params(name: str) -> dict[str, Any]:
    """The baseline's own parameters for this toy (the defaults are sized for real data)."""
    return BASELINES.get(name).example_params


@dataclass(frozen=True)
class Toy:
    train: sp.csr_matrix
    test_items: np.ndarray  # (N_USERS,) held-out item per user
    embeddings: np.ndarray
    texts: list[str]

    def features(self, name: str) -> Any:
        """The item features the baseline ``name`` needs (``None`` if it needs none)."""
        return {"texts": self.texts, "embeddings": self.embeddings}.get(
            BASELINES.get(name).needs or ""
        )


def make_toy() -> Toy:
    rng = np.random.default_rng(0)
    rows: list[int] = []
    cols: list[int] = []
    test = np.zeros(N_USERS, dtype=np.int64)
    for u in range(N_USERS):
        block = u % N_BLOCKS
        picked = block * PER_BLOCK + rng.choice(PER_BLOCK, size=4, replace=False)
        test[u] = picked[0]
        noise = int(rng.integers(N_ITEMS))
        train = {int(i) for i in picked[1:]} | ({noise} - {int(picked[0])})
        rows += [u] * len(train)
        cols += sorted(train)
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(N_USERS, N_ITEMS))
    item_block = np.arange(N_ITEMS) // PER_BLOCK
    emb = np.eye(N_BLOCKS)[item_block] + 0.3 * rng.normal(size=(N_ITEMS, N_BLOCKS))
    words = [["alpha", "apple"], ["beta", "bread"], ["gamma", "grape"], ["delta", "date"]]
    filler = ["misc", "thing", "stuff", "item", "other"]
    texts = [
        " ".join([*words[b], str(rng.choice(filler)), f"id{i}"]) for i, b in enumerate(item_block)
    ]
    return Toy(matrix, test, emb.astype(np.float32), texts)


@pytest.fixture(scope="module")
def toy() -> Toy:
    return make_toy()


def fitted(name: str, toy: Toy) -> Recommender:
    return make_baseline(name, **params(name)).fit(toy.train, toy.features(name))


def recall_at_5(model: Recommender, toy: Toy) -> float:
    scores = torch.from_numpy(model.score(np.arange(N_USERS)))
    targets = [[int(i)] for i in toy.test_items]
    return rank_metrics(scores, targets, exclude=toy.train, ks=(5,))["recall@5"]


@pytest.fixture(scope="module")
def popularity_recall(toy: Toy) -> float:
    return recall_at_5(fitted("popularity", toy), toy)


@pytest.mark.parametrize("name", NAMES)
def test_beats_popularity(name: str, toy: Toy, popularity_recall: float) -> None:
    recall = recall_at_5(fitted(name, toy), toy)
    assert 0.0 <= recall <= 1.0
    if not BASELINES.get(name).personalised:
        assert recall < 0.5  # the toy is not solvable without personalisation
    else:
        assert recall > popularity_recall + 0.15, (name, recall, popularity_recall)


@pytest.mark.parametrize("name", NAMES)
def test_recommend_shapes_dtypes_and_order(name: str, toy: Toy) -> None:
    model = fitted(name, toy)
    users = np.array([0, 5, 17, 59])
    items, scores = model.recommend(users, k=7)
    assert items.shape == (4, 7) and scores.shape == (4, 7)
    assert items.dtype == np.int64 and scores.dtype == np.float32
    assert np.all((items >= 0) & (items < N_ITEMS))  # every user has > 7 unseen items
    assert np.all(np.diff(scores, axis=1) <= 0)
    all_scores = model.score(users)
    assert all_scores.shape == (4, N_ITEMS) and all_scores.dtype == np.float32
    assert np.isfinite(all_scores).all()
    np.testing.assert_array_equal(np.take_along_axis(all_scores, items, axis=1), scores)


@pytest.mark.parametrize("name", NAMES)
def test_exclude_seen(name: str, toy: Toy) -> None:
    model = fitted(name, toy)
    users = np.arange(N_USERS)
    items, _ = model.recommend(users, k=10)
    seen = toy.train.toarray() > 0
    assert not np.take_along_axis(seen, items, axis=1).any()
    # without exclusion the top-k is the top-k of the raw scores
    raw_items, raw_scores = model.recommend(users, k=3, exclude_seen=False)
    top = np.sort(model.score(users), axis=1)[:, ::-1][:, :3]
    np.testing.assert_array_equal(raw_scores, top)


@pytest.mark.parametrize("name", NAMES)
def test_with_history_scores_from_the_new_interactions_without_refitting(
    name: str, toy: Toy
) -> None:
    model = fitted(name, toy)
    users = np.arange(N_USERS)
    before = model.score(users)
    # what is known later: the held-out items joined to the training interactions
    later = (
        toy.train
        + sp.csr_matrix(
            (np.ones(N_USERS, dtype=np.float32), (users, toy.test_items)), shape=toy.train.shape
        )
    ).tocsr()
    view = model.with_history(later)
    np.testing.assert_array_equal(model.score(users), before)  # the model is unchanged
    items, _ = view.recommend(users, k=5)
    assert not (items == toy.test_items[:, None]).any()  # now seen, so excluded
    if name in ("ease", "item_knn", "lm_content", "tfidf", "user_knn"):
        assert not np.allclose(view.score(users), before)  # the history itself is read
    with pytest.raises(ValueError, match="history of shape"):
        model.with_history(sp.csr_matrix((N_USERS, N_ITEMS + 1), dtype=np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_same_params_and_seed_give_same_scores(name: str, toy: Toy) -> None:
    a, b = fitted(name, toy), fitted(name, toy)
    np.testing.assert_array_equal(a.score(np.arange(N_USERS)), b.score(np.arange(N_USERS)))


@pytest.mark.parametrize("name", NAMES)
def test_params_are_stored_untouched_and_clone(name: str, toy: Toy) -> None:
    model = make_baseline(name, **params(name))
    assert type(model).name == name
    got = model.get_params()
    for key, value in params(name).items():
        assert got[key] == value
    clone = BASELINES.get(name)(**got)
    assert clone.get_params() == got


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name: str, toy: Toy, tmp_path: Path) -> None:
    model = fitted(name, toy)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = Recommender.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    for a, b in zip(loaded.recommend(users, 5), model.recommend(users, 5), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_score_fn_works_with_ranking_evaluator(name: str, toy: Toy) -> None:
    model = fitted(name, toy)
    train = toy.train.tocoo()
    evaluator = RankingEvaluator(
        model.score_fn(),
        test=(np.arange(N_USERS), toy.test_items),
        train=(train.row, train.col),
        n_items=N_ITEMS,
        ks=(5,),
        chunk_size=16,
    )
    result = evaluator.evaluate()["all"]
    assert result["n_users"] == N_USERS
    assert result["recall@5"] == pytest.approx(recall_at_5(model, toy))


def checkerboard(n_users: int = 40, n_items: int = 20) -> tuple[sp.csr_matrix, np.ndarray, Any]:
    """``implicit``'s checkerboard with one held-out item per user.

    User ``u`` took every item of its parity (``i % 2 == u % 2``) except one, its held-out
    item; every other item it has not taken is of the other parity, so the data implies
    the held-out item must come first. Item features carry the parity (one-hot + noise,
    or the words "even" / "odd"), for the content baselines.
    """
    rng = np.random.default_rng(3)
    dense = np.fromfunction(lambda u, i: (u + i) % 2 == 0, (n_users, n_items)).astype(np.float32)
    held_out = np.array([2 * rng.integers(n_items // 2) + u % 2 for u in range(n_users)])
    dense[np.arange(n_users), held_out] = 0.0
    parity = np.arange(n_items) % 2
    embeddings = (np.eye(2)[parity] + 0.05 * rng.normal(size=(n_items, 2))).astype(np.float32)
    texts = [f"{'even' if p == 0 else 'odd'} item{i}" for i, p in enumerate(parity)]
    return sp.csr_matrix(dense), held_out, {"texts": texts, "embeddings": embeddings}


@pytest.mark.parametrize("name", NAMES)
def test_checkerboard_held_out_item_comes_first(name: str) -> None:
    """Every personalised baseline puts the implied item first; one that is not (popularity)
    cannot, and ranks the same list for everyone, which is why it is the floor above."""
    train, held_out, side = checkerboard()
    model = make_baseline(name, **params(name))
    model.fit(train, side.get(model.needs or ""))
    users = np.arange(train.shape[0])
    if not model.personalised:
        raw = model.score(users)
        assert np.all(raw == raw[:1]), name
        return
    items, _ = model.recommend(users, k=1)
    assert (items[:, 0] == held_out).mean() >= 0.95, (name, items[:, 0], held_out)
