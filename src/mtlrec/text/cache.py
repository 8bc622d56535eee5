"""An on-disk cache of text embeddings keyed by ``(encoder.model_id, sha256(text))``.

::

    cache = EmbeddingCache(Path("cache/embeddings"))
    vectors = cache.get_or_encode(encoder, texts)      # (N, D), only new texts are encoded
    cache.stats                                         # hits, misses, encoded_seconds

Layout: one folder per model id, holding append-only shards::

    ROOT/<sanitised model_id>-<sha256(model_id)[:8]>/
      model_id.txt                      the full model id, for people
      shard-000000-<tag>.npy            float32 (rows, D) embeddings
      shard-000000-<tag>.keys.parquet   column text_sha256: the text hash of every row

Each file is written under a hidden temporary name and renamed into place
(:func:`mtlrec.core.atomic.atomic_file`: a full disk is a ``WriteError`` naming the file);
the keys file is written last and is the commit marker, so a crash leaves at most an
orphaned ``.npy`` or temporary file, both ignored when loading (and a killed writer's
temporaries are removed by the next write). A shard whose two files disagree (row count,
width, dtype) or cannot be read is skipped with a warning and its texts are encoded again.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import polars as pl

from mtlrec.core.atomic import atomic_file, write_text_atomically

KEY_COLUMN = "text_sha256"
_KEYS_SUFFIX = ".keys.parquet"


class SupportsEncode(Protocol):
    """What the cache needs from an encoder (:class:`mtlrec.text.encoder.TextEncoder`)."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray: ...


@dataclass
class CacheStats:
    """Running totals of one :class:`EmbeddingCache`.

    ``hits``: input texts (with repeats) already in the store when asked for;
    ``misses``: distinct texts that had to be encoded; ``encoded_seconds``: time spent in
    ``encoder.encode``.
    """

    hits: int = 0
    misses: int = 0
    encoded_seconds: float = 0.0


def text_key(text: str) -> str:
    """The cache key of one text: sha256 of its UTF-8 bytes, in hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def store_folder_name(model_id: str) -> str:
    """A file-system-safe folder name for ``model_id`` (distinct ids give distinct names)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._")[:80] or "model"
    return f"{safe}-{hashlib.sha256(model_id.encode('utf-8')).hexdigest()[:8]}"


class _ModelStore:
    """The shards of one model id, read from ``folder`` when constructed."""

    def __init__(self, folder: Path, model_id: str, dim: int) -> None:
        self.folder = folder
        self.model_id = model_id
        self.dim = dim
        self.shards: list[np.ndarray] = []  # each (rows, D) float32, memory-mapped when read
        self.index: dict[str, tuple[int, int]] = {}  # text hash -> (shard, row)
        for keys_path in sorted(folder.glob(f"shard-*{_KEYS_SUFFIX}")):
            self._load_shard(keys_path)

    def _load_shard(self, keys_path: Path) -> None:
        vectors_path = keys_path.with_name(keys_path.name.removesuffix(_KEYS_SUFFIX) + ".npy")
        try:
            keys = pl.read_parquet(keys_path)[KEY_COLUMN].to_list()
            vectors = np.load(vectors_path, mmap_mode="r")
        except (OSError, ValueError, pl.exceptions.PolarsError) as err:
            warnings.warn(f"embedding cache: skipping shard {keys_path}: {err}", stacklevel=3)
            return
        if vectors.dtype != np.float32 or vectors.shape != (len(keys), self.dim):
            warnings.warn(
                f"embedding cache: skipping shard {vectors_path}: shape {vectors.shape} "
                f"{vectors.dtype}, expected ({len(keys)}, {self.dim}) float32",
                stacklevel=3,
            )
            return
        self._add(keys, vectors)

    def _add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        shard = len(self.shards)
        self.shards.append(vectors)
        for row, key in enumerate(keys):
            self.index.setdefault(key, (shard, row))

    def append(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Write ``vectors`` ``(len(keys), D)`` as a new shard, then make it visible."""
        self.folder.mkdir(parents=True, exist_ok=True)
        label = self.folder / "model_id.txt"
        if not label.is_file():
            write_text_atomically(label, self.model_id + "\n")
        name = f"shard-{len(self.shards):06d}-{uuid.uuid4().hex[:8]}"
        with atomic_file(self.folder / f"{name}.npy") as handle:
            _save_npy(handle, vectors)
        frame = pl.DataFrame({KEY_COLUMN: list(keys)}, schema={KEY_COLUMN: pl.String()})
        with atomic_file(self.folder / f"{name}{_KEYS_SUFFIX}") as handle:
            frame.write_parquet(handle)
        self._add(keys, vectors)

    def gather(self, keys: Sequence[str]) -> np.ndarray:
        """The stored vectors ``(len(keys), D)`` of ``keys`` (all must be present)."""
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        if not keys:
            return out
        where = np.array([self.index[key] for key in keys], dtype=np.int64)  # (N, 2)
        for shard in np.unique(where[:, 0]):
            hit = where[:, 0] == shard
            out[hit] = self.shards[int(shard)][where[hit, 1]]
        return out


def _save_npy(handle: BinaryIO, array: np.ndarray) -> None:
    np.save(handle, array, allow_pickle=False)


class EmbeddingCache:
    """Embeddings on disk under ``root``, one store per encoder ``model_id``.

    Stores are read lazily, on the first request for their model id, and kept in memory
    (vectors memory-mapped). Only this process's appends are seen after that.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stats = CacheStats()
        self._stores: dict[str, _ModelStore] = {}

    def _store(self, encoder: SupportsEncode) -> _ModelStore:
        store = self._stores.get(encoder.model_id)
        if store is None:
            folder = self.root / store_folder_name(encoder.model_id)
            store = _ModelStore(folder, encoder.model_id, encoder.dim)
            self._stores[encoder.model_id] = store
        return store

    def get_or_encode(
        self,
        encoder: SupportsEncode,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: bool = False,
    ) -> np.ndarray:
        """Embeddings ``(N, D)`` float32 of ``texts`` in input order.

        Texts not stored yet are encoded once each (repeats within the call are encoded
        once) and appended to the store as one new shard.
        """
        store = self._store(encoder)
        keys = [text_key(text) for text in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in store.index:
                missing.setdefault(key, text)
        self.stats.hits += sum(key not in missing for key in keys)
        if missing:
            start = time.perf_counter()
            todo = list(missing.values())
            vectors = encoder.encode(todo, batch_size=batch_size, progress=progress)
            self.stats.encoded_seconds += time.perf_counter() - start
            self.stats.misses += len(missing)
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            if vectors.shape != (len(missing), store.dim):
                raise ValueError(
                    f"encoder {encoder.model_id!r} returned shape {vectors.shape}, "
                    f"expected ({len(missing)}, {store.dim})"
                )
            store.append(list(missing), vectors)
        return store.gather(keys)
