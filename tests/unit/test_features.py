"""Vocabularies and statistics are fitted on the training split only."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlrec.data.features import (
    UNK,
    FeatureSpace,
    NumericScaler,
    QuantileBucketizer,
    Vocabulary,
    fit_feature_space,
)
from mtlrec.data.schema import CanonicalTables


def test_vocabulary_orders_by_frequency_and_reserves_unk():
    vocab = Vocabulary.fit(["b", "a", "b", None, "c", "a", "b"])
    assert vocab.tokens == (UNK, "b", "a", "c")
    assert vocab.counts == (0, 3, 2, 1)
    assert len(vocab) == 4
    assert vocab.encode(["a", "b", "zzz", None]).tolist() == [2, 1, 0, 0]
    assert vocab.encode(["a"]).dtype == np.int64
    assert vocab.decode([0, 1, 3]) == [UNK, "b", "c"]
    assert "a" in vocab and "zzz" not in vocab and UNK not in vocab


def test_vocabulary_min_count_and_max_size():
    values = ["a"] * 3 + ["b"] * 2 + ["c"]
    assert Vocabulary.fit(values, min_count=2).tokens == (UNK, "a", "b")
    assert Vocabulary.fit(values, max_size=1).tokens == (UNK, "a")
    assert Vocabulary.fit(pl.Series("x", values)).encode(pl.Series(["c"])).tolist() == [3]
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.fit(values, min_count=0)
    with pytest.raises(IndexError):
        Vocabulary.fit(values).decode([9])


def test_vocabulary_json_round_trip():
    vocab = Vocabulary.fit(["x", "y", "y"])
    again = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again == vocab
    assert again.encode(["y", "x", "q"]).tolist() == [1, 2, 0]


def test_vocabulary_encode_expr_matches_encode():
    vocab = Vocabulary.fit(["x", "y", "y"])
    frame = pl.DataFrame({"v": ["y", None, "q", "x"]})
    assert frame.select(vocab.encode_expr("v"))["v"].to_list() == vocab.encode(frame["v"]).tolist()


@settings(max_examples=50, deadline=None)
@given(
    train=st.lists(st.sampled_from("abcdefg"), min_size=0, max_size=30),
    other=st.lists(st.sampled_from("abcdefghijk"), min_size=0, max_size=30),
)
def test_unseen_values_encode_to_zero(train, other):
    vocab = Vocabulary.fit(train)
    codes = vocab.encode(other)
    for value, code in zip(other, codes.tolist(), strict=True):
        assert (code == 0) == (value not in set(train))
        if code:
            assert vocab.decode([code]) == [value]


def test_numeric_scaler_ignores_nulls_and_nans():
    scaler = NumericScaler.fit([1.0, None, 3.0, float("nan")])
    assert scaler.mean == 2.0 and scaler.std == 1.0 and scaler.count == 2
    out = scaler.transform([1.0, None, 5.0])
    assert out[0] == -1.0 and math.isnan(out[1]) and out[2] == 3.0
    assert NumericScaler.fit([4.0, 4.0]).std == 1.0  # constant -> no division by zero
    assert NumericScaler.fit([]).count == 0
    assert NumericScaler.from_dict(scaler.to_dict()) == scaler


def test_quantile_bucketizer():
    bucketizer = QuantileBucketizer.fit(list(range(1, 11)), n_buckets=4)
    assert bucketizer.edges == (3.25, 5.5, 7.75)
    assert bucketizer.n_buckets == 4
    out = bucketizer.transform([0.0, 3.25, 6.0, 100.0, None, float("nan")])
    assert out.tolist() == [0, 1, 2, 3, -1, -1]
    assert bucketizer.labels() == ["<3.25", "[3.25, 5.5)", "[5.5, 7.75)", ">=7.75"]
    assert QuantileBucketizer.from_dict(bucketizer.to_dict()) == bucketizer
    # repeated values give fewer, still valid, buckets
    assert QuantileBucketizer.fit([1.0] * 9 + [2.0], 4).n_buckets == 1
    assert QuantileBucketizer.fit([], 4).transform([1.0]).tolist() == [0]


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60),
    n=st.integers(1, 8),
)
def test_buckets_are_in_range_and_monotone(values, n):
    bucketizer = QuantileBucketizer.fit(values, n)
    out = bucketizer.transform(sorted(values))
    assert out.min() >= 0 and out.max() < bucketizer.n_buckets <= n
    assert (np.diff(out) >= 0).all()


def toy_tables() -> CanonicalTables:
    interactions = pl.DataFrame(
        {
            "interaction_id": [0, 1, 2, 3, 4],
            "user_id": ["u1", "u1", "u2", "u_test", "u2"],
            "item_id": ["i1", "i2", "i1", "i1", "i_test"],
            "timestamp": [1, 2, 3, 4, 5],
            "event": ["rating"] * 5,
            "value": [5.0, 4.0, 3.0, 2.0, 1.0],
            "split": ["train", "train", "train", "test", "valid"],
        }
    )
    users = pl.DataFrame({"user_id": ["u1", "u2", "u_test"], "age": [20, 40, 99]})
    items = pl.DataFrame({"item_id": ["i1", "i2", "i_test"], "brand": ["x", "y", "only_in_test"]})
    return CanonicalTables(users=users, items=items, interactions=interactions)


def test_feature_space_is_fitted_on_train_only(tmp_path):
    tables = toy_tables()
    space = fit_feature_space(tables, user_columns=["age"], item_columns=["brand"])
    assert space.users.encode(["u1", "u2", "u_test"]).tolist()[2] == 0
    assert space.items.encode(["i_test"]).tolist() == [0]
    assert set(space.items.tokens) == {UNK, "i1", "i2"}
    assert space.n_users == 3 and space.n_items == 3
    assert space.numeric["users.age"].mean == 30.0  # 99 belongs to a test-only user
    assert "only_in_test" not in space.categorical["items.brand"]
    path = space.save(tmp_path / "features.json")
    again = FeatureSpace.load(path)
    assert again.to_dict() == space.to_dict()
    assert again.users == space.users


def test_feature_space_takes_an_explicit_interactions_frame():
    tables = toy_tables()
    interactions = tables.interactions
    tables.interactions = interactions.drop("split")
    with pytest.raises(ValueError, match="no 'split' column"):
        fit_feature_space(tables)
    space = fit_feature_space(tables, interactions)
    assert space.users.encode(["u_test"]).tolist() == [0]


def test_feature_space_for_tabular_rows():
    users = pl.DataFrame(
        {
            "user_id": ["r0", "r1", "r2"],
            "education": ["a", "b", "zzz"],
            "split": ["train", "train", "test"],
        }
    )
    tables = CanonicalTables(users=users, kind="tabular")
    space = fit_feature_space(tables, user_columns=["education"])
    assert space.categorical["users.education"].encode(["zzz", "a"]).tolist() == [0, 1]
    assert len(space.items) == 1
