"""``ServingModel``: one loaded artifact answering the API's questions.

Recommending (``recommend``), by who asks:

- **known user** (an id of the artifact): the fused cascade when the bundle has one
  (retrieve -> rank with the multi-task heads -> fuse -> MMR, :mod:`mtlrec.fusion.cascade`),
  else the multi-task heads over the whole catalogue (or, above ``full_rank_limit`` items,
  over FAISS / co-occurrence / popularity candidates), ranked by the run's ranking task;
- **unknown user with an ad-hoc history** (item ids): the sequential model ranks it as it
  ranks a known user (it reads histories); otherwise cold start by item-item similarity,
  half co-occurrence cosine over the training interactions (summed over the history,
  scaled to a maximum of 1), half cosine to the history's mean LM item embedding (the
  artifact's FAISS index); per-task predictions from the heads for the ``<unk>`` user with
  the history's profile (:mod:`mtlrec.serving.heads`);
- **nobody** (neither): popularity.

Filters apply to every path (:mod:`mtlrec.serving.filters`); a list shorter than ``k``
(few candidates left after filtering) is filled with the most popular allowed items.
Everything costly is precomputed at load (:mod:`mtlrec.serving.catalogue`); a request
only indexes, runs the model on its candidate pairs and sorts.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from mtlrec.baselines.base import Recommender
from mtlrec.export.artifact import Artifact
from mtlrec.fusion.cascade import Cascade, top_n
from mtlrec.fusion.rerank import MMRReranker
from mtlrec.serving import reasons
from mtlrec.serving.catalogue import Catalogue, build_catalogue
from mtlrec.serving.filters import exclusion
from mtlrec.serving.heads import SequentialHeadPredictor, head_predictor, row_scores
from mtlrec.serving.schemas import (
    HistoryResponse,
    PairScore,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    Retrieval,
    ScoreRequest,
    ScoreResponse,
    SimilarItem,
    SimilarResponse,
    Strategy,
    UsersResponse,
)

COLD_WEIGHTS = (0.5, 0.5)
"""Cold start: weights of co-occurrence and of embedding similarity."""


class UnknownItemsError(ValueError):
    """Item ids the artifact does not know, where they must be known (``/v1/score``)."""


@dataclass
class _Pick:
    """One listed item before per-task scores are attached."""

    row: int
    fused: float | None
    reason: str
    scores: dict[str, float] | None = None
    """Per-task head values when the path computed them already (the cascade's stage 2)."""
    sources: dict[str, float] = field(default_factory=dict)
    retrieved_by: list[tuple[str, int]] = field(default_factory=list)


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if np.isfinite(v)}


def _number(value: float) -> float | None:
    """``value`` as a float, None when it is not finite (JSON has no inf / nan)."""
    return float(value) if np.isfinite(value) else None


class _ScoredOnce:
    """A fitted retriever seen through one request: ``score(users)`` is computed once and
    kept (the cascade asks for it in stage 1, retrieval, and again in stage 2, as a fusion
    source); everything else (``retrieve``, ``name``, ...) is the retriever's own."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._users: np.ndarray | None = None
        self._scores: np.ndarray | None = None

    def score(self, users: Any) -> np.ndarray:
        users = np.asarray(users)
        if self._scores is None or self._users is None or not np.array_equal(users, self._users):
            self._users, self._scores = users.copy(), self._model.score(users)
        return self._scores

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class ServingModel:
    """A verified artifact plus what serving it needs (see the module docstring).

    ``candidates``: how many candidates each of the cold-start and large-catalogue sources
    proposes; ``full_rank_limit``: the largest catalogue the heads score whole per request.
    """

    def __init__(
        self, artifact: Artifact, *, candidates: int = 500, full_rank_limit: int = 50_000
    ) -> None:
        self.artifact = artifact
        self.candidates = candidates
        self.full_rank_limit = full_rank_limit
        self.catalogue: Catalogue = build_catalogue(artifact)
        self.heads = head_predictor(artifact)
        wanted = artifact.config.evaluation.ranking_task
        tasks = self.heads.tasks
        self.ranking_task: str | None = wanted if wanted in tasks else (tasks[0] if tasks else None)
        self.cascade: Cascade | None = None
        if artifact.fused is not None:  # the same cascade, its heads run by the predictor
            self.cascade = copy.copy(artifact.fused.cascade)
            if self.cascade.head_scorer is not None:
                self.cascade.head_scorer = self.heads.known
        self.loaded_at = time.time()

    # ------------------------------------------------------------------ identity
    @property
    def version(self) -> str:
        return str(self.artifact.manifest["version"])

    @property
    def name(self) -> str:
        return str(self.artifact.manifest["name"])

    @property
    def sequential(self) -> bool:
        """Whether the model encodes users from their histories (any history ranks)."""
        return isinstance(self.heads, SequentialHeadPredictor)

    @property
    def tasks(self) -> list[str]:
        return list(self.heads.tasks)

    # ------------------------------------------------------------------ recommend
    def recommend(self, request: RecommendRequest) -> RecommendResponse:
        """The top ``request.k`` items for a known user, an ad-hoc history or nobody."""
        catalogue = self.catalogue
        row = catalogue.user_row.get(request.user_id) if request.user_id else None
        given, ignored = catalogue.rows_of(request.history)
        strategy: Strategy
        if row is not None:
            history = catalogue.history(row)
            exclude = exclusion(catalogue, request.filters, np.union1d(history, given))
            if self.cascade is not None:
                strategy, picks = "fused", self._fused(row, history, exclude, request.k)
            elif self.ranking_task is not None:
                strategy, picks = "model", self._model(row, history, exclude, request.k)
            else:
                strategy, picks = "cold_history", self._cold(history, exclude, request.k)
        elif len(given) and self.sequential and self.ranking_task is not None:
            # the sequential model reads any history: it ranks a stranger as a known user
            history = given
            exclude = exclusion(catalogue, request.filters, given)
            strategy, picks = "model", self._model(None, given, exclude, request.k)
        elif len(given):
            history = given
            exclude = exclusion(catalogue, request.filters, given)
            strategy, picks = "cold_history", self._cold(given, exclude, request.k)
        else:
            history = given
            exclude = exclusion(catalogue, request.filters)
            strategy, picks = "popularity", []
        picks += self._popular(exclude, {p.row for p in picks}, request.k - len(picks))
        missing = [p for p in picks if p.scores is None]
        if missing:
            items = np.asarray([p.row for p in missing], dtype=np.int64)
            heads = self.heads.for_user(row, history)(items)
            for position, pick in enumerate(missing):
                pick.scores = row_scores(heads, position, self.tasks)
        return RecommendResponse(
            model_version=self.version,
            strategy=strategy,
            known_user=row is not None,
            ignored_history=ignored,
            items=[
                RecommendedItem(
                    rank=position + 1,
                    item_id=catalogue.item_ids[pick.row],
                    scores=pick.scores or {},
                    fused=pick.fused,
                    sources=pick.sources,
                    retrieved_by=[Retrieval(retriever=n, rank=r) for n, r in pick.retrieved_by],
                    reason=pick.reason,
                )
                for position, pick in enumerate(picks)
            ],
        )

    def _cascade_for(self, k: int) -> Cascade:
        """The cascade for one request: an MMR stage that keeps at least ``k`` items (the
        loaded one keeps the list length it was fitted with) and retrievers that score each
        user once (:class:`_ScoredOnce`); a shallow copy, so requests share nothing they
        write."""
        assert self.cascade is not None
        reranker = self.cascade.reranker
        cascade = copy.copy(self.cascade)
        if reranker is not None and k > reranker.k:
            cascade.reranker = MMRReranker(trade_off=reranker.trade_off, k=k)
        cascade.retrievers = {  # duck-typed: the cascade calls score / retrieve only
            n: cast(Recommender, _ScoredOnce(m)) for n, m in self.cascade.retrievers.items()
        }
        return cascade

    def _fused(self, row: int, history: np.ndarray, exclude: np.ndarray, k: int) -> list[_Pick]:
        cascade = self._cascade_for(k)
        out = cascade.run(np.array([row], dtype=np.int64), exclude[None, :], k)
        rows = [int(i) for i in out.items[0] if i >= 0]
        similar = reasons.nearest_history(self.catalogue, history, np.asarray(rows, np.int64))
        retrievers = set(cascade.retrievers)
        tasks = set(cascade.tasks)
        picks = []
        for item, near in zip(rows, similar, strict=True):
            found = out.candidates.retrieved_by(0, item)
            values = {n: float(m[0, item]) for n, m in out.inputs.scores.items()}
            picks.append(
                _Pick(
                    row=item,
                    fused=_number(out.fused[0, item]),
                    reason=reasons.fused_reason(found, reasons.similar_to(self.catalogue, near)),
                    scores=_finite({n: v for n, v in values.items() if n in tasks})
                    if tasks == set(self.tasks)
                    else None,
                    sources=_finite({n: v for n, v in values.items() if n in retrievers}),
                    retrieved_by=found,
                )
            )
        return picks

    def _model_candidates(self, history: np.ndarray, exclude: np.ndarray) -> np.ndarray:
        """Item rows the heads score for a known user: every allowed item, or (catalogues
        above ``full_rank_limit``) the union of embedding, co-occurrence and popularity
        candidates."""
        if self.catalogue.n_items <= self.full_rank_limit:
            return np.flatnonzero(~exclude)
        cold = self._cold_scores(history, exclude)
        pool = np.concatenate(
            [
                top_n(cold[None, :], self.candidates)[0],
                self.catalogue.popular[~exclude[self.catalogue.popular]][: self.candidates],
            ]
        )
        return np.unique(pool[pool >= 0])

    def _model(
        self, row: int | None, history: np.ndarray, exclude: np.ndarray, k: int
    ) -> list[_Pick]:
        """The model's ranking for the known user ``row``, or (``row`` None, the
        sequential model) for the request's ``history`` (item rows, oldest first).

        The candidates are ranked by the ranking task alone; every task's value is then
        computed for the ``k`` picks only (the sequential model's other heads read
        ``[state; item]`` through an MLP each: over a whole catalogue they cost several
        times the ranking's one matrix product). The sequential model encodes the user
        once for both (:meth:`SequentialHeadPredictor.for_user`)."""
        assert self.ranking_task is not None
        items = self._model_candidates(history, exclude)
        if not len(items):
            return []
        scorer = self.heads.for_user(row, history)
        scores = np.full(self.catalogue.n_items, -np.inf, dtype=np.float32)
        scores[items] = scorer(items, [self.ranking_task])[self.ranking_task]
        top = top_n(scores[None, :], k)[0]
        top = top[top >= 0]
        heads = scorer(top) if len(top) else {}
        similar = reasons.nearest_history(self.catalogue, history, top)
        return [
            _Pick(
                row=int(item),
                fused=_number(scores[item]),
                reason=reasons.model_reason(
                    self.ranking_task, float(scores[item]), reasons.similar_to(self.catalogue, n)
                ),
                scores=row_scores(heads, at, self.tasks),
            )
            for at, (item, n) in enumerate(zip(top, similar, strict=True))
        ]

    def _cold_scores(self, history: np.ndarray, exclude: np.ndarray) -> np.ndarray:
        """``(n_items,)`` cold-start scores of a history ``(h,)``: ``-inf`` where excluded or
        unrelated (see :data:`COLD_WEIGHTS`)."""
        catalogue = self.catalogue
        scores = np.zeros(catalogue.n_items, dtype=np.float32)
        if len(history):
            cooc = np.asarray(catalogue.similarity[history].sum(axis=0)).reshape(-1)
            if cooc.max() > 0:
                scores += COLD_WEIGHTS[0] * (cooc / cooc.max()).astype(np.float32)
            if catalogue.vectors is not None and catalogue.index is not None:
                query = catalogue.vectors[history].mean(axis=0)
                query /= max(float(np.linalg.norm(query)), 1e-12)
                reach = min(catalogue.n_items, self.candidates + len(history))
                ids, sims = catalogue.index.search(query[None, :], reach)
                found = ids[0] >= 0
                scores[ids[0][found]] += COLD_WEIGHTS[1] * np.maximum(sims[0][found], 0.0)
        return np.where((scores > 0) & ~exclude, scores, -np.inf).astype(np.float32)

    def _cold(self, history: np.ndarray, exclude: np.ndarray, k: int) -> list[_Pick]:
        scores = self._cold_scores(history, exclude)
        rows = [int(i) for i in top_n(scores[None, :], k)[0] if i >= 0]
        similar = reasons.nearest_history(self.catalogue, history, np.asarray(rows, np.int64))
        return [
            _Pick(
                row=item,
                fused=_number(scores[item]),
                reason=reasons.cold_reason(reasons.similar_to(self.catalogue, n)),
            )
            for item, n in zip(rows, similar, strict=True)
        ]

    def _popular(self, exclude: np.ndarray, taken: set[int], n: int) -> list[_Pick]:
        """Up to ``n`` of the most popular allowed items not already ``taken``."""
        if n <= 0:
            return []
        popular = self.catalogue.popular
        allowed = popular[~exclude[popular]]
        rows = [int(i) for i in allowed[: n + len(taken)] if int(i) not in taken][:n]
        return [
            _Pick(
                row=item,
                fused=None,
                reason=reasons.popular_reason(self.catalogue.popularity[item]),
            )
            for item in rows
        ]

    # ------------------------------------------------------------------ score
    def score(self, request: ScoreRequest) -> ScoreResponse:
        """Per-task predictions of each (user, item) pair; unknown users are scored as the
        ``<unk>`` user without history; unknown items raise :class:`UnknownItemsError`."""
        catalogue = self.catalogue
        unknown = sorted({p.item_id for p in request.pairs if p.item_id not in catalogue.item_row})
        if unknown:
            shown = ", ".join(repr(i) for i in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise UnknownItemsError(
                f"pairs name item ids this artifact does not know: {shown}{more}"
            )
        items = np.asarray([catalogue.item_row[p.item_id] for p in request.pairs], np.int64)
        users = np.asarray([catalogue.user_row.get(p.user_id, -1) for p in request.pairs], np.int64)
        known = users >= 0
        values: dict[str, np.ndarray] = {
            t: np.full(len(items), np.nan, dtype=np.float32) for t in self.tasks
        }
        if known.any():
            for task, got in self.heads.known(users[known], items[known]).items():
                values[task][known] = got
        if (~known).any():
            for task, got in self.heads.unknown(np.empty(0, np.int64), items[~known]).items():
                values[task][~known] = got
        return ScoreResponse(
            model_version=self.version,
            tasks=self.tasks,
            predictions=[
                PairScore(
                    user_id=pair.user_id,
                    item_id=pair.item_id,
                    known_user=bool(known[i]),
                    scores=row_scores(values, i, self.tasks),
                )
                for i, pair in enumerate(request.pairs)
            ],
        )

    # ------------------------------------------------------------------ items and users
    def similar(self, item_id: str, k: int) -> SimilarResponse:
        """The ``k`` items most similar to ``item_id`` (KeyError when unknown): cosine of LM
        item embeddings through the FAISS index, else co-occurrence cosine."""
        catalogue = self.catalogue
        row = catalogue.item_row.get(item_id)
        if row is None:
            raise KeyError(item_id)
        if catalogue.vectors is not None and catalogue.index is not None:
            reach = min(k + 1, catalogue.n_items)
            ids, sims = catalogue.index.search(catalogue.vectors[row][None, :], reach)
            pairs = [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True)]
            method = "embedding"
        else:
            start, end = catalogue.similarity.indptr[row], catalogue.similarity.indptr[row + 1]
            cols = catalogue.similarity.indices[start:end]
            vals = catalogue.similarity.data[start:end]
            order = np.argsort(-vals, kind="stable")
            pairs = [(int(cols[j]), float(vals[j])) for j in order]
            method = "cooccurrence"
        kept = [(i, s) for i, s in pairs if i >= 0 and i != row and np.isfinite(s)][:k]
        return SimilarResponse(
            model_version=self.version,
            item_id=item_id,
            method=method,  # type: ignore[arg-type]
            items=[SimilarItem(item_id=catalogue.item_ids[i], score=s) for i, s in kept],
        )

    def users(self, offset: int, limit: int, prefix: str | None) -> UsersResponse:
        """A page of the artifact's user ids (in artifact order), optionally by prefix."""
        ids = self.catalogue.user_ids
        if prefix:
            ids = [u for u in ids if u.startswith(prefix)]
        return UsersResponse(
            model_version=self.version,
            total=len(ids),
            offset=offset,
            users=ids[offset : offset + limit],
        )

    def history(self, user_id: str) -> HistoryResponse:
        """The item ids a known user interacted with (KeyError when unknown)."""
        row = self.catalogue.user_row.get(user_id)
        if row is None:
            raise KeyError(user_id)
        item_ids = self.catalogue.item_ids
        return HistoryResponse(
            model_version=self.version,
            user_id=user_id,
            items=[item_ids[i] for i in self.catalogue.history(row)],
        )

    # ------------------------------------------------------------------ warm-up
    def warm_up(self) -> dict[str, Any]:
        """Run each path once (first calls allocate and import); returns their timings."""
        timings: dict[str, Any] = {}
        catalogue = self.catalogue
        requests = {
            "known": RecommendRequest(user_id=catalogue.user_ids[0]),
            "cold_history": RecommendRequest(history=[catalogue.item_ids[0]]),
            "popularity": RecommendRequest(),
        }
        for name, request in requests.items():
            start = time.perf_counter()
            self.recommend(request)
            timings[name] = round(time.perf_counter() - start, 4)
        return timings
