"""What the service precomputes from an artifact once, at load time.

Requests then only index into these: the id -> row maps, every user's interactions (all
splits: what a deployed service has seen), training popularity and its order, an item-item
co-occurrence similarity (cosine over the training interactions, sparse), L2-normalised item
embeddings with the artifact's FAISS index, and the item attribute tables with their
vocabularies (for attribute filters).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from mtlrec.export.artifact import Artifact
from mtlrec.retrieval.faiss_index import ItemIndex


def cooccurrence_similarity(train: sp.csr_matrix) -> sp.csr_matrix:
    """Item-item cosine similarity ``(n_items, n_items)`` CSR of binary ``train``
    ``(n_users, n_items)``: ``|U_i & U_j| / sqrt(|U_i| |U_j|)``, zero diagonal."""
    binary = (train > 0).astype(np.float32).tocsc()
    norms = np.sqrt(np.asarray(binary.sum(axis=0)).reshape(-1))
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    scaled = binary @ sp.diags(inverse.astype(np.float32))
    similarity = (scaled.T @ scaled).tocsr()
    similarity.setdiag(0.0)
    similarity.eliminate_zeros()
    return similarity.astype(np.float32)


@dataclass
class ItemAttribute:
    """One categorical item column: ``values`` ``(n_items, L)`` vocabulary indices (0 =
    unknown / padding; ``L = 1`` for single-valued columns) and its vocabulary."""

    values: np.ndarray
    index: dict[str, int]


@dataclass
class Catalogue:
    """Precomputed lookups of one artifact (see the module docstring).

    ``seen`` ``(n_users, n_items)`` CSR of every interaction; ``popularity`` ``(n_items,)``
    training interactions; ``popular`` item rows by popularity, most popular first;
    ``similarity`` item-item co-occurrence cosine CSR; ``vectors`` ``(n_items, D)``
    L2-normalised item embeddings (None without); ``index`` the FAISS index over them.
    """

    user_ids: list[str]
    item_ids: list[str]
    user_row: dict[str, int]
    item_row: dict[str, int]
    seen: sp.csr_matrix
    popularity: np.ndarray
    popular: np.ndarray
    similarity: sp.csr_matrix
    vectors: np.ndarray | None
    index: ItemIndex | None
    attributes: dict[str, ItemAttribute] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def history(self, row: int) -> np.ndarray:
        """Item rows ``(h,)`` a known user interacted with, in the artifact's order."""
        start, end = self.seen.indptr[row], self.seen.indptr[row + 1]
        return np.asarray(self.seen.indices[start:end], dtype=np.int64)

    def rows_of(self, item_ids: list[str]) -> tuple[np.ndarray, list[str]]:
        """Item rows of the known ids (first occurrence, order kept) and the unknown ids."""
        rows: list[int] = []
        unknown: list[str] = []
        for item in dict.fromkeys(item_ids):
            row = self.item_row.get(item)
            if row is None:
                unknown.append(item)
            else:
                rows.append(row)
        return np.asarray(rows, dtype=np.int64), unknown


def _attributes(artifact: Artifact) -> dict[str, ItemAttribute]:
    """Categorical item columns with a vocabulary in the artifact's feature space."""
    if artifact.features is None:
        return {}
    out: dict[str, ItemAttribute] = {}
    for name, vocabulary in artifact.features.categorical.items():
        table = artifact.entities.tables.get(name)
        if not name.startswith("items.") or table is None or table.dtype.is_floating_point:
            continue
        values = table.numpy().astype(np.int64)
        out[name.removeprefix("items.")] = ItemAttribute(
            values.reshape(len(values), -1), {t: i for i, t in enumerate(vocabulary.tokens)}
        )
    return out


def build_catalogue(artifact: Artifact) -> Catalogue:
    """Everything :class:`Catalogue` holds, from a loaded artifact (interaction examples
    needed: a bundle without them cannot recommend)."""
    ranking = artifact.ranking
    if ranking is None:
        raise ValueError(
            f"{artifact.path}: the service needs an artifact of interaction examples "
            f"(user-item pairs); this one's examples are {artifact.parts.unit!r}"
        )
    entities = artifact.entities
    seen = (ranking.seen["test"] + ranking.targets["test"]).tocsr()
    seen.data[:] = 1.0
    popularity = np.asarray(ranking.item_popularity, dtype=np.float32)
    vectors = None
    if artifact.item_embeddings is not None:
        raw = np.asarray(artifact.item_embeddings, dtype=np.float32)
        vectors = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    return Catalogue(
        user_ids=list(entities.user_ids),
        item_ids=list(entities.item_ids),
        user_row={u: i for i, u in enumerate(entities.user_ids)},
        item_row={item: i for i, item in enumerate(entities.item_ids)},
        seen=seen,
        popularity=popularity,
        popular=np.argsort(-popularity, kind="stable").astype(np.int64),
        similarity=cooccurrence_similarity(ranking.train),
        vectors=vectors,
        index=artifact.item_index,
        attributes=_attributes(artifact),
    )
