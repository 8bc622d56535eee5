"""``softmax``: a convex combination of normalised scores learnt with a listwise loss.

``fused = sum_m softmax(theta / temperature)_m * normalize(score_m)``. ``theta`` ``(M,)``
is learnt on validation with Adam (full batch, ``epochs`` steps) by minimising a listwise
softmax cross-entropy: for each user with relevant items,
``-mean_{i in R_u} log_softmax(scale * fused_u)[i]``, the softmax running over the user's
non-excluded items, and ``scale = softplus(rho)`` a learnt positive temperature of the
fused scores (it only shapes the loss; ranking ignores it). Excluded items are masked to
``-inf`` before the softmax and relevant items are never excluded, so the loss is finite.

Runs on CPU in float32; ``theta`` starts near zero (equal weights) with a small seeded
perturbation, so a fit is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mtlrec.fusion.base import FUSIONS, Fusion, FusionInput
from mtlrec.fusion.normalize import NORMALIZATIONS, normalized_sources


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return np.asarray(e / e.sum(), dtype=np.float64)


@FUSIONS.register("softmax")
class SoftmaxFusion(Fusion):
    """Softmax-weighted sum of per-user normalised source scores (listwise-trained)."""

    name = "softmax"
    example_params = {"epochs": 100, "lr": 0.1}
    theta_: np.ndarray
    scale_: float
    loss_: float

    def __init__(
        self,
        temperature: float = 1.0,
        normalization: str = "zscore",
        epochs: int = 200,
        lr: float = 0.05,
        seed: int = 0,
    ) -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {normalization!r}; known: {', '.join(NORMALIZATIONS)}"
            )
        if not temperature > 0 or epochs < 0 or not lr > 0:
            raise ValueError(
                f"need temperature > 0, epochs >= 0, lr > 0; got {temperature}, {epochs}, {lr}"
            )
        self.temperature = temperature
        self.normalization = normalization
        self.epochs = epochs
        self.lr = lr
        self.seed = seed

    def _normalized(self, inputs: FusionInput) -> list[np.ndarray]:
        return normalized_sources(inputs, self.sources_, self.normalization)

    def _fit(self, inputs: FusionInput, relevant: np.ndarray) -> None:
        import torch

        rows = np.flatnonzero((relevant & inputs.valid()).any(axis=1))
        inputs = inputs.subset(rows)
        valid = torch.from_numpy(inputs.valid())
        rel = torch.from_numpy(relevant[rows]) & valid
        parts = torch.from_numpy(np.stack(self._normalized(inputs)))  # (M, b, n) float32
        n_rel = rel.sum(dim=1).to(torch.float32)  # (b,), all >= 1
        generator = torch.Generator().manual_seed(self.seed)
        theta = (0.01 * torch.randn(len(self.sources_), generator=generator)).requires_grad_()
        rho = torch.tensor(math.log(math.e - 1.0)).requires_grad_()  # softplus(rho) = 1
        optimizer = torch.optim.Adam([theta, rho], lr=self.lr)
        loss = torch.tensor(float("nan"))
        for epoch in range(self.epochs + 1):
            w = torch.softmax(theta / self.temperature, dim=0)
            fused = torch.einsum("m,mbn->bn", w, parts)  # (b, n)
            logits = (torch.nn.functional.softplus(rho) * fused).masked_fill(~valid, -math.inf)
            log_p = torch.log_softmax(logits, dim=1)
            picked = torch.where(rel, log_p, torch.zeros_like(log_p))
            loss = -(picked.sum(dim=1) / n_rel).mean()
            if epoch == self.epochs:  # the last pass only measures the final loss
                break
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        self.theta_ = theta.detach().numpy().astype(np.float64)
        self.scale_ = float(torch.nn.functional.softplus(rho).item())
        self.loss_ = float(loss.item())

    def _fuse(self, inputs: FusionInput) -> np.ndarray:
        w = self._weight_vector()
        fused = np.zeros((inputs.n_users, inputs.n_items), dtype=np.float64)
        for wm, part in zip(w, self._normalized(inputs), strict=True):
            fused += wm * part.astype(np.float64)
        return fused

    def _weight_vector(self) -> np.ndarray:
        return _softmax(self.theta_ / self.temperature)

    def weights(self) -> dict[str, float]:
        """``softmax(theta / temperature)`` per source (sums to 1)."""
        return {m: float(w) for m, w in zip(self.sources_, self._weight_vector(), strict=True)}

    def _get_state(self) -> dict[str, Any]:
        return {"theta": self.theta_.tolist(), "scale": self.scale_, "loss": self.loss_}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self.theta_ = np.asarray(state["theta"], dtype=np.float64)
        self.scale_ = float(state["scale"])
        self.loss_ = float(state["loss"])
