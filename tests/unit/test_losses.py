from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mtlrec.core.types import TaskSpec
from mtlrec.models.losses import LOSSES, loss_name, masked_task_loss


def test_masked_rows_are_ignored_and_no_label_gives_none() -> None:
    spec = TaskSpec("like", "binary")
    logits = torch.tensor([2.0, -1.0, 5.0])
    labels = torch.tensor([1.0, 0.0, 0.0])
    mask = torch.tensor([True, True, False])
    loss = masked_task_loss(spec, logits, labels, mask)
    assert loss is not None
    assert torch.isclose(loss, F.binary_cross_entropy_with_logits(logits[:2], labels[:2]))
    assert masked_task_loss(spec, logits, labels, torch.zeros(3, dtype=torch.bool)) is None


def test_default_losses_per_kind() -> None:
    kinds = {
        "binary": "bce",
        "multilabel": "bce",
        "multiclass": "ce",
        "regression": "mse",
        "similarity": "cosine",
    }
    for kind, expected in kinds.items():
        assert loss_name(TaskSpec("t", kind)) == expected  # type: ignore[arg-type]
    assert loss_name(TaskSpec("t", "regression", loss="huber")) == "huber"


def test_class_weights_and_huber() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([1, 1])
    spec = TaskSpec("s", "multiclass", 2, class_weights=(1.0, 3.0))
    expected = F.cross_entropy(logits, labels, weight=torch.tensor([1.0, 3.0]))
    assert torch.isclose(LOSSES.get("ce")(logits, labels, spec), expected)
    huber = LOSSES.get("huber")(
        torch.tensor([0.0, 3.0]), torch.tensor([0.5, 0.0]), TaskSpec("r", "regression")
    )
    assert huber.item() == pytest.approx((0.5 * 0.25 + (3 - 0.5)) / 2)


def test_similarity_losses() -> None:
    spec = TaskSpec("sim", "similarity", 4)
    target = torch.eye(4)
    assert LOSSES.get("cosine")(target * 3, target, spec).item() == pytest.approx(0.0, abs=1e-6)
    aligned = LOSSES.get("infonce")(target, target, spec)
    shuffled = LOSSES.get("infonce")(target, target.roll(1, dims=0), spec)
    assert aligned.item() < 1e-3 < shuffled.item()
