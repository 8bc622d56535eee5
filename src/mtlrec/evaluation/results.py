"""Evaluation results as JSON and as rich tables.

Results are nested plain dicts ``{split: {row: {metric: value}}}``: a row is a task name
(``{"n": 812, "auc": 0.79, ...}``) or a ranking slice such as ``ranking/all`` or
``ranking/cold`` (``{"n_users": 943, "hr@10": 0.61, ...}``, see
:func:`mtlrec.evaluation.ranking.merge_slices`). Undefined values are ``nan`` in memory
and ``null`` in JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mtlrec.core.atomic import write_text_atomically

Results = Mapping[str, Mapping[str, Mapping[str, float]]]
COUNT_KEYS: tuple[str, ...] = ("n", "n_users", "n_positives")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if hasattr(value, "item"):  # 0-d tensors / numpy scalars
        return _jsonable(value.item())
    return value


def results_to_json(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``results`` (nested dicts of numbers) as indented JSON; ``nan``/``inf`` become
    ``null``. Creates parent folders; returns the path written. The file is replaced
    atomically: a failed write (a :class:`~mtlrec.core.atomic.WriteError` when the disk is
    full or the folder read-only) leaves no partial file."""
    text = json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n"
    return write_text_atomically(Path(path), text)


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a file written by :func:`results_to_json` (``null`` comes back as ``nan``)."""

    def restore(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: restore(v) for k, v in value.items()}
        if isinstance(value, list):
            return [restore(v) for v in value]
        return float("nan") if value is None else value

    loaded = json.loads(Path(path).read_text())
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a JSON object of results")
    restored: dict[str, Any] = restore(loaded)
    return restored


def format_value(name: str, value: float | None) -> str:
    """Counts as integers, metrics with 4 decimals, undefined as ``-``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if name in COUNT_KEYS:
        return f"{int(value):,}"
    return f"{value:.4f}"


def is_ranking_row(metrics: Mapping[str, float]) -> bool:
    """Top-K rows (any ``metric@K`` key) get their own table."""
    return any("@" in name for name in metrics)


def _columns(rows: Mapping[str, Mapping[str, float]]) -> list[str]:
    columns: list[str] = []
    for metrics in rows.values():
        columns.extend(name for name in metrics if name not in columns)
    counts = [c for c in COUNT_KEYS if c in columns]
    return counts + [c for c in columns if c not in COUNT_KEYS]


RANKING_FAMILIES: tuple[tuple[str, frozenset[str]], ...] = (
    ("ranking", frozenset({"hr", "recall", "ndcg", "mrr"})),
    ("beyond accuracy", frozenset({"coverage", "diversity", "novelty", "arp"})),
)
"""Top-K columns by family: each family of a split's ranking rows gets its own table;
columns of no family (the cascade's retrieval stage) go to a last one."""


def _family(column: str) -> str:
    base = column.split("@", 1)[0]
    for title, members in RANKING_FAMILIES:
        if base in members:
            return title
    return "other"


def _table(title: str, first: str, group: Mapping[str, Mapping[str, float]]) -> Table:
    columns = _columns(group)
    table = Table(title=title, title_justify="left")
    table.add_column(first, style="bold")
    for column in columns:
        table.add_column(column, justify="right")
    for row, metrics in group.items():
        cells = (format_value(c, metrics.get(c)) for c in columns)
        table.add_row(escape(row), *cells)  # row names are text, not rich markup
    return table


def _slices_table(title: str, group: Mapping[str, Mapping[str, float]]) -> Table:
    """Ranking slices as columns, ``metric@K`` as rows (a count row first): as many columns
    as slices, so the table reads whole on a narrow terminal whatever the cut-offs."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric", style="bold")
    for row in group:
        table.add_column(escape(row), justify="right")
    for column in _columns(group):
        table.add_row(column, *(format_value(column, m.get(column)) for m in group.values()))
    return table


def results_tables(results: Results) -> list[Table]:
    """Per split: the task rows, one table per set of metrics (tasks of one kind share a
    table: tasks as rows, metrics as columns), then for the ranking rows one table per
    metric family (accuracy, beyond accuracy, other) with the slices as columns and
    ``metric@K`` as rows. Every table stays narrow (about 80 columns)."""
    tables: list[Table] = []
    for split, rows in results.items():
        kinds: dict[tuple[str, ...], dict[str, Mapping[str, float]]] = {}
        for row, metrics in rows.items():
            if not is_ranking_row(metrics):
                kinds.setdefault(tuple(metrics), {})[row] = metrics
        for tasks in kinds.values():
            tables.append(_table(split, "task", tasks))
        ranking = {r: m for r, m in rows.items() if is_ranking_row(m)}
        for family in (*(t for t, _ in RANKING_FAMILIES), "other"):
            group = {}
            for row, metrics in ranking.items():
                kept = {k: v for k, v in metrics.items() if "@" in k and _family(k) == family}
                if kept:
                    counts = {k: v for k, v in metrics.items() if k in COUNT_KEYS}
                    group[row] = {**counts, **kept}
            if group:
                tables.append(_slices_table(f"{split} - {family}", group))
    return tables


def print_results(console: Console, results: Results) -> None:
    """Render ``{split: {task or ranking slice: {metric: value}}}`` on ``console``."""
    for table in results_tables(results):
        console.print(table)


TASK_HEADLINE: tuple[str, ...] = ("auc", "rmse", "macro_f1", "target_mrr", "micro_f1")
"""Each task's headline metric: the first of these its results hold."""


def headline_metrics(split: Mapping[str, Mapping[str, float]]) -> list[str]:
    """``["ranking ndcg@10 0.1026", "like auc 0.7100", ...]``: the ranking slice's headline
    metrics (with whichever cut-off the run reports nearest 10), then one per task."""
    parts = []
    ranking = split.get("ranking (all)", {})
    for name in ("ndcg", "recall"):
        cuts = sorted(
            (abs(int(k.split("@")[1]) - 10), k) for k in ranking if k.startswith(f"{name}@")
        )
        if cuts:
            key = cuts[0][1]
            parts.append(f"ranking {key} {format_value(key, ranking[key])}")
    for task, metrics in split.items():
        if task.startswith("ranking") or "(" in task:
            continue
        metric = next((m for m in TASK_HEADLINE if m in metrics), None)
        if metric is not None:
            parts.append(f"{task} {metric} {format_value(metric, metrics[metric])}")
    return parts
