"""The model artifact: round trip, versioning, atomic writing, and damaged bundles refused."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

from mtlrec.config.fusion import FusionConfig
from mtlrec.export.artifact import FORMAT_VERSION, load_artifact
from mtlrec.export.checksums import ArtifactError
from mtlrec.export.write import write_artifact
from mtlrec.models.scoring import predict
from mtlrec.pipeline.fuse import fuse_run, load_fused_run
from mtlrec.pipeline.trained_run import TrainedRun, load_trained_run
from tiny_run import TINY_FUSION, train_tiny_run

QUIET = Console(quiet=True)
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    run_dir, settings = train_tiny_run(tmp_path_factory.mktemp("tiny"))
    return load_trained_run(run_dir, settings, QUIET)


@pytest.fixture(scope="module")
def bundle(trained: TrainedRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artifact(trained, tmp_path_factory.mktemp("bundles"), created=WHEN)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / bundle.name
    shutil.copytree(bundle, target)
    return target


def test_round_trip_gives_identical_predictions(trained: TrainedRun, bundle: Path) -> None:
    artifact = load_artifact(bundle)
    assert not artifact.model.training
    features = trained.data.examples.features
    expected = predict(trained.model, features)
    got = predict(artifact.model, features)
    assert set(got) == {"interest", "rating", "sentiment"}
    for task in expected:
        assert torch.equal(expected[task], got[task]), task
    # what a service needs without the dataset: ids, vocabularies, seen items, metrics
    entities = trained.data.entities
    assert artifact.entities.user_ids == entities.user_ids
    assert artifact.entities.item_ids == entities.item_ids
    assert torch.equal(artifact.entities.item_vocab_index, entities.item_vocab_index)
    assert artifact.specs == trained.data.specs
    assert artifact.features is not None and len(artifact.features.items) > 1
    assert artifact.ranking is not None
    users = np.arange(len(entities.user_ids))
    np.testing.assert_array_equal(
        artifact.ranking.excluded("test", users), trained.ranking.excluded("test", users)
    )
    results = json.loads((trained.run_dir / "results.json").read_text())
    assert artifact.metrics == results
    assert artifact.fused is None and artifact.item_embeddings is None  # no text, no fusion


def test_manifest_names_version_and_every_file(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert re.fullmatch(r"20260102T030405Z-[0-9a-f]{8}", manifest["version"])
    assert bundle.name == f"tiny-export-{manifest['version']}"
    assert manifest["created_at"].startswith("2026-01-02T03:04:05")
    assert manifest["mtlrec_version"] and manifest["torch_version"] == torch.__version__
    on_disk = sorted(
        p.relative_to(bundle).as_posix()
        for p in bundle.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    assert sorted(manifest["files"]) == on_disk
    assert {"weights.safetensors", "config.yaml", "entities.safetensors"} <= set(on_disk)
    entry = manifest["files"]["weights.safetensors"]
    assert entry["bytes"] == (bundle / "weights.safetensors").stat().st_size
    assert len(entry["sha256"]) == 64
    assert manifest["model"]["tasks"] == {
        "interest": "binary",
        "rating": "regression",
        "sentiment": "multiclass",
    }
    assert manifest["model"]["features"]["user_idx"] == {"dtype": "int64", "shape": ["batch"]}


def test_same_model_same_digest_and_no_overwrite(
    trained: TrainedRun, bundle: Path, tmp_path: Path
) -> None:
    later = write_artifact(trained, tmp_path, created=datetime(2027, 5, 6, tzinfo=UTC))
    assert later.name.split("-")[-1] == bundle.name.split("-")[-1]  # same content digest
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_artifact(trained, tmp_path, created=datetime(2027, 5, 6, tzinfo=UTC))
    assert sorted(p.name for p in tmp_path.iterdir()) == [later.name]  # no temp folder left


def test_failure_leaves_no_temp_folder(trained: TrainedRun, tmp_path: Path) -> None:
    def broken(folder: Path, model: Any) -> dict[str, Any]:
        (folder / "half.bin").write_bytes(b"x" * 10)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_artifact(trained, tmp_path, extras=broken)
    assert list(tmp_path.iterdir()) == []


def test_flipped_byte_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = _copy(bundle, tmp_path)
    weights = copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"'weights.safetensors' fails its checksum"):
        load_artifact(copy)


def test_truncated_file_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = _copy(bundle, tmp_path)
    path = copy / "entities.safetensors"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ArtifactError, match=r"'entities.safetensors' has \d+ bytes"):
        load_artifact(copy)


def test_missing_file_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = _copy(bundle, tmp_path)
    (copy / "vocabularies.json").unlink()
    with pytest.raises(ArtifactError, match=r"'vocabularies.json' is listed .* but missing"):
        load_artifact(copy)


def test_extra_file_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = _copy(bundle, tmp_path)
    (copy / "notes.txt").write_text("hello")
    with pytest.raises(ArtifactError, match=r"'notes.txt' is not listed in the manifest"):
        load_artifact(copy)


def test_wrong_format_version_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = _copy(bundle, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"format version 99 is not supported.*reads"):
        load_artifact(copy)


def test_manifest_problems_are_refused(bundle: Path, tmp_path: Path) -> None:
    copy = _copy(bundle, tmp_path)
    manifest_path = copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../outside.txt"] = {"sha256": "0" * 64, "bytes": 1}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="outside the bundle"):
        load_artifact(copy)
    manifest_path.write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(copy)
    manifest_path.unlink()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load_artifact(copy)


def test_fused_run_bundles_its_cascade(tmp_path: Path) -> None:
    run_dir, settings = train_tiny_run(tmp_path)
    fusion = FusionConfig.model_validate(TINY_FUSION)
    fuse_run(run_dir, fusion, settings, QUIET)
    fused = load_fused_run(run_dir, settings, QUIET)
    artifact = load_artifact(write_artifact(fused.run, tmp_path / "out"))
    assert artifact.fused is not None and artifact.ranking is not None
    assert artifact.item_embeddings is not None and artifact.item_index is not None
    assert artifact.item_index.n_items == len(artifact.entities.item_ids)
    assert sorted(artifact.manifest["fusion"]["retrievers"]) == ["item_knn", "popularity"]
    users = np.arange(12)
    expected = fused.cascade.run(users, fused.run.ranking.excluded("test", users), 5)
    got = artifact.fused.cascade.run(users, artifact.ranking.excluded("test", users), 5)
    np.testing.assert_array_equal(got.items, expected.items)
    np.testing.assert_array_equal(got.fused, expected.fused)
    assert artifact.fused.results["fusion"] == "linear"
