"""ONNX export of every backbone (dict inputs, dynamic batch) and the onnxruntime parity check.

Every registered backbone is exported, built with its own ``example_params``: a new one is
checked here by registering it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import TOY_SPECS, make_toy
from mtlrec.core.types import TaskSpec
from mtlrec.export.onnx import export_onnx, onnx_parity, onnx_session, run_onnx
from mtlrec.models import BACKBONES, HEADS, FeatureInputs, InputSchema, MultiTaskModel


def toy_model(backbone: str, seed: int = 0) -> tuple[MultiTaskModel, dict[str, torch.Tensor]]:
    """A toy model reading ids, a categorical, a list-valued categorical (EmbeddingBag), a
    numeric column, an LM table and a per-example vector, with DLRM dot interactions."""
    examples, tables = make_toy(n=300, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    tables["items.tags"] = torch.randint(0, 5, (30, 3), generator=generator)  # 0 = padding
    schema = InputSchema(
        n_user_ids=21,
        n_item_ids=31,
        categorical={"items.kind": 3, "items.tags": 5},
        numeric=("users.age",),
        text={"items.text": 8},
        dense={"profile": 6},
    )
    torch.manual_seed(seed)
    inputs = FeatureInputs(schema, tables, embedding_dim=8, text_dim=8, dot_interactions=True)
    specs: dict[str, TaskSpec] = dict(TOY_SPECS)
    body_class = BACKBONES.get(backbone)
    body = body_class(inputs.out_dim, list(specs), **body_class.example_params)
    heads = {t: HEADS.get("fc")(body.out_dim(t), s, hidden=(8,)) for t, s in specs.items()}
    model = MultiTaskModel(inputs, body, heads, specs).eval()
    features = dict(examples.features)
    features["profile"] = torch.randn(len(examples), 6, generator=generator)
    return model, features


def batches(features: dict[str, torch.Tensor], size: int) -> Iterator[dict[str, torch.Tensor]]:
    n = int(features["user_row"].shape[0])
    for start in range(0, n, size):
        yield {k: v[start : start + size] for k, v in features.items()}


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_export_matches_torch_within_tolerance(backbone: str, tmp_path: Path) -> None:
    model, features = toy_model(backbone)
    path = tmp_path / "model.onnx"
    exported = export_onnx(model, {k: v[:16] for k, v in features.items()}, path)
    assert exported.outputs == model.tasks
    assert set(exported.inputs) == {"user_row", "item_row", "user_idx", "item_idx", "profile"}
    assert not model.training
    parity = onnx_parity(model, path, batches(features, 128))
    assert parity.n_examples == 300 and parity.n_batches == 3
    assert parity.passed, parity.max_abs_diff
    assert max(parity.max_abs_diff.values()) < 1e-4
    # the batch axis is dynamic: one row, and more rows than the traced batch
    session = onnx_session(path)
    for size in (1, 257):
        one = {k: v[:size] for k, v in features.items()}
        got = run_onnx(session, one)
        with torch.inference_mode():
            expected = model(one)
        for task in model.tasks:
            assert got[task].shape == tuple(expected[task].shape)
            assert abs(got[task] - expected[task].numpy()).max() < 1e-4


def test_parity_reports_a_model_that_changed(tmp_path: Path) -> None:
    model, features = toy_model("mmoe")
    path = tmp_path / "model.onnx"
    export_onnx(model, {k: v[:16] for k, v in features.items()}, path)
    with torch.no_grad():
        model.heads["score"].out.bias.add_(0.5)  # type: ignore[union-attr, operator]
    parity = onnx_parity(model, path, batches(features, 100))
    assert not parity.passed
    assert parity.max_abs_diff["score"] == pytest.approx(0.5, abs=1e-4)
    assert parity.max_abs_diff["click"] < 1e-4


def test_export_needs_two_rows(tmp_path: Path) -> None:
    model, features = toy_model("mmoe")
    with pytest.raises(ValueError, match="at least 2 rows"):
        export_onnx(model, {k: v[:1] for k, v in features.items()}, tmp_path / "m.onnx")
