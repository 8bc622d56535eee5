"""Sections 6 and 7: baselines, fusion and cascades; beyond-accuracy metrics.

Sources: each run's own ranking head (results.json ``ranking (<slice>)`` rows), the cascade
of ``mtlrec fuse`` (``fusion/results.json``) and the fusion benchmark (``fusion_*.json``:
``aggregate.table`` ``{row: {kind, test: {metric: {mean, std}}}}`` and ``aggregate.summary``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtlrec.report.collect import BenchResults, RunRecord, dig
from mtlrec.report.document import Block, Cell, Heading, KeyValues, Note, Section, Table, plus_minus
from mtlrec.report.peers import summary_blocks

BEYOND: tuple[str, ...] = ("coverage", "diversity", "novelty", "arp")
"""Beyond-accuracy metric families (``coverage@10`` ...); every other metric is accuracy."""
SLICES: tuple[str, ...] = ("all", "warm", "cold")


def is_beyond(metric: str) -> bool:
    return metric.split("@", 1)[0] in BEYOND


def _metric_names(rows: Sequence[Mapping[str, Any]], beyond: bool) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        for key in row:
            if "@" in key and is_beyond(key) == beyond:
                names.setdefault(key, None)
    return list(names)


def head_rows(run: RunRecord) -> dict[str, dict[str, Any]]:
    """``{slice: metrics}`` of the run's ranking head on the test split."""
    test = run.split_results("test") or {}
    return {
        s: test[f"ranking ({s})"] for s in SLICES if isinstance(test.get(f"ranking ({s})"), dict)
    }


def cascade_rows(run: RunRecord) -> dict[str, dict[str, Any]]:
    """``{slice: metrics}`` of the run's fused cascade on the test split."""
    test = dig(run.fusion, "results", "test") or {}
    return {s: test[s] for s in SLICES if isinstance(test.get(s), dict)}


def _ranking_task(run: RunRecord) -> str:
    return str(dig(run.config, "evaluation", "ranking_task") or "ranking")


def run_fusion_blocks(run: RunRecord) -> list[Block]:
    """A run's cascade beside its own ranking head (test split), and the fusion's weights."""
    fusion = run.fusion or {}
    name = fusion.get("fusion", "?")
    labelled: list[tuple[str, Mapping[str, Any]]] = []
    head = head_rows(run)
    if "all" in head:
        labelled.append((f"{_ranking_task(run)} head of the multi-task model", head["all"]))
    for slice_name, values in cascade_rows(run).items():
        labelled.append((f"cascade, {name} fusion ({slice_name} users)", values))
    metrics = _metric_names([m for _, m in labelled], beyond=False)
    rows: list[list[Cell]] = [
        [label, values.get("n_users"), *[values.get(m) for m in metrics]]
        for label, values in labelled
    ]
    blocks: list[Block] = [
        Heading(f"{run.label}: cascade of 'mtlrec fuse' (fusion/results.json)"),
        Table(f"{run.label}: ranking head vs cascade (test)", ["model", "users", *metrics], rows),
    ]
    weights = fusion.get("weights") or {}
    if weights:
        blocks.append(KeyValues(f"{name} fusion weights", list(weights.items())))
    retrieval = dig(fusion, "results", "test", "retrieval") or {}
    if retrieval:
        items = [(k, v) for k, v in retrieval.items() if k != "n_users"]
        blocks.append(KeyValues("retrieval stage (test)", items))
    return blocks


COLD_NOTE = (
    "cold_*: the held-out items with no training interaction. Models that learn from "
    "interactions alone (popularity, kNN, EASE, ALS, BPR) have nothing to score them by, "
    "so they read 0 ± 0; only models that read item text or attributes (lm_content, the "
    "multi-task models) can rank them."
)
"""Said under every table with a cold-item column."""


def _bench_rows(table: Mapping[str, Any], beyond: bool) -> tuple[list[str], list[list[Cell]]]:
    metrics = _metric_names([row.get("test") or {} for row in table.values()], beyond)
    if not beyond:  # counts and the cold slice ride along with accuracy
        extra = {k for row in table.values() for k in (row.get("test") or {}) if "@" not in k}
        metrics += sorted(extra)
    rows: list[list[Cell]] = []
    for name, row in table.items():
        test = row.get("test") or {}
        cells: list[Cell] = [name, row.get("kind")]
        for metric in metrics:
            value = test.get(metric)
            cells.append(plus_minus(value.get("mean"), value.get("std")) if value else "-")
        rows.append(cells)
    return metrics, rows


def bench_fusion_blocks(name: str, payload: Mapping[str, Any], beyond: bool) -> list[Block]:
    """One ``fusion_*.json``: its aggregate table (accuracy or beyond-accuracy columns)."""
    table = dig(payload, "aggregate", "table") or {}
    if not table:
        return [Note(f"{name}.json: no aggregate table.")]
    metrics, rows = _bench_rows(table, beyond)
    seeds = payload.get("seeds") or []
    what = "beyond-accuracy" if beyond else "accuracy"
    title = f"{payload.get('dataset', name)}: {what} (test, mean ± std over {len(seeds)} seeds)"
    notes = [str(payload[k]) for k in ("protocol", "command") if payload.get(k)]
    if any(m.startswith("cold_") for m in metrics):
        notes.append(COLD_NOTE)
    blocks: list[Block] = [Table(title, ["model", "kind", *metrics], rows, notes)]
    summary = dig(payload, "aggregate", "summary")
    if not beyond and isinstance(summary, Mapping):
        blocks += summary_blocks("summary", summary)
    return blocks


def fusion_section(runs: Sequence[RunRecord], bench: BenchResults | None) -> Section:
    """Section 6."""
    blocks: list[Block] = []
    for run in runs:
        if run.fusion is not None:
            blocks += run_fusion_blocks(run)
    if not blocks:
        blocks.append(Note("Runs: not available (no fusion/results.json; run 'mtlrec fuse')."))
    for name, payload in (bench.fusion if bench else {}).items():
        blocks.append(Heading(f"Benchmark: {name}.json"))
        blocks += bench_fusion_blocks(name, payload, beyond=False)
    if not bench or not bench.fusion:
        where = "no --bench folder" if bench is None else f"no fusion_*.json in {bench.path}"
        blocks.append(Note(f"Fusion benchmark: not available ({where})."))
    return Section("fusion", "Baselines and fusion", blocks)


def beyond_table(runs: Sequence[RunRecord]) -> Table | None:
    """Coverage, diversity, novelty and ARP@K of every run's ranking head and cascade."""
    labelled: list[tuple[str, str, Mapping[str, Any]]] = []
    for run in runs:
        for slice_name, values in head_rows(run).items():
            labelled.append((run.label, f"{_ranking_task(run)} head, {slice_name}", values))
        for slice_name, values in cascade_rows(run).items():
            labelled.append((run.label, f"cascade, {slice_name}", values))
    metrics = _metric_names([m for _, _, m in labelled], beyond=True)
    if not metrics:
        return None
    rows: list[list[Cell]] = [
        [run, what, values.get("n_users"), *[values.get(m) for m in metrics]]
        for run, what, values in labelled
    ]
    notes = [
        "coverage: share of the catalogue recommended to someone; diversity: mean pairwise "
        "dissimilarity within a list; novelty: mean self-information of recommended items; "
        "arp: average popularity of recommended items (lower: less popular)."
    ]
    columns = ["run", "model", "users", *metrics]
    return Table("Runs: beyond-accuracy metrics (test)", columns, rows, notes)


def beyond_section(runs: Sequence[RunRecord], bench: BenchResults | None) -> Section:
    """Section 7."""
    blocks: list[Block] = []
    table = beyond_table(runs)
    if table is not None:
        blocks.append(table)
    else:
        blocks.append(Note("Runs: not available (no ranking metrics with coverage/diversity)."))
    for name, payload in (bench.fusion if bench else {}).items():
        blocks.append(Heading(f"Benchmark: {name}.json"))
        blocks += bench_fusion_blocks(name, payload, beyond=True)
    return Section("beyond", "Beyond-accuracy metrics", blocks)
