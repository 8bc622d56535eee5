"""The prepared-data cache: one folder per (data config, data-format version, source bytes).

``train``, ``fuse`` and the benchmarks call :func:`cached_prepare` instead of ``prepare``::

    dataset = cached_prepare(config.data, settings)   # prepares once, then reuses

The key covers everything that decides what ``data prepare`` writes: the data config,
:data:`~mtlrec.data.store.FORMAT_VERSION` (bumped when parsing, splitting or labels
change) and the sha256 of every source file. A changed file or a new format version
therefore gets a new folder instead of silently reusing stale data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mtlrec.config import PrepareConfig
from mtlrec.data.fetch import FetchSettings
from mtlrec.data.prepare import file_records, prepare, source_files
from mtlrec.data.store import FORMAT_VERSION, MANIFEST, PreparedDataset

KEY_CHARS = 16
"""Hex characters of the key kept in the folder name."""


def cache_key(data_config: PrepareConfig, settings: FetchSettings) -> str:
    """Hex sha256 of the data config, the data-format version and the source files' sha256.

    The source files are found as ``prepare`` finds them (mirrors, cache, download or
    explicit paths) and hashed, never parsed. Only their roles and contents count, not
    where they lie, so a mirror and a cached download of the same bytes share a key.
    """
    found = source_files(data_config, settings)
    document = {
        "format_version": FORMAT_VERSION,
        "config": data_config.model_dump(mode="json"),
        "sources": sorted((r["role"], r["sha256"]) for r in file_records(found.files)),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode("utf-8")).hexdigest()


def cache_folder(data_config: PrepareConfig, settings: FetchSettings) -> Path:
    """``<cache_dir>/prepared/<dataset>-<key>``: where the prepared data of the config lives."""
    name = data_config.dataset.name or "custom"
    key = cache_key(data_config, settings)[:KEY_CHARS]
    return settings.cache_dir / "prepared" / f"{name}-{key}"


def cached_prepare(data_config: PrepareConfig, settings: FetchSettings) -> PreparedDataset:
    """The prepared dataset of ``data_config``: prepared into the cache once, then reused."""
    root = cache_folder(data_config, settings)
    if not (root / MANIFEST).is_file():
        prepare(data_config, root, settings)
    return PreparedDataset.load(root)
