"""Building and writing labels: turn label specs (builder instances, registered names,
``{"name": ..., "params": ...}`` mappings or ``ComponentConfig`` objects) into builders,
run them into :class:`~mtlrec.data.labels.base.TaskLabels`, join the tasks of each level
on their keys, and write one parquet per level plus ``tasks.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from mtlrec.data.labels.base import (
    LABEL_BUILDERS,
    TASK_LEVELS,
    LabelBuilder,
    TaskLabels,
    _with_split,
)
from mtlrec.data.schema import CanonicalTables
from mtlrec.data.split import SPLIT_COLUMN

LabelSpec = Any
"""A builder instance (has ``build``), a registered name, ``{"name": builder, "params":
{...}}``, or any object with ``name`` and ``params`` attributes (``ComponentConfig``)."""


def make_label_builder(name: str, **params: Any) -> LabelBuilder:
    """Build the label builder registered as ``name`` with keyword arguments ``params``."""
    cls = LABEL_BUILDERS.get(name)
    if "behaviours" in params:
        params["behaviours"] = tuple(params["behaviours"])
    try:
        return cls(**params)
    except TypeError as error:
        raise ValueError(f"label builder {name!r}: {error}") from None


def as_label_builder(spec: LabelSpec) -> LabelBuilder:
    """Turn one label spec (see :data:`LabelSpec`) into a builder."""
    if isinstance(spec, str):
        return make_label_builder(spec)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"name", "params"}
        if "name" not in spec or unknown:
            raise ValueError(
                f"label spec {dict(spec)!r} must be {{'name': ..., 'params': {{...}}}}"
            )
        return make_label_builder(str(spec["name"]), **dict(spec.get("params") or {}))
    if hasattr(spec, "build"):
        builder: LabelBuilder = spec
        return builder
    if hasattr(spec, "name") and hasattr(spec, "params"):
        return make_label_builder(str(spec.name), **dict(spec.params or {}))
    raise TypeError(f"not a label spec: {spec!r}")


def default_split_frame(tables: CanonicalTables) -> pl.DataFrame:
    """The frame that carries the split: users for tabular data, else interactions."""
    return tables.users if tables.kind == "tabular" else tables.interactions


def build_labels(
    tables: CanonicalTables,
    specs: Sequence[LabelSpec] | pl.DataFrame,
    split_frame: pl.DataFrame | Sequence[LabelSpec] | None = None,
) -> list[TaskLabels]:
    """Run every builder of ``specs`` and return their tasks in order.

    ``split_frame`` is the interactions with ``split`` (the users with ``split`` for
    tabular data); by default it is taken from ``tables`` (see
    :func:`default_split_frame`), which must then carry the ``split`` column. The order
    ``build_labels(tables, split_frame, specs)`` is accepted as well.

    Raises ``ValueError`` for an unknown builder or parameter, duplicate task names, and
    a task without a single known label (for example ``like`` on data without ratings).
    """
    if isinstance(specs, pl.DataFrame):
        specs, split_frame = split_frame or [], specs
    frame = default_split_frame(tables) if split_frame is None else split_frame
    if not isinstance(frame, pl.DataFrame):
        raise TypeError("split_frame must be a polars DataFrame")
    tasks: list[TaskLabels] = []
    for spec in specs:
        tasks.extend(as_label_builder(spec).build(tables, frame))
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate task names {duplicates}; give the builders distinct 'task'")
    for task in tasks:
        if task.n_known == 0:
            raise ValueError(f"task {task.name!r} has no known label in this dataset")
    return tasks


LABEL_FILES: dict[str, str] = {level: f"labels_{level}" for level in TASK_LEVELS}
"""Table name (file stem; the file is ``<stem>.parquet``) of each level's labels."""
TASKS_FILE = "tasks.json"


def join_level(tasks: Sequence[TaskLabels]) -> pl.DataFrame:
    """Join tasks of one level on their keys: keys, ``split`` (when known), then each
    task's value and mask columns. Missing rows get a null value and a False mask."""
    if not tasks:
        raise ValueError("join_level needs at least one task")
    keys = list(tasks[0].keys)
    for task in tasks:
        if list(task.keys) != keys:
            raise ValueError(f"tasks of one level have different keys: {keys} vs {task.keys}")
    has_split = any(SPLIT_COLUMN in t.frame.columns for t in tasks)
    key_frames = [
        t.frame.select(_with_split(keys, t.frame))
        if SPLIT_COLUMN in t.frame.columns or not has_split
        else t.frame.select(keys).with_columns(pl.lit(None, pl.String()).alias(SPLIT_COLUMN))
        for t in tasks
    ]
    base = pl.concat(key_frames, how="vertical_relaxed")
    if has_split:
        base = base.group_by(keys).agg(pl.col(SPLIT_COLUMN).drop_nulls().first())
    else:
        base = base.unique(keys)
    base = base.sort(keys)
    for task in tasks:
        base = base.join(
            task.frame.select(*keys, task.name, task.mask_column),
            on=keys,
            how="left",
            maintain_order="left",
        ).with_columns(pl.col(task.mask_column).fill_null(False))
    return base


def write_labels(
    labels: Sequence[TaskLabels], out_dir: str | Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """Write one parquet per level present plus ``tasks.json``.

    Files: ``labels_interaction.parquet``, ``labels_item.parquet``,
    ``labels_pair.parquet``, ``labels_user.parquet`` (only levels that have tasks; each
    joins that level's tasks on their keys, see :func:`join_level`) and ``tasks.json``
    (``{"tasks": [...]}`` of :meth:`TaskLabels.describe` entries).

    Returns ``(task_descriptions, table_names)``: the ``tasks.json`` entries and the stems
    of the parquet files written (e.g. ``["labels_interaction", "labels_item"]``).
    """
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for level in TASK_LEVELS:
        tasks = [t for t in labels if t.level == level]
        if not tasks:
            continue
        join_level(tasks).write_parquet(target / f"{LABEL_FILES[level]}.parquet")
        written.append(LABEL_FILES[level])
    described = [t.describe() for t in labels]
    (target / TASKS_FILE).write_text(
        json.dumps({"tasks": described}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return described, written


def read_tasks(out_dir: str | Path) -> list[dict[str, Any]]:
    """The task descriptions written by :func:`write_labels`."""
    data = json.loads((Path(out_dir) / TASKS_FILE).read_text(encoding="utf-8"))
    tasks: list[dict[str, Any]] = data["tasks"]
    return tasks
