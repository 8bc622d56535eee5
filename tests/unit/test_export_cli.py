"""``mtlrec export`` on a real (tiny) trained run: artifact, ONNX, int8 and pruned variants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mtlrec.cli.main import app
from mtlrec.export.artifact import Artifact, load_artifact
from mtlrec.models.scoring import pair_features, predict
from tiny_run import train_tiny_run

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("cli")
    run_dir, settings = train_tiny_run(root)
    return run_dir, ["--cache-dir", str(settings.cache_dir), "--offline"]


def test_export_with_onnx_int8_and_pruning(run: tuple[Path, list[str]], tmp_path: Path) -> None:
    run_dir, common = run
    args = [
        "export",
        str(run_dir),
        "--out",
        str(tmp_path / "out"),
        "--onnx",
        "--quantize",
        "int8",
        "--prune",
        "magnitude:0.3",
        "--prune",
        "structured:0.2",
        "--report-dir",
        str(tmp_path / "reports"),
        "--report-name",
        "export_tiny",
        "--batch-size",
        "32",
        "--repeats",
        "3",
        "--warmup",
        "1",
        *common,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (bundle,) = (tmp_path / "out").iterdir()
    assert "artifact written to" in result.output and bundle.name.startswith("tiny-export-")
    artifact = load_artifact(bundle)
    assert artifact.onnx_path is not None and artifact.onnx_path.is_file()
    assert sorted(artifact.variants) == ["int8", "pruned-magnitude-0.3", "pruned-structured-0.2"]
    manifest = artifact.manifest
    assert manifest["onnx"]["parity"]["passed"] is True
    assert manifest["onnx"]["outputs"] == ["interest", "rating", "sentiment"]

    report = json.loads((tmp_path / "reports" / "export_tiny.json").read_text())
    assert report["artifact"] == str(bundle)
    assert report["command"] == (
        f"mtlrec export {run_dir} --out {tmp_path / 'out'} --onnx --quantize int8 "
        "--prune magnitude:0.3 --prune structured:0.2 --batch-size 32 --repeats 3 --warmup 1 "
        "--threads 1"
    )
    assert report["onnx"]["parity"]["n_examples"] > 0
    assert max(report["onnx"]["parity"]["max_abs_diff"].values()) < 1e-4
    baseline = report["baseline"]
    for row in ("interest", "rating", "sentiment", "ranking (all)"):
        assert row in baseline["metrics"], row
    for name, variant in report["variants"].items():
        assert set(variant["changes"]) >= {"interest", "rating", "sentiment"}, name
        assert variant["latency_ms"]["batch_size"] == 32
        assert variant["size"]["bytes"] > 0
    assert report["variants"]["pruned-magnitude-0.3"]["sparsity"]["linear"] == pytest.approx(
        0.3, abs=1e-3
    )
    assert report["notes"][0].startswith("float32 baseline vs the run's results.json")
    assert report["notes"][0].endswith("largest absolute difference 0")  # reproduced exactly
    markdown = (tmp_path / "reports" / "export_tiny.md").read_text()
    assert "## Test metrics before and after" in markdown and "**passed**" in markdown
    assert (bundle / "reports" / "export.md").is_file()

    # every variant loads back and predicts like the model it was saved from
    features = {k: v[:50] for k, v in load_examples_features(artifact).items()}
    pruned = artifact.variant("pruned-structured-0.2")
    int8 = artifact.variant("int8")
    base = predict(artifact.model, features)
    for model in (pruned, int8):
        out = predict(model, features)
        assert set(out) == set(base)
        assert all(torch.isfinite(v).all() for v in out.values())


def load_examples_features(artifact: Artifact) -> dict[str, torch.Tensor]:
    """The artifact's own test (user, item) pairs as model inputs (no dataset needed)."""
    assert artifact.ranking is not None
    pairs = artifact.ranking.pairs["test"]
    return pair_features(
        artifact.entities, torch.from_numpy(pairs.users), torch.from_numpy(pairs.items)
    )


def test_plain_export_and_bad_options(run: tuple[Path, list[str]], tmp_path: Path) -> None:
    run_dir, common = run
    plain = runner.invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "a"), *common])
    assert plain.exit_code == 0, plain.output
    (bundle,) = (tmp_path / "a").iterdir()
    assert not (bundle / "onnx").exists() and not (bundle / "reports").exists()

    bad = runner.invoke(
        app, ["export", str(run_dir), "--out", str(tmp_path / "b"), "--prune", "half", *common]
    )
    assert bad.exit_code == 2 and "METHOD:AMOUNT" in bad.output
    bad = runner.invoke(
        app, ["export", str(run_dir), "--out", str(tmp_path / "b"), "--quantize", "int4", *common]
    )
    assert bad.exit_code == 2 and "unknown quantization 'int4'" in bad.output
    missing = runner.invoke(app, ["export", str(tmp_path / "nope"), "--out", str(tmp_path / "b")])
    assert missing.exit_code == 2 and "no model.pt" in " ".join(missing.output.split())
    assert not (tmp_path / "b").exists() or not list((tmp_path / "b").iterdir())
