"""The report's figures (deterministic PNGs) and its number formatting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fake_runs import write_fake_run
from mtlrec.report import plots
from mtlrec.report.collect import load_run
from mtlrec.report.document import format_cell, is_numeric, mean_std, plus_minus, slug
from mtlrec.report.trainlog import TrainLog

PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_are_pngs_and_repeat_byte_for_byte(tmp_path: Path) -> None:
    run = load_run(write_fake_run(tmp_path / "r", {"like": "binary", "rating": "regression"}))
    assert run.log is not None and run.gate_utilisation is not None
    curves = plots.training_curves(run.log, run.history, run.tasks, best_epoch=2)
    again = plots.training_curves(run.log, run.history, run.tasks, best_epoch=2)
    assert curves is not None and curves.startswith(PNG) and curves == again
    weights = plots.task_weights(run.log)
    assert weights is not None and weights.startswith(PNG)
    heatmap = plots.gate_heatmap(run.gate_utilisation)
    assert heatmap is not None and heatmap.startswith(PNG)


def test_nothing_to_draw_gives_none() -> None:
    empty = TrainLog([], [])
    assert plots.training_curves(None, [], {}) is None
    assert plots.training_curves(empty, [], {"a": "binary"}) is None
    assert plots.task_weights(empty) is None and plots.task_weights(None) is None
    assert plots.gate_heatmap({"levels": []}) is None


def test_heatmap_draws_unreachable_experts_and_a_shared_gate() -> None:
    usage = {
        "levels": [
            {
                "name": "level 0",
                "experts": ["task:a/0", "task:b/0", "shared/0"],
                "tasks": {"a": [0.4, None, 0.6], "b": [None, 0.3, 0.7]},
                "shared_gate": [0.2, 0.3, 0.5],
            }
        ]
    }
    assert (plots.gate_heatmap(usage) or b"").startswith(PNG)


def test_primary_metric_by_kind_then_first_other() -> None:
    history = [{"valid/a/n": 1.0, "valid/a/logloss": 0.5, "valid/a/auc": 0.7, "valid/b/mae": 1.0}]
    assert plots.primary_metric("a", "binary", history) == "auc"
    assert plots.primary_metric("a", None, history) == "logloss"
    assert plots.primary_metric("b", "regression", history) == "mae"
    assert plots.primary_metric("c", "binary", history) is None


def test_smoothing_is_a_debiased_moving_average() -> None:
    assert plots.smooth([2.0, 2.0, 2.0], span=3) == pytest.approx([2.0, 2.0, 2.0])
    smoothed = plots.smooth([0.0, 1.0], span=2)
    assert smoothed[0] == 0.0 and smoothed[1] == pytest.approx(0.5 / 0.75)
    assert np.array_equal(plots.smooth([1.0, 5.0]), [1.0, 5.0])  # short logs: no smoothing


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.84173, "0.8417"),
        (0.99, "0.9900"),
        (158.29, "158.3"),
        (1429.0, "1,429"),
        (36.0, "36"),
        (123456.7, "123,457"),
        (310422, "310,422"),
        (2.2e-16, "2.2e-16"),
        (0.0, "0"),
        (float("nan"), "-"),
        (None, "-"),
        (True, "yes"),
        ("text", "text"),
    ],
)
def test_cells_show_four_significant_digits(value: object, text: str) -> None:
    assert format_cell(value) == text  # type: ignore[arg-type]


def test_mean_std_and_helpers() -> None:
    assert mean_std([0.7, 0.8]) == "0.7500 ± 0.071"
    assert mean_std([0.7]) == "0.7000" and mean_std([]) == "-"
    assert plus_minus(1.9238, 2.2e-16) == "1.924 ± 0"  # float noise is no spread
    assert plus_minus(None, 0.1) == "-"
    assert is_numeric("0.7500 ± 0.071") and is_numeric(3) and is_numeric("0.6000 (n=1)")
    assert not is_numeric("a ± b") and not is_numeric("-") and not is_numeric("mtl-0")
    assert slug("ml-100k/mtl 0") == "ml-100k-mtl-0"
