"""PCGrad: projecting conflicting gradients.

Yu, Kumar, Gupta, Levine, Hausman and Finn, "Gradient Surgery for Multi-Task Learning",
NeurIPS 2020 (Algorithm 1).

For each task ``i``, ``g_i'`` starts at ``g_i`` and, for every other task ``j`` in a
random order, if ``g_i' . g_j < 0`` (the gradients conflict) it is projected onto the
normal plane of ``g_j``: ``g_i' -= (g_i' . g_j / ||g_j||^2) g_j``, after which
``g_i' . g_j = 0``. The update is ``sum_i g_i'``. With two tasks no projected gradient
conflicts with the other task's gradient; with more, a later projection can reintroduce
a (smaller) conflict with an earlier ``g_j``, as in the paper.

Every ``g_i'`` is a linear combination of the original gradients, so the projections run
on the Gram matrix ``G G^T`` ``(T, T)`` and the update is ``c @ G`` with ``c`` the summed
coefficients, which :meth:`weights` reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mtlrec.weighting.base import WEIGHTINGS, GradientWeighting


def pcgrad_coefficients(gram: Tensor, orders: Sequence[Sequence[int]]) -> Tensor:
    """Coefficients ``C`` ``(T, T)`` with ``g_i' = C[i] @ G`` for the Gram matrix
    ``gram = G @ G.T`` ``(T, T)``; ``orders[i]`` is the order in which task ``i`` is
    projected against the others (``i`` itself is skipped)."""
    n = gram.shape[0]
    coef = torch.eye(n, dtype=gram.dtype, device=gram.device)
    for i in range(n):
        for j in orders[i]:
            if j == i or gram[j, j] <= 0:
                continue
            dot = coef[i] @ gram[:, j]  # g_i' . g_j
            if dot < 0:
                coef[i, j] -= dot / gram[j, j]
    return coef


def project_conflicting(grads: Tensor, orders: Sequence[Sequence[int]]) -> Tensor:
    """The projected task gradients ``g_i'`` ``(T, P)`` of ``grads`` ``(T, P)``."""
    gram = (grads @ grads.T).double().cpu()
    return pcgrad_coefficients(gram, orders).to(grads) @ grads


@WEIGHTINGS.register("pcgrad")
class PCGrad(GradientWeighting):
    """PCGrad whose random task orders come from a generator seeded with ``seed``."""

    def __init__(self, tasks: Sequence[str], seed: int = 0) -> None:
        super().__init__(tasks)
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)

    def aggregate(self, grads: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        n = grads.shape[0]
        orders = [torch.randperm(n, generator=self._generator).tolist() for _ in range(n)]
        gram = (grads @ grads.T).double().cpu()  # (T, T); the projections loop on the CPU
        coef = pcgrad_coefficients(gram, orders).sum(dim=0)  # (T,)
        self._record(coef, tasks)
        return coef.to(grads) @ grads

    def get_extra_state(self) -> Any:
        return {"generator": self._generator.get_state()}

    def set_extra_state(self, state: Any) -> None:
        self._generator.set_state(state["generator"])
