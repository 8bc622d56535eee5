"""The cascade: retrieve -> rank with the multi-task model -> fuse -> re-rank for diversity.

For a batch of ``b`` users and a catalogue of ``n_items``:

1. **Retrieve.** Each retriever (a fitted :class:`~mtlrec.baselines.Recommender`) proposes
   its ``candidates`` best items the user may be shown (excluded items never count); a
   retriever with an approximate index (``retrieve``, the two-tower model's FAISS path)
   uses it. The union is the candidate set ``C`` ``(b, n_items)`` bool.
2. **Rank.** The multi-task model scores only the candidate pairs, one number per head
   (``head_scorer``); each retriever's own score on ``C`` may join as a source.
3. **Fuse.** A fitted :class:`~mtlrec.fusion.base.Fusion` combines the sources; items
   outside ``C`` are excluded, so the fused ranking is a ranking of the candidates.
4. **Re-rank.** Optionally, MMR picks the final ``k`` from the ``depth`` best fused items,
   trading relevance for intra-list diversity.

Nothing here reads data files or a config: the pipeline (:mod:`mtlrec.pipeline.fuse`) builds
a :class:`Cascade` from a run. The fusion is fitted on validation users by :meth:`fit`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtlrec.baselines.base import Recommender
from mtlrec.core.types import HeadScorer
from mtlrec.fusion.base import Fusion, FusionInput
from mtlrec.fusion.rerank import MMRReranker


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices ``(b, min(n, n_items))`` of each row's ``n`` highest finite scores, best first;
    slots beyond a row's finite entries hold ``-1``."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    values = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    items[~np.isfinite(np.take_along_axis(values, order, axis=1))] = -1
    return items


def _retrieve_one(model: Recommender, users: np.ndarray, n: int, exclude: np.ndarray) -> np.ndarray:
    """One retriever's ``n`` candidates per user ``(b, n)`` (``-1`` pads), excluded items
    removed; through the model's approximate index when it has one."""
    retrieve = getattr(model, "retrieve", None)
    if retrieve is None:
        scores = np.where(exclude, -np.inf, model.score(users)).astype(np.float32)
        return top_n(scores, n)
    extra = int(exclude.sum(axis=1).max()) if exclude.size else 0
    items, _ = retrieve(users, min(n + extra, exclude.shape[1]))
    items = np.asarray(items, dtype=np.int64)
    hidden = (items < 0) | np.take_along_axis(exclude, np.maximum(items, 0), axis=1)
    out = np.full((len(users), n), -1, dtype=np.int64)
    for row in range(len(users)):  # keep each row's first n allowed items, in order
        kept = items[row][~hidden[row]][:n]
        out[row, : kept.size] = kept
    return out


@dataclass(frozen=True)
class Candidates:
    """Stage 1 for ``b`` users: ``mask`` ``(b, n_items)`` bool (the union) and, per
    retriever, ``ranks[name]`` ``(b, n_items)`` int32: the 1-based position in that
    retriever's list (0 = not retrieved by it)."""

    mask: np.ndarray
    ranks: dict[str, np.ndarray]

    def retrieved_by(self, row: int, item: int) -> list[tuple[str, int]]:
        """``[(retriever, rank), ...]`` of one user row and item, best rank first."""
        found = [(name, int(r[row, item])) for name, r in self.ranks.items() if r[row, item]]
        return sorted(found, key=lambda pair: pair[1])


@dataclass(frozen=True)
class CascadeOutput:
    """What the cascade decided for ``b`` users.

    ``candidates`` (stage 1), ``inputs`` (the fusion sources on the candidates),
    ``fused`` ``(b, n_items)`` float32 (``-inf`` off the candidates and on excluded items),
    ``items`` ``(b, k)`` the final lists (``-1`` pads), ``reranked`` whether MMR chose them.
    """

    candidates: Candidates
    inputs: FusionInput
    fused: np.ndarray
    items: np.ndarray
    reranked: bool

    def ranking_scores(self) -> np.ndarray:
        """Scores ``(b, n_items)`` whose order is the final one: the ``k`` listed items first
        (in list order), then the other candidates by fused score, then ``-inf``."""
        fused = self.fused.astype(np.float64)
        finite = np.isfinite(fused)
        row_max = np.where(finite, fused, -np.inf).max(axis=1, keepdims=True)
        row_max = np.where(np.isfinite(row_max), row_max, 0.0)
        out = np.where(finite, fused - row_max - 1.0, -np.inf)  # every candidate <= -1
        k = self.items.shape[1]
        rows, cols = np.nonzero(self.items >= 0)
        out[rows, self.items[rows, cols]] = (k - cols).astype(np.float64)  # list on top
        return out.astype(np.float32)


class Cascade:
    """Retrieve -> rank -> fuse -> re-rank over fitted parts (see the module docstring).

    ``retrievers``: fitted recommenders by name; ``head_scorer`` and ``tasks``: the
    multi-task heads used as sources (``tasks`` empty: no model stage); ``candidates``: N
    per retriever; ``retriever_scores``: also use each retriever's score as a source;
    ``fusion``: the fusion method (fitted by :meth:`fit`); ``reranker`` with
    ``item_vectors`` ``(n_items, D)``: the optional MMR stage picking from the best
    ``depth`` fused items; ``item_popularity`` ``(n_items,)`` and ``user_activity``
    ``(n_users,)``: training counts for fusion features.
    """

    def __init__(
        self,
        retrievers: Mapping[str, Recommender],
        fusion: Fusion,
        *,
        head_scorer: HeadScorer | None = None,
        tasks: Sequence[str] = (),
        candidates: int = 200,
        retriever_scores: bool = True,
        reranker: MMRReranker | None = None,
        item_vectors: Any = None,
        depth: int = 50,
        item_popularity: np.ndarray | None = None,
        user_activity: np.ndarray | None = None,
    ) -> None:
        if not retrievers:
            raise ValueError("a cascade needs at least one retriever")
        if tasks and head_scorer is None:
            raise ValueError("tasks given without a head_scorer")
        if not tasks and not retriever_scores:
            raise ValueError("no fusion sources: give tasks or set retriever_scores")
        if reranker is not None and item_vectors is None:
            raise ValueError("the MMR re-ranker needs item_vectors")
        self.retrievers = dict(retrievers)
        self.fusion = fusion
        self.head_scorer = head_scorer
        self.tasks = tuple(tasks)
        self.candidates = candidates
        self.retriever_scores = retriever_scores
        self.reranker = reranker
        self.item_vectors = item_vectors
        self.depth = depth
        self.item_popularity = item_popularity
        self.user_activity = user_activity

    # ------------------------------------------------------------------ stages
    def retrieve(self, users: np.ndarray, exclude: np.ndarray) -> Candidates:
        """Stage 1 for user rows ``users`` ``(b,)`` with ``exclude`` ``(b, n_items)`` bool."""
        mask = np.zeros(exclude.shape, dtype=bool)
        ranks: dict[str, np.ndarray] = {}
        for name, model in self.retrievers.items():
            items = _retrieve_one(model, users, self.candidates, exclude)
            rank = np.zeros(exclude.shape, dtype=np.int32)
            rows, cols = np.nonzero(items >= 0)
            rank[rows, items[rows, cols]] = cols + 1
            ranks[name] = rank
            mask |= rank > 0
        return Candidates(mask, ranks)

    def sources(
        self, users: np.ndarray, candidates: Candidates, exclude: np.ndarray
    ) -> FusionInput:
        """Stage 2: every source's scores ``(b, n_items)`` on the candidates, ``-inf``
        elsewhere; the fusion excludes everything but the allowed candidates."""
        mask = candidates.mask & ~exclude
        scores: dict[str, np.ndarray] = {}
        if self.tasks:
            assert self.head_scorer is not None
            rows, items = np.nonzero(mask)
            heads = self.head_scorer(users[rows], items)
            for task in self.tasks:
                matrix = np.full(mask.shape, -np.inf, dtype=np.float32)
                matrix[rows, items] = heads[task]
                scores[task] = matrix
        if self.retriever_scores:
            for name, model in self.retrievers.items():
                scores[name] = np.where(mask, model.score(users), -np.inf).astype(np.float32)
        return FusionInput(
            scores=scores,
            exclude=~mask,
            user_activity=None if self.user_activity is None else self.user_activity[users],
            item_popularity=self.item_popularity,
        )

    def fit(self, users: np.ndarray, exclude: np.ndarray, relevant: np.ndarray) -> Cascade:
        """Fit the fusion on validation users ``(b,)``: ``exclude`` and ``relevant`` (their
        validation items) ``(b, n_items)`` bool. Relevant items that were not retrieved
        cannot be ranked and do not enter the fusion's objective."""
        candidates = self.retrieve(users, exclude)
        inputs = self.sources(users, candidates, exclude)
        self.fusion.fit(inputs, relevant & candidates.mask & ~exclude)
        return self

    def run(self, users: np.ndarray, exclude: np.ndarray, k: int) -> CascadeOutput:
        """All stages for ``users`` ``(b,)``; final lists of ``k`` items."""
        candidates = self.retrieve(users, exclude)
        inputs = self.sources(users, candidates, exclude)
        fused = self.fusion.fuse(inputs).astype(np.float32)
        fused[~candidates.mask | exclude] = -np.inf
        if self.reranker is None:
            return CascadeOutput(candidates, inputs, fused, top_n(fused, k), False)
        pool = top_n(fused, max(self.depth, k))  # (b, depth)
        relevance = np.where(
            pool >= 0, np.take_along_axis(fused, np.maximum(pool, 0), axis=1), -np.inf
        )
        items, _ = self.reranker.rerank(pool, relevance, self.item_vectors)
        items = np.asarray(items, dtype=np.int64)[:, :k]
        return CascadeOutput(candidates, inputs, fused, items, True)
