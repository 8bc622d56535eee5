"""``rrf``: reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009).

``fused[u, i] = sum_m w_m / (c + rank_m(u, i))`` with ``rank_m`` the 1-based rank of item
``i`` among user ``u``'s non-excluded items that source ``m`` scores (finite), by
decreasing score, ties broken by the lower item index. An item that a source does not
score (``-inf``) gets nothing from it. Only ranks are used, so sources on any scale mix.

``c=None`` picks ``c`` from ``c_grid`` by validation NDCG@``k`` (ties keep the earlier
value); ``source_weights=None`` weighs every source 1.0. (The parameter is not called
``weights``, which is the reporting method every fusion has.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtlrec.fusion.base import FUSIONS, Fusion, FusionInput
from mtlrec.fusion.normalize import ordinal_ranks, valid_mask
from mtlrec.fusion.objective import ndcg_at_k


def source_ranks(inputs: FusionInput, sources: Sequence[str]) -> list[np.ndarray]:
    """Per source in ``sources``, the 1-based ranks ``(b, n_items)`` int64 of each user's
    non-excluded finite-scored items (0 where the source does not rank the item)."""
    return [
        ordinal_ranks(inputs.scores[m], valid_mask(inputs.scores[m], inputs.exclude))
        for m in sources
    ]


def rrf_scores(ranks: Sequence[np.ndarray], weights: Sequence[float], c: float) -> np.ndarray:
    """``sum_m weights[m] / (c + ranks[m])`` ``(b, n)`` float64, 0 where a rank is 0."""
    out = np.zeros(ranks[0].shape, dtype=np.float64)
    for rank, w in zip(ranks, weights, strict=True):
        ranked = rank > 0
        out[ranked] += w / (c + rank[ranked])
    return out


@FUSIONS.register("rrf")
class RRFFusion(Fusion):
    """Reciprocal rank fusion with an optional per-source weight and a validated ``c``."""

    name = "rrf"
    example_params = {"source_weights": {"good": 1.0, "bad": 0.05, "anti": 0.0}}
    c_: float

    def __init__(
        self,
        c: float | None = None,
        source_weights: Mapping[str, float] | None = None,
        c_grid: Sequence[float] = (5, 10, 20, 40, 60, 100),
        k: int = 10,
    ) -> None:
        if c is not None and not c >= 0:
            raise ValueError(f"c must be non-negative, got {c}")
        if c is None and (not c_grid or any(not g >= 0 for g in c_grid)):
            raise ValueError(f"c_grid must hold non-negative values, got {c_grid!r}")
        if source_weights is not None and any(not w >= 0 for w in source_weights.values()):
            raise ValueError(f"source_weights must be non-negative, got {dict(source_weights)}")
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.c = c
        self.source_weights = source_weights
        self.c_grid = c_grid
        self.k = k

    def _weight_list(self) -> list[float]:
        if self.source_weights is None:
            return [1.0] * len(self.sources_)
        return [float(self.source_weights[m]) for m in self.sources_]

    def _fit(self, inputs: FusionInput, relevant: np.ndarray) -> None:
        if self.source_weights is not None and set(self.source_weights) != set(self.sources_):
            raise ValueError(
                f"rrf source_weights name {sorted(self.source_weights)} but the sources are "
                f"{list(self.sources_)}"
            )
        if self.c is not None:
            self.c_ = float(self.c)
            return
        rows = np.flatnonzero((relevant & inputs.valid()).any(axis=1))
        inputs = inputs.subset(rows)
        ranks = source_ranks(inputs, self.sources_)
        weights = self._weight_list()
        best_c, best = float(self.c_grid[0]), -np.inf
        for c in self.c_grid:
            value = ndcg_at_k(
                rrf_scores(ranks, weights, float(c)), relevant[rows], inputs.exclude, self.k
            )
            if value > best + 1e-12:
                best_c, best = float(c), value
        self.c_ = best_c

    def _fuse(self, inputs: FusionInput) -> np.ndarray:
        return rrf_scores(source_ranks(inputs, self.sources_), self._weight_list(), self.c_)

    def weights(self) -> dict[str, float]:
        """The source weights, normalised to sum 1."""
        w = self._weight_list()
        total = sum(w) or 1.0
        return {m: wm / total for m, wm in zip(self.sources_, w, strict=True)}

    def _get_state(self) -> dict[str, Any]:
        return {"c": self.c_}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self.c_ = float(state["c"])
