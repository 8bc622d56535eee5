"""Equal weighting: the plain sum of task losses, ``L = sum_k L_k``."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from mtlrec.weighting.base import WEIGHTINGS, LossWeighting, WeightingContext, sum_losses


@WEIGHTINGS.register("equal")
class EqualWeighting(LossWeighting):
    """Every task weighs 1.0."""

    def weights(self) -> dict[str, float]:
        return dict.fromkeys(self.tasks, 1.0)

    def combine(self, losses: Mapping[str, Tensor], context: WeightingContext) -> Tensor:
        return sum_losses([losses[t] for t in self.present(losses)])
