"""The report's figures: matplotlib (Agg, no pyplot state) rendered to PNG bytes.

Figures carry no timestamps and no software tag, so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mtlrec.report.trainlog import TrainLog

PRIMARY_METRIC: dict[str, str] = {
    "binary": "auc",
    "regression": "rmse",
    "multiclass": "macro_f1",
    "multilabel": "auc",
    "similarity": "target_mrr",
}
"""The validation metric drawn per task kind (the first other metric when it is absent)."""

DPI = 100
_CMAP = colormaps["viridis"].with_extremes(bad="#d9d9d9")  # grey: the gate cannot reach it


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (no metadata that changes between runs)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def smooth(values: Sequence[float], span: float | None = None) -> np.ndarray:
    """Debiased exponential moving average; ``span`` (steps) defaults to ``len / 50``."""
    data = np.asarray(values, dtype=float)
    span = span if span is not None else max(1.0, len(data) / 50)
    alpha = 1.0 / span
    out = np.empty_like(data)
    mean = weight = 0.0
    for i, value in enumerate(data):
        mean = (1 - alpha) * mean + alpha * value
        weight = (1 - alpha) * weight + alpha
        out[i] = mean / weight
    return out


def primary_metric(task: str, kind: str | None, history: Sequence[Mapping[str, Any]]) -> str | None:
    """The metric of ``task`` to draw from the epoch ``history`` (``valid/<task>/<metric>``)."""
    prefix = f"valid/{task}/"
    present = [k.removeprefix(prefix) for r in history[:1] for k in r if k.startswith(prefix)]
    preferred = PRIMARY_METRIC.get(kind or "")
    if preferred in present:
        return preferred
    others = [m for m in present if m != "n"]
    return others[0] if others else None


def _ranking_metric(history: Sequence[Mapping[str, Any]]) -> str | None:
    keys = [k for r in history[:1] for k in r if k.startswith("valid/ranking (all)/ndcg@")]
    return keys[0] if keys else None


def training_curves(
    log: TrainLog | None,
    history: Sequence[Mapping[str, Any]],
    kinds: Mapping[str, str | None],
    best_epoch: int | None = None,
) -> bytes | None:
    """Per-task training losses per step (smoothed, raw faint) on top; below, one panel per
    task with its validation metric per epoch. ``None`` when there is nothing to draw."""
    losses = log.series("loss/") if log else {}
    panels: list[tuple[str, str]] = []  # (title, history key)
    for task, kind in kinds.items():
        metric = primary_metric(task, kind, history)
        if metric is not None:
            panels.append((f"{task}: {metric}", f"valid/{task}/{metric}"))
    ranking = _ranking_metric(history)
    if ranking is not None:
        panels.append((f"ranking: {ranking.rsplit('/', 1)[-1]}", ranking))
    if not losses and not panels:
        return None
    columns = max(1, len(panels))
    figure = Figure(figsize=(max(8.0, 2.6 * columns), 6.4 if panels and losses else 3.6))
    grid = figure.add_gridspec(2 if panels and losses else 1, columns)
    row = 0
    if losses:
        axis = figure.add_subplot(grid[0, :])
        for index, (task, (steps, values)) in enumerate(losses.items()):
            color = f"C{index % 10}"
            axis.plot(steps, values, color=color, alpha=0.2, linewidth=0.8)
            axis.plot(steps, smooth(values), color=color, linewidth=1.6, label=task)
        axis.set_title("training loss per task (smoothed)")
        axis.set_xlabel("step")
        axis.set_ylabel("loss")
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right", fontsize="small")
        row = 1
    for column, (title, key) in enumerate(panels):
        axis = figure.add_subplot(grid[row, column])
        points = [
            (int(r.get("epoch", i)) + 1, float(r[key]))
            for i, r in enumerate(history)
            if isinstance(r.get(key), int | float) and math.isfinite(float(r[key]))
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            axis.plot(xs, ys, marker="o", color=f"C{column % 10}")
        if best_epoch is not None:
            axis.axvline(best_epoch + 1, color="grey", linestyle="--", linewidth=1)
        axis.set_title(f"valid {title}", fontsize="medium")
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    return png_bytes(figure)


def task_weights(log: TrainLog | None) -> bytes | None:
    """Each task's weight per step (what the weighting strategy gave it); ``None`` if unlogged."""
    weights = log.series("weight/") if log else {}
    if not weights:
        return None
    figure = Figure(figsize=(8.0, 3.6))
    axis = figure.add_subplot()
    for index, (task, (steps, values)) in enumerate(weights.items()):
        axis.plot(steps, values, color=f"C{index % 10}", linewidth=1.4, label=task)
    axis.set_title("task weights per step")
    axis.set_xlabel("step")
    axis.set_ylabel("weight")
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return png_bytes(figure)


def gate_heatmap(utilisation: Mapping[str, Any]) -> bytes | None:
    """Tasks x experts mean gate weights, one panel per level; experts a gate cannot reach
    are grey. ``utilisation`` is results.json's ``gate_utilisation``."""
    levels = [lv for lv in utilisation.get("levels", []) if lv.get("experts") and lv.get("tasks")]
    if not levels:
        return None
    widths = [max(3.0, 0.75 * len(lv["experts"]) + 2.0) for lv in levels]
    rows = max(len(lv["tasks"]) + ("shared_gate" in lv) for lv in levels)
    figure = Figure(figsize=(sum(widths), max(2.6, 0.55 * rows + 1.8)))
    grid = figure.add_gridspec(1, len(levels), width_ratios=widths)
    for index, level in enumerate(levels):
        names = list(level["tasks"])
        matrix = [level["tasks"][t] for t in names]
        if "shared_gate" in level:
            names.append("(shared gate)")
            matrix.append(level["shared_gate"])
        values = np.array([[np.nan if w is None else w for w in r] for r in matrix], dtype=float)
        axis = figure.add_subplot(grid[0, index])
        image = axis.imshow(np.ma.masked_invalid(values), cmap=_CMAP, vmin=0.0, aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            text = "n/a" if np.isnan(value) else f"{value:.2f}"
            dark = not np.isnan(value) and value < 0.6 * np.nanmax(values)  # viridis: low is dark
            color = "white" if dark else "black"
            axis.text(j, i, text, ha="center", va="center", fontsize="small", color=color)
        axis.set_xticks(range(len(level["experts"])), level["experts"], rotation=45, ha="right")
        axis.set_yticks(range(len(names)), names)
        axis.set_title(f"{level.get('name', index)}: mean gate weight", fontsize="medium")
        figure.colorbar(image, ax=axis, fraction=0.05)
    figure.tight_layout()
    return png_bytes(figure)
