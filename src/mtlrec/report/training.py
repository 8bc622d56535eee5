"""Sections 3, 4 and 8: training curves, task weights and gate utilisation, a figure per run."""

from __future__ import annotations

from collections.abc import Sequence

from mtlrec.report import plots
from mtlrec.report.collect import RunRecord
from mtlrec.report.document import Block, Note, Plot, Section


def curves_section(runs: Sequence[RunRecord]) -> Section:
    """Section 3: per-task losses per step and validation metrics per epoch."""
    blocks: list[Block] = []
    skipped = []
    for run in runs:
        best = (run.results or {}).get("best_epoch")
        png = plots.training_curves(
            run.log, run.history, run.tasks, best if isinstance(best, int) else None
        )
        if png is None:
            skipped.append(run.label)
            continue
        tasks = ", ".join(run.tasks) or "no tasks"
        blocks.append(
            Plot(
                "curves",
                run.label,
                f"{run.label}: training loss and validation metrics",
                f"Training loss per step and validation metric per epoch of {run.label} ({tasks})",
                png,
            )
        )
    if blocks and skipped:
        blocks.append(Note(f"No step or epoch events in: {', '.join(skipped)}."))
    if any(isinstance(b, Plot) for b in blocks):
        blocks.insert(
            0,
            Note(
                "Top: loss/<task> from train.jsonl step events (faint: raw; solid: moving "
                "average). Below: each task's main validation metric per epoch; the dashed "
                "line marks the best epoch (the weights kept)."
            ),
        )
    return Section(
        "curves", "Training curves", blocks, "not available in these runs (no train.jsonl)"
    )


def weights_section(runs: Sequence[RunRecord]) -> Section:
    """Section 4: weight/<task> per step, as the weighting strategy set it."""
    blocks: list[Block] = []
    skipped = []
    for run in runs:
        png = plots.task_weights(run.log)
        if png is None:
            skipped.append(run.label)
            continue
        blocks.append(
            Plot(
                "weights",
                run.label,
                f"{run.label}: task weights ({run.weighting or 'weighting unknown'})",
                f"Task weight per training step of {run.label}",
                png,
            )
        )
    if blocks and skipped:
        blocks.append(Note(f"No weight/<task> step events in: {', '.join(skipped)}."))
    return Section(
        "weights",
        "Task weights over time",
        blocks,
        "not available in these runs (no weight/<task> step events in train.jsonl)",
    )


def gates_section(runs: Sequence[RunRecord]) -> Section:
    """Section 8: mean gate weight per task and expert on the test split (MMoE, PLE)."""
    blocks: list[Block] = []
    for run in runs:
        usage = run.gate_utilisation
        png = plots.gate_heatmap(usage) if usage else None
        if usage is None or png is None:
            continue
        examples = usage.get("examples")
        blocks.append(
            Plot(
                "gates",
                run.label,
                f"{run.label}: gate utilisation ({run.backbone or 'gated backbone'}"
                + (f", {examples:,} test examples)" if isinstance(examples, int) else ")"),
                f"Heatmap of mean gate weight per task and expert of {run.label}",
                png,
            )
        )
    others = [r.label for r in runs if r.gate_utilisation is None]
    if blocks and others:
        blocks.append(
            Note(f"No gate utilisation in: {', '.join(others)} (no gates, or older runs).")
        )
    return Section(
        "gates",
        "Gate utilisation (MMoE / PLE)",
        blocks,
        "not available in these runs (no MMoE/PLE run with gate_utilisation in results.json; "
        "runs trained before mtlrec recorded it have none)",
    )
