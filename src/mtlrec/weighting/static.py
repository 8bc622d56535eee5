"""Static weighting: a fixed lambda per task, ``L = sum_k lambda_k L_k``.

The classic hand-tuned linear scalarisation used by most multi-task recommenders (for
example ESMM and MMoE weight their task losses this way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from mtlrec.weighting.base import WEIGHTINGS, LossWeighting, WeightingContext


@WEIGHTINGS.register("static")
class StaticWeighting(LossWeighting):
    """``lambdas[task]`` per task; tasks missing from ``lambdas`` weigh 1.0.

    The parameter is called ``lambdas`` (not ``weights``) because :meth:`weights` is the
    logging method every strategy has.
    """

    def __init__(self, tasks: Sequence[str], lambdas: Mapping[str, float] | None = None) -> None:
        super().__init__(tasks)
        self.lambdas = lambdas
        unknown = sorted(set(lambdas or {}) - set(self.tasks))
        if unknown:
            raise KeyError(f"lambdas for unknown tasks {unknown}; tasks are {list(self.tasks)}")

    @classmethod
    def task_defaults(cls, task_weights: Mapping[str, float]) -> dict[str, Any]:
        """Without ``lambdas``, each task's own static ``weight`` is its lambda."""
        return {"lambdas": dict(task_weights)}

    def weights(self) -> dict[str, float]:
        given = self.lambdas or {}
        return {t: float(given.get(t, 1.0)) for t in self.tasks}

    def combine(self, losses: Mapping[str, Tensor], context: WeightingContext) -> Tensor:
        w = self.weights()
        return torch.stack([w[t] * losses[t] for t in self.present(losses)]).sum()
