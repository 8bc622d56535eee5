"""Unit tests of the fusion package: inputs, normalisation, the NDCG objective and each
fusion's own behaviour (the shared contract is in tests/contract/test_fusion_contract.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from mtlrec.core.registry import UnknownNameError
from mtlrec.fusion import (
    FUSIONS,
    NORMALIZATIONS,
    Fusion,
    FusionInput,
    LinearFusion,
    RRFFusion,
    SoftmaxFusion,
    StackingFusion,
    finalize_scores,
    make_fusion,
    ndcg_at_k,
    ndcg_per_user,
    normalize_scores,
    ordinal_ranks,
    parse_formula,
)

INF = np.inf


# ---------------------------------------------------------------------------- toys
def informative_toy(
    seed: int, n_users: int = 60, n_items: int = 25, noise_sources: int = 2
) -> tuple[FusionInput, np.ndarray]:
    """``informative`` ranks each user's relevant item high (not always first);
    ``noise{j}`` are random. 2 excluded items per user."""
    rng = np.random.default_rng(seed)
    relevant = np.zeros((n_users, n_items), dtype=bool)
    exclude = np.zeros((n_users, n_items), dtype=bool)
    informative = rng.normal(size=(n_users, n_items))
    for u in range(n_users):
        picked = rng.choice(n_items, size=3, replace=False)
        exclude[u, picked[:2]] = True
        relevant[u, picked[2]] = True
        informative[u, picked[2]] += 2.5
    scores = {"informative": informative.astype(np.float32)}
    for j in range(noise_sources):
        scores[f"noise{j}"] = rng.normal(size=(n_users, n_items)).astype(np.float32)
    return FusionInput(scores, exclude=exclude), relevant


def complementary_toy(seed: int, n_users: int = 160, n_items: int = 40) -> tuple[FusionInput, Any]:
    """Source ``a`` finds the relevant item of active users, ``b`` that of inactive ones;
    ``user_activity`` tells the two halves apart."""
    rng = np.random.default_rng(seed)
    active = rng.random(n_users) < 0.5
    activity = np.where(active, rng.integers(40, 100, n_users), rng.integers(1, 8, n_users))
    a = rng.normal(size=(n_users, n_items))
    b = rng.normal(size=(n_users, n_items))
    target = rng.integers(0, n_items, n_users)
    relevant = np.zeros((n_users, n_items), dtype=bool)
    relevant[np.arange(n_users), target] = True
    rows = np.arange(n_users)
    a[rows[active], target[active]] = a[active].max(axis=1) + 1.0
    b[rows[~active], target[~active]] = b[~active].max(axis=1) + 1.0
    inputs = FusionInput(
        {"a": a.astype(np.float32), "b": b.astype(np.float32)},
        user_activity=activity.astype(np.float64),
        item_popularity=rng.integers(0, 30, n_items).astype(np.float64),
    )
    return inputs, relevant


# ---------------------------------------------------------------------------- inputs
def test_fusion_input_validates_and_names_the_source() -> None:
    ok = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="'b'.*shape"):
        FusionInput({"a": ok, "b": np.zeros((2, 4))})
    with pytest.raises(ValueError, match="'a'.*nan"):
        FusionInput({"a": np.array([[0.0, np.nan, 1.0], [0, 0, 0]])})
    with pytest.raises(ValueError, match="'a'.*\\+inf"):
        FusionInput({"a": np.array([[0.0, INF, 1.0], [0, 0, 0]])})
    with pytest.raises(ValueError, match="exclude"):
        FusionInput({"a": ok}, exclude=np.zeros((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="user_activity"):
        FusionInput({"a": ok}, user_activity=np.ones(3))
    with pytest.raises(ValueError, match="item_popularity"):
        FusionInput({"a": ok}, item_popularity=np.ones(2))
    with pytest.raises(ValueError, match="at least one"):
        FusionInput({})
    inputs = FusionInput(
        {"z": ok, "a": np.array([[-INF, 1, 2], [3, 4, 5]])},
        exclude=np.array([[1, 0, 0], [0, 0, 1]]),
        user_activity=np.array([1.0, 2.0]),
    )
    assert inputs.names == ("a", "z") and inputs.n_users == 2 and inputs.n_items == 3
    assert inputs.scores["a"].dtype == np.float32 and inputs.exclude is not None
    assert inputs.exclude.dtype == np.bool_
    sub = inputs.subset(np.array([1]))
    assert sub.n_users == 1 and sub.user_activity is not None
    np.testing.assert_array_equal(sub.scores["a"], [[3, 4, 5]])
    np.testing.assert_array_equal(sub.user_activity, [2.0])


def test_finalize_scores_places_unscorable_items_last() -> None:
    raw = np.array([[3.0, -INF, np.nan, 1.0, INF], [-INF, -INF, 0.0, 0.0, 0.0]])
    exclude = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=bool)
    out = finalize_scores(raw, exclude)
    assert out.dtype == np.float32
    assert out[1, 4] == -INF and np.isfinite(out[~exclude]).all()
    assert out[0, 1] < 1.0 and out[0, 2] < 1.0 and out[0, 4] > 3.0
    assert out[1, 0] < 0.0


def test_make_fusion_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="linear"):
        make_fusion("nope")
    assert {"linear", "softmax", "rrf", "stacking", "formula"} <= set(FUSIONS.names())


# ---------------------------------------------------------------------------- normalize
def test_normalize_minmax_with_missing_excluded_and_constant_rows() -> None:
    scores = np.array(
        [[1.0, 3.0, -INF, 2.0], [5.0, 5.0, 5.0, -INF], [-INF, -INF, -INF, -INF], [0, 10, 4, 9]],
        dtype=np.float32,
    )
    exclude = np.zeros(scores.shape, dtype=bool)
    exclude[3, 1] = True  # the excluded 10 does not stretch the range
    out = normalize_scores(scores, "minmax", exclude)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out[0], [0.0, 1.0, 0.0, 0.5])
    np.testing.assert_allclose(out[1], 0.0)
    np.testing.assert_allclose(out[2], 0.0)
    np.testing.assert_allclose(out[3], [0.0, 0.0, 4 / 9, 1.0])


def test_normalize_zscore_rank_and_none() -> None:
    scores = np.array([[1.0, 2.0, 3.0, -INF], [4.0, 4.0, 1.0, 0.0]], dtype=np.float32)
    z = normalize_scores(scores, "zscore")
    expected = (np.array([1, 2, 3]) - 2.0) / np.std([1, 2, 3])
    np.testing.assert_allclose(z[0], [*expected, expected.min()], rtol=1e-6)
    row = np.array([4.0, 4.0, 1.0, 0.0])
    np.testing.assert_allclose(z[1], (row - row.mean()) / row.std(), rtol=1e-6)

    r = normalize_scores(scores, "rank")
    np.testing.assert_allclose(r[0], [1 - 2 / 3, 1 - 1 / 3, 1.0, 1 - 2 / 3])
    # the tied 4s share rank 1.5
    np.testing.assert_allclose(r[1], [1 - 0.5 / 4, 1 - 0.5 / 4, 1 - 2 / 4, 1 - 3 / 4])

    none = normalize_scores(scores, "none")
    np.testing.assert_allclose(none[0], [1, 2, 3, 1])
    np.testing.assert_allclose(none[1], row)


@pytest.mark.parametrize("method", NORMALIZATIONS)
def test_normalize_is_always_finite(method: str) -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(20, 15)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.4] = -INF
    scores[3] = -INF
    scores[4] = 7.0
    exclude = rng.random(scores.shape) < 0.3
    out = normalize_scores(scores, method, exclude)
    assert out.shape == scores.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[3], 0.0)
    np.testing.assert_array_equal(out[4], 0.0)


def test_normalize_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="minmax.*zscore"):
        normalize_scores(np.zeros((1, 2), dtype=np.float32), "softmax")


def test_ordinal_ranks_break_ties_by_index() -> None:
    scores = np.array([[1.0, 2.0, 2.0, -INF, 0.5]])
    valid = np.isfinite(scores) & np.array([[True, True, True, True, False]])
    np.testing.assert_array_equal(ordinal_ranks(scores, valid), [[3, 1, 2, 0, 0]])


# ---------------------------------------------------------------------------- objective
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_ndcg_matches_sklearn(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = rng.normal(size=(30, 12))
    relevant = rng.random((30, 12)) < 0.2
    relevant[0] = False  # a user without relevant items is skipped
    has = relevant.any(axis=1)
    expected = ndcg_score(relevant[has].astype(float), scores[has], k=k)
    assert ndcg_at_k(scores, relevant, None, k) == pytest.approx(expected, abs=1e-12)
    per_user = ndcg_per_user(scores, relevant, None, k)
    assert math.isnan(per_user[0]) and not np.isnan(per_user[has]).any()


def test_ndcg_with_exclusion_equals_dropping_the_columns() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(10, 9))
    relevant = rng.random((10, 9)) < 0.3
    exclude = rng.random((10, 9)) < 0.3
    per_user = ndcg_per_user(scores, relevant, exclude, 4)
    for u in range(10):
        keep = ~exclude[u]
        if not (relevant[u] & keep).any():
            assert math.isnan(per_user[u])
            continue
        ref = ndcg_score(relevant[u, keep][None].astype(float), scores[u, keep][None], k=4)
        assert per_user[u] == pytest.approx(ref, abs=1e-12)


def test_ndcg_ties_are_ordered_by_item_index() -> None:
    scores = np.zeros((1, 5))
    relevant = np.array([[False, False, True, False, False]])
    # position 3 (1-based) behind items 0 and 1
    assert ndcg_at_k(scores, relevant, None, 5) == pytest.approx(1 / math.log2(4))
    assert ndcg_at_k(scores, relevant, None, 2) == 0.0
    exclude = np.array([[True, False, False, False, False]])
    assert ndcg_at_k(scores, relevant, exclude, 2) == pytest.approx(1 / math.log2(3))
    two = np.array([[True, False, True, False, False]])  # ideal DCG of 2 hits
    assert ndcg_at_k(scores, two, None, 5) == pytest.approx(
        (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    )


# ---------------------------------------------------------------------------- linear / softmax
def test_linear_gives_the_informative_source_the_largest_weight() -> None:
    inputs, relevant = informative_toy(0)
    fusion = LinearFusion().fit(inputs, relevant)
    w = fusion.weights()
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["informative"] == max(w.values()) and w["informative"] > 0.5, w
    single = ndcg_at_k(inputs.scores["informative"], relevant, inputs.exclude, 10)
    assert fusion.val_ndcg_ >= single - 1e-12


def test_linear_rejects_unknown_normalization() -> None:
    with pytest.raises(ValueError, match="zscore"):
        LinearFusion(normalization="l2")


def test_softmax_weights_sum_to_one_and_favour_the_informative_source() -> None:
    inputs, relevant = informative_toy(0)
    fusion = SoftmaxFusion(epochs=150, lr=0.1).fit(inputs, relevant)
    w = fusion.weights()
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["informative"] > 0.6 and all(v > 0 for v in w.values()), w
    assert fusion.scale_ > 0 and math.isfinite(fusion.loss_)
    test_inputs, test_relevant = informative_toy(1)
    fused = fusion.fuse(test_inputs)
    noise = ndcg_at_k(test_inputs.scores["noise0"], test_relevant, test_inputs.exclude, 10)
    assert ndcg_at_k(fused, test_relevant, test_inputs.exclude, 10) > noise + 0.3


# ---------------------------------------------------------------------------- rrf
def test_rrf_matches_a_hand_computed_case() -> None:
    inputs = FusionInput(
        {
            "x": np.array([[0.9, 0.8, 0.1, -INF, 0.5]], dtype=np.float32),
            "y": np.array([[1.0, 2.0, 3.0, 4.0, 5.0]], dtype=np.float32),
        },
        exclude=np.array([[False, False, False, False, True]]),
    )
    relevant = np.array([[True, False, False, False, False]])
    fusion = RRFFusion(c=1.0, source_weights={"x": 2.0, "y": 1.0}).fit(inputs, relevant)
    # x ranks items 0, 1, 2 (3 unscored, 4 excluded); y ranks 3, 2, 1, 0
    expected = [
        2 / (1 + 1) + 1 / (1 + 4),
        2 / (1 + 2) + 1 / (1 + 3),
        2 / (1 + 3) + 1 / (1 + 2),
        0 + 1 / (1 + 1),
        -INF,
    ]
    np.testing.assert_allclose(fusion.fuse(inputs)[0], np.float32(expected), rtol=1e-6)
    assert fusion.weights() == pytest.approx({"x": 2 / 3, "y": 1 / 3})


def test_rrf_chooses_c_on_validation_and_checks_weights() -> None:
    inputs, relevant = informative_toy(0, noise_sources=1)
    fusion = RRFFusion(c_grid=(1, 1000), source_weights={"informative": 1.0, "noise0": 0.5})
    fusion.fit(inputs, relevant)
    assert fusion.c_ in (1.0, 1000.0)
    values = {
        c: ndcg_at_k(
            RRFFusion(c=c, source_weights=fusion.source_weights).fit(inputs, relevant).fuse(inputs),
            relevant,
            inputs.exclude,
            10,
        )
        for c in (1.0, 1000.0)
    }
    assert values[fusion.c_] == max(values.values())
    with pytest.raises(ValueError, match="source_weights"):
        RRFFusion(source_weights={"informative": 1.0}).fit(inputs, relevant)


# ---------------------------------------------------------------------------- stacking
def test_stacking_learns_which_source_to_trust_for_whom(tmp_path: Path) -> None:
    inputs, relevant = complementary_toy(0)
    fusion = StackingFusion(candidates=5, n_estimators=60, num_leaves=7, n_folds=4, n_jobs=1)
    fusion.fit(inputs, relevant)
    singles = [ndcg_at_k(inputs.scores[m], relevant, None, 10) for m in ("a", "b")]
    assert 0.0 < fusion.oof_ndcg_ <= 1.0
    assert fusion.oof_ndcg_ > max(singles) + 0.2, (fusion.oof_ndcg_, singles)
    test_inputs, test_relevant = complementary_toy(1)
    fused = fusion.fuse(test_inputs)
    test_singles = [ndcg_at_k(test_inputs.scores[m], test_relevant, None, 10) for m in ("a", "b")]
    fused_ndcg = ndcg_at_k(fused, test_relevant, None, 10)
    assert fused_ndcg > max(test_singles) + 0.2, (fused_ndcg, test_singles)
    # every candidate ranks above every non-candidate
    assert fusion.feature_names_[-3:] == ["n_top", "log1p_item_popularity", "log1p_user_activity"]
    top5 = np.zeros_like(test_relevant)
    for m in ("a", "b"):
        order = np.argsort(-test_inputs.scores[m], axis=1, kind="stable")[:, :5]
        np.put_along_axis(top5, order, True, axis=1)
    assert (fused[top5] >= 1.0).all() and (fused[~top5] < 1.0).all()
    # side information must be given as at fit
    bare = FusionInput(dict(test_inputs.scores))
    with pytest.raises(ValueError, match="side information"):
        fusion.fuse(bare)


def test_stacking_logistic_round_trips(tmp_path: Path) -> None:
    inputs, relevant = informative_toy(0)
    fusion = StackingFusion(model="logistic", candidates=6, n_folds=3).fit(inputs, relevant)
    test_inputs, test_relevant = informative_toy(1)
    fused = fusion.fuse(test_inputs)
    noise = ndcg_at_k(test_inputs.scores["noise0"], test_relevant, test_inputs.exclude, 10)
    assert ndcg_at_k(fused, test_relevant, test_inputs.exclude, 10) > noise + 0.3
    path = tmp_path / "stack.json"
    fusion.save(path)
    loaded = Fusion.load(path)
    assert isinstance(loaded, StackingFusion) and loaded.oof_ndcg_ == fusion.oof_ndcg_
    np.testing.assert_array_equal(loaded.fuse(test_inputs), fused)


def test_stacking_rejects_bad_params() -> None:
    with pytest.raises(ValueError, match="lightgbm"):
        StackingFusion(model="xgboost")
    with pytest.raises(ValueError, match="n_folds"):
        StackingFusion(n_folds=1)


# ---------------------------------------------------------------------------- formula
def test_formula_computes_the_hand_example() -> None:
    interest = np.array([[0.0, 2.0, -1.0]], dtype=np.float32)
    rating = np.array([[3.0, 5.0, 1.0]], dtype=np.float32)
    sentiment = np.array([[0.0, -2.0, 4.0]], dtype=np.float32)
    inputs = FusionInput({"interest": interest, "rating": rating, "sentiment": sentiment})
    formula = "sigmoid(interest) * (1 + 0.5 * (rating - 3) / 2) + 0.2 * sigmoid(sentiment)"
    fusion = make_fusion("formula", formula=formula).fit(inputs, np.eye(1, 3, dtype=bool))

    def sig(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x.astype(np.float64)))

    expected = sig(interest) * (1 + 0.5 * (rating - 3) / 2) + 0.2 * sig(sentiment)
    np.testing.assert_allclose(fusion.fuse(inputs), expected.astype(np.float32), rtol=1e-6)
    assert fusion.sources_ == ("interest", "rating", "sentiment")

    other = make_fusion(
        "formula", formula="clip(a, 0, 1) + minimum(a, b) - maximum(a, b) ** 2 + abs(-b)"
    )
    a = np.array([[-1.0, 0.5, 3.0]])
    b = np.array([[2.0, 0.25, -1.0]])
    small = FusionInput({"a": a, "b": b})
    other.fit(small, np.eye(1, 3, dtype=bool))
    want = np.clip(a, 0, 1) + np.minimum(a, b) - np.maximum(a, b) ** 2 + np.abs(-b)
    np.testing.assert_allclose(other.fuse(small), want.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("a.real + 1", "Attribute"),
        ("foo(a)", "unknown function 'foo'"),
        ("a[0]", "Subscript"),
        ("a if b else 1", "IfExp"),
        ("a > 1", "Compare"),
        ("'x' + a", "constant"),
        ("log(a, 2)", "takes 1 argument"),
        ("clip(a, lo=0, hi=1)", "positional"),
        ("(lambda: 1)()", "unsupported call"),
        ("a +", "syntax"),
        ("1 + 2", "no source"),
        ("exp + a", "is a function"),
        ("a // 2", "operator"),
    ],
)
def test_formula_rejects_unsafe_or_unknown_syntax(formula: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_formula(formula)
    with pytest.raises(ValueError):
        make_fusion("formula", formula=formula)


def test_formula_variables_must_be_sources_and_extras_are_ignored() -> None:
    x = np.array([[1.0, -INF, 2.0, 0.5]], dtype=np.float32)
    y = np.array([[0.0, 1.0, 1.0, -1.0]], dtype=np.float32)
    relevant = np.eye(1, 4, dtype=bool)
    with pytest.raises(ValueError, match="\\['z'\\].*available.*'x', 'y'"):
        make_fusion("formula", formula="x + z").fit(FusionInput({"x": x, "y": y}), relevant)
    fusion = make_fusion("formula", formula="log(x) + 0 * y")
    fusion.fit(FusionInput({"x": x, "y": y, "extra": y}), relevant)
    out = fusion.fuse(FusionInput({"x": x, "y": y}))  # the extra source is not needed
    # item 1 is not scored by x, item 3 gives log(0.5) < 0 (fine); never nan
    assert np.isfinite(out).all()
    assert out[0, 1] < out[0, [0, 2, 3]].min()
    np.testing.assert_allclose(out[0, [0, 2, 3]], np.log([1.0, 2.0, 0.5]), rtol=1e-6)
    negative = FusionInput({"x": -np.abs(x) - 1, "y": y})  # log(-) = nan -> ranked last
    assert np.isfinite(fusion.fuse(negative)).all()
    with pytest.raises(ValueError, match="lacks \\['x'\\]"):
        fusion.fuse(FusionInput({"y": y}))


def test_a_failed_fit_leaves_the_fusion_unfitted() -> None:
    x = np.array([[1.0, 2.0]], dtype=np.float32)
    fusion = make_fusion("formula", formula="x + z")
    with pytest.raises(ValueError, match="not sources"):
        fusion.fit(FusionInput({"x": x}), np.array([[True, False]]))
    assert not hasattr(fusion, "sources_")
    with pytest.raises(RuntimeError, match="not fitted"):
        fusion.fuse(FusionInput({"x": x, "z": x}))


def test_out_of_fold_ndcg_is_below_in_sample_for_an_overfitting_fusion() -> None:
    """Cross-fitting scores each user with a fusion that never saw that user's items."""
    from mtlrec.fusion import cross_fitted_scores, make_fusion, out_of_fold_ndcg
    from mtlrec.fusion.objective import ndcg_at_k

    rng = np.random.default_rng(0)
    n_users, n_items = 60, 25
    relevant = np.zeros((n_users, n_items), dtype=bool)
    relevant[np.arange(n_users), rng.integers(n_items, size=n_users)] = True
    scores = {f"noise{i}": rng.normal(size=(n_users, n_items)).astype(np.float32) for i in range(4)}
    inputs = FusionInput(scores=scores)
    make = lambda: make_fusion("linear", grid=11, rounds=3)  # noqa: E731
    in_sample = ndcg_at_k(make().fit(inputs, relevant).fuse(inputs), relevant, None, 5)
    held_out = cross_fitted_scores(make, inputs, relevant, n_folds=3, seed=1)
    assert np.isfinite(held_out).all() and held_out.shape == (n_users, n_items)
    oof = out_of_fold_ndcg(make, inputs, relevant, k=5, n_folds=3, seed=1)
    assert oof == pytest.approx(ndcg_at_k(held_out, relevant, None, 5))
    assert oof < in_sample  # pure noise: only the in-sample search finds "signal"
    with pytest.raises(ValueError, match="n_folds"):
        cross_fitted_scores(make, inputs, relevant, n_folds=1)
