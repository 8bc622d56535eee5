"""Negative sampling: never a known positive, reproducible, popularity-shaped."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtlrec.data import sampling
from mtlrec.data.sampling import popularity_distribution, sample_negatives


def pairs(rows: list[tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"user_idx": [r[0] for r in rows], "item_idx": [r[1] for r in rows]},
        schema={"user_idx": pl.Int64, "item_idx": pl.Int64},
    )


def known_set(*frames: pl.DataFrame | None) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for frame in frames:
        if frame is not None:
            out |= set(zip(frame["user_idx"].to_list(), frame["item_idx"].to_list(), strict=True))
    return out


N_ITEMS = 12


@st.composite
def sampling_inputs(draw):
    n_users = draw(st.integers(1, 6))
    rows = draw(
        st.lists(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, N_ITEMS - 1)),
            min_size=1,
            max_size=60,
        )
    )
    extra = draw(
        st.lists(st.tuples(st.integers(0, n_users - 1), st.integers(0, N_ITEMS - 1)), max_size=20)
    )
    positives, exclude = pairs(rows), pairs(extra) if extra else None
    # keep at least one drawable item per user
    known = known_set(positives, exclude)
    users = {u for u, _ in rows}
    assume_free = all(sum(1 for u2, _ in known if u2 == u) < N_ITEMS - 1 for u in users)
    return positives, exclude, assume_free


props = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@props
@given(
    data=sampling_inputs(),
    k=st.integers(1, 5),
    strategy=st.sampled_from(["uniform", "popularity"]),
    seed=st.integers(0, 10_000),
)
def test_never_returns_a_known_positive(data, k, strategy, seed):
    positives, exclude, free = data
    try:
        out = sample_negatives(positives, N_ITEMS, k, strategy, seed, exclude)
    except ValueError as error:  # only allowed when a user is saturated
        assert "no negative can be drawn" in str(error)
        assert not free or strategy == "popularity"
        return
    assert out.columns == ["user_idx", "item_idx", "pos_item_idx"]
    assert out.height == positives.height * k
    known = known_set(positives, exclude)
    drawn = set(zip(out["user_idx"].to_list(), out["item_idx"].to_list(), strict=True))
    assert not drawn & known
    assert out["item_idx"].min() >= 0 and out["item_idx"].max() < N_ITEMS
    assert out["user_idx"].to_list() == np.repeat(positives["user_idx"].to_numpy(), k).tolist()
    assert out["pos_item_idx"].to_list() == np.repeat(positives["item_idx"].to_numpy(), k).tolist()
    if strategy == "popularity":  # only items with a positive count are drawn
        assert set(out["item_idx"].to_list()) <= set(positives["item_idx"].to_list())


@props
@given(data=sampling_inputs(), seed=st.integers(0, 10_000))
def test_same_seed_same_output(data, seed):
    positives, exclude, free = data
    if not free:
        return
    a = sample_negatives(positives, N_ITEMS, 3, "uniform", seed, exclude)
    b = sample_negatives(positives, N_ITEMS, 3, "uniform", seed, exclude)
    assert a.equals(b)


def test_different_seeds_differ_and_large_sample_is_clean():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 500, size=20_000)
    items = rng.integers(0, 2_000, size=20_000)
    positives = pairs(list(zip(users.tolist(), items.tolist(), strict=True)))
    a = sample_negatives(positives, 2_000, 4, "uniform", seed=1)
    b = sample_negatives(positives, 2_000, 4, "uniform", seed=2)
    assert not a.equals(b)
    known = users * 2_000 + items
    drawn = a["user_idx"].to_numpy() * 2_000 + a["item_idx"].to_numpy()
    assert not np.isin(drawn, known).any()


def test_popularity_sampling_follows_popularity():
    # item 0 is very popular, item 1 a little, items 2..9 rare; user 99 knows none of them
    rows = [(u, 0) for u in range(200)] + [(u, 1) for u in range(40)]
    rows += [(u, 2 + u % 8) for u in range(8)] + [(99, 5)]
    positives = pairs(rows)
    query = pairs([(1000, 5)] * 5_000)  # a fresh user: everything but item 5 allowed
    combined = pl.concat([positives, query])
    out = sample_negatives(combined, 10, 1, "popularity", seed=7)
    fresh = out.filter(pl.col("user_idx") == 1000)["item_idx"].to_numpy()
    counts = np.bincount(fresh, minlength=10)
    assert counts[0] > counts[1] > counts[2]
    assert counts[5] == 0
    expected = popularity_distribution(combined["item_idx"].to_numpy(), 10, 0.75)
    allowed = expected.copy()
    allowed[5] = 0
    allowed /= allowed.sum()
    assert np.allclose(counts / counts.sum(), allowed, atol=0.03)
    uniform = sample_negatives(combined, 10, 1, "uniform", seed=7)
    uniform_counts = np.bincount(
        uniform.filter(pl.col("user_idx") == 1000)["item_idx"].to_numpy(), minlength=10
    )
    assert counts[0] > 2 * uniform_counts[0]


def test_popularity_distribution():
    p = popularity_distribution(np.array([0, 0, 0, 0, 1]), 3, 0.5)
    assert p.tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert popularity_distribution(np.array([0, 0, 1]), 2, 0.0).tolist() == [0.5, 0.5]


def test_saturated_user_is_a_clear_error():
    positives = pairs([(0, i) for i in range(5)] + [(1, 0)])
    with pytest.raises(
        ValueError, match=r"interacted with every item, so no negative .*user_idx: 0"
    ):
        sample_negatives(positives, 5, 1, "uniform", 0)
    # exclude also counts as known
    with pytest.raises(ValueError, match="user_idx: 1"):
        sample_negatives(pairs([(1, 0)]), 3, 1, "uniform", 0, exclude=pairs([(1, 1), (1, 2)]))
    # popularity: user 0 knows every item that has a count
    with pytest.raises(ValueError, match="every item with a positive count"):
        sample_negatives(pairs([(0, 0), (0, 1)]), 10, 1, "popularity", 0)


def test_nearly_saturated_user_falls_back_to_exact_draws(monkeypatch):
    monkeypatch.setattr(sampling, "MAX_ROUNDS", 0)  # force the exact per-user path
    positives = pairs([(0, i) for i in range(99)] + [(1, 0), (1, 99)])
    known = known_set(positives)
    for strategy in ("uniform", "popularity"):
        out = sample_negatives(positives, 100, 3, strategy, 0)  # type: ignore[arg-type]
        assert out.filter(pl.col("user_idx") == 0)["item_idx"].to_list() == [99] * 297
        drawn = set(zip(out["user_idx"].to_list(), out["item_idx"].to_list(), strict=True))
        assert not drawn & known


def test_bad_inputs():
    good = pairs([(0, 1)])
    with pytest.raises(ValueError, match="unknown sampling strategy"):
        sample_negatives(good, 5, 1, "hard", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"item_idx must lie in \[0, n_items=5\)"):
        sample_negatives(pairs([(0, 5)]), 5, 1, "uniform", 0)
    with pytest.raises(ValueError, match="needs a 'user_idx' column"):
        sample_negatives(pl.DataFrame({"item_idx": [1]}), 5, 1, "uniform", 0)
    with pytest.raises(ValueError, match="must be integers"):
        sample_negatives(pl.DataFrame({"user_idx": ["a"], "item_idx": [1]}), 5, 1)
    empty = sample_negatives(good, 5, 0, "uniform", 0)
    assert empty.height == 0 and empty.columns == ["user_idx", "item_idx", "pos_item_idx"]
