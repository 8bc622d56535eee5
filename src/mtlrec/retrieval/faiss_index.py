"""``ItemIndex``: maximum inner-product search over item vectors, wrapping FAISS.

Three kinds, all on the inner product (cosine when the vectors are L2-normalised):

- ``flat``: :class:`faiss.IndexFlatIP`, exact brute force;
- ``ivf``: :class:`faiss.IndexIVFFlat`, k-means into ``nlist`` cells, ``nprobe`` cells
  searched per query (``nlist`` is cut to ``n // 39`` on small catalogues so that every
  centroid gets FAISS's minimum of 39 training points; k-means is seeded by ``seed``);
- ``hnsw``: :class:`faiss.IndexHNSWFlat`, a graph with ``hnsw_m`` links per node,
  ``ef_construction`` / ``ef_search`` candidate lists (levels drawn from ``seed``; built on
  one FAISS thread, because the multi-threaded build depends on thread timing).

So a given ``seed`` and the same vectors give the same index, byte for byte. FAISS is an
optional dependency (the ``recommend`` extra), imported only when an index is built or
loaded. Persistence is :meth:`ItemIndex.to_bytes` / :meth:`ItemIndex.from_bytes` (FAISS's
own serialisation as a ``uint8`` array, which fits in an ``.npz``; no pickle).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import numpy as np

from mtlrec.core.params import KeywordParams

INDEX_KINDS: tuple[str, ...] = ("flat", "ivf", "hnsw")
"""The index kinds :class:`ItemIndex` builds."""

_MIN_POINTS_PER_CENTROID = 39  # FAISS's own minimum (ClusteringParameters.min_points_per_centroid)


@contextmanager
def _one_faiss_thread() -> Iterator[None]:
    """Run FAISS (its OpenMP pool, not torch's) on one thread inside the block."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _as_matrix(name: str, x: Any, dim: int | None = None) -> np.ndarray:
    """``x`` as a C-contiguous finite float32 ``(n, d)`` array (``d == dim`` when given)."""
    array = np.ascontiguousarray(x, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, d) array, got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"{name} have dimension {array.shape[1]}, the index has {dim}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain nan or inf")
    return array


class ItemIndex(KeywordParams):
    """Top-k inner-product search over ``n_items`` vectors of dimension ``dim``.

    Constructor arguments are stored untouched; ``nlist``/``nprobe`` apply to ``ivf``,
    ``hnsw_m``/``ef_search``/``ef_construction`` to ``hnsw``; ``seed`` seeds the
    ``ivf`` k-means and the ``hnsw`` level draws. Row ``i`` of the built vectors is item ``i``.
    """

    def __init__(
        self,
        kind: str = "flat",
        nlist: int = 64,
        nprobe: int = 8,
        hnsw_m: int = 32,
        ef_search: int = 64,
        ef_construction: int = 80,
        seed: int = 0,
    ) -> None:
        self.kind = kind
        self.nlist = nlist
        self.nprobe = nprobe
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.seed = seed

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"ItemIndex({args})"

    # ------------------------------------------------------------------ building
    def _check_kind(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(
                f"unknown index kind {self.kind!r}; known kinds: {', '.join(INDEX_KINDS)}"
            )

    def build(self, vectors: Any) -> Self:
        """Index ``vectors`` ``(n_items, dim)`` (float32, finite, ``n_items >= 1``); returns
        self."""
        import faiss

        self._check_kind()
        x = _as_matrix("vectors", vectors)
        n, dim = x.shape
        if n == 0 or dim == 0:
            raise ValueError(f"cannot index an empty set of vectors, got shape {x.shape}")
        index: Any
        if self.kind == "flat":
            index = faiss.IndexFlatIP(dim)
            index.add(x)
        elif self.kind == "ivf":
            nlist = max(1, min(int(self.nlist), n // _MIN_POINTS_PER_CENTROID))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = int(self.seed)
            index.cp.min_points_per_centroid = min(_MIN_POINTS_PER_CENTROID, n)  # n < 39: 1 cell
            index.train(x)
            index.add(x)
        else:
            index = faiss.IndexHNSWFlat(dim, int(self.hnsw_m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(self.ef_construction)
            index.hnsw.rng = faiss.RandomGenerator(int(self.seed))  # type: ignore[attr-defined]
            with _one_faiss_thread():
                index.add(x)
        self._set_index(index)
        return self

    def _set_index(self, index: Any) -> None:
        """Keep ``index`` and apply the search-time parameters of its kind."""
        if self.kind == "ivf":
            index.nprobe = max(1, min(int(self.nprobe), int(index.nlist)))
        elif self.kind == "hnsw":
            index.hnsw.efSearch = int(self.ef_search)
        self.index_ = index

    @property
    def is_built(self) -> bool:
        return hasattr(self, "index_")

    def _check_built(self) -> None:
        if not self.is_built:
            raise RuntimeError("ItemIndex is not built; call build() first")

    @property
    def n_items(self) -> int:
        """Number of indexed vectors."""
        self._check_built()
        return int(self.index_.ntotal)

    @property
    def dim(self) -> int:
        """Dimension of the indexed vectors."""
        self._check_built()
        return int(self.index_.d)

    # ------------------------------------------------------------------ searching
    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items by inner product for ``queries`` ``(b, dim)``, best first.

        Returns ``(ids (b, k) int64, scores (b, k) float32)``. Slots without an item (``k``
        above ``n_items``, or an approximate index that reached fewer items) hold id ``-1``
        and score ``-inf``.
        """
        self._check_built()
        if int(k) <= 0:
            raise ValueError(f"k must be positive, got {k}")
        q = _as_matrix("queries", queries, self.dim)
        b, k = q.shape[0], int(k)
        ids = np.full((b, k), -1, dtype=np.int64)
        scores = np.full((b, k), -np.inf, dtype=np.float32)
        if b == 0:
            return ids, scores
        reach = min(k, self.n_items)
        found_scores, found_ids = self.index_.search(q, reach)  # (b, reach) each
        found_ids = np.asarray(found_ids, dtype=np.int64)
        ids[:, :reach] = found_ids
        scores[:, :reach] = np.where(found_ids >= 0, found_scores, -np.inf)
        return ids, scores

    # ------------------------------------------------------------------ persistence
    def to_bytes(self) -> np.ndarray:
        """The built index serialised by FAISS, as a 1-D ``uint8`` array."""
        import faiss

        self._check_built()
        return np.asarray(faiss.serialize_index(self.index_), dtype=np.uint8)

    @classmethod
    def from_bytes(cls, data: np.ndarray, **params: Any) -> Self:
        """An index read back from :meth:`to_bytes`; ``params`` are the constructor
        arguments (``kind`` must match the serialised index)."""
        import faiss

        out = cls(**params)
        out._check_kind()
        raw = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
        index = faiss.deserialize_index(raw)  # already of its concrete class
        expected = {
            "flat": faiss.IndexFlatIP,
            "ivf": faiss.IndexIVFFlat,
            "hnsw": faiss.IndexHNSWFlat,
        }[out.kind]
        if not isinstance(index, expected):
            raise ValueError(
                f"serialised index is a {type(index).__name__}, not a {out.kind!r} index"
            )
        out._set_index(index)
        return out
