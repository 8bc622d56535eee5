"""GradNorm: adaptive loss balancing by gradient normalisation.

Chen, Badrinarayanan, Lee and Rabinovich, "GradNorm: Gradient Normalization for Adaptive
Loss Balancing in Deep Multitask Networks", ICML 2018.

Each step the model is trained on ``L = sum_k w_k L_k`` with the current (detached)
weights, and the weights take one step of their own optimizer (Adam, ``lr``) on

    L_grad = sum_k | G_k - mean(G) * r_k ** alpha |

where ``G_k = || d (w_k L_k) / d W ||`` on ``W``, the weight of the last shared layer,
``r_k = (L_k / L_k(0)) / mean_j (L_j / L_j(0))`` is task ``k``'s relative inverse
training rate and the target ``mean(G) * r_k ** alpha`` is a constant (as in the paper).
Its gradient is ``sign(w_k n_k - target_k) * n_k`` with ``n_k = || d L_k / d W ||``, so
no second-order backward is needed. After the step the weights are clipped positive and
rescaled to the total they had before it, so they always sum to the number of tasks ``T``
(the paper's renormalisation); a step that lacks a task leaves that task's weight alone.
``L_k(0)`` is the loss of the first step in which task ``k`` appears.

``W`` is the last entry of ``context.shared_parameters`` with at least two dimensions
(the last shared weight matrix; a trailing bias is skipped), or the last entry if none
has. The weights are a parameter with ``requires_grad=False``: the trainer's optimizer
never moves them, only this strategy's own optimizer, whose state is saved in
``state_dict()`` as extra state.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mtlrec.weighting.base import WEIGHTINGS, LossWeighting, WeightingContext

_MIN_WEIGHT = 1e-4


@WEIGHTINGS.register("gradnorm")
class GradNorm(LossWeighting):
    """GradNorm with asymmetry ``alpha`` and Adam learning rate ``lr`` for the weights."""

    initial_losses: Tensor

    def __init__(self, tasks: Sequence[str], alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__(tasks)
        self.alpha = alpha
        self.lr = lr
        self.task_weights = nn.Parameter(torch.ones(len(self.tasks)), requires_grad=False)
        self.register_buffer("initial_losses", torch.full((len(self.tasks),), float("nan")))
        self._optimizer = torch.optim.Adam([self.task_weights], lr=lr)

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.task_weights.tolist(), strict=True))

    def combine(self, losses: Mapping[str, Tensor], context: WeightingContext) -> Tensor:
        names = self.present(losses)
        idx = self.index(names).to(self.task_weights.device)
        task_losses = torch.stack([losses[t] for t in names])  # (T,)
        w = self.task_weights.detach()[idx].clone()  # (T,) the weights used this step
        self._update(task_losses, idx, _last_shared_weight(context.shared_parameters))
        return (w.to(task_losses) * task_losses).sum()

    def _update(self, task_losses: Tensor, idx: Tensor, shared: nn.Parameter) -> None:
        """One optimizer step on the weights of the tasks ``idx``, then renormalise."""
        norms = torch.stack([_grad_norm(loss, shared) for loss in task_losses]).to(
            self.task_weights
        )  # (T,) n_k = ||dL_k/dW||
        current = task_losses.detach().to(self.task_weights)
        first = torch.isnan(self.initial_losses[idx])
        self.initial_losses[idx[first]] = current[first]
        ratio = current / self.initial_losses[idx].clamp_min(1e-12)  # L_k / L_k(0)
        inverse_rate = ratio / ratio.mean().clamp_min(1e-12)  # r_k
        w = self.task_weights.detach()[idx]
        weighted_norms = w * norms  # G_k
        target = weighted_norms.mean() * inverse_rate**self.alpha
        grad = torch.zeros_like(self.task_weights)
        grad[idx] = torch.sign(weighted_norms - target) * norms

        before = self.task_weights.detach().clone()
        self.task_weights.grad = grad
        self._optimizer.step()
        self.task_weights.grad = None
        with torch.no_grad():
            new = before.clone()  # absent tasks keep their weights, Adam momentum or not
            kept = self.task_weights[idx].clamp_min(_MIN_WEIGHT)
            new[idx] = kept * (before[idx].sum() / kept.sum())  # same total as before
            self.task_weights.copy_(new)

    def get_extra_state(self) -> Any:
        # A copy: Adam's state_dict() shares its moment tensors with the live optimizer.
        return {"optimizer": copy.deepcopy(self._optimizer.state_dict())}

    def set_extra_state(self, state: Any) -> None:
        self._optimizer.load_state_dict(state["optimizer"])


def _last_shared_weight(parameters: Sequence[nn.Parameter]) -> nn.Parameter:
    trainable = [p for p in parameters if p.requires_grad]
    if not trainable:
        raise ValueError("GradNorm needs context.shared_parameters (the shared layers)")
    matrices = [p for p in trainable if p.dim() >= 2]
    return (matrices or trainable)[-1]


def _grad_norm(loss: Tensor, parameter: nn.Parameter) -> Tensor:
    if not loss.requires_grad:
        return torch.zeros((), device=parameter.device)
    (grad,) = torch.autograd.grad(loss, parameter, retain_graph=True, allow_unused=True)
    if grad is None:
        return torch.zeros((), device=parameter.device)
    norm: Tensor = torch.linalg.vector_norm(grad)
    return norm
