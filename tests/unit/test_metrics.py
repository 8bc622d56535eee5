"""Metric functions and accumulators against scikit-learn and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mtlrec.core.types import TaskSpec
from mtlrec.evaluation import metrics as M
from mtlrec.evaluation.accumulators import (
    BinaryMetrics,
    MulticlassMetrics,
    MultilabelMetrics,
    MultiTaskMetrics,
    RegressionMetrics,
    TaskMetrics,
    make_task_metrics,
)

SEEDS = range(6)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


# --------------------------------------------------------------------------- pure functions


def test_auc_hand_computed_with_ties() -> None:
    # positives 0.8, 0.5; negatives 0.5, 0.1: pairs (0.8>0.5)(0.8>0.1)(0.5=0.5)(0.5>0.1) -> 3.5/4
    scores = torch.tensor([0.8, 0.5, 0.5, 0.1])
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert M.auc(scores, labels) == pytest.approx(3.5 / 4)
    assert M.auc(torch.zeros(4), labels) == pytest.approx(0.5)  # all tied


def test_auc_nan_for_a_single_class_and_errors_on_bad_input() -> None:
    assert math.isnan(M.auc(torch.tensor([0.1, 0.9]), torch.tensor([1, 1])))
    assert math.isnan(M.auc(torch.tensor([0.1, 0.9]), torch.tensor([0, 0])))
    with pytest.raises(ValueError, match="0/1"):
        M.auc(torch.tensor([0.1, 0.9]), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="nan"):
        M.auc(torch.tensor([float("nan"), 0.9]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        M.auc(torch.tensor([0.1, 0.9, 0.3]), torch.tensor([0, 1]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-3, 3), st.booleans()), min_size=2, max_size=60).filter(
        lambda rows: len({label for _, label in rows}) == 2
    )
)
def test_auc_matches_sklearn_with_many_ties(rows: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in rows], dtype=np.float64)
    labels = np.array([y for _, y in rows], dtype=np.int64)
    got = M.auc(torch.from_numpy(scores), torch.from_numpy(labels))
    assert got == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_and_average_precision_match_sklearn_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + labels, 1)  # rounded: plenty of ties
    t_scores, t_labels = torch.from_numpy(scores), torch.from_numpy(labels).float()
    assert M.auc(t_scores, t_labels) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert M.average_precision(t_scores, t_labels) == pytest.approx(
        skm.average_precision_score(labels, scores), abs=1e-12
    )


def test_average_precision_hand_computed() -> None:
    # ranking: + - + -> precision at the hits 1 and 2/3, recall steps 1/2 each
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert M.average_precision(scores, torch.tensor([1, 0, 1])) == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3
    )
    assert math.isnan(M.average_precision(scores, torch.tensor([0, 0, 0])))


def test_average_ranks_match_scipy_definition() -> None:
    ranks = M.average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0]))
    assert ranks.tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_logloss_and_accuracy_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    logits = rng.normal(scale=3.0, size=200)
    t_logits, t_labels = torch.from_numpy(logits), torch.from_numpy(labels).float()
    assert M.logloss(t_logits, t_labels) == pytest.approx(
        skm.log_loss(labels, _sigmoid(logits)), rel=1e-9
    )
    assert M.accuracy(t_logits, t_labels) == pytest.approx(
        skm.accuracy_score(labels, _sigmoid(logits) > 0.5)
    )


def test_logloss_is_stable_for_huge_logits() -> None:
    logits = torch.tensor([1000.0, -1000.0, 1000.0], dtype=torch.float32)
    labels = torch.tensor([1.0, 0.0, 0.0])
    # two perfect predictions (loss 0) and one confidently wrong (loss 1000)
    assert M.logloss(logits, labels) == pytest.approx(1000.0 / 3)
    assert math.isnan(M.logloss(torch.zeros(0), torch.zeros(0)))


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_logloss_accuracy_macro_f1_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_classes = 7
    # classes 5 and 6 never occur as labels; logits push some predictions to class 5
    labels = rng.integers(0, 5, 250)
    logits = rng.normal(size=(250, n_classes))
    logits[np.arange(250), labels] += 1.0
    logits[:, 6] -= 100.0  # class 6: absent from labels and predictions
    t_logits, t_labels = torch.from_numpy(logits), torch.from_numpy(labels)
    pred = logits.argmax(axis=1)
    assert M.logloss(t_logits, t_labels) == pytest.approx(
        skm.log_loss(labels, _softmax(logits), labels=list(range(n_classes))), rel=1e-9
    )
    assert M.accuracy(t_logits, t_labels) == pytest.approx(skm.accuracy_score(labels, pred))
    assert M.macro_f1(torch.from_numpy(pred), t_labels, n_classes) == pytest.approx(
        skm.f1_score(labels, pred, average="macro"), abs=1e-12
    )


def test_macro_f1_hand_computed() -> None:
    # class 0: tp 1 fp 1 fn 0 -> 2/3; class 1: tp 0 fp 0 fn 1 -> 0; class 2 absent -> ignored
    pred = torch.tensor([0, 0])
    labels = torch.tensor([0, 1])
    assert M.macro_f1(pred, labels, n_classes=3) == pytest.approx((2 / 3 + 0) / 2)
    assert math.isnan(M.macro_f1(torch.zeros(0), torch.zeros(0), n_classes=3))
    with pytest.raises(ValueError, match="class indices"):
        M.macro_f1(torch.tensor([3]), torch.tensor([0]), n_classes=3)


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, c = 120, 6
    labels = (rng.random((n, c)) < 0.3).astype(np.int64)
    labels[:, 4] = 0  # a class never labelled positive
    logits = np.round(rng.normal(size=(n, c)) + 1.5 * labels - 0.5, 1)
    logits[:, 5] = -5.0  # with column 4: a class neither labelled nor predicted
    labels[:, 5] = 0
    pred = (_sigmoid(logits) > 0.5).astype(np.int64)
    t_logits, t_labels = torch.from_numpy(logits), torch.from_numpy(labels)
    present = [j for j in range(c) if labels[:, j].any() or pred[:, j].any()]
    assert M.multilabel_f1(t_logits, t_labels, "micro") == pytest.approx(
        skm.f1_score(labels, pred, average="micro"), abs=1e-12
    )
    assert M.multilabel_f1(t_logits, t_labels, "macro") == pytest.approx(
        skm.f1_score(labels, pred, average="macro", labels=present), abs=1e-12
    )
    both = [j for j in range(c) if 0 < labels[:, j].sum() < n]
    assert M.multilabel_auc(t_logits, t_labels) == pytest.approx(
        skm.roc_auc_score(labels[:, both], logits[:, both], average="macro"), abs=1e-12
    )
    assert M.multilabel_map(t_logits, t_labels) == pytest.approx(
        skm.average_precision_score(labels[:, both], logits[:, both], average="macro"), abs=1e-12
    )


def test_multilabel_f1_hand_computed_and_undefined() -> None:
    logits = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    labels = torch.tensor([[1, 0], [0, 1]])
    # class 0: tp 1 fp 1 -> 2/3; class 1: tp 1 -> 1; micro: tp 2 fp 1 fn 0 -> 4/5
    assert M.multilabel_f1(logits, labels, "macro") == pytest.approx((2 / 3 + 1) / 2)
    assert M.multilabel_f1(logits, labels, "micro") == pytest.approx(4 / 5)
    none = torch.full((2, 2), -1.0)
    assert math.isnan(M.multilabel_f1(none, torch.zeros(2, 2), "micro"))
    assert math.isnan(M.multilabel_f1(none, torch.zeros(2, 2), "macro"))


@pytest.mark.parametrize("seed", SEEDS)
def test_rmse_and_mae_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    target = rng.normal(size=100) * 2 + 3
    pred = target + rng.normal(size=100)
    t_pred, t_target = torch.from_numpy(pred).float(), torch.from_numpy(target).float()
    assert M.rmse(t_pred, t_target) == pytest.approx(
        math.sqrt(skm.mean_squared_error(target, pred)), rel=1e-6
    )
    assert M.mae(t_pred, t_target) == pytest.approx(skm.mean_absolute_error(target, pred), rel=1e-6)


def test_regression_hand_computed() -> None:
    pred = torch.tensor([1.0, 2.0, 5.0])
    target = torch.tensor([1.0, 4.0, 1.0])
    assert M.mae(pred, target) == pytest.approx(2.0)
    assert M.rmse(pred, target) == pytest.approx(math.sqrt(20 / 3))
    assert math.isnan(M.rmse(torch.zeros(0), torch.zeros(0)))


# --------------------------------------------------------------------------- accumulators


def _random_task(kind: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if kind == "binary":
        labels = torch.randint(0, 2, (n,), generator=g).float()
        return torch.randn(n, generator=g) + labels, labels
    if kind == "multiclass":
        labels = torch.randint(0, 5, (n,), generator=g)
        return torch.randn(n, 5, generator=g), labels
    if kind == "multilabel":
        labels = (torch.rand(n, 4, generator=g) < 0.4).float()
        return torch.randn(n, 4, generator=g) + labels, labels
    target = torch.randn(n, generator=g)
    return target + 0.5 * torch.randn(n, generator=g), target


def _reference(kind: str, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """The pure functions on the already-filtered arrays."""
    n = int(logits.shape[0])
    if kind == "binary":
        return {
            "n": n,
            "auc": M.auc(logits, labels),
            "logloss": M.logloss(logits, labels),
            "accuracy": M.accuracy(logits, labels),
        }
    if kind == "multiclass":
        return {
            "n": n,
            "accuracy": M.accuracy(logits, labels),
            "macro_f1": M.macro_f1(logits.argmax(1), labels, 5),
            "logloss": M.logloss(logits, labels),
        }
    if kind == "multilabel":
        return {
            "n": n,
            "micro_f1": M.multilabel_f1(logits, labels, "micro"),
            "macro_f1": M.multilabel_f1(logits, labels, "macro"),
            "auc": M.multilabel_auc(logits, labels),
            "map": M.multilabel_map(logits, labels),
        }
    return {"n": n, "rmse": M.rmse(logits, labels), "mae": M.mae(logits, labels)}


def _assert_metrics_equal(got: dict[str, float], want: dict[str, float]) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


KINDS = ("binary", "multiclass", "multilabel", "regression")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_masked_batches_equal_one_call_on_the_filtered_arrays(kind: str, seed: int) -> None:
    logits, labels = _random_task(kind, 150, seed)
    mask = torch.rand(150, generator=torch.Generator().manual_seed(seed + 100)) < 0.7
    # masked rows carry padding labels that would break the metrics if used
    padded = labels.clone()
    padded[~mask] = -1 if kind == "multiclass" else float("nan")
    acc = make_task_metrics(kind, n_outputs=5)  # type: ignore[arg-type]
    for start in range(0, 150, 40):  # uneven batches: 40, 40, 40, 30
        sl = slice(start, start + 40)
        acc.update(logits[sl], padded[sl], mask[sl])
    _assert_metrics_equal(acc.compute(), _reference(kind, logits[mask], labels[mask]))
    assert acc.n == int(mask.sum())


@pytest.mark.parametrize("kind", KINDS)
def test_several_batches_equal_one_batch_and_reset_forgets(kind: str) -> None:
    logits, labels = _random_task(kind, 97, seed=7)
    whole = make_task_metrics(kind)  # type: ignore[arg-type]
    whole.update(logits, labels)
    pieces = make_task_metrics(kind)  # type: ignore[arg-type]
    pieces.update(logits[:5], labels[:5])  # stale data, dropped by reset
    pieces.reset()
    for start in range(0, 97, 10):
        idx = torch.arange(start, min(start + 10, 97))
        pieces.update(logits[idx], labels[idx], torch.ones(idx.numel(), dtype=torch.bool))
    _assert_metrics_equal(pieces.compute(), whole.compute())
    _assert_metrics_equal(whole.compute(), _reference(kind, logits, labels))


@pytest.mark.parametrize(
    "cls", [BinaryMetrics, MulticlassMetrics, MultilabelMetrics, RegressionMetrics]
)
def test_empty_accumulator_reports_nan_and_zero_count(cls: type[TaskMetrics]) -> None:
    acc = cls()
    out = acc.compute()
    assert out["n"] == 0
    assert list(out)[1:] == list(cls.metric_names)
    assert all(math.isnan(v) for k, v in out.items() if k != "n")


def test_fully_masked_batch_counts_nothing() -> None:
    acc = BinaryMetrics()
    acc.update(
        torch.tensor([0.3, -0.2]), torch.tensor([float("nan"), 1.0]), torch.tensor([False, False])
    )
    assert acc.compute()["n"] == 0
    acc.update(torch.tensor([2.0, -2.0]), torch.tensor([1.0, 0.0]))
    out = acc.compute()
    assert out["n"] == 2 and out["auc"] == 1.0 and out["accuracy"] == 1.0


def test_binary_accepts_column_logits_and_rejects_mismatches() -> None:
    acc = BinaryMetrics()
    acc.update(torch.tensor([[1.0], [-1.0]]), torch.tensor([1.0, 0.0]))
    assert acc.compute()["accuracy"] == 1.0
    with pytest.raises(ValueError, match="batch"):
        acc.update(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="mask"):
        acc.update(torch.zeros(2), torch.zeros(2), torch.ones(3, dtype=torch.bool))


def test_multiclass_checks_the_class_count() -> None:
    acc = MulticlassMetrics(n_classes=3)
    with pytest.raises(ValueError, match="expected 3"):
        acc.update(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    free = MulticlassMetrics()
    free.update(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="changed"):
        free.update(torch.zeros(2, 5), torch.zeros(2, dtype=torch.long))


def test_make_task_metrics_kinds() -> None:
    assert isinstance(make_task_metrics("binary"), BinaryMetrics)
    multiclass = make_task_metrics("multiclass", n_outputs=4)
    assert isinstance(multiclass, MulticlassMetrics) and multiclass.n_classes == 4
    assert isinstance(make_task_metrics("multilabel"), MultilabelMetrics)
    assert isinstance(make_task_metrics("regression"), RegressionMetrics)
    similarity = make_task_metrics("similarity")
    own = torch.eye(4)
    similarity.update(own * 2, own)  # each prediction points at its own target
    assert similarity.compute() == {
        "n": 4,
        "mean_cosine": pytest.approx(1.0),
        "target_mrr": pytest.approx(1.0),
        "target_hit@10": 1.0,
    }
    similarity.reset()
    similarity.update(own.roll(1, dims=0), own)  # each points at another row's target
    out = similarity.compute()
    # own score 0 ties with every other target and ties count against it: rank 4
    assert out["mean_cosine"] == pytest.approx(0.0) and out["target_mrr"] == pytest.approx(0.25)


def test_multitask_metrics_route_by_name_and_count_known_labels() -> None:
    tasks = [
        TaskSpec("like", "binary"),
        TaskSpec("rating", "regression"),
        TaskSpec("genre", "multiclass", n_outputs=3),
        TaskSpec("tags", "multilabel", n_outputs=2),
        TaskSpec("match", "similarity", n_outputs=8),
    ]
    mtm = MultiTaskMetrics(tasks)
    assert mtm.untracked == ()
    preds = {
        "like": torch.tensor([2.0, -1.0, 0.5, -3.0]),
        "rating": torch.tensor([4.0, 3.0, 1.0, 5.0]),
        "genre": torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0], [3.0, 0.0, 0.0]]),
        "tags": torch.zeros(4, 2),
        "match": torch.zeros(4, 8),
    }
    labels = {
        "like": torch.tensor([1.0, 0.0, 0.0, 1.0]),
        "rating": torch.tensor([5.0, 3.0, 0.0, 0.0]),
        "genre": torch.tensor([0, 1, 1, -1]),
        "match": torch.zeros(4, 8),
    }
    masks = {
        "rating": torch.tensor([True, True, False, False]),
        "genre": torch.tensor([True, True, True, False]),
    }
    mtm.update(preds, labels, masks)  # no "tags" labels in this batch; "like" unmasked
    out = mtm.compute()
    assert list(out) == ["like", "rating", "genre", "tags", "match"]
    assert out["like"]["n"] == 4
    assert out["like"]["auc"] == pytest.approx(0.5)  # positives 2, -3; negatives -1, 0.5
    assert out["like"]["accuracy"] == pytest.approx(0.5)
    assert out["rating"] == {"n": 2, "rmse": pytest.approx(math.sqrt(0.5)), "mae": 0.5}
    assert out["genre"]["n"] == 3 and out["genre"]["accuracy"] == pytest.approx(2 / 3)
    # genre: class 0 f1 1, class 1 tp1 fn1 -> 2/3, class 2 fp1 -> 0
    assert out["genre"]["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert out["tags"]["n"] == 0 and math.isnan(out["tags"]["micro_f1"])
    mtm.reset()
    assert mtm.compute()["like"]["n"] == 0


def test_multitask_metrics_fail_loudly_on_unknown_or_missing_tasks() -> None:
    mtm = MultiTaskMetrics([TaskSpec("like", "binary")])
    with pytest.raises(KeyError, match="unknown task 'click'"):
        mtm.update({"like": torch.zeros(1)}, {"click": torch.zeros(1)})
    with pytest.raises(KeyError, match="no prediction"):
        mtm.update({}, {"like": torch.zeros(1)})
    with pytest.raises(ValueError, match="unique"):
        MultiTaskMetrics([TaskSpec("like", "binary"), TaskSpec("like", "regression")])
