"""Homoscedastic uncertainty weighting.

Kendall, Gal and Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for
Scene Geometry and Semantics", CVPR 2018.

Each task has a learnable log-variance ``s_k = log sigma_k^2`` and

    L = sum_k exp(-s_k) * L_k + s_k

(the common form without the paper's 1/2 factor, which only rescales the regression
case; minimising over ``s_k`` gives ``exp(-s_k) = 1 / L_k``). ``d L / d s_k =
1 - exp(-s_k) L_k``. The log-variances are parameters, optimised by the trainer's
optimizer together with the model; the weights ``exp(-s_k)`` stay positive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mtlrec.weighting.base import WEIGHTINGS, LossWeighting, WeightingContext


@WEIGHTINGS.register("uncertainty")
class UncertaintyWeighting(LossWeighting):
    """Learnable ``log_variances`` ``(T,)``, initialised to ``initial_log_variance``."""

    def __init__(self, tasks: Sequence[str], initial_log_variance: float = 0.0) -> None:
        super().__init__(tasks)
        self.initial_log_variance = initial_log_variance
        self.log_variances = nn.Parameter(torch.full((len(self.tasks),), initial_log_variance))

    def weights(self) -> dict[str, float]:
        precision = torch.exp(-self.log_variances.detach())
        return dict(zip(self.tasks, precision.tolist(), strict=True))

    def combine(self, losses: Mapping[str, Tensor], context: WeightingContext) -> Tensor:
        names = self.present(losses)
        s = self.log_variances[self.index(names).to(self.log_variances.device)]  # (T,)
        task_losses = torch.stack([losses[t] for t in names])  # (T,)
        return (torch.exp(-s) * task_losses + s).sum()
