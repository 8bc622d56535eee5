"""The interaction matrices every ranking model and evaluation of one run shares.

Built once from a run's examples, so baselines, the multi-task model, every fusion and the
cascade see exactly the same split: training interactions to fit on, the items to exclude
per split (train for validation; train + validation for test), the relevant items of each
split with their cold-item flags, and training popularity / activity counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from mtlrec.core.types import ScoreFn
from mtlrec.data.examples import SPLITS, ExampleSet
from mtlrec.evaluation.ranking import RankingEvaluator


def _matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Binary CSR ``shape`` with a 1 at each (user, item) pair (duplicates count once)."""
    m = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


@dataclass(frozen=True)
class SplitPairs:
    """The held-out (user, item) pairs of one split: ``users``/``items`` ``(P,)`` rows and
    ``cold`` ``(P,)`` bool (the item has no training interaction)."""

    users: np.ndarray
    items: np.ndarray
    cold: np.ndarray

    @property
    def user_rows(self) -> np.ndarray:
        """Sorted distinct users of the split ``(U_split,)``."""
        return np.unique(self.users)


@dataclass(frozen=True)
class RankingData:
    """Shared ranking inputs of a run (all rows are the run's user / item rows).

    ``train`` is ``(n_users, n_items)`` binary; ``seen[split]`` holds the items excluded when
    ranking ``split`` (earlier splits); ``pairs[split]`` its relevant pairs and
    ``targets[split]`` the same pairs as a binary ``(n_users, n_items)`` matrix.
    """

    n_users: int
    n_items: int
    train: sp.csr_matrix
    seen: dict[str, sp.csr_matrix]
    pairs: dict[str, SplitPairs]
    targets: dict[str, sp.csr_matrix]
    item_popularity: np.ndarray = field(repr=False)
    """``(n_items,)`` training interactions per item."""
    user_activity: np.ndarray = field(repr=False)
    """``(n_users,)`` training interactions per user."""

    def relevant(self, split: str, users: np.ndarray) -> np.ndarray:
        """Bool ``(len(users), n_items)``: the items of ``split`` for each user in ``users``.

        Dense: ``len(users) * n_items`` bytes, so pass a chunk of users, not all of them, on a
        large catalogue (:func:`evaluate_ranking` never calls it; it keeps CSR rows)."""
        return np.asarray(self.targets[split][users].toarray() > 0)

    def excluded(self, split: str, users: np.ndarray) -> np.ndarray:
        """Bool ``(len(users), n_items)``: the items never to rank for ``split`` (dense, like
        :meth:`relevant`)."""
        return np.asarray(self.seen[split][users].toarray() > 0)


def ranking_data(examples: ExampleSet, n_users: int, n_items: int) -> RankingData:
    """:class:`RankingData` from interaction examples (``user_row``/``item_row`` features).

    Every example is an interaction, whatever its labels (a 1-star rating is still an
    interaction): relevance follows the ranking protocol of ``mtlrec train``'s evaluation.
    Pair examples (one per interacted ``(user, item)`` pair, whatever its behaviours) count
    the same way.
    """
    if examples.unit not in ("interaction", "pair"):
        raise ValueError(
            "ranking needs interaction or pair examples; this dataset's examples are "
            f"{examples.unit!r}"
        )
    users = examples.features["user_row"].numpy()
    items = examples.features["item_row"].numpy()
    split = examples.split.numpy()
    cold = examples.cold_item.numpy().astype(bool)
    shape = (n_users, n_items)
    seen = {
        name: _matrix(users[split < at], items[split < at], shape)
        for at, name in enumerate(SPLITS)
        if at > 0
    }
    pairs = {
        name: SplitPairs(users[split == at], items[split == at], cold[split == at])
        for at, name in enumerate(SPLITS)
    }
    train = seen["valid"]
    return RankingData(
        n_users=n_users,
        n_items=n_items,
        train=train,
        seen=seen,
        pairs=pairs,
        targets={name: _matrix(p.users, p.items, shape) for name, p in pairs.items()},
        item_popularity=np.asarray(train.sum(axis=0)).reshape(-1).astype(np.float32),
        user_activity=np.asarray(train.sum(axis=1)).reshape(-1).astype(np.float32),
    )


def rows_score_fn(users: np.ndarray, matrix: np.ndarray) -> ScoreFn:
    """A ranking score function over a precomputed ``(len(users), n_items)`` matrix whose
    row ``j`` belongs to user row ``users[j]`` (``users`` sorted)."""

    def score(user_idx: torch.Tensor) -> torch.Tensor:
        pos = np.searchsorted(users, user_idx.cpu().numpy())
        return torch.from_numpy(matrix[pos])

    return score


def evaluate_ranking(
    ranking: RankingData,
    split: str,
    score_fn: ScoreFn,
    ks: Sequence[int],
    diversity_vectors: Any = None,
    chunk: int = 256,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Full ranking over all items for the users of ``split`` with the shared evaluator:
    ``all``/``warm``/``cold`` slices, each with HR/Recall/NDCG/MRR and the beyond-accuracy
    metrics (coverage, novelty, ARP; intra-list diversity over ``diversity_vectors``
    ``(n_items, D)`` when given). Earlier splits' items are excluded.

    ``score_fn(user_rows (b,)) -> (b, n_items)`` is called with at most ``chunk`` users at a
    time and the relevant / excluded items are passed as ``(user, item)`` pairs, so memory
    is ``O(chunk * n_items)`` whatever the number of users. ``progress`` shows a rich
    progress bar over the split's users."""
    pairs = ranking.pairs[split]
    seen = ranking.seen[split].tocoo()
    evaluator = RankingEvaluator(
        score_fn,
        (pairs.users, pairs.items),
        (seen.row.astype(np.int64), seen.col.astype(np.int64)),
        cold=pairs.cold,
        n_items=ranking.n_items,
        ks=tuple(ks),
        chunk_size=chunk,
        item_popularity=ranking.item_popularity,
        item_vectors=diversity_vectors,
        popularity_users=ranking.n_users,
        progress=progress,
        description=f"ranking {split}",
    )
    return evaluator.evaluate()
