"""The prepared-data cache is keyed on config, data-format version and source bytes;
a prepared folder of another format version is refused with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtlrec.config import PrepareConfig
from mtlrec.data.cache import cache_folder, cached_prepare
from mtlrec.data.fetch import FetchSettings, file_digest
from mtlrec.data.store import FORMAT_VERSION, MANIFEST, PreparedDataset, PreparedDatasetError


def write_reviews(path: Path, stars: float = 5.0) -> Path:
    """A tiny 2014-style Amazon reviews file: 4 users x 4 items, one review a day."""
    lines = [
        json.dumps(
            {
                "reviewerID": f"U{u}",
                "asin": f"I{(u + i) % 5}",
                "overall": stars if i % 2 else 2.0,
                "reviewText": "fine",
                "summary": "ok",
                "unixReviewTime": 1_400_000_000 + 86_400 * (u + i),
            }
        )
        for u in range(4)
        for i in range(4)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def config_for(reviews: Path, seed: int = 42) -> PrepareConfig:
    return PrepareConfig.model_validate(
        {
            "dataset": {"source": "amazon", "files": {"reviews": str(reviews)}},
            "split": {"strategy": "leave_one_out", "seed": seed},
            "labels": [{"name": "rating"}],
        }
    )


@pytest.fixture
def settings(tmp_path: Path) -> FetchSettings:
    return FetchSettings(cache_dir=tmp_path / "cache", offline=True)


def test_changed_source_bytes_prepare_again(tmp_path: Path, settings: FetchSettings) -> None:
    reviews = write_reviews(tmp_path / "reviews.json", stars=5.0)
    config = config_for(reviews)
    first = cached_prepare(config, settings)
    assert first.root.parent == settings.cache_dir / "prepared"
    assert first.manifest["format_version"] == FORMAT_VERSION
    again = cached_prepare(config, settings)
    assert again.root == first.root  # reused: same config, version and bytes
    assert again.manifest["created_at"] == first.manifest["created_at"]

    write_reviews(reviews, stars=4.0)  # same path and same config, other bytes
    changed = cached_prepare(config, settings)
    assert changed.root != first.root  # keyed on the bytes: no stale reuse
    stars = changed.tables["reviews"]["stars"].to_list()
    assert 4.0 in stars and 5.0 not in stars  # the new bytes were read
    assert 5.0 in first.tables["reviews"]["stars"].to_list()
    assert changed.manifest["source_files"][0]["sha256"] == file_digest(reviews)
    assert cache_folder(config_for(reviews, seed=1), settings) != changed.root  # config counts


def test_the_key_covers_the_format_version(
    tmp_path: Path, settings: FetchSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(write_reviews(tmp_path / "reviews.json"))
    before = cache_folder(config, settings)
    monkeypatch.setattr("mtlrec.data.cache.FORMAT_VERSION", FORMAT_VERSION + 1)
    assert cache_folder(config, settings) != before


def test_another_format_version_is_refused_naming_folder_and_versions(
    tmp_path: Path, settings: FetchSettings
) -> None:
    dataset = cached_prepare(config_for(write_reviews(tmp_path / "reviews.json")), settings)
    manifest_path = dataset.root / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PreparedDatasetError) as error:
        PreparedDataset.load(dataset.root)
    message = str(error.value)
    assert str(dataset.root) in message
    assert "version 1" in message and f"version {FORMAT_VERSION}" in message
    del manifest["format_version"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PreparedDatasetError, match="version unknown"):
        PreparedDataset.load(dataset.root)


def test_manifest_sha256_is_the_hash_of_manifest_json(
    tmp_path: Path, settings: FetchSettings
) -> None:
    dataset = cached_prepare(config_for(write_reviews(tmp_path / "reviews.json")), settings)
    assert dataset.manifest_sha256 == file_digest(dataset.root / MANIFEST)
    assert len(dataset.manifest_sha256) == 64


def test_the_manifest_records_the_tie_rule_and_boundary_ties(
    tmp_path: Path, settings: FetchSettings
) -> None:
    dataset = cached_prepare(config_for(write_reviews(tmp_path / "reviews.json")), settings)
    split = dataset.manifest["split"]
    assert (split["strategy"], split["ties"], split["seed"]) == ("leave_one_out", "random", 42)
    assert set(split["boundary_ties"]) == {
        "users",
        "tied_users",
        "share",
        "valid_tied_users",
        "test_tied_users",
    }
    assert split["rows_dropped"] == 0
    assert not (dataset.root / "negatives.parquet").exists()
