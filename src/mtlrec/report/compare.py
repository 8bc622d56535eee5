"""Section 5: multi-task vs single-task models, from the given runs and from the benchmark.

Runs are grouped by dataset, then by task set (a setting); runs of one setting (seeds) are
averaged. A dataset gets a table when it has a multi-task run and single-task runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtlrec.report.collect import BenchResults, RunRecord
from mtlrec.report.document import Block, Cell, Heading, Note, Section, Table, mean_std, plus_minus
from mtlrec.report.peers import peer_blocks

LOWER_IS_BETTER: frozenset[str] = frozenset({"rmse", "mae", "logloss", "arp"})


def lower_is_better(metric: str) -> bool:
    """Whether a smaller ``metric`` (``rmse``, ``arp@10``, ...) is better."""
    return metric.split("@", 1)[0] in LOWER_IS_BETTER


@dataclass
class Setting:
    """The runs of one dataset and task set (e.g. seeds 0, 1, 2 of the same config)."""

    tasks: tuple[str, ...]
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def label(self) -> str:
        kind = "MTL" if len(self.tasks) > 1 else "STL"
        return f"{kind} {'+'.join(self.tasks)} (n={len(self.runs)})"


def run_metrics(run: RunRecord, split: str) -> dict[str, dict[str, Any]]:
    """``{task: {metric: value}}`` of ``split``: results.json's, or for ``valid`` without it,
    the last epoch logged in train.jsonl."""
    rows = run.split_results(split)
    if rows is not None:
        return rows
    if split != "valid" or not run.history:
        return {}
    metrics: dict[str, dict[str, Any]] = {}
    for key, value in run.history[-1].items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "valid":
            metrics.setdefault(parts[1], {})[parts[2]] = value
    return metrics


def settings_by_dataset(runs: Sequence[RunRecord]) -> dict[str, list[Setting]]:
    """``{dataset: [settings]}`` in the order the runs were given."""
    grouped: dict[str, dict[tuple[str, ...], Setting]] = {}
    for run in runs:
        tasks = tuple(run.tasks)
        if not tasks:
            continue
        dataset = run.dataset or "unknown dataset"
        grouped.setdefault(dataset, {}).setdefault(tasks, Setting(tasks)).runs.append(run)
    return {d: list(s.values()) for d, s in grouped.items()}


def _values(setting: Setting, task: str, metric: str, split: str) -> list[float]:
    out = []
    for run in setting.runs:
        value = run_metrics(run, split).get(task, {}).get(metric)
        if isinstance(value, int | float):
            out.append(float(value))
    return out


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if v == v]
    return sum(finite) / len(finite) if finite else None


def comparison_table(dataset: str, settings: Sequence[Setting]) -> Table | None:
    """Per-task metrics of the multi-task settings beside the single-task runs, or ``None``
    when the dataset lacks one side."""
    multi = [s for s in settings if len(s.tasks) > 1]
    single = {s.tasks[0]: s for s in settings if len(s.tasks) == 1}
    if not multi or not single:
        return None
    every = [r for s in settings for r in s.runs]
    split = "test" if all(r.split_results("test") for r in every) else "valid"
    columns = ["task", "metric", *[s.label for s in multi], "STL"]
    if len(multi) == 1:
        columns += ["MTL − STL", "better"]
    rows: list[list[Cell]] = []
    for task in [t for t in multi[0].tasks if t in single] + [
        t for t in single if t not in multi[0].tasks
    ]:
        metrics: dict[str, None] = {}
        for setting in [*multi, single[task]]:
            for run in setting.runs:
                metrics.update(dict.fromkeys(run_metrics(run, split).get(task, {})))
        for metric in [m for m in metrics if m != "n"]:
            stl = _values(single[task], task, metric, split)
            row: list[Cell] = [task, metric]
            row += [mean_std(_values(s, task, metric, split)) for s in multi]
            row.append(mean_std(stl) + f" (n={len(single[task].runs)})" if stl else "-")
            if len(multi) == 1:
                mtl_mean, stl_mean = _mean(_values(multi[0], task, metric, split)), _mean(stl)
                if mtl_mean is None or stl_mean is None:
                    row += [None, "-"]
                else:
                    diff = mtl_mean - stl_mean
                    better = (diff < 0) if lower_is_better(metric) else (diff > 0)
                    row += [diff, "MTL" if better else ("tie" if diff == 0 else "STL")]
            rows.append(row)
    where = (
        "test split (results.json)"
        if split == "test"
        else "validation split (results.json, or the last epoch in train.jsonl where a run "
        "has no results.json)"
    )
    notes = [
        f"Metrics of the {where}; mean ± std over the runs of a setting.",
        "Runs: " + "; ".join(f"{s.label}: {', '.join(r.label for r in s.runs)}" for s in settings),
    ]
    return Table(f"{dataset}: multi-task vs single-task (given runs)", columns, rows, notes)


def bench_tables(payload: Mapping[str, Any]) -> list[Block]:
    """``mtl_vs_stl.json`` (benchmarks/mtl_vs_stl.py): a table per dataset of its summary."""
    blocks: list[Block] = []
    seeds = payload.get("seeds")
    for dataset, entry in (payload.get("datasets") or {}).items():
        summary = entry.get("summary") or {}
        rows: list[list[Cell]] = []
        for key, s in summary.items():
            rows.append(
                [
                    key,
                    s.get("mode"),
                    plus_minus(s.get("mtl_mean"), s.get("mtl_std")),
                    plus_minus(s.get("stl_mean"), s.get("stl_std")),
                    s.get("diff_mean"),
                    s.get("ratio"),
                    s.get("paired_t_p"),
                    "MTL" if s.get("mtl_better") else "STL",
                ]
            )
        columns = ["task / metric", "mode", "MTL", "STL", "MTL − STL", "MTL/STL", "paired t p"]
        notes = [f"config: {entry.get('config', '?')}; seeds: {seeds}; test split."]
        title = f"{dataset}: multi-task vs single-task (benchmark)"
        blocks.append(Table(title, [*columns, "better"], rows, notes))
    return blocks


def compare_section(runs: Sequence[RunRecord], bench: BenchResults | None) -> Section:
    """Section 5."""
    blocks: list[Block] = []
    for dataset, settings in settings_by_dataset(runs).items():
        table = comparison_table(dataset, settings)
        if table is not None:
            blocks.append(table)
    if not blocks:
        blocks.append(
            Note(
                "Given runs: not available (no dataset among them has both a multi-task run "
                "and single-task runs)."
            )
        )
    if bench is not None and bench.mtl_vs_stl is not None:
        blocks.append(Heading(f"Benchmark: {bench.path / 'mtl_vs_stl*.json'}"))
        blocks += bench_tables(bench.mtl_vs_stl)
    else:
        where = "no --bench folder" if bench is None else f"no mtl_vs_stl*.json in {bench.path}"
        blocks.append(Note(f"Benchmark table: not available ({where})."))
    for name, payload in (bench.tasks if bench is not None else {}).items():
        blocks += peer_blocks(name, payload)
    return Section("mtl-vs-stl", "Multi-task vs single-task", blocks)
