"""``linear``: a weighted sum of normalised scores, weights by coordinate ascent.

``fused = sum_m w_m * normalize(score_m)``. The weights live on a grid of ``grid`` values
in ``[0, 1]`` and are searched by coordinate ascent on validation NDCG@``k``: starting
from equal weights (1.0 each), each of ``rounds`` rounds visits the sources in sorted
order and, for each, tries every grid value with the others fixed, keeping the best
(a tie keeps the current value; all-zero weights are never tried). The search stops
early when a round changes nothing. Deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mtlrec.fusion.base import FUSIONS, Fusion, FusionInput
from mtlrec.fusion.normalize import NORMALIZATIONS, normalized_sources
from mtlrec.fusion.objective import ndcg_at_k


@FUSIONS.register("linear")
class LinearFusion(Fusion):
    """Weighted sum of per-user normalised source scores (weights learnt on validation)."""

    name = "linear"
    example_params = {"grid": 6, "rounds": 2}
    weights_: dict[str, float]
    val_ndcg_: float

    def __init__(
        self, normalization: str = "zscore", k: int = 10, grid: int = 11, rounds: int = 3
    ) -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {normalization!r}; known: {', '.join(NORMALIZATIONS)}"
            )
        if k <= 0 or grid < 2 or rounds < 0:
            raise ValueError(f"need k > 0, grid >= 2, rounds >= 0; got {k}, {grid}, {rounds}")
        self.normalization = normalization
        self.k = k
        self.grid = grid
        self.rounds = rounds

    def _normalized(self, inputs: FusionInput) -> list[np.ndarray]:
        return normalized_sources(inputs, self.sources_, self.normalization)

    def _fit(self, inputs: FusionInput, relevant: np.ndarray) -> None:
        # users without a relevant item do not change NDCG: leave them out of the search
        rows = np.flatnonzero((relevant & inputs.valid()).any(axis=1))
        inputs, relevant = inputs.subset(rows), relevant[rows]
        parts = [p.astype(np.float64) for p in self._normalized(inputs)]
        values = np.linspace(0.0, 1.0, self.grid)
        w = np.ones(len(parts))

        def score(weights: np.ndarray) -> float:
            fused = np.zeros(relevant.shape, dtype=np.float64)
            for wm, part in zip(weights, parts, strict=True):
                fused += wm * part
            return ndcg_at_k(fused, relevant, inputs.exclude, self.k)

        best = score(w)
        for _ in range(self.rounds):
            changed = False
            for m in range(len(parts)):
                for v in values:
                    if v == w[m]:
                        continue
                    trial = w.copy()
                    trial[m] = v
                    if not trial.any():
                        continue
                    value = score(trial)
                    if value > best + 1e-12:
                        best, w, changed = value, trial, True
            if not changed:
                break
        self.weights_ = {m: float(wm) for m, wm in zip(self.sources_, w, strict=True)}
        self.val_ndcg_ = best

    def _fuse(self, inputs: FusionInput) -> np.ndarray:
        fused = np.zeros((inputs.n_users, inputs.n_items), dtype=np.float64)
        for m, part in zip(self.sources_, self._normalized(inputs), strict=True):
            fused += self.weights_[m] * part.astype(np.float64)
        return fused

    def weights(self) -> dict[str, float]:
        """The learnt weights, normalised to sum 1."""
        total = sum(self.weights_.values())
        return {m: w / total for m, w in self.weights_.items()}

    def _get_state(self) -> dict[str, Any]:
        return {"weights": self.weights_, "val_ndcg": self.val_ndcg_}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self.weights_ = {str(m): float(w) for m, w in state["weights"].items()}
        self.val_ndcg_ = float(state["val_ndcg"])
