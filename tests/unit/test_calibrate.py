"""Decision offsets for a multiclass head chosen on validation macro-F1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from mtlrec.training.calibrate import add_offsets, macro_f1, macro_f1_offsets


def test_macro_f1_matches_scikit_learn_with_absent_classes() -> None:
    rng = np.random.default_rng(0)
    labels, predicted = rng.integers(0, 3, 200), rng.integers(0, 2, 200)
    expected = f1_score(labels, predicted, average="macro", labels=[0, 1, 2], zero_division=0)
    assert macro_f1(labels, predicted, 3) == pytest.approx(expected)


def test_offsets_recover_a_shifted_minority_class() -> None:
    # class 1 is under-predicted: its logit is 1.5 too low for every example
    rng = np.random.default_rng(0)
    labels = rng.choice(3, size=2000, p=[0.1, 0.1, 0.8])
    logits = rng.normal(0, 0.5, size=(2000, 3))
    logits[np.arange(2000), labels] += 2.0
    logits[:, 1] -= 1.5
    result = macro_f1_offsets(torch.tensor(logits), torch.tensor(labels))
    assert result.valid_macro_f1_after > result.valid_macro_f1_before + 0.1
    assert result.offsets[0] == 0.0 and 1.0 <= result.offsets[1] - result.offsets[2] <= 2.0
    shifted = (logits + np.array(result.offsets)).argmax(axis=1)
    assert macro_f1(labels, shifted, 3) == pytest.approx(result.valid_macro_f1_after)


def test_offsets_stay_zero_when_nothing_improves() -> None:
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    logits = torch.nn.functional.one_hot(labels, 3).float() * 5
    result = macro_f1_offsets(logits, labels)
    assert result.offsets == [0.0, 0.0, 0.0] and result.valid_macro_f1_after == 1.0


def test_add_offsets_checks_the_shape() -> None:
    bias = torch.zeros(3)
    add_offsets(bias, [0.0, 1.0, -0.5])
    assert bias.tolist() == [0.0, 1.0, -0.5]
    with pytest.raises(ValueError, match="bias of shape"):
        add_offsets(torch.zeros(2), [0.0, 1.0, 2.0])
