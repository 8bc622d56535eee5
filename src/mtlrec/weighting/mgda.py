"""MGDA: the min-norm point in the convex hull of the task gradients.

Sener and Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018
(MGDA-UB applies it to the gradients of the shared parameters).

Solves ``min_{a in simplex} || sum_k a_k g_k ||^2`` on the Gram matrix ``G G^T`` with
pairwise Frank-Wolfe and exact line search, started from the task gradient of smallest
norm (so the result never has a larger norm than any task gradient; with two tasks one
step is exact). The update is ``sum_k a_k g_k``, a common descent direction for all
tasks (zero at a Pareto-stationary point).

``normalization="l2"`` solves the problem on the unit-normalised gradients
``g_k / ||g_k||`` and applies the coefficients to the raw gradients, as the authors'
code does with its gradient normalisers; ``"none"`` is the plain min-norm point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from mtlrec.weighting.base import WEIGHTINGS, GradientWeighting


def min_norm_coefficients(gram: Tensor, max_iter: int = 250, tol: float = 1e-8) -> Tensor:
    """Simplex weights ``a`` ``(T,)`` minimising ``a @ gram @ a``.

    Pairwise Frank-Wolfe with exact line search from the vertex of smallest norm: each
    step moves weight from the active task whose gradient has the largest inner product
    with ``v = sum_k a_k g_k`` to the one with the smallest, until they differ by less
    than ``tol`` (relative). The norm of ``v`` never increases.
    """
    top = float(gram.diagonal().max())
    if top > 0:
        gram = gram / top  # the minimiser does not depend on the scale of the gradients
    a = torch.zeros_like(gram.diagonal())
    a[int(torch.argmin(gram.diagonal()))] = 1.0
    for _ in range(max_iter):
        ga = gram @ a  # (T,) g_k . v
        t = int(torch.argmin(ga))
        s = int(torch.argmax(torch.where(a > 0, ga, -math.inf)))
        if float(ga[s] - ga[t]) <= tol * max(float(ga.abs().max()), 1e-30):
            break
        # x minimising ||v + x (g_t - g_s)||^2 on [0, a_s]
        curvature = float(gram[t, t] - 2 * gram[t, s] + gram[s, s])
        x = min(float(ga[s] - ga[t]) / max(curvature, 1e-15), float(a[s]))
        a[t] += x
        a[s] -= x
    return a.clamp_min(0.0)


@WEIGHTINGS.register("mgda")
class MGDA(GradientWeighting):
    """MGDA-UB with gradient ``normalization`` ``"none"`` or ``"l2"``."""

    def __init__(
        self,
        tasks: Sequence[str],
        normalization: Literal["none", "l2"] = "none",
        max_iter: int = 250,
    ) -> None:
        super().__init__(tasks)
        if normalization not in ("none", "l2"):
            raise ValueError(f"normalization must be 'none' or 'l2', got {normalization!r}")
        self.normalization = normalization
        self.max_iter = max_iter

    def aggregate(self, grads: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        gram = (grads @ grads.T).double().cpu()  # (T, T); the solver loops on the CPU
        if self.normalization == "l2":
            norms = gram.diagonal().clamp_min(1e-30).sqrt()
            gram = gram / torch.outer(norms, norms)
        coef = min_norm_coefficients(gram, self.max_iter)  # (T,)
        self._record(coef, tasks)
        return coef.to(grads) @ grads
