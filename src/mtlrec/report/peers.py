"""Section 9 (peer frameworks), and the generic renderer of a benchmark's ``summary``.

``peers_*.json`` files have the shape ``{"benchmark", "command" (or a list "commands"),
"tables": [{"title",
"columns", "rows", "notes"}], "summary": {...}}``; they are drawn as they come.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mtlrec.report.collect import BenchResults
from mtlrec.report.document import Block, Cell, Heading, KeyValues, Note, Section, Table


def _cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Sequence):
        return ", ".join(str(_cell(v)) for v in value)
    return str(value)


def _flatten(prefix: str, value: Any, items: list[tuple[str, Cell]], tables: list[Block]) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, items, tables)
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        columns: dict[str, None] = {}
        for row in value:
            columns.update(dict.fromkeys(map(str, row)))
        rows = [[_cell(row.get(c)) for c in columns] for row in value]
        tables.append(Table(prefix, list(columns), rows))
    else:
        items.append((readable(prefix), _cell(value)))


def readable(key: str) -> str:
    """A summary key for people: ``income_auc_delta`` -> ``income auc delta``."""
    return key.replace("_", " ")


def summary_blocks(title: str, summary: Mapping[str, Any]) -> list[Block]:
    """``summary`` as a table when it is one row of numbers per name (``{model: {metric:
    value}}``: names as rows, metrics as columns), else as a key/value list (nested keys
    joined by ``.``); lists of objects become tables of their own. Keys read as words."""
    if summary and all(
        isinstance(v, Mapping) and v and not any(isinstance(x, Mapping | list) for x in v.values())
        for v in summary.values()
    ):
        columns: dict[str, None] = {}
        for row in summary.values():
            columns.update(dict.fromkeys(map(str, row)))
        rows = [[str(name), *(_cell(row.get(c)) for c in columns)] for name, row in summary.items()]
        return [Table(title, ["", *(readable(c) for c in columns)], rows)]
    items: list[tuple[str, Cell]] = []
    tables: list[Block] = []
    _flatten("", summary, items, tables)
    return ([KeyValues(title, items)] if items else []) + tables


def peer_blocks(name: str, payload: Mapping[str, Any]) -> list[Block]:
    """One ``peers_*.json`` file: its tables, then its summary."""
    blocks: list[Block] = [Heading(f"{payload.get('benchmark') or name} ({name}.json)")]
    commands = [payload["command"]] if payload.get("command") else []
    commands += [str(c) for c in payload.get("commands") or []]
    for command in commands:
        blocks.append(Note(f"Command: {command}"))
    for index, table in enumerate(payload.get("tables") or []):
        columns = [str(c) for c in table.get("columns") or []]
        rows = [[_cell(c) for c in row] for row in table.get("rows") or []]
        notes = [str(n) for n in table.get("notes") or []]
        blocks.append(Table(str(table.get("title") or f"table {index + 1}"), columns, rows, notes))
    if isinstance(payload.get("summary"), Mapping) and payload["summary"]:
        blocks += summary_blocks("summary", payload["summary"])
    return blocks


def peers_section(bench: BenchResults | None) -> Section:
    """Section 9: every ``peers_*.json`` of the benchmark folder."""
    blocks: list[Block] = []
    for name, payload in (bench.peers if bench else {}).items():
        blocks += peer_blocks(name, payload)
    if bench is None:
        missing = "not available (no --bench folder given)"
    else:
        missing = f"not available (no peers_census.json or peers_ranking.json in {bench.path})"
    return Section("peers", "Peer frameworks", blocks, missing)
