"""CAGrad: conflict-averse gradient descent.

Liu, Liu, Jin, Stone and Liu, "Conflict-Averse Gradient Descent for Multi-task
Learning", NeurIPS 2021.

With ``g0`` the mean task gradient, CAGrad looks for the update ``d`` maximising the
worst task's improvement ``min_k g_k . d`` within a ball ``||d - g0|| <= c ||g0||``. Its
dual is a problem over the simplex,

    min_{w in simplex}  g_w . g0 + c ||g0|| ||g_w||,   g_w = sum_k w_k g_k,

solved here with pairwise Frank-Wolfe on the Gram matrix ``G G^T``. The update is
``d = g0 + (c ||g0|| / ||g_w||) g_w``, divided by ``1 + c^2`` (``rescale=1``, the
paper's default; ``rescale=0`` keeps ``d``, ``rescale=2`` divides by ``1 + c``).
``c = 0`` gives the mean gradient.

Where the dual optimum has ``g_w = 0`` (zero lies in the convex hull of the task
gradients: a Pareto-stationary point) the direction ``g_w / ||g_w||`` is undefined; when
``||g_w||`` is below ``1e-6`` times the largest task gradient norm, the update is ``g0``
(before rescaling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from mtlrec.weighting.base import WEIGHTINGS, GradientWeighting

_DEGENERATE = 1e-6


def cagrad_dual(gram: Tensor, c: float, max_iter: int = 250, tol: float = 1e-8) -> Tensor:
    """Simplex weights ``w`` ``(T,)`` minimising ``F(w) = w @ gram @ b + c ||g0||
    sqrt(w @ gram @ w)`` with ``b = 1/T`` (so ``g0 = b @ G``).

    Pairwise Frank-Wolfe from ``b``: each step moves weight from the active task with the
    largest partial derivative to the task with the smallest, with exact line search,
    until the two differ by less than ``tol`` (relative), which is the optimality
    condition on the simplex.
    """
    n = gram.shape[0]
    b = torch.full((n,), 1.0 / n, dtype=gram.dtype, device=gram.device)
    top = float(gram.diagonal().max())
    if top <= 0:
        return b  # all gradients are zero
    gram = gram / top  # the minimiser does not depend on the scale of the gradients
    gb = gram @ b  # (T,) g_k . g0
    radius = c * float((b @ gb).clamp_min(0.0).sqrt())  # c ||g0||
    w = b.clone()
    for _ in range(max_iter):
        gw = gram @ w  # (T,) g_k . g_w
        ww = float((w @ gw).clamp_min(1e-30))  # ||g_w||^2
        grad = gb + radius * gw / math.sqrt(ww)  # dF/dw
        t = int(torch.argmin(grad))
        s = int(torch.argmax(torch.where(w > 0, grad, -math.inf)))
        if float(grad[s] - grad[t]) <= tol * max(float(grad.abs().max()), 1e-30):
            break
        # Along w + x (e_t - e_s), x in [0, w_s]: F = const + beta x + radius sqrt(q(x))
        # with q(x) = ||g_w + x (g_t - g_s)||^2 = qa x^2 + qb x + ww.
        beta = float(gb[t] - gb[s])
        qa = float(gram[t, t] - 2 * gram[t, s] + gram[s, s])
        qb = 2 * float(gw[t] - gw[s])
        x = _line_search(beta, radius, qa, qb, ww, float(w[s]))
        w[t] += x
        w[s] -= x
    return w.clamp_min(0.0)


def _line_search(beta: float, radius: float, qa: float, qb: float, qc: float, hi: float) -> float:
    """``argmin_{x in [0, hi]} beta x + radius sqrt(qa x^2 + qb x + qc)``, a convex
    function of ``x`` (the quadratic is a squared norm, so ``qa >= 0``)."""
    if qa <= 1e-15 or radius * radius * qa <= beta * beta:  # monotone in x
        return hi if beta < 0 else 0.0
    # With u = x + qb / 2qa and d = qc - qb^2 / 4qa the derivative is
    # beta + radius qa u / sqrt(qa u^2 + d); it vanishes at the u below.
    d = max(qc - qb * qb / (4 * qa), 0.0)
    u = -math.copysign(
        math.sqrt(beta * beta * d / (qa * (radius * radius * qa - beta * beta))), beta
    )
    return min(max(u - qb / (2 * qa), 0.0), hi)


@WEIGHTINGS.register("cagrad")
class CAGrad(GradientWeighting):
    """CAGrad with conflict radius ``c`` and output scaling ``rescale``."""

    def __init__(
        self,
        tasks: Sequence[str],
        c: float = 0.4,
        rescale: Literal[0, 1, 2] = 1,
        max_iter: int = 250,
    ) -> None:
        super().__init__(tasks)
        if c < 0:
            raise ValueError(f"c must be non-negative, got {c}")
        if rescale not in (0, 1, 2):
            raise ValueError(f"rescale must be 0, 1 or 2, got {rescale}")
        self.c = c
        self.rescale = rescale
        self.max_iter = max_iter

    def aggregate(self, grads: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        gram = (grads @ grads.T).double().cpu()  # (T, T); the solver loops on the CPU
        n = gram.shape[0]
        coef = torch.full((n,), 1.0 / n, dtype=gram.dtype)  # g0 = coef @ G
        if self.c > 0:
            w = cagrad_dual(gram, self.c, self.max_iter)
            # Norms of the vectors themselves: through the Gram matrix a small ||g_w||
            # would drown in rounding.
            g0_norm = float((coef.to(grads) @ grads).norm())
            gw_norm = float((w.to(grads) @ grads).norm())
            if gw_norm > _DEGENERATE * float(gram.diagonal().max().sqrt()):
                coef = coef + (self.c * g0_norm / gw_norm) * w
        coef = coef / {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]
        self._record(coef, tasks)
        return coef.to(grads) @ grads
