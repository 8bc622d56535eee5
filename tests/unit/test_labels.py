"""Task labels: values and masks of every builder on toy tables, and the written files."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from mtlrec.core.registry import UnknownNameError
from mtlrec.data.labels import (
    LABEL_BUILDERS,
    BehaviourLabels,
    BrandLabels,
    CategoryLabels,
    GenreLabels,
    LikeLabels,
    PriceBucketLabels,
    RatingLabels,
    SentimentLabels,
    TabularBinaryLabels,
    TaskLabels,
    build_labels,
    join_level,
    make_label_builder,
    multi_hot,
    read_tasks,
    write_labels,
)
from mtlrec.data.schema import CanonicalTables

SPLITS = ["train", "train", "train", "train", "valid", "test", "test"]


def review_tables() -> CanonicalTables:
    """Seven interactions: reviews (one with empty text, one without stars), a rating
    without value, a view; items with categories/brand/price incl. missing ones."""
    interactions = pl.DataFrame(
        {
            "interaction_id": [10, 11, 12, 13, 14, 15, 16],
            "user_id": ["u1", "u1", "u2", "u2", "u3", "u3", "u1"],
            "item_id": ["i1", "i2", "i1", "i3", "i2", "i4", "i5"],
            "timestamp": [1, 2, 3, 4, 5, 6, 7],
            "event": ["review", "review", "review", "rating", "review", "view", "rating"],
            "value": [5.0, 2.0, 3.0, None, 4.0, 1.0, 1.0],
            "split": SPLITS,
        }
    )
    reviews = pl.DataFrame(
        {
            "interaction_id": [10, 11, 12, 14],
            "user_id": ["u1", "u1", "u2", "u3"],
            "item_id": ["i1", "i2", "i1", "i2"],
            "timestamp": [1, 2, 3, 5],
            "stars": [5.0, 2.0, 3.0, None],  # review 14: stars missing in the review row
            "text": ["great", None, "ok", "fine"],  # review 11: empty text (null)
            "has_text": [True, False, True, True],
        }
    )
    items = pl.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4", "i6"],
            "categories": [["Music", "Guitar"], ["Music"], [], ["Drums"], None],
            "brand": ["Yamaha", "  ", "Yamaha", "Roland", "Fender"],
            "price": [10.0, 20.0, None, 30.0, 99.0],
            "genres": [["Drama"], ["Comedy", "Drama"], None, ["Horror"], None],
        }
    )
    return CanonicalTables(items=items, interactions=interactions, reviews=reviews)


def values(task: TaskLabels) -> list:
    return task.frame[task.name].to_list()


def mask(task: TaskLabels) -> list[bool]:
    return task.frame[task.mask_column].to_list()


def check_invariants(task: TaskLabels) -> None:
    frame = task.frame
    assert frame.select(task.keys).is_unique().all()
    assert (frame[task.mask_column] == frame[task.name].is_not_null()).all()


def only(tasks: list[TaskLabels]) -> TaskLabels:
    assert len(tasks) == 1
    check_invariants(tasks[0])
    return tasks[0]


# --------------------------------------------------------------------------- interaction level


def test_like_threshold_and_mask():
    tables = review_tables()
    task = only(LikeLabels().build(tables, tables.interactions))
    assert (task.kind, task.level, task.keys) == ("binary", "interaction", ("interaction_id",))
    assert task.frame.columns == ["interaction_id", "split", "like", "like_mask"]
    assert task.frame["interaction_id"].to_list() == [10, 11, 12, 13, 14, 15, 16]
    assert task.frame["split"].to_list() == SPLITS
    # 14: review row without stars falls back to the interaction's value (4.0)
    assert values(task) == [1, 0, 0, None, 1, None, 0]
    # 13: rating without value, 15: a view
    assert mask(task) == [True, True, True, False, True, False, True]
    strict = only(LikeLabels(threshold=5.0, task="loved").build(tables, tables.interactions))
    assert strict.name == "loved" and values(strict)[:3] == [1, 0, 0]


def test_missing_stars_everywhere_is_masked():
    tables = review_tables()
    tables.interactions = tables.interactions.with_columns(
        pl.when(pl.col("interaction_id") == 14).then(None).otherwise(pl.col("value")).alias("value")
    )
    like = only(LikeLabels().build(tables, tables.interactions))
    rating = only(RatingLabels().build(tables, tables.interactions))
    assert mask(like)[4] is False and mask(rating)[4] is False
    assert values(rating)[4] is None


def test_rating_regression():
    tables = review_tables()
    task = only(RatingLabels().build(tables, tables.interactions))
    assert task.kind == "regression"
    assert task.frame[task.name].dtype == pl.Float64
    assert values(task) == [5.0, 2.0, 3.0, None, 4.0, None, 1.0]


def test_sentiment_classes_from_reviews_and_ratings():
    tables = review_tables()
    task = only(SentimentLabels().build(tables, tables.interactions))
    assert task.classes == ["negative", "neutral", "positive"]
    assert values(task) == [2, 0, 1, None, 2, None, 0]
    # the empty review text (11) still has a label from its stars
    assert mask(task) == [True, True, True, False, True, False, True]


def test_sentiment_require_text_masks_empty_reviews():
    tables = review_tables()
    task = only(SentimentLabels(require_text=True).build(tables, tables.interactions))
    # 11 has no text, 16 is a plain rating (no review at all)
    assert mask(task) == [True, False, True, False, True, False, False]
    assert values(task) == [2, None, 1, None, 2, None, None]


def test_sentiment_thresholds_are_configurable():
    tables = review_tables()
    task = only(
        SentimentLabels(negative_max=3.0, positive_min=5.0).build(tables, tables.interactions)
    )
    assert values(task) == [2, 0, 0, None, 1, None, 0]
    with pytest.raises(ValueError, match="negative_max"):
        SentimentLabels(negative_max=4.0, positive_min=4.0).build(tables, tables.interactions)


def test_sentiment_without_reviews_uses_ratings():
    tables = review_tables()
    tables.reviews = tables.reviews.head(0)
    task = only(SentimentLabels().build(tables, tables.interactions))
    assert values(task) == [2, 0, 1, None, 2, None, 0]


# --------------------------------------------------------------------------- item level


def test_category_vocabulary_is_fitted_on_train_items():
    tables = review_tables()
    task = only(CategoryLabels().build(tables, tables.interactions))
    # train items: i1, i2, i3 -> Music (2 items), Guitar (1); Drums only on test item i4
    assert task.classes == ["Music", "Guitar"]
    assert task.frame["item_id"].to_list() == ["i1", "i2", "i3", "i4", "i5", "i6"]
    assert values(task) == [[0, 1], [0], None, None, None, None]
    # i3: empty list; i4: only an unseen class; i5: no metadata; i6: null categories
    assert mask(task) == [True, True, False, False, False, False]
    assert task.kind == "multilabel" and task.level == "item"


def test_category_min_count_and_max_classes():
    tables = review_tables()
    task = only(CategoryLabels(min_count=2).build(tables, tables.interactions))
    assert task.classes == ["Music"]
    assert values(task)[:2] == [[0], [0]]
    capped = only(
        CategoryLabels(max_classes=1, task="top_category").build(tables, tables.interactions)
    )
    assert capped.classes == ["Music"] and capped.name == "top_category"


def test_category_can_drop_universal_classes():
    tables = review_tables()
    tables.items = tables.items.with_columns(
        pl.when(pl.col("item_id") == "i3")
        .then(pl.lit(["Music"]))
        .otherwise(pl.col("categories"))
        .alias("categories")
    )
    kept = only(CategoryLabels().build(tables, tables.interactions))
    assert kept.classes == ["Music", "Guitar"]
    task = only(CategoryLabels(drop_universal=True).build(tables, tables.interactions))
    assert task.classes == ["Guitar"]  # Music is on every train item: no information
    assert values(task)[:3] == [[0], None, None]


def test_genres():
    tables = review_tables()
    task = only(GenreLabels().build(tables, tables.interactions))
    assert task.name == "genres"
    assert task.classes == ["Drama", "Comedy"]  # Horror only on the test item
    assert values(task)[:4] == [[0], [0, 1], None, None]
    matrix = multi_hot(task.frame["genres"], len(task.classes))
    assert matrix.tolist()[:3] == [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    assert matrix.dtype == np.float32


def test_brand_train_vocabulary_and_masks():
    tables = review_tables()
    task = only(BrandLabels().build(tables, tables.interactions))
    assert task.classes == ["Yamaha"]  # Roland/Fender are not on train items
    # i2: blank brand, i4/i6: unseen, i5: no metadata
    assert values(task) == [0, None, 0, None, None, None]
    tables.items = tables.items.with_columns(
        pl.when(pl.col("item_id") == "i2")
        .then(pl.lit("Boss"))
        .otherwise(pl.col("brand"))
        .alias("brand")
    )
    top = only(BrandLabels(top_n=1).build(tables, tables.interactions))
    assert top.classes == ["Yamaha"] and values(top)[1] is None
    everything = only(BrandLabels().build(tables, tables.interactions))
    assert everything.classes == ["Yamaha", "Boss"] and values(everything)[1] == 1


def test_price_bucket_edges_from_train_prices():
    tables = review_tables()
    task = only(PriceBucketLabels(n_buckets=2).build(tables, tables.interactions))
    # train prices: i1 10, i2 20 (i3 has none) -> one edge at 15
    assert task.classes == ["<15", ">=15"]
    assert values(task) == [0, 1, None, 1, None, 1]
    assert mask(task) == [True, True, False, True, False, True]


def test_price_bucket_without_train_prices_is_a_clear_error():
    tables = review_tables()
    tables.items = tables.items.with_columns(pl.lit(None, pl.Float64).alias("price"))
    with pytest.raises(ValueError, match="no item in the train split has a price"):
        PriceBucketLabels().build(tables, tables.interactions)


# --------------------------------------------------------------------------- pair / user level


def behaviour_tables() -> CanonicalTables:
    interactions = pl.DataFrame(
        {
            "interaction_id": list(range(7)),
            "user_id": ["a", "a", "a", "a", "b", "b", "c"],
            "item_id": ["x", "x", "x", "y", "x", "z", "z"],
            "timestamp": [None] * 7,
            "event": ["view", "cart", "purchase", "view", "view", "purchase", "view"],
            "value": [1.0] * 7,
            "split": ["train", "train", "train", "test", "valid", "train", "test"],
        }
    )
    return CanonicalTables(interactions=interactions)


def test_behaviour_pairs():
    tables = behaviour_tables()
    tasks = BehaviourLabels().build(tables, tables.interactions)
    assert [t.name for t in tasks] == ["view", "cart", "purchase"]
    for task in tasks:
        check_invariants(task)
        assert task.level == "pair" and task.keys == ("user_id", "item_id")
        assert all(mask(task))
    view, cart, purchase = tasks
    assert view.frame.select("user_id", "item_id", "split").rows() == [
        ("a", "x", "train"),
        ("a", "y", "test"),
        ("b", "x", "valid"),
        ("b", "z", "train"),
        ("c", "z", "test"),
    ]
    assert values(view) == [1, 1, 1, 0, 1]
    assert values(cart) == [1, 0, 0, 0, 0]
    assert values(purchase) == [1, 0, 0, 1, 0]


def test_behaviour_needs_behaviour_events():
    tables = review_tables()
    ratings_only = tables.interactions.filter(pl.col("event") != "view")
    with pytest.raises(ValueError, match="none of"):
        BehaviourLabels().build(tables, ratings_only)
    custom = BehaviourLabels(behaviours=("view",)).build(
        behaviour_tables(), behaviour_tables().interactions
    )
    assert [t.name for t in custom] == ["view"]


def census_tables() -> CanonicalTables:
    users = pl.DataFrame(
        {
            "user_id": ["r0", "r1", "r2", "r3"],
            "income_50k": ["50000+", "-50000", None, " 50000+ "],
            "marital_stat": ["Never married", "Married", "Never married", None],
            "split": ["train", "train", "valid", "test"],
        }
    )
    return CanonicalTables(users=users, kind="tabular")


def test_tabular_binary():
    tables = census_tables()
    income = only(
        TabularBinaryLabels(column="income_50k", positive="50000+", task="income").build(
            tables, tables.users
        )
    )
    assert income.level == "user" and income.keys == ("user_id",)
    assert income.frame.columns == ["user_id", "split", "income", "income_mask"]
    assert values(income) == [1, 0, None, 1]
    assert mask(income) == [True, True, False, True]
    never = only(
        TabularBinaryLabels(
            column="marital_stat", positive="Never married", task="never_married"
        ).build(tables, tables.users)
    )
    assert values(never) == [1, 0, 1, None]


def test_tabular_binary_on_user_attributes_of_interaction_data():
    tables = review_tables()
    tables.users = pl.DataFrame({"user_id": ["u1", "u2", "u3"], "gender": ["F", "M", None]})
    task = only(
        TabularBinaryLabels(column="gender", positive="F", task="female").build(
            tables, tables.interactions
        )
    )
    assert task.frame["user_id"].to_list() == ["u1", "u2", "u3"]
    assert values(task) == [1, 0, None]
    with pytest.raises(ValueError, match="needs columns"):
        TabularBinaryLabels(column="age", positive="1", task="t").build(tables, tables.interactions)


# --------------------------------------------------------------------------- build / write


def test_registry_names():
    assert LABEL_BUILDERS.names() == [
        "behaviour",
        "brand",
        "category",
        "genres",
        "interest",
        "like",
        "price_bucket",
        "rating",
        "sentiment",
        "tabular_binary",
    ]
    assert make_label_builder("like", threshold=3.0) == LikeLabels(threshold=3.0)
    with pytest.raises(UnknownNameError, match="known label builders"):
        make_label_builder("popularity")
    with pytest.raises(ValueError, match="label builder 'like'"):
        make_label_builder("like", treshold=3.0)


def test_build_labels_accepts_every_spec_form():
    tables = review_tables()
    specs = [
        "rating",
        {"name": "like", "params": {"threshold": 5.0}},
        SimpleNamespace(name="sentiment", params={"require_text": True}),
        CategoryLabels(),
    ]
    tasks = build_labels(tables, specs)
    assert [t.name for t in tasks] == ["rating", "like", "sentiment", "category"]
    assert values(tasks[1])[0] == 1 and values(tasks[1])[4] == 0
    # the split frame can also be passed explicitly, in either position
    explicit = build_labels(tables, tables.interactions, ["rating"])
    assert explicit[0].frame.equals(tasks[0].frame)
    assert build_labels(tables, ["rating"], tables.interactions)[0].frame.equals(tasks[0].frame)


def test_build_labels_rejects_duplicates_and_empty_tasks():
    tables = review_tables()
    with pytest.raises(ValueError, match="duplicate task names"):
        build_labels(tables, ["like", "like"])
    with pytest.raises(ValueError, match="no known label"):
        build_labels(behaviour_tables(), ["like"])
    with pytest.raises(ValueError, match="must be"):
        build_labels(tables, [{"builder": "like"}])


def test_write_labels(tmp_path):
    tables = review_tables()
    tasks = build_labels(tables, ["like", "rating", "sentiment", "category", "brand"])
    tasks += build_labels(behaviour_tables(), ["behaviour"])
    described, files = write_labels(tasks, tmp_path)
    assert files == ["labels_interaction", "labels_item", "labels_pair"]
    interaction = pl.read_parquet(tmp_path / "labels_interaction.parquet")
    assert interaction.columns == [
        "interaction_id",
        "split",
        "like",
        "like_mask",
        "rating",
        "rating_mask",
        "sentiment",
        "sentiment_mask",
    ]
    assert interaction["like"].to_list() == [1, 0, 0, None, 1, None, 0]
    item = pl.read_parquet(tmp_path / "labels_item.parquet")
    assert item.columns == ["item_id", "category", "category_mask", "brand", "brand_mask"]
    assert item["category"].to_list()[0] == [0, 1]
    pair = pl.read_parquet(tmp_path / "labels_pair.parquet")
    assert pair.columns[:3] == ["user_id", "item_id", "split"]
    assert pair["purchase"].to_list() == [1, 0, 0, 1, 0]
    on_disk = read_tasks(tmp_path)
    assert on_disk == json.loads(json.dumps(described))
    like = next(t for t in on_disk if t["name"] == "like")
    assert like["known_per_split"] == {"train": 3, "valid": 1, "test": 1}
    assert like["positives_per_split"] == {"train": 1, "valid": 1, "test": 0}
    category = next(t for t in on_disk if t["name"] == "category")
    assert category["classes"] == ["Music", "Guitar"] and "known_per_split" not in category
    purchase = next(t for t in on_disk if t["name"] == "purchase")
    assert purchase["level"] == "pair"
    assert purchase["known_per_split"] == {"train": 2, "valid": 1, "test": 2}


def test_write_labels_for_tabular(tmp_path):
    tables = census_tables()
    tasks = build_labels(
        tables,
        [
            {
                "name": "tabular_binary",
                "params": {"task": "income", "column": "income_50k", "positive": "50000+"},
            },
            {
                "name": "tabular_binary",
                "params": {
                    "task": "never_married",
                    "column": "marital_stat",
                    "positive": "Never married",
                },
            },
        ],
    )
    described, files = write_labels(tasks, tmp_path)
    assert files == ["labels_user"]
    frame = pl.read_parquet(tmp_path / "labels_user.parquet")
    assert frame.columns == [
        "user_id",
        "split",
        "income",
        "income_mask",
        "never_married",
        "never_married_mask",
    ]
    assert described[0]["known_per_split"] == {"train": 2, "valid": 0, "test": 1}


def test_join_level_fills_missing_rows_with_false_masks():
    a = TaskLabels(
        "a",
        "binary",
        "item",
        ("item_id",),
        pl.DataFrame(
            {"item_id": ["x"], "a": [1], "a_mask": [True]}, schema_overrides={"a": pl.Int8}
        ),
    )
    b = TaskLabels(
        "b",
        "regression",
        "item",
        ("item_id",),
        pl.DataFrame({"item_id": ["y"], "b": [2.0], "b_mask": [True]}),
    )
    joined = join_level([a, b])
    assert joined.rows() == [("x", 1, True, None, False), ("y", None, False, 2.0, True)]


def test_task_labels_validation():
    frame = pl.DataFrame({"item_id": ["x"], "t": [1], "t_mask": [True]})
    with pytest.raises(ValueError, match="kind"):
        TaskLabels("t", "ordinal", "item", ("item_id",), frame)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs classes"):
        TaskLabels("t", "multiclass", "item", ("item_id",), frame)
    with pytest.raises(ValueError, match="lacks columns"):
        TaskLabels("t", "binary", "pair", ("user_id", "item_id"), frame)
    with pytest.raises(ValueError, match="reserved"):
        TaskLabels("split", "binary", "item", ("item_id",), frame)


def test_interest_marks_every_observed_interaction_positive() -> None:
    from mtlrec.data.labels import InterestLabels

    split = pl.DataFrame(
        {
            "interaction_id": [0, 1, 2],
            "split": ["train", "test", "train"],
            "event": ["review", "view", "purchase"],
        }
    )
    (every,) = InterestLabels().build(CanonicalTables(), split)
    assert every.frame["interest"].to_list() == [1, 1, 1]
    (bought,) = InterestLabels(events=("purchase",), task="bought").build(CanonicalTables(), split)
    assert bought.frame["bought_mask"].to_list() == [False, False, True]
