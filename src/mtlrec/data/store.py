"""A prepared dataset on disk: a folder of Parquet tables plus a JSON manifest.

::

    OUT/
      manifest.json          source files + sha256, counts, config, split sizes, version
      users.parquet  items.parquet  reviews.parquet
      interactions.parquet   with split, cold_user, cold_item columns
      labels_<level>.parquet task labels with masks; tasks.json describes them
      features.json          vocabularies and statistics fitted on the training split
      quarantine.jsonl       every row set aside, with file, line, field and reason

The folder is written under a temporary name and renamed into place
(:func:`mtlrec.core.atomic.staged_folder`), so a reader never sees half a dataset and a
failed write (disk full, read-only folder) leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from mtlrec.core.atomic import staged_folder
from mtlrec.data.fetch import file_digest
from mtlrec.data.schema import TABLE_SCHEMAS

MANIFEST = "manifest.json"
FORMAT_VERSION = 2
"""Version of the prepared-data format: bump it whenever a change to parsing, splitting or
labels changes what ``data prepare`` writes, so cached and old folders are not reused.
2: leave-one-out ties are a seeded setting and held-out repeats are dropped; no
``negatives.parquet``."""


class PreparedDatasetError(RuntimeError):
    """A folder is not a prepared dataset (of this format version), or a file is missing."""


def write_atomically(out_dir: Path, fill: Callable[[Path], None]) -> Path:
    """Call ``fill(tmp_dir)`` then move ``tmp_dir`` to ``out_dir`` (replacing it); on any
    failure nothing is left behind, and a full disk or a read-only folder is a
    :class:`~mtlrec.core.atomic.WriteError` naming ``out_dir``."""
    out_dir = out_dir.resolve()
    with staged_folder(out_dir.parent, out_dir.name, name=out_dir.name, replace=True) as staging:
        fill(staging.path)
    return out_dir


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")


@dataclass
class PreparedDataset:
    """A prepared dataset read back from disk."""

    root: Path
    manifest: dict[str, Any]
    tables: dict[str, pl.DataFrame]

    @classmethod
    def load(cls, root: Path) -> PreparedDataset:
        """Read ``root``'s manifest and tables; fails clearly if it is not a prepared dataset."""
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise PreparedDatasetError(
                f"{root}: no {MANIFEST}; is this the --out folder of 'mtlrec data prepare'?"
            )
        manifest = json.loads(manifest_path.read_text("utf-8"))
        found = manifest.get("format_version", "unknown")
        if found != FORMAT_VERSION:
            raise PreparedDatasetError(
                f"{root}: prepared with data format version {found}, but this mtlrec reads "
                f"version {FORMAT_VERSION}; prepare it again with 'mtlrec data prepare'"
            )
        tables = {}
        for name in (*TABLE_SCHEMAS, *manifest.get("label_files", [])):
            path = root / f"{name}.parquet"
            if not path.is_file():
                raise PreparedDatasetError(f"{root}: table {path.name} listed but missing")
            tables[name] = pl.read_parquet(path)
        return cls(root, manifest, tables)

    @property
    def manifest_sha256(self) -> str:
        """Hex sha256 of this folder's ``manifest.json`` (a run records it to name its data)."""
        return file_digest(self.root / MANIFEST)

    def split(self, name: str) -> pl.DataFrame:
        """Interactions of one split ("train", "valid" or "test")."""
        return self.tables["interactions"].filter(pl.col("split") == name)
