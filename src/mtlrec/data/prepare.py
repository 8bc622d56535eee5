"""``data prepare``: raw files -> validated canonical tables -> split -> labels -> folder.

One run, step by step:

1. find the files (catalog dataset through mirrors / cache / download, or explicit files);
2. parse them with the layout's source, tallying every row (read = kept + quarantined);
3. optional k-core filter; 4. split (interactions by (user, item) pair, or tabular rows);
5. mark the cold-start slice; 6. build task labels; 7. fit vocabularies on train only;
8. write Parquet tables, labels, ``features.json``, ``quarantine.jsonl`` and the manifest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

import mtlrec
import mtlrec.data.sources  # noqa: F401  (registers every source)
from mtlrec.config import ComponentConfig, PrepareConfig, SplitConfig
from mtlrec.config.loading import ConfigError, apply_overrides, load_yaml, validate
from mtlrec.data.catalog import DATASETS, ResolvedDataset, resolve_dataset, with_catalog_defaults
from mtlrec.data.features import default_feature_columns, fit_feature_space
from mtlrec.data.fetch import FetchSettings, FileResolver, file_digest
from mtlrec.data.labels import build_labels, write_labels
from mtlrec.data.read_report import ReadReport
from mtlrec.data.schema import CanonicalTables
from mtlrec.data.sources.base import SOURCES
from mtlrec.data.split import (
    SPLITTERS,
    kcore_filter,
    make_splitter,
    mark_cold_start,
    split_rows,
    split_summary,
)
from mtlrec.data.store import (
    FORMAT_VERSION,
    MANIFEST,
    write_atomically,
    write_json,
)
from mtlrec.data.ties import boundary_ties

StepCallback = Callable[[str], None]


@dataclass
class PrepareResult:
    """What a prepare run wrote: the folder and its manifest."""

    root: Path
    manifest: dict[str, Any]


def load_prepare_config(target: str, overrides: Sequence[str] = ()) -> PrepareConfig:
    """A config from a YAML file, or for a catalog dataset called ``target``.

    For a catalog dataset the catalog's default split and labels are filled in first, and
    a partial ``split`` section (say only ``seed``) is merged over the default, so
    ``--set split.seed=3`` keeps the dataset's split strategy.
    """
    path = Path(target)
    if target.endswith((".yaml", ".yml")) or path.is_file():
        data, origin = load_yaml(path), str(path)
    else:
        DATASETS.get(target)  # fails early, listing the known names
        data, origin = {"dataset": {"name": target}}, target
    data = with_catalog_defaults(apply_overrides(data, overrides))
    return validate(PrepareConfig, data, origin)


@dataclass(frozen=True)
class SourceFiles:
    """The raw files a prepare run reads, and the source (with parameters) that parses them."""

    resolved: ResolvedDataset | None
    source: str
    params: dict[str, Any]
    files: dict[str, Path]


def source_files(config: PrepareConfig, settings: FetchSettings) -> SourceFiles:
    """Find (or fetch) the files of ``config.dataset`` without parsing them.

    A catalog dataset is resolved through mirrors, the cache or a download; a ``source``
    dataset uses its explicit files.
    """
    if config.dataset.name is not None:
        resolved = resolve_dataset(config.dataset.name, FileResolver(settings))
        params = {**resolved.layout.source_params, **config.dataset.params}
        return SourceFiles(resolved, resolved.layout.source, params, dict(resolved.files))
    assert config.dataset.source is not None  # DatasetConfig: exactly one of name / source
    files = {role: Path(p) for role, p in config.dataset.files.items()}
    return SourceFiles(None, config.dataset.source, dict(config.dataset.params), files)


def file_records(files: Mapping[str, Path]) -> list[dict[str, Any]]:
    """``role``, ``path``, ``bytes`` and ``sha256`` of each file, in ``files`` order."""
    return [
        {"role": role, "path": str(path), "bytes": path.stat().st_size, "sha256": file_digest(path)}
        for role, path in files.items()
    ]


def _effective_split(config: PrepareConfig, resolved: ResolvedDataset | None) -> SplitConfig:
    if config.split is not None:
        return config.split
    if resolved is not None:
        return SplitConfig.model_validate(dict(resolved.spec.default_split))
    return SplitConfig()


def _effective_labels(
    config: PrepareConfig, resolved: ResolvedDataset | None
) -> list[ComponentConfig]:
    if config.labels is not None:
        return list(config.labels)
    if resolved is not None:
        return [ComponentConfig.model_validate(dict(c)) for c in resolved.spec.default_labels]
    return []


def _event_counts(interactions: pl.DataFrame) -> dict[str, dict[str, int]]:
    stats = interactions.group_by("event").agg(
        pl.len().alias("rows"),
        pl.col("user_id").n_unique().alias("users"),
        pl.col("item_id").n_unique().alias("items"),
    )
    return {
        row["event"]: {k: int(row[k]) for k in ("rows", "users", "items")}
        for row in stats.sort("event").iter_rows(named=True)
    }


def table_counts(tables: CanonicalTables) -> dict[str, Any]:
    """Counts a user checks first: interactions, users, items, reviews with and without text."""
    inter = tables.interactions
    if tables.kind == "tabular":
        return {"records": tables.users.height, "columns": tables.users.width - 1}
    return {
        "interactions": inter.height,
        "users": inter["user_id"].n_unique(),
        "items": inter["item_id"].n_unique(),
        "user_rows": tables.users.height,
        "item_rows": tables.items.height,
        "reviews": tables.reviews.height,
        "reviews_without_text": int((~tables.reviews["has_text"].fill_null(False)).sum()),
        "events": _event_counts(inter),
    }


def _split_tables(
    tables: CanonicalTables, split: SplitConfig, kcore: dict[str, int], manifest: dict[str, Any]
) -> CanonicalTables:
    if tables.kind == "tabular":
        users = split_rows(tables.users, ratios=split.ratios, seed=split.seed)
        manifest["split"]["sizes"] = {
            name: {"rows": int((users["split"] == name).sum()), "users": 0, "items": 0}
            for name in ("train", "valid", "test")
        }
        return CanonicalTables(users=users, items=tables.items, kind="tabular")
    interactions = tables.interactions
    if kcore["user"] or kcore["item"]:
        interactions, stats = kcore_filter(interactions, kcore["user"], kcore["item"])
        manifest["kcore"] = {**kcore, **stats}
    rows_before = interactions.height
    interactions = make_splitter(split.strategy, **_split_kwargs(split)).apply(interactions)
    interactions = mark_cold_start(interactions)
    manifest["split"]["sizes"] = split_summary(interactions)
    manifest["split"]["rows_dropped"] = rows_before - interactions.height
    if SPLITTERS.get(split.strategy).by_time:
        manifest["split"]["boundary_ties"] = boundary_ties(interactions)
    reviews = tables.reviews.join(
        interactions.select("interaction_id", "split"), on="interaction_id", how="inner"
    )
    return CanonicalTables(
        users=tables.users,
        items=tables.items,
        interactions=interactions,
        reviews=reviews,
        kind=tables.kind,
    )


def _split_kwargs(split: SplitConfig) -> dict[str, Any]:
    if split.strategy == "leave_one_out":
        return {"seed": split.seed, "ties": split.ties}
    if split.strategy == "temporal":
        return {"ratios": split.ratios}
    return {"ratios": split.ratios, "seed": split.seed}


def prepare(
    config: PrepareConfig,
    out_dir: Path,
    settings: FetchSettings,
    on_step: StepCallback = lambda step: None,
) -> PrepareResult:
    """Run the whole data path for ``config`` and write the prepared dataset to ``out_dir``."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        on_step(name)
        timings[name] = -now
        clock = now

    def done(name: str) -> None:
        timings[name] += time.perf_counter()

    step("resolving files")
    found = source_files(config, settings)
    resolved, source_name, params, files = found.resolved, found.source, found.params, found.files
    done("resolving files")

    step("parsing and validating")
    source = SOURCES.get(source_name)(**params)
    source.check_files(files)
    report = ReadReport()
    tables = source.load(files, report)
    for tally in report.files.values():
        tally.check()
    done("parsing and validating")

    split = _effective_split(config, resolved)
    label_specs = _effective_labels(config, resolved)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "mtlrec_version": mtlrec.__version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {
            "name": config.dataset.name or f"custom:{source_name}",
            "kind": tables.kind,
            "layout": resolved.layout.label if resolved else "explicit files",
            "source": source_name,
            "source_params": params,
        },
        "source_files": file_records(files),
        "config": {
            **config.model_dump(mode="json"),
            "split": split.model_dump(mode="json"),
            "labels": [c.model_dump(mode="json") for c in label_specs],
        },
        "read": report.summary(),
        "counts": table_counts(tables),
        "split": split.model_dump(mode="json"),
    }

    step("splitting")
    tables = _split_tables(tables, split, config.kcore.model_dump(), manifest)
    done("splitting")

    step("building labels and features")
    try:
        labels = build_labels(tables, label_specs)
    except (KeyError, ValueError) as error:
        raise ConfigError(f"labels: {error}") from error
    # columns that labels are read from never become input features (no label leakage)
    excluded = [column.split(".", 1)[1] for task in labels for column in task.source_columns]
    excluded += resolved.spec.not_features if resolved else ()
    auto_users, auto_items = default_feature_columns(tables, exclude=excluded)
    feature_config = config.features
    features = fit_feature_space(
        tables,
        min_count=feature_config.min_count,
        user_columns=auto_users
        if feature_config.user_columns == "auto"
        else feature_config.user_columns,
        item_columns=auto_items
        if feature_config.item_columns == "auto"
        else feature_config.item_columns,
    )
    done("building labels and features")

    step("writing")

    def fill(folder: Path) -> None:
        for name, frame in tables.tables().items():
            frame.write_parquet(folder / f"{name}.parquet")
        manifest["tasks"], manifest["label_files"] = write_labels(labels, folder)
        features.save(folder / "features.json")
        manifest["quarantined_rows"] = report.write_quarantine(folder / "quarantine.jsonl")
        manifest["timings_s"] = {k: round(v, 3) for k, v in timings.items() if v > 0}
        write_json(folder / MANIFEST, manifest)

    root = write_atomically(out_dir, fill)
    done("writing")
    return PrepareResult(root, json.loads((root / MANIFEST).read_text("utf-8")))
