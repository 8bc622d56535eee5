"""Dynamic Weight Average.

Liu, Johns and Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019.

With ``r_k = L_k(t-1) / L_k(t-2)`` the ratio of task ``k``'s mean training loss over the
last two epochs, epoch ``t`` uses

    w_k = K * exp(r_k / T) / sum_i exp(r_i / T)

so the weights sum to ``K``, the number of tasks; tasks whose loss falls slower get more
weight. The first two epochs use ``w_k = 1``. The trainer reports the epoch means through
:meth:`~mtlrec.weighting.base.Weighting.end_epoch`. A task without two recorded epochs
(absent from some epochs' means) keeps weight 1 and the softmax runs over the other
tasks, scaled by their number, so the weights still sum to ``K``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from mtlrec.weighting.base import WEIGHTINGS, LossWeighting, WeightingContext


@WEIGHTINGS.register("dwa")
class DynamicWeightAverage(LossWeighting):
    """DWA with softmax temperature ``temperature`` (the paper's ``T = 2``)."""

    loss_history: Tensor

    def __init__(self, tasks: Sequence[str], temperature: float = 2.0) -> None:
        super().__init__(tasks)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        # Row 0: mean loss two epochs ago, row 1: last epoch; NaN until recorded.
        self.register_buffer(
            "loss_history", torch.full((2, len(self.tasks)), float("nan"), dtype=torch.float64)
        )

    def end_epoch(self, mean_losses: Mapping[str, float]) -> None:
        for task in self.present(mean_losses) if mean_losses else ():
            k = self.tasks.index(task)
            self.loss_history[0, k] = self.loss_history[1, k]
            self.loss_history[1, k] = float(mean_losses[task])

    def weights(self) -> dict[str, float]:
        older, last = self.loss_history
        known = torch.isfinite(older) & torch.isfinite(last) & (older > 0)
        w = torch.ones_like(last)
        if known.any():
            ratios = last[known] / older[known]
            w[known] = int(known.sum()) * torch.softmax(ratios / self.temperature, dim=0)
        return dict(zip(self.tasks, w.tolist(), strict=True))

    def combine(self, losses: Mapping[str, Tensor], context: WeightingContext) -> Tensor:
        w = self.weights()
        return torch.stack([w[t] * losses[t] for t in self.present(losses)]).sum()
