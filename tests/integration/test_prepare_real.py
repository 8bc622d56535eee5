"""``data prepare`` end to end on the real datasets in ../shared/data (read in place).

MovieLens-100K is not in ../shared/data: it is fetched the way a user without internet
gets it (official download fails, then the ``recbole==1.2.1`` wheel through pip).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mtlrec.data.fetch import FetchSettings
from mtlrec.data.prepare import PrepareResult, load_prepare_config, prepare
from mtlrec.data.store import PreparedDataset

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prepared(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("prepared")
    settings = FetchSettings(cache_dir=cache, mirrors=(shared_data,), timeout_s=10)
    done: dict[str, PrepareResult] = {}

    def run(name: str, *overrides: str) -> PrepareResult:
        key = name + "|".join(overrides)
        if key not in done:
            config = load_prepare_config(name, overrides)
            done[key] = prepare(config, out / str(len(done)), settings)
        return done[key]

    return run


def _read_equals_kept_plus_quarantined(manifest: dict[str, Any]) -> None:
    read = manifest["read"]
    assert read["rows_read"] == read["rows_kept"] + read["rows_quarantined"]
    for tally in read["files"]:
        assert tally["rows_read"] == tally["rows_kept"] + tally["rows_quarantined"]


def test_musical_instruments_counts_and_leave_one_out(prepared: Any) -> None:
    result = prepared("amazon-2014-musical-instruments")
    manifest = result.manifest
    counts = manifest["counts"]
    assert (counts["interactions"], counts["users"], counts["items"]) == (10_261, 1_429, 900)
    assert counts["reviews_without_text"] == 7  # kept, as reviews without text
    assert counts["reviews"] == 10_261
    _read_equals_kept_plus_quarantined(manifest)
    assert manifest["read"]["rows_quarantined"] == 0
    assert manifest["source_files"][0]["sha256"] == (
        "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748"
    )
    dataset = PreparedDataset.load(result.root)
    inter = dataset.tables["interactions"]
    # leave-one-out by time: every user's test interaction is one of their latest
    latest = inter.group_by("user_id").agg(pl.col("timestamp").max().alias("last"))
    test = dataset.split("test").join(latest, on="user_id")
    assert (test["timestamp"] == test["last"]).all()
    # exactly one valid and one test row per user, although days tie: 631 users wrote their
    # last two reviews on one day, 922 have a held-out review on the day of an earlier one
    for split in ("valid", "test"):
        held_out = dataset.split(split)
        assert held_out.height == held_out["user_id"].n_unique() == 1_429
    split = manifest["split"]
    assert (split["ties"], split["seed"], split["rows_dropped"]) == ("random", 42, 0)
    assert split["boundary_ties"] == {
        "users": 1_429,
        "tied_users": 922,
        "share": 0.6452,
        "valid_tied_users": 687,
        "test_tied_users": 631,
    }
    train_items = set(dataset.split("train")["item_id"].to_list())
    cold = inter.filter(pl.col("split") != "train")
    assert (cold["cold_item"] == ~cold["item_id"].is_in(list(train_items))).all()
    reviews = dataset.tables["reviews"]
    assert reviews.filter(~pl.col("has_text")).height == 7
    assert {t["name"] for t in manifest["tasks"]} == {"interest", "like", "rating", "sentiment"}
    assert (result.root / "quarantine.jsonl").read_text() == ""


def test_movielens_100k_offline_from_the_recbole_wheel(prepared: Any) -> None:
    manifest = prepared("ml-100k").manifest
    assert manifest["dataset"]["layout"] == "recbole atomic files"
    counts = manifest["counts"]
    assert (counts["interactions"], counts["users"], counts["items"]) == (100_000, 943, 1_682)
    _read_equals_kept_plus_quarantined(manifest)
    sizes = manifest["split"]["sizes"]
    assert [sizes[s]["rows"] for s in ("train", "valid", "test")] == [80_000, 10_000, 10_000]
    tasks = {t["name"]: t for t in manifest["tasks"]}
    assert set(tasks) == {"interest", "like", "rating", "genres"}
    assert len(tasks["genres"]["classes"]) == 19
    features = json.loads((prepared("ml-100k").root / "features.json").read_text())
    assert {"users.age", "items.year"} <= set(features["numeric"])
    assert {"users.gender", "users.occupation"} <= set(features["categorical"])
    assert "items.genres" not in features["categorical"]  # the genres task reads it: no input
    assert tasks["genres"]["source_columns"] == ["items.genres"]
    assert len(features["users"]["tokens"]) == 943 + 1  # every user has training rows here


def test_movielens_temporal_config_with_kcore(prepared: Any, tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "data" / "ml-100k-temporal.yaml"
    result = prepared(str(config))
    dataset = PreparedDataset.load(result.root)
    inter = dataset.tables["interactions"]
    train_max = dataset.split("train")["timestamp"].max()
    assert dataset.split("test")["timestamp"].min() >= train_max  # type: ignore[operator]
    assert result.manifest["kcore"]["user"] == 5
    assert inter.group_by("user_id").len()["len"].min() >= 5


def test_retailrocket_counts_and_pair_level_behaviour_labels(prepared: Any) -> None:
    result = prepared("retailrocket")
    events = result.manifest["counts"]["events"]
    assert {e: s["rows"] for e, s in events.items()} == {
        "view": 78_371,
        "cart": 9_028,
        "purchase": 5_088,
    }
    assert (events["view"]["users"], events["view"]["items"]) == (3_423, 8_878)
    assert (result.manifest["counts"]["users"], result.manifest["counts"]["items"]) == (
        3_431,
        8_885,
    )
    pairs = pl.read_parquet(result.root / "labels_pair.parquet")
    assert pairs.select("user_id", "item_id").is_unique().all()
    inter = PreparedDataset.load(result.root).tables["interactions"]
    # no (user, item) pair straddles two splits: views and purchases of a pair stay together
    assert inter.group_by("user_id", "item_id").agg(pl.col("split").n_unique())["split"].max() == 1
    assert int(pairs["purchase"].sum()) == 5_088


def test_census_tabular_tasks(prepared: Any) -> None:
    result = prepared("census-income")
    assert result.manifest["counts"]["records"] == 99_762
    _read_equals_kept_plus_quarantined(result.manifest)
    tasks = {t["name"]: t for t in result.manifest["tasks"]}
    assert set(tasks) == {"income", "never_married"}
    labels = pl.read_parquet(result.root / "labels_user.parquet")
    assert labels.height == 99_762
    assert int(labels["income"].sum()) == 6_186
    assert int(labels["never_married"].sum()) == 43_143
    features = json.loads((result.root / "features.json").read_text())
    encoded = set(features["categorical"]) | set(features["numeric"])
    # label columns and the survey weight never become input features
    assert not {"users.income_50k", "users.marital_stat", "users.instance_weight"} & encoded
    assert {"users.age", "users.education", "users.sex"} <= encoded


@pytest.mark.parametrize(
    ("name", "read", "kept", "users", "items", "without_meta"),
    [
        # the README counts raw lines; repeated (user, item, time) review events are quarantined
        ("amazon-2018-magazine-subscriptions", 2_375, 2_328, 348, 157, 6),
        ("amazon-2018-gift-cards", 2_972, 2_969, 458, 148, 0),
    ],
)
def test_amazon_2018_joins_reviews_with_metadata(
    prepared: Any, name: str, read: int, kept: int, users: int, items: int, without_meta: int
) -> None:
    result = prepared(name)
    manifest = result.manifest
    review_file = next(f for f in manifest["read"]["files"] if "meta_" not in f["file"])
    assert (review_file["rows_read"], review_file["rows_kept"]) == (read, kept)
    assert (manifest["counts"]["users"], manifest["counts"]["items"]) == (users, items)
    assert manifest["counts"]["item_rows"] == items  # items without metadata are kept
    assert manifest["read"]["notes"].get("items without metadata", 0) == without_meta
    quarantined = [
        json.loads(line) for line in (result.root / "quarantine.jsonl").read_text().splitlines()
    ]
    assert len(quarantined) == manifest["read"]["rows_quarantined"]
    assert all(q["line"] >= 1 and q["reason"] for q in quarantined)
    # leave-one-out: one valid and one test row per user, even where a user reviewed the
    # held-out item twice (Magazine: the earlier review of such a pair is dropped)
    inter = PreparedDataset.load(result.root).tables["interactions"]
    for split in ("valid", "test"):
        held_out = inter.filter(pl.col("split") == split)
        assert held_out.height == held_out["user_id"].n_unique() == users
    assert manifest["split"]["rows_dropped"] == (16 if "magazine" in name else 0)
