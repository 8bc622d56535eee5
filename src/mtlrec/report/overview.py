"""Sections 1 and 2: the runs at a glance with their datasets' statistics, and the resolved
configs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtlrec.evaluation.results import headline_metrics
from mtlrec.report.collect import RunRecord
from mtlrec.report.document import Block, Details, Heading, KeyValues, Note, Section, Table


def _tasks_cell(run: RunRecord) -> str:
    return ", ".join(f"{t} ({k})" if k else t for t, k in run.tasks.items()) or "-"


def _files_cell(run: RunRecord) -> str:
    missing = [name for name, present in run.files().items() if not present]
    return "all" if not missing else "missing " + ", ".join(missing)


def runs_table(runs: Sequence[RunRecord]) -> Table:
    """One row per run: where it is, what it trained and how long it took."""
    rows = []
    for run in runs:
        results = run.results or {}
        epochs, best = results.get("epochs_run"), results.get("best_epoch")
        timings = results.get("timings_s") or {}
        rows.append(
            [
                run.label,
                str(run.path),
                run.dataset or "unknown",
                _tasks_cell(run),
                run.backbone or "-",
                run.weighting or "-",
                results.get("parameters"),
                epochs,
                best + 1 if isinstance(best, int) else None,
                timings.get("train_s"),
                _files_cell(run),
            ]
        )
    columns = [
        "run",
        "folder",
        "dataset",
        "tasks",
        "model",
        "weighting",
        "parameters",
        "epochs",
        "best epoch",
        "train s",
        "files",
    ]
    return Table("Runs", columns, rows)


def log_notes(runs: Sequence[RunRecord]) -> list[Block]:
    """Say where a train.jsonl held several sessions or unreadable lines."""
    notes: list[Block] = []
    for run in runs:
        if run.log and run.log.replaced:
            notes.append(
                Note(
                    f"{run.label}: train.jsonl holds more than one training session "
                    f"(restarted or resumed {run.log.replaced}x); later records replace "
                    "earlier ones, so the curves show the last session."
                )
            )
        if run.log and run.log.unreadable:
            notes.append(Note(f"{run.label}: {run.log.unreadable} unreadable train.jsonl lines."))
    return notes


def _flat_counts(counts: Mapping[str, Any]) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in counts.items():
        if isinstance(value, Mapping):
            for sub, stats in value.items():
                if isinstance(stats, Mapping):
                    parts = ", ".join(f"{k} {v:,}" for k, v in stats.items() if isinstance(v, int))
                    items.append((f"{key}: {sub}", parts))
        else:
            items.append((key, value))
    return items


def dataset_blocks(runs: Sequence[RunRecord]) -> list[Block]:
    """Counts and split sizes per dataset, from the first run of it that recorded them."""
    blocks: list[Block] = []
    seen: set[str] = set()
    for run in runs:
        stats = run.data_stats
        dataset = run.dataset or "unknown"
        if stats is None or dataset in seen:
            continue
        seen.add(dataset)
        blocks.append(Heading(f"Dataset {dataset} (recorded by {run.label})"))
        blocks.append(KeyValues("counts", _flat_counts(stats.get("counts") or {})))
        split = stats.get("split") or {}
        examples = stats.get("examples") or {}
        rows = [
            [
                name,
                sizes.get("rows"),
                sizes.get("users"),
                sizes.get("items"),
                sizes.get("cold_users"),
                sizes.get("cold_items"),
                examples.get(name),
            ]
            for name, sizes in (split.get("sizes") or {}).items()
        ]
        columns = ["split", "rows", "users", "items", "cold users", "cold items", "examples"]
        title = f"split: {split.get('strategy') or 'unknown strategy'}"
        blocks.append(Table(title, columns, rows))
    without = sorted({r.dataset or "unknown" for r in runs} - seen)
    if without:
        blocks.append(
            Note(
                f"Dataset statistics of {', '.join(without)}: not available in these runs "
                "(no data_stats in results.json; runs trained before mtlrec recorded them)."
            )
        )
    return blocks


def overview_section(runs: Sequence[RunRecord]) -> Section:
    """Section 1."""
    blocks: list[Block] = [runs_table(runs), *log_notes(runs), *dataset_blocks(runs)]
    return Section("overview", "Runs and datasets", blocks)


def config_section(runs: Sequence[RunRecord]) -> Section:
    """Section 2: each run's config.yaml, folded."""
    blocks: list[Block] = []
    for run in runs:
        if run.config_text is not None:
            blocks.append(Details(f"{run.label}: config.yaml", run.config_text.rstrip(), "yaml"))
    missing = [run.label for run in runs if run.config_text is None]
    if blocks and missing:
        blocks.append(Note(f"No config.yaml in: {', '.join(missing)}."))
    return Section(
        "config", "Resolved configuration", blocks, "not available in these runs (no config.yaml)"
    )


def headline_section(runs: Sequence[RunRecord]) -> Section:
    """Section 1: each run's test results in one line (the ranking, then each task's
    headline metric), with its best epoch: what the runs asked for achieved."""
    rows = []
    for run in runs:
        test = run.split_results("test")
        best = (run.results or {}).get("best_epoch")
        rows.append(
            [
                run.label,
                run.dataset or "unknown",
                run.backbone or "-",
                best + 1 if isinstance(best, int) else None,
                "; ".join(headline_metrics(test)) if test else "no results.json",
            ]
        )
    table = Table("Test results", ["run", "dataset", "model", "best epoch", "test"], rows)
    return Section("headline", "Headline results", [table])
