"""Gate utilisation of MMoE and PLE: hooks on the declared gates, weights per task per expert."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from conftest import TOY_SCHEMA, TOY_SPECS
from mtlrec.data.examples import ExampleSet
from mtlrec.evaluation.gates import feature_batches, gate_utilisation
from mtlrec.models import BACKBONES, HEADS, FeatureInputs, MultiTaskModel

SCHEMA = TOY_SCHEMA
Toy = Callable[..., tuple[ExampleSet, dict[str, torch.Tensor]]]


def build(backbone: str, tables: dict[str, torch.Tensor], **params: Any) -> MultiTaskModel:
    torch.manual_seed(0)
    inputs = FeatureInputs(SCHEMA, tables, embedding_dim=8, text_dim=8)
    body = BACKBONES.get(backbone)(inputs.out_dim, list(TOY_SPECS), **params)
    heads = {t: HEADS.get("fc")(body.out_dim(t), s) for t, s in TOY_SPECS.items()}
    return MultiTaskModel(inputs, body, heads, TOY_SPECS)


def test_mmoe_rows_sum_to_one_over_every_expert(toy: Toy) -> None:
    examples, tables = toy(n=100)
    model = build("mmoe", tables, n_experts=3, expert=(16,), tower=(8,))
    usage = gate_utilisation(model, feature_batches(examples.features, batch_size=32))
    assert usage is not None and usage.examples == 100
    (level,) = usage.levels
    assert level.experts == ("expert/0", "expert/1", "expert/2")
    assert set(level.tasks) == set(TOY_SPECS)
    for weights in level.tasks.values():
        assert len(weights) == 3 and all(w is not None and 0 < w < 1 for w in weights)
        assert sum(w for w in weights if w is not None) == pytest.approx(1.0)
    assert level.shared_gate is None


def test_mmoe_mean_matches_the_gate_applied_by_hand(toy: Toy) -> None:
    examples, tables = toy(n=64)
    model = build("mmoe", tables, n_experts=2, expert=(16,), tower=(8,))
    usage = gate_utilisation(model, feature_batches(examples.features, batch_size=10))
    assert usage is not None
    model.eval()
    with torch.no_grad():
        x = model.inputs(examples.features)
        expected = model.backbone.gates["click"](x).mean(dim=0).tolist()  # type: ignore[index]
    assert usage.levels[0].tasks["click"] == pytest.approx(expected)


def test_ple_levels_label_task_and_shared_experts(toy: Toy) -> None:
    examples, tables = toy(n=80)
    model = build(
        "ple", tables, levels=2, task_experts=1, shared_experts=2, expert=(16,), tower=(8,)
    )
    usage = gate_utilisation(model, feature_batches(examples.features, batch_size=32))
    assert usage is not None and [lv.name for lv in usage.levels] == ["level 0", "level 1"]
    first, last = usage.levels
    assert first.experts == ("task:click/0", "task:score/0", "task:tags/0", "shared/0", "shared/1")
    for task, weights in first.tasks.items():
        reached = {first.experts[i] for i, w in enumerate(weights) if w is not None}
        assert reached == {f"task:{task}/0", "shared/0", "shared/1"}  # its own + shared
        assert sum(w for w in weights if w is not None) == pytest.approx(1.0)
    assert first.shared_gate is not None and None not in first.shared_gate  # reaches all
    assert sum(w for w in first.shared_gate if w is not None) == pytest.approx(1.0)
    assert last.shared_gate is None  # the last level feeds towers only
    json = usage.to_json()
    assert json["levels"][0]["tasks"]["click"][1] is None and "shared_gate" in json["levels"][0]


def test_shared_bottom_has_no_gates(toy: Toy) -> None:
    examples, tables = toy(n=16)
    model = build("shared_bottom", tables, shared=(16,), tower=(8,))
    assert gate_utilisation(model, feature_batches(examples.features, batch_size=8)) is None


def test_feature_batches_sample_is_bounded_and_fixed() -> None:
    features = {"a": torch.arange(100), "b": torch.arange(100) * 2}
    first = list(feature_batches(features, batch_size=7, limit=20, seed=3))
    again = list(feature_batches(features, batch_size=7, limit=20, seed=3))
    rows = torch.cat([b["a"] for b in first])
    assert len(rows) == 20 and bool((rows[1:] > rows[:-1]).all())  # sorted, no repeats
    assert torch.equal(rows, torch.cat([b["a"] for b in again]))
    assert torch.equal(torch.cat([b["b"] for b in first]), rows * 2)
    assert len(torch.cat([b["a"] for b in feature_batches(features, 30)])) == 100
