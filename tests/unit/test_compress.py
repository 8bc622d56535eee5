"""Dynamic int8 quantization, magnitude / structured pruning, size and latency, the report."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import TOY_SCHEMA, TOY_SPECS, make_toy
from mtlrec.export.compression_report import (
    BenchSettings,
    compare_metrics,
    measure_model,
    pruning_report,
    quantization_report,
    report_markdown,
    variant_notes,
)
from mtlrec.export.measure import latency, model_size, time_interleaved
from mtlrec.export.prune import (
    PruneSpec,
    linear_layers,
    load_pruned,
    output_layers,
    prune_magnitude,
    prune_structured,
    save_pruned,
    sparsity,
)
from mtlrec.export.quantize import load_int8, quantize_int8, quantized_layers, save_int8
from mtlrec.models import BACKBONES, HEADS, FeatureInputs, MultiTaskModel

SCHEMA = TOY_SCHEMA


def build(seed: int = 0) -> MultiTaskModel:
    """A toy MMoE whose Linear weights dominate its size (wide experts)."""
    _, tables = make_toy(n=8)
    torch.manual_seed(seed)
    inputs = FeatureInputs(SCHEMA, tables, embedding_dim=8, text_dim=8)
    body = BACKBONES.get("mmoe")(
        inputs.out_dim, list(TOY_SPECS), n_experts=3, expert=(128, 64), tower=(32,)
    )
    heads = {t: HEADS.get("fc")(body.out_dim(t), s, hidden=(16,)) for t, s in TOY_SPECS.items()}
    return MultiTaskModel(inputs, body, heads, TOY_SPECS).eval()


@pytest.fixture(scope="module")
def features() -> dict[str, torch.Tensor]:
    examples, _ = make_toy(n=256)
    return examples.features


def outputs(model: nn.Module, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return dict(model(features))


def test_int8_shrinks_the_model_and_stays_close(features: dict[str, torch.Tensor]) -> None:
    model = build()
    before = outputs(model, features)
    quantized = quantize_int8(model)
    assert len(quantized_layers(quantized)) == len(linear_layers(model))
    assert not quantized_layers(model)  # the float model is left alone
    assert model_size(quantized).bytes < 0.45 * model_size(model).bytes
    after = outputs(quantized, features)
    for task in before:
        scale = float(before[task].abs().max())
        assert float((after[task] - before[task]).abs().max()) < 0.05 * max(scale, 1.0), task


def test_int8_round_trip_through_safetensors(
    features: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    quantized = quantize_int8(build(seed=1))
    save_int8(quantized, tmp_path / "int8.safetensors")
    loaded = load_int8(build(seed=2), tmp_path / "int8.safetensors")  # other init: replaced
    expected, got = outputs(quantized, features), outputs(loaded, features)
    for task in expected:
        assert torch.equal(expected[task], got[task]), task
    with pytest.raises(ValueError, match="do not match"):
        other = build()
        other.heads["extra"] = nn.Linear(2, 2)  # an architecture the file does not fit
        load_int8(other, tmp_path / "int8.safetensors")


def test_magnitude_pruning_reaches_the_global_amount(tmp_path: Path) -> None:
    model = build()
    pruned = prune_magnitude(model, 0.3)
    total = sum(layer.weight.numel() for layer in linear_layers(pruned).values())
    zeros = sum(int((layer.weight == 0).sum()) for layer in linear_layers(pruned).values())
    assert zeros == round(0.3 * total)
    assert sparsity(pruned)["linear"] == pytest.approx(0.3, abs=1e-3)
    assert sparsity(model)["linear"] == 0.0  # the float model is left alone
    for layer in linear_layers(pruned).values():  # permanent: no reparametrisation left
        assert not hasattr(layer, "weight_orig") and not layer._forward_pre_hooks
    # the smallest weights went: every kept weight is at least as large as every pruned one
    original = torch.cat([m.weight.flatten() for m in linear_layers(model).values()])
    kept = torch.cat([m.weight.flatten() for m in linear_layers(pruned).values()])
    assert original[kept == 0].abs().max() <= original[kept != 0].abs().min()
    save_pruned(pruned, tmp_path / "p.safetensors")
    loaded = load_pruned(build(seed=3), tmp_path / "p.safetensors")
    assert sparsity(loaded)["linear"] == sparsity(pruned)["linear"]


def test_structured_pruning_zeroes_whole_rows_and_keeps_outputs() -> None:
    model = build()
    pruned = prune_structured(model, 0.25)
    kept = output_layers(pruned)
    assert kept == {f"heads.{t}.out" for t in TOY_SPECS}
    for name, layer in linear_layers(pruned).items():
        zero_rows = int((layer.weight == 0).all(dim=1).sum())
        if name in kept:
            assert zero_rows == 0, name
        else:
            assert zero_rows == round(0.25 * layer.out_features), name
            norms = linear_layers(model)[name].weight.norm(dim=1)
            dropped = (layer.weight == 0).all(dim=1)
            assert norms[dropped].max() <= norms[~dropped].min(), name  # smallest L2 rows
    assert 0.0 < sparsity(pruned)["rows"] < 0.25


def test_prune_spec_parsing() -> None:
    assert PruneSpec.parse("magnitude:0.3") == PruneSpec("magnitude", 0.3)
    assert PruneSpec.parse("structured:0.2").name == "pruned-structured-0.2"
    for bad, message in (
        ("random:0.3", "METHOD:AMOUNT"),
        ("magnitude", "METHOD:AMOUNT"),
        ("magnitude:lots", "not a number"),
        ("magnitude:1.5", r"\(0, 1\)"),
    ):
        with pytest.raises(ValueError, match=message):
            PruneSpec.parse(bad)


def test_latency_and_size_are_measured(features: dict[str, torch.Tensor]) -> None:
    model = build()
    stats = latency(model, {k: v[:64] for k, v in features.items()}, warmup=1, repeats=5)
    assert stats.batch_size == 64 and stats.repeats == 5 and stats.threads == 1
    assert 0.0 < stats.median_ms <= stats.p95_ms
    size = model_size(model)
    assert size.gzip_bytes < size.bytes
    tables = 20 * 4 + 30 * 8 * 4 + 30 * 8  # users.age float, items.text float, items.kind int64
    assert size.buffer_bytes == tables
    assert size.buffer_bytes < size.bytes


def test_reports_compare_every_metric(features: dict[str, torch.Tensor]) -> None:
    model = build()
    calls: list[nn.Module] = []

    def evaluate(m: MultiTaskModel) -> dict[str, dict[str, float]]:
        calls.append(m)
        out = outputs(m, features)
        return {
            "score": {"n": 256.0, "rmse": float(out["score"].pow(2).mean().sqrt())},
            "click": {"n": 256.0, "auc": float(torch.sigmoid(out["click"]).mean())},
        }

    settings = BenchSettings(batch_size=32, warmup=1, repeats=3)
    batch = {k: v[:32] for k, v in features.items()}
    baseline = measure_model(model, evaluate, batch, settings)
    quantized, q_entry = quantization_report(model, baseline, evaluate, batch, settings)
    pruned, p_entry = pruning_report(
        model, PruneSpec("magnitude", 0.5), baseline, evaluate, batch, settings
    )
    assert calls == [model, quantized, pruned]
    assert 0.0 < max(q_entry["max_abs_output_diff"].values()) < 0.1
    for entry in (q_entry, p_entry):  # timed in turns with the float model
        assert entry["baseline_latency_ms"]["repeats"] == entry["latency_ms"]["repeats"] == 3
    assert set(q_entry["changes"]) == {"score", "click"}
    change = p_entry["changes"]["score"]["rmse"]
    assert change["delta"] == pytest.approx(change["after"] - change["before"])
    assert "n" not in p_entry["changes"]["score"]
    assert p_entry["sparsity"]["linear"] == pytest.approx(0.5, abs=1e-3)
    report = {
        "run": "toy",
        "dataset": "toy",
        "settings": settings.to_json(),
        "baseline": baseline,
        "variants": {"int8": q_entry, "pruned-magnitude-0.5": p_entry},
    }
    report["notes"] = variant_notes(report)
    assert len(report["notes"]) == 2 and report["notes"][0].startswith("int8: size x")
    text = report_markdown(report)
    assert "| score | rmse |" in text and "pruned-magnitude-0.5 | Δ" in text
    assert "global L1 unstructured pruning of 50%" in text


def test_compare_metrics_skips_counts_and_missing_rows() -> None:
    before = {"a": {"n": 3.0, "auc": 0.8}, "b": {"rmse": 1.0}}
    after = {"a": {"n": 3.0, "auc": 0.7}}
    assert compare_metrics(before, after) == {
        "a": {"auc": {"before": 0.8, "after": 0.7, "delta": pytest.approx(-0.1)}}
    }


def test_compare_metrics_reads_nulls_as_nan() -> None:
    changes = compare_metrics({"a": {"auc": None, "rmse": 1.0}}, {"a": {"auc": 0.5, "rmse": 1.5}})
    assert changes["a"]["rmse"]["delta"] == 0.5
    assert changes["a"]["auc"]["before"] != changes["a"]["auc"]["before"]  # nan


def test_calls_are_timed_in_turns() -> None:
    order: list[str] = []
    stats = time_interleaved(
        [lambda: order.append("a"), lambda: order.append("b")],
        warmup=2,
        repeats=3,
        batch_size=1,
        threads=1,
    )
    assert order == ["a", "a", "b", "b", "a", "b", "a", "b", "a", "b"]
    assert [s.repeats for s in stats] == [3, 3]
    with pytest.raises(ValueError, match="at least 1"):
        time_interleaved([lambda: None], warmup=0, repeats=0, batch_size=1, threads=1)
