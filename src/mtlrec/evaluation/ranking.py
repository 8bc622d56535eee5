"""Full-ranking top-K evaluation: HR, Recall, NDCG and MRR at several cut-offs.

Every user is ranked against **all** items; the items to exclude (the user's training
interactions, plus validation ones when evaluating test) are scored ``-inf`` first.
Definitions, per user with relevant set ``R`` (after removing excluded items) and the
top-K list ``L``:

- ``hr@K``     1 if ``|R ∩ L| > 0`` else 0 (hit ratio);
- ``recall@K`` ``|R ∩ L| / |R|`` (the RecBole definition: divided by all relevant items,
  not by ``min(|R|, K)``, so it can stay below 1 when ``|R| > K``);
- ``ndcg@K``   binary-relevance DCG, ``sum 1/log2(rank + 1)`` over hits at 1-based ``rank``,
  divided by the ideal DCG of ``min(|R|, K)`` hits at the top (``sklearn.metrics.ndcg_score``
  with ``k=K`` on 0/1 relevance);
- ``mrr@K``    ``1 / rank`` of the first relevant item in ``L``, 0 if none.

Each metric is averaged over the users with at least one relevant item; ``n_users`` says
how many. A relevant item that is also excluded is *not* relevant: it can never be
recommended, so counting it would only lower every model's score by the same amount.
Items tied on score are ordered as ``torch.topk`` returns them (unspecified), so give
models continuous scores. Scores are processed ``chunk_size`` users at a time, so memory
is ``O(chunk_size * n_items)``.

With ``item_popularity`` (and optionally ``item_vectors``), :class:`RankingEvaluator` also
reports coverage, intra-list diversity, novelty and average popularity of the same top-K
lists; see :mod:`mtlrec.evaluation.beyond`.

Metrics from a *sampled* protocol (each positive against a few given negatives) are not
comparable with full-ranking ones and always carry a ``sampled_`` prefix; see
:func:`sampled_rank_metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeAlias

import numpy as np
import polars as pl
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import Tensor

from mtlrec.core.types import ScoreFn
from mtlrec.evaluation.beyond import BeyondAccuracy, ItemVectors

RANK_METRICS: tuple[str, ...] = ("hr", "recall", "ndcg", "mrr")
SAMPLED_METRICS: tuple[str, ...] = ("hr", "ndcg", "mrr")
DEFAULT_KS: tuple[int, ...] = (5, 10, 20)


class _HasCSR(Protocol):
    indptr: Any
    indices: Any


@dataclass(frozen=True)
class UserItems:
    """Item indices per user in CSR form: user ``u`` owns ``indices[indptr[u]:indptr[u+1]]``.

    ``indptr`` is ``(U + 1,)`` int64, ``indices`` ``(nnz,)`` int64. Duplicates are allowed
    (they mark the same item once).
    """

    indptr: Tensor
    indices: Tensor

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or self.indptr.numel() == 0 or int(self.indptr[0]) != 0:
            raise ValueError("indptr must be a non-empty 1-D tensor starting at 0")
        if int(self.indptr[-1]) != self.indices.numel():
            raise ValueError(
                f"indptr ends at {int(self.indptr[-1])} but there are "
                f"{self.indices.numel()} indices"
            )
        if bool((self.indptr[1:] < self.indptr[:-1]).any()):
            raise ValueError("indptr must be non-decreasing")

    @property
    def n_users(self) -> int:
        return int(self.indptr.numel()) - 1

    @classmethod
    def from_lists(cls, lists: Sequence[Sequence[int] | Tensor | np.ndarray]) -> UserItems:
        """From one sequence of item indices per user."""
        counts = torch.tensor([len(items) for items in lists], dtype=torch.int64)
        indptr = torch.zeros(len(lists) + 1, dtype=torch.int64)
        torch.cumsum(counts, 0, out=indptr[1:])
        parts = [
            items.detach().cpu().long().reshape(-1)
            if isinstance(items, Tensor)
            else torch.from_numpy(np.array(items, dtype=np.int64)).reshape(-1)
            for items in lists
        ]
        indices = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)
        return cls(indptr, indices)

    @classmethod
    def from_pairs(cls, users: Tensor, items: Tensor, n_users: int) -> UserItems:
        """From parallel ``(N,)`` user and item index arrays."""
        users = users.reshape(-1).long()
        items = items.reshape(-1).long()
        if users.shape != items.shape:
            raise ValueError(f"{users.numel()} users but {items.numel()} items")
        if users.numel() and (int(users.min()) < 0 or int(users.max()) >= n_users):
            raise ValueError(f"user indices must lie in [0, {n_users})")
        order = torch.argsort(users, stable=True)
        indptr = torch.zeros(n_users + 1, dtype=torch.int64)
        torch.cumsum(torch.bincount(users, minlength=n_users), 0, out=indptr[1:])
        return cls(indptr, items[order])

    def dense(self, rows: Tensor, n_items: int, device: torch.device | str = "cpu") -> Tensor:
        """Bool mask ``(len(rows), n_items)``: True at the items of each user in ``rows``.

        Users beyond :attr:`n_users` own no items."""
        rows = rows.reshape(-1).long().cpu()
        out = torch.zeros(rows.numel(), n_items, dtype=torch.bool, device=device)
        known = rows < self.n_users
        safe = torch.where(known, rows, torch.zeros_like(rows))
        starts = self.indptr[safe]
        counts = torch.where(known, self.indptr[safe + 1] - starts, torch.zeros_like(starts))
        total = int(counts.sum())
        if total == 0:
            return out
        row_ids = torch.repeat_interleave(torch.arange(rows.numel()), counts)
        first = torch.repeat_interleave(starts, counts)
        offsets = torch.arange(total) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        cols = self.indices[first + offsets]
        if int(cols.min()) < 0 or int(cols.max()) >= n_items:
            raise ValueError(f"item indices must lie in [0, {n_items})")
        out[row_ids.to(device), cols.to(device)] = True
        return out


UserItemsLike: TypeAlias = "UserItems | _HasCSR | Sequence[Sequence[int] | Tensor | np.ndarray]"
"""A :class:`UserItems`, anything with CSR ``indptr``/``indices`` (a scipy sparse matrix),
or one sequence of item indices per user."""


def as_user_items(value: UserItemsLike) -> UserItems:
    """Normalise any :data:`UserItemsLike` to :class:`UserItems`."""
    if isinstance(value, UserItems):
        return value
    if hasattr(value, "indptr") and hasattr(value, "indices"):
        return UserItems(
            torch.from_numpy(np.array(value.indptr, dtype=np.int64)),
            torch.from_numpy(np.array(value.indices, dtype=np.int64)),
        )
    return UserItems.from_lists(value)


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    out = tuple(int(k) for k in ks)
    if not out or any(k <= 0 for k in out):
        raise ValueError(f"ks must be positive integers, got {out}")
    return out


def _discounts(n: int, device: torch.device) -> Tensor:
    """``1 / log2(rank + 1)`` for 1-based ranks ``1..n`` (float64)."""
    return 1.0 / torch.log2(torch.arange(2, n + 2, dtype=torch.float64, device=device))


class RankedChunk(NamedTuple):
    """One chunk of users ranked by :func:`rank_chunk`.

    ``values`` ``{"hr@K": (b,) float64, ...}``; ``n_relevant`` ``(b,)`` relevant, non-excluded
    items per user (rows with 0 carry no meaningful value and are left out of averages);
    ``top`` ``(b, min(max(ks), I))`` int64 the ranked items, best first, with ``-1`` where the
    ranked item was excluded (only when fewer than ``k`` items were left to recommend).
    """

    values: dict[str, Tensor]
    n_relevant: Tensor
    top: Tensor


def per_user_metrics(
    scores: Tensor, relevant: Tensor, excluded: Tensor | None, ks: Sequence[int]
) -> tuple[dict[str, Tensor], Tensor]:
    """Top-K metrics of each user of one chunk.

    ``scores`` ``(b, I)``, ``relevant`` and ``excluded`` bool ``(b, I)``. Returns
    ``({"hr@K": (b,), ...}, n_relevant (b,))``; rows with ``n_relevant == 0`` have no
    meaningful value (they are 0) and must be left out of averages. :func:`rank_chunk`
    also returns the ranked top-K items.
    """
    chunk = rank_chunk(scores, relevant, excluded, ks)
    return chunk.values, chunk.n_relevant


def rank_chunk(
    scores: Tensor, relevant: Tensor, excluded: Tensor | None, ks: Sequence[int]
) -> RankedChunk:
    """:func:`per_user_metrics` plus the top ``max(ks)`` items each user was shown."""
    ks = _check_ks(ks)
    if scores.ndim != 2 or relevant.shape != scores.shape:
        raise ValueError(
            f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} "
            "must both be (b, n_items)"
        )
    if bool(torch.isnan(scores).any()):
        raise ValueError("scores contain nan")
    relevant = relevant.to(device=scores.device, dtype=torch.bool)
    if excluded is not None:
        excluded = excluded.to(device=scores.device, dtype=torch.bool)
        relevant = relevant & ~excluded
        scores = scores.masked_fill(excluded, float("-inf"))
    n_items = scores.shape[1]
    k_max = min(max(ks), n_items)
    top = torch.topk(scores, k_max, dim=1, sorted=True).indices  # (b, k_max)
    hits = relevant.gather(1, top)  # (b, k_max); an excluded item is never a hit
    n_rel = relevant.sum(dim=1)  # (b,)
    discount = _discounts(k_max, scores.device)
    ideal = torch.cumsum(discount, 0)  # ideal[j] = IDCG with j + 1 relevant items
    gains = hits.to(torch.float64) * discount
    out: dict[str, dict[int, Tensor]] = {m: {} for m in RANK_METRICS}
    safe_rel = n_rel.clamp(min=1).to(torch.float64)
    for k in ks:
        kk = min(k, k_max)
        h = hits[:, :kk]
        n_hits = h.sum(dim=1)
        first = h.to(torch.int8).argmax(dim=1)  # first hit (0 when none; masked below)
        out["hr"][k] = (n_hits > 0).to(torch.float64)
        out["recall"][k] = n_hits.to(torch.float64) / safe_rel
        idcg = ideal[(n_rel.clamp(min=1, max=kk) - 1)]
        out["ndcg"][k] = gains[:, :kk].sum(dim=1) / idcg
        out["mrr"][k] = torch.where(
            n_hits > 0, 1.0 / (first.to(torch.float64) + 1.0), torch.zeros_like(safe_rel)
        )
    flat = {f"{m}@{k}": out[m][k] for m in RANK_METRICS for k in ks}
    if excluded is not None:
        top = top.masked_fill(excluded.gather(1, top), -1)
    return RankedChunk(flat, n_rel, top)


class TopKMetrics:
    """Accumulator of full-ranking metrics over user chunks (``reset/update/compute``)."""

    def __init__(self, ks: Sequence[int] = DEFAULT_KS) -> None:
        self.ks = ks
        self.reset()

    def reset(self) -> None:
        self._sums: dict[str, float] = {
            f"{m}@{k}": 0.0 for m in RANK_METRICS for k in _check_ks(self.ks)
        }
        self._users = 0

    def update(self, scores: Tensor, relevant: Tensor, excluded: Tensor | None = None) -> None:
        """Add a chunk: ``scores`` ``(b, I)``, ``relevant``/``excluded`` bool ``(b, I)``."""
        self.add(rank_chunk(scores, relevant, excluded, self.ks))

    def add(self, chunk: RankedChunk) -> None:
        """Add a chunk already ranked by :func:`rank_chunk` (with this accumulator's ``ks``)."""
        valid = chunk.n_relevant > 0
        self._users += int(valid.sum())
        for name, v in chunk.values.items():
            self._sums[name] += float(v[valid].sum())

    def compute(self) -> dict[str, float]:
        """``{"n_users": users with a relevant item, "hr@5": mean, ...}`` (``nan`` if none)."""
        if self._users == 0:
            return {"n_users": 0, **dict.fromkeys(self._sums, float("nan"))}
        return {"n_users": self._users, **{k: s / self._users for k, s in self._sums.items()}}


def rank_metrics(
    scores: Tensor,
    targets: UserItemsLike,
    exclude: UserItemsLike | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Full-ranking HR/Recall/NDCG/MRR at each K of ``ks`` for a score matrix ``(U, I)``.

    ``targets`` holds the relevant item indices of each of the ``U`` users, ``exclude`` the
    items to mask out (training items); both as :data:`UserItemsLike` with ``U`` rows (a CSR
    with fewer rows means the missing users own nothing). Returns ``{"n_users": ...,
    "hr@5": ..., ...}`` averaged over users with at least one relevant, non-excluded item.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (U, I), got {tuple(scores.shape)}")
    n_users, n_items = scores.shape
    target_items = as_user_items(targets)
    excluded_items = None if exclude is None else as_user_items(exclude)
    acc = TopKMetrics(ks)
    for start in range(0, n_users, chunk_size):
        rows = torch.arange(start, min(start + chunk_size, n_users))
        chunk = scores[start : start + rows.numel()]
        relevant = target_items.dense(rows, n_items, scores.device)
        excluded = (
            None if excluded_items is None else excluded_items.dense(rows, n_items, scores.device)
        )
        acc.update(chunk, relevant, excluded)
    return acc.compute()


def sampled_rank_metrics(
    positive_scores: Tensor, negative_scores: Tensor, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Sampled protocol: each positive ``(P,)`` ranked against its own negatives ``(P, M)``.

    The positive's 0-based rank is the number of negatives scoring **at least** as high
    (ties count against the positive, so a constant scorer earns nothing). Per positive:
    hit if ``rank < K``, NDCG ``1/log2(rank + 2)`` and reciprocal rank ``1/(rank + 1)`` when a
    hit, 0 otherwise; averaged over positives. Keys carry a ``sampled_`` prefix
    (``sampled_hr@10``) because these numbers are not comparable with full ranking; pad
    missing negatives with ``-inf``.
    """
    ks = _check_ks(ks)
    pos = positive_scores.reshape(-1, 1).to(torch.float64)
    neg = negative_scores.to(torch.float64)
    if neg.ndim != 2 or neg.shape[0] != pos.shape[0]:
        raise ValueError(f"negative_scores must be (P, M) with P = {pos.shape[0]}")
    if bool(torch.isnan(pos).any() or torch.isnan(neg).any()):
        raise ValueError("scores contain nan")
    n = int(pos.shape[0])
    out: dict[str, float] = {"n_positives": n}
    rank = (neg >= pos).sum(dim=1).to(torch.float64)  # 0-based
    for metric in SAMPLED_METRICS:
        for k in ks:
            hit = rank < k
            if metric == "hr":
                value = hit.to(torch.float64)
            elif metric == "ndcg":
                value = torch.where(hit, 1.0 / torch.log2(rank + 2.0), torch.zeros_like(rank))
            else:
                value = torch.where(hit, 1.0 / (rank + 1.0), torch.zeros_like(rank))
            out[f"sampled_{metric}@{k}"] = float(value.mean()) if n else float("nan")
    return out


ArrayLike: TypeAlias = "Tensor | np.ndarray | pl.Series | Sequence[int] | Sequence[bool]"
Pairs: TypeAlias = "pl.DataFrame | tuple[ArrayLike, ArrayLike]"
"""User-item pairs: a polars frame with user and item index columns, or ``(users, items)``."""


def _tensor(values: ArrayLike, dtype: torch.dtype) -> Tensor:
    if isinstance(values, Tensor):
        return values.detach().cpu().to(dtype).reshape(-1)
    if isinstance(values, pl.Series):
        values = values.to_numpy()
    return torch.from_numpy(np.array(values)).to(dtype).reshape(-1)


def _pairs(pairs: Pairs, user_col: str, item_col: str) -> tuple[Tensor, Tensor]:
    if isinstance(pairs, pl.DataFrame):
        missing = [c for c in (user_col, item_col) if c not in pairs.columns]
        if missing:
            raise ValueError(f"pairs frame lacks column(s) {missing}; has {pairs.columns}")
        return _tensor(pairs[user_col], torch.int64), _tensor(pairs[item_col], torch.int64)
    users, items = pairs
    return _tensor(users, torch.int64), _tensor(items, torch.int64)


class RankingEvaluator:
    """Full-ranking evaluation of a scoring function over the users of a test set.

    ``score_fn(user_idx (b,)) -> (b, n_items)`` scores every item for ``chunk_size`` users
    at a time. ``test`` holds the held-out (user, item) pairs, ``train`` the pairs to mask
    out (pass train and validation pairs together when evaluating test). Both are polars
    frames with ``user_col``/``item_col`` index columns or ``(users, items)`` arrays.

    ``cold`` optionally flags each test pair (a bool array, or the name of a bool column of
    the ``test`` frame such as ``cold_item``). :meth:`evaluate` then reports three rows:
    ``all`` (every test pair relevant), ``warm`` and ``cold`` (only that slice's pairs
    relevant). In a slice the user's test positives of the *other* slice are masked out
    like training items, so a slice measures how its own positives rank against
    non-relevant items; users without a positive in a slice are not averaged in it.

    ``item_popularity`` ``(n_items,)`` (training interaction counts, e.g. from
    :func:`mtlrec.evaluation.beyond.popularity_counts`) adds the beyond-accuracy metrics of
    :class:`~mtlrec.evaluation.beyond.BeyondAccuracy` to every slice: ``coverage@K``,
    ``novelty@K``, ``arp@K`` and, with ``item_vectors`` ``(n_items, D)`` (dense or scipy
    sparse), ``diversity@K``. They are computed on the top-K lists that slice ranked (excluded
    items never count), over the same users the slice averages; ``coverage@K`` is the share
    of the catalogue those users were shown. ``popularity_users`` is the user count of the
    novelty formula (default: the evaluator's user space, ``max user index + 1`` over test
    and train pairs).

    Memory is ``O(chunk_size * n_items)`` whatever the number of users: the held-out and
    excluded items stay in CSR form (:class:`UserItems`, ``O(pairs)``) and only the current
    chunk's rows become dense ``(chunk_size, n_items)`` masks; ``score_fn`` is only ever
    called with at most ``chunk_size`` users. ``progress`` shows a rich progress bar over the
    users (off by default), labelled ``description``.
    """

    def __init__(
        self,
        score_fn: ScoreFn,
        test: Pairs,
        train: Pairs | None = None,
        *,
        cold: ArrayLike | str | None = None,
        n_items: int | None = None,
        ks: Sequence[int] = DEFAULT_KS,
        chunk_size: int = 1024,
        user_col: str = "user_idx",
        item_col: str = "item_idx",
        item_popularity: ArrayLike | None = None,
        item_vectors: ItemVectors | None = None,
        popularity_users: int | None = None,
        progress: bool = False,
        description: str = "ranking",
    ) -> None:
        self.score_fn = score_fn
        self.test = test
        self.train = train
        self.cold = cold
        self.n_items = n_items
        self.ks = ks
        self.chunk_size = chunk_size
        self.user_col = user_col
        self.item_col = item_col
        self.item_popularity = item_popularity
        self.item_vectors = item_vectors
        self.popularity_users = popularity_users
        self.progress = progress
        self.description = description

    def _progress_bar(self) -> Progress:
        """A rich progress bar over users (disabled unless ``progress``)."""
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("users"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not self.progress,
        )

    def _cold_flags(self, n_pairs: int) -> Tensor | None:
        if self.cold is None:
            return None
        if isinstance(self.cold, str):
            if not isinstance(self.test, pl.DataFrame):
                raise ValueError("cold given as a column name needs test as a polars frame")
            flags = _tensor(self.test[self.cold], torch.bool)
        else:
            flags = _tensor(self.cold, torch.bool)
        if flags.numel() != n_pairs:
            raise ValueError(f"cold has {flags.numel()} flags for {n_pairs} test pairs")
        return flags

    def evaluate(self) -> dict[str, dict[str, float]]:
        """``{"all": metrics}`` plus ``"warm"`` and ``"cold"`` when ``cold`` was given; each
        ``metrics`` is ``{"n_users": ..., "hr@5": ..., ...}`` as from :func:`rank_metrics`,
        followed by ``coverage@K``, ``diversity@K``, ``novelty@K`` and ``arp@K`` when
        ``item_popularity`` was given."""
        ks = _check_ks(self.ks)
        test_users, test_items = _pairs(self.test, self.user_col, self.item_col)
        cold = self._cold_flags(test_users.numel())
        if self.train is not None:
            train_users, train_items = _pairs(self.train, self.user_col, self.item_col)
        else:
            train_users = train_items = torch.zeros(0, dtype=torch.int64)
        n_users = (
            int(torch.cat([test_users, train_users, torch.zeros(1, dtype=torch.int64)]).max()) + 1
        )
        seen = UserItems.from_pairs(train_users, train_items, n_users)

        slices: dict[str, tuple[UserItems, UserItems | None]] = {
            "all": (UserItems.from_pairs(test_users, test_items, n_users), None)
        }
        if cold is not None:
            for name, keep in (("warm", ~cold), ("cold", cold)):
                slices[name] = (
                    UserItems.from_pairs(test_users[keep], test_items[keep], n_users),
                    UserItems.from_pairs(test_users[~keep], test_items[~keep], n_users),
                )
        accumulators = {name: TopKMetrics(ks) for name in slices}
        beyond: dict[str, BeyondAccuracy] = {}
        popularity = None
        if self.item_popularity is not None:
            popularity = _tensor(self.item_popularity, torch.float64).numpy()
            if self.n_items is not None and popularity.size != self.n_items:
                raise ValueError(
                    f"item_popularity has {popularity.size} items, n_items is {self.n_items}"
                )
            beyond = {
                name: BeyondAccuracy(
                    ks,
                    popularity,
                    n_users if self.popularity_users is None else self.popularity_users,
                    item_vectors=self.item_vectors,
                )
                for name in slices
            }

        users = torch.unique(test_users)  # sorted
        n_items = self.n_items
        with self._progress_bar() as bar:
            progress_task = bar.add_task(self.description, total=int(users.numel()))
            for start in range(0, users.numel(), self.chunk_size):
                rows = users[start : start + self.chunk_size]  # (b,), b <= chunk_size
                scores = self.score_fn(rows)  # (b, n_items)
                if n_items is None:
                    n_items = int(scores.shape[-1])
                if scores.shape != (rows.numel(), n_items):
                    raise ValueError(
                        f"score_fn returned {tuple(scores.shape)} for {rows.numel()} "
                        f"users; expected ({rows.numel()}, {n_items})"
                    )
                if popularity is not None and popularity.size != n_items:
                    raise ValueError(
                        f"item_popularity has {popularity.size} items, scores have {n_items}"
                    )
                device = scores.device
                excluded = seen.dense(rows, n_items, device)  # (b, n_items) bool
                for name, (relevant, others) in slices.items():
                    mask = (
                        excluded
                        if others is None
                        else excluded | others.dense(rows, n_items, device)
                    )
                    chunk = rank_chunk(scores, relevant.dense(rows, n_items, device), mask, ks)
                    accumulators[name].add(chunk)
                    if name in beyond:
                        beyond[name].update(chunk.top[chunk.n_relevant > 0])
                bar.advance(progress_task, int(rows.numel()))
        return {
            name: {**acc.compute(), **(beyond[name].compute() if name in beyond else {})}
            for name, acc in accumulators.items()
        }


def scores_from_matrix(matrix: Tensor) -> ScoreFn:
    """A :data:`ScoreFn` that reads rows of a precomputed ``(U, I)`` score matrix."""

    def score_fn(user_idx: Tensor) -> Tensor:
        return matrix[user_idx.to(matrix.device)]

    return score_fn


def merge_slices(
    results: Mapping[str, Mapping[str, float]], prefix: str = "ranking"
) -> dict[str, dict[str, float]]:
    """``{"all": m, "cold": m2}`` -> ``{"ranking/all": m, "ranking/cold": m2}``: ranking rows
    ready to sit beside task rows in a split's results for :mod:`mtlrec.evaluation.results`."""
    return {f"{prefix}/{name}": dict(metrics) for name, metrics in results.items()}
