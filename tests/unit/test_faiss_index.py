"""``ItemIndex``: exact search equals brute force, approximate search recalls it, bytes
round-trip, padding and errors."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np
import pytest
import torch

from mtlrec.retrieval import INDEX_KINDS, ItemIndex

N, DIM, K = 2000, 32, 10


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    queries = rng.normal(size=(100, DIM)).astype(np.float32)
    return vectors, queries


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries.astype(np.float64) @ vectors.T.astype(np.float64)  # (b, n)
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(scores, ids, axis=1)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    hits = [len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits)) / exact.shape[1]


def test_flat_equals_brute_force(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    index = ItemIndex("flat").build(vectors)
    assert (index.n_items, index.dim) == (N, DIM)
    ids, scores = index.search(queries, K)
    want_ids, want_scores = brute_force(vectors, queries, K)
    assert ids.shape == scores.shape == (100, K)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, want_ids)
    # float32 inner products: only the summation order may differ from the float64 reference
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize(
    ("params", "floor"),
    [
        ({"kind": "ivf", "nlist": 32, "nprobe": 24}, 0.9),
        ({"kind": "hnsw"}, 0.9),
    ],
)
def test_approximate_recall(
    params: dict[str, Any], floor: float, data: tuple[np.ndarray, np.ndarray]
) -> None:
    vectors, queries = data
    ids, scores = ItemIndex(**params).build(vectors).search(queries, K)
    exact, _ = brute_force(vectors, queries, K)
    assert recall(ids, exact) >= floor
    # the scores it returns are the true inner products of the ids it returns
    true = np.einsum("bd,bkd->bk", queries, vectors[ids])
    np.testing.assert_allclose(scores, true, rtol=1e-5, atol=1e-5)


def test_ivf_probing_every_cell_is_exact(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    index = ItemIndex("ivf", nlist=16, nprobe=16).build(vectors)
    assert index.index_.nlist == 16
    np.testing.assert_array_equal(index.search(queries, K)[0], brute_force(vectors, queries, K)[0])


def test_ivf_cuts_nlist_on_small_catalogues() -> None:
    vectors = np.random.default_rng(1).normal(size=(100, 8)).astype(np.float32)
    index = ItemIndex("ivf", nlist=64, nprobe=8).build(vectors)
    assert index.index_.nlist == 100 // 39
    assert index.index_.nprobe == 2  # cut to nlist as well: every cell is probed
    np.testing.assert_array_equal(
        index.search(vectors[:5], 3)[0], ItemIndex("flat").build(vectors).search(vectors[:5], 3)[0]
    )


@pytest.mark.parametrize("kind", INDEX_KINDS)
def test_bytes_round_trip_and_determinism(kind: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    index = ItemIndex(kind, nlist=32, seed=3).build(vectors)
    raw = index.to_bytes()
    assert raw.dtype == np.uint8 and raw.ndim == 1
    loaded = ItemIndex.from_bytes(raw, kind=kind, nlist=32, seed=3)
    assert (loaded.n_items, loaded.dim) == (N, DIM)
    for a, b in zip(index.search(queries, K), loaded.search(queries, K), strict=True):
        np.testing.assert_array_equal(a, b)
    # same seed and vectors: the same index, byte for byte
    np.testing.assert_array_equal(ItemIndex(kind, nlist=32, seed=3).build(vectors).to_bytes(), raw)


def test_from_bytes_checks_the_kind(data: tuple[np.ndarray, np.ndarray]) -> None:
    raw = ItemIndex("flat").build(data[0][:50]).to_bytes()
    with pytest.raises(ValueError, match="not a 'hnsw' index"):
        ItemIndex.from_bytes(raw, kind="hnsw")


@pytest.mark.parametrize("kind", INDEX_KINDS)
def test_padding_when_k_exceeds_the_catalogue(kind: str) -> None:
    vectors = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    ids, scores = ItemIndex(kind).build(vectors).search(vectors[:2], 8)
    assert ids.shape == scores.shape == (2, 8)
    assert np.all(ids[:, 5:] == -1) and np.all(np.isneginf(scores[:, 5:]))
    assert all(sorted(row.tolist()) == [0, 1, 2, 3, 4] for row in ids[:, :5])
    assert np.isfinite(scores[:, :5]).all()


def test_build_leaves_thread_settings_alone(data: tuple[np.ndarray, np.ndarray]) -> None:
    faiss_threads, torch_threads = faiss.omp_get_max_threads(), torch.get_num_threads()
    ItemIndex("hnsw").build(data[0][:200])
    assert faiss.omp_get_max_threads() == faiss_threads
    assert torch.get_num_threads() == torch_threads


def test_bad_inputs(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    with pytest.raises(ValueError, match="known kinds: flat, ivf, hnsw"):
        ItemIndex("annoy").build(vectors)
    with pytest.raises(ValueError, match=r"2-D \(n, d\)"):
        ItemIndex().build(vectors[0])
    with pytest.raises(ValueError, match="empty"):
        ItemIndex().build(np.zeros((0, DIM), np.float32))
    bad = vectors[:10].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="nan or inf"):
        ItemIndex().build(bad)
    with pytest.raises(RuntimeError, match="not built"):
        ItemIndex().search(queries, K)
    with pytest.raises(RuntimeError, match="not built"):
        _ = ItemIndex().n_items
    index = ItemIndex().build(vectors)
    with pytest.raises(ValueError, match="dimension 16, the index has 32"):
        index.search(queries[:, :16], K)
    with pytest.raises(ValueError, match="k must be positive"):
        index.search(queries, 0)
    empty_ids, empty_scores = index.search(np.zeros((0, DIM), np.float32), K)
    assert empty_ids.shape == empty_scores.shape == (0, K)


def test_params_are_stored_untouched() -> None:
    params = {
        "kind": "ivf",
        "nlist": 7,
        "nprobe": 99,
        "hnsw_m": 4,
        "ef_search": 5,
        "ef_construction": 6,
        "seed": 11,
    }
    index = ItemIndex(**params)
    assert index.get_params() == params
    index.build(np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))
    assert index.get_params() == params  # build adapts the FAISS index, not the parameters
    assert "ItemIndex(kind='ivf'" in repr(index)
