"""How task losses become one update: the :class:`Weighting` interface, its registry
:data:`WEIGHTINGS` and :func:`weighted_backward`, the one function the trainer calls.

Two kinds of strategy:

- **loss-level** (:class:`LossWeighting`: static, equal, uncertainty, DWA, GradNorm)
  turn the per-task losses into one scalar loss with :meth:`LossWeighting.combine`;
- **gradient-level** (:class:`GradientWeighting`: PCGrad, CAGrad, MGDA) turn the
  task-by-parameter gradient matrix ``G`` ``(T, P)`` of the shared parameters into one
  gradient ``(P,)`` with the pure :meth:`GradientWeighting.aggregate`.

A strategy gets what it needs passed in (losses, a :class:`WeightingContext` with the
shared parameters and the step), never reads trainer attributes, and is an
:class:`torch.nn.Module`: learnable weights are parameters (the trainer optimises
``model.parameters()`` and ``strategy.parameters()`` together) and running state lives in
buffers, so ``state_dict()`` checkpoints a strategy.

Every strategy copes with a subset of its tasks in a step (a batch may lack labels for a
task): only the tasks present in ``losses`` take part, and the weights of absent tasks are
left as they were.
"""

from __future__ import annotations

import functools
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from mtlrec.core.registry import Registry


@dataclass
class WeightingContext:
    """What a strategy may need besides the losses.

    ``shared_parameters`` are the parameters of the shared part of the model (encoder and
    backbone), in module order, so that the last weight matrix among them belongs to the
    last shared layer: GradNorm measures its gradient norms there. Gradient-level
    strategies project the gradients of exactly these parameters; every other parameter
    that a loss reaches (task heads) gets the gradient of the plain sum of task losses.
    """

    step: int = 0
    epoch: int = 0
    shared_parameters: Sequence[nn.Parameter] = field(default_factory=tuple)


class Weighting(nn.Module, ABC):
    """A multi-task weighting strategy over the tasks ``tasks`` (in this order).

    Subclasses take explicit keyword arguments in ``__init__`` and store them untouched
    as attributes of the same name (scikit-learn's estimator rule). ``example_params``
    are the keyword parameters (beside ``tasks``) the contract tests build it with; empty:
    the defaults, which suit the two-task toy (tasks ``reg`` and ``clf``).
    """

    kind: ClassVar[Literal["loss", "gradient"]]
    example_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        names = tuple(tasks)
        if not names:
            raise ValueError("a weighting needs at least one task")
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {list(names)}")
        self.tasks: tuple[str, ...] = names

    @classmethod
    def task_defaults(cls, task_weights: Mapping[str, float]) -> dict[str, Any]:
        """Parameters this strategy takes from the tasks' own settings (each task's static
        ``weight``) when the config does not give them; none by default."""
        return {}

    @abstractmethod
    def weights(self) -> dict[str, float]:
        """The current weight of every task, for logging (one finite float per task)."""

    def end_epoch(self, mean_losses: Mapping[str, float]) -> None:  # noqa: B027
        """Called by the trainer after each epoch with the epoch's mean training loss per
        task (tasks without labels that epoch may be missing). No-op by default."""

    def present(self, names: Mapping[str, object] | Sequence[str]) -> list[str]:
        """The tasks of ``names`` in :attr:`tasks` order; fails on empty or unknown names."""
        unknown = [t for t in names if t not in self.tasks]
        if unknown:
            raise KeyError(f"unknown tasks {unknown}; this weighting knows {list(self.tasks)}")
        found = [t for t in self.tasks if t in names]
        if not found:
            raise ValueError("no task losses given")
        return found

    def index(self, names: Sequence[str]) -> Tensor:
        """Positions of ``names`` in :attr:`tasks`, as an int64 tensor ``(len(names),)``."""
        return torch.tensor([self.tasks.index(t) for t in names], dtype=torch.long)


class LossWeighting(Weighting):
    """Combines the task losses into one scalar loss."""

    kind: ClassVar[Literal["loss", "gradient"]] = "loss"

    @abstractmethod
    def combine(self, losses: Mapping[str, Tensor], context: WeightingContext) -> Tensor:
        """One scalar loss from the scalar losses of the tasks present this step."""


class GradientWeighting(Weighting):
    """Combines the per-task gradients of the shared parameters into one gradient.

    The strategies here all return a linear combination ``c @ G`` of the task gradients;
    they record the coefficients ``c`` in the buffer ``task_weights`` so that
    :meth:`weights` reports what the last step effectively did (1.0 before any step).
    """

    kind: ClassVar[Literal["loss", "gradient"]] = "gradient"
    task_weights: Tensor

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__(tasks)
        self.register_buffer("task_weights", torch.ones(len(self.tasks)))

    @abstractmethod
    def aggregate(self, grads: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """One gradient ``(P,)`` from the task gradients ``grads`` ``(T, P)``.

        Row ``i`` of ``grads`` belongs to ``tasks[i]``; ``tasks`` defaults to all of
        :attr:`tasks` and must otherwise be a subset of them, in the same order.
        """

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, self.task_weights.tolist(), strict=True))

    def _record(self, coefficients: Tensor, tasks: Sequence[str] | None) -> None:
        """Store the effective coefficients ``(T,)`` of the tasks that took part."""
        idx = self.index(self.tasks if tasks is None else tasks)
        if len(idx) != len(coefficients):
            raise ValueError(f"{len(coefficients)} gradient rows but {len(idx)} task names")
        self.task_weights[idx.to(self.task_weights.device)] = coefficients.detach().to(
            self.task_weights
        )


WEIGHTINGS: Registry[type[Weighting]] = Registry("weighting")


def make_weighting(name: str, tasks: Sequence[str], **params: object) -> Weighting:
    """Build the strategy registered as ``name`` for ``tasks`` with its keyword params."""
    return WEIGHTINGS.get(name)(tasks, **params)


def weighting_for_tasks(
    name: str, task_weights: Mapping[str, float], **params: object
) -> Weighting:
    """The strategy ``name`` over the tasks of ``task_weights`` (task -> its static weight):
    ``params`` first, then what the strategy takes from the tasks
    (:meth:`Weighting.task_defaults`)."""
    cls = WEIGHTINGS.get(name)
    return cls(list(task_weights), **{**cls.task_defaults(task_weights), **params})


def sum_losses(losses: Sequence[Tensor]) -> Tensor:
    """The sum of scalar losses.

    Not ``torch.stack(losses).sum()``: its backward hands leaf losses gradients that are
    views of one stride-0 tensor, so a second backward without ``zero_grad`` adds into
    shared storage and double-counts (seen with torch 2.13).
    """
    total: Tensor = functools.reduce(operator.add, losses)
    return total


def _identity(loss: Tensor) -> Tensor:
    return loss


def weighted_backward(
    strategy: Weighting,
    losses: Mapping[str, Tensor],
    context: WeightingContext,
    scale: Callable[[Tensor], Tensor] = _identity,
) -> dict[str, float]:
    """Backward pass of one step: populate ``.grad`` of every parameter a loss reaches.

    Gradients are accumulated into existing ``.grad`` (as ``loss.backward()`` does), so
    gradient accumulation over micro-batches works. ``scale`` is applied to every loss
    before differentiation (a ``GradScaler.scale`` for mixed precision). Returns the
    weight of each task present in ``losses`` as used this step.

    Loss-level: backward of ``scale(strategy.combine(losses, context))``.

    Gradient-level: the gradient of each task loss with respect to the shared parameters
    forms ``G`` ``(T, P)`` (zeros where a task does not reach a parameter); the shared
    parameters receive ``strategy.aggregate(G)`` and all other parameters the gradient of
    the sum of the task losses.
    """
    names = strategy.present(losses)
    if isinstance(strategy, LossWeighting):
        used = strategy.weights()
        torch.autograd.backward(scale(strategy.combine({t: losses[t] for t in names}, context)))
        return {t: used[t] for t in names}
    if not isinstance(strategy, GradientWeighting):
        raise TypeError(f"{type(strategy).__name__} is neither a loss- nor a gradient-level")

    shared = _unique_trainable(context.shared_parameters)
    if not shared:
        raise ValueError("gradient-level weighting needs context.shared_parameters")
    rows: list[Tensor] = []
    reached = [False] * len(shared)
    for task in names:
        grads = torch.autograd.grad(
            scale(losses[task]), shared, retain_graph=True, allow_unused=True
        )
        rows.append(
            torch.cat(
                [
                    (torch.zeros_like(p) if g is None else g).reshape(-1)
                    for p, g in zip(shared, grads, strict=True)
                ]
            )
        )
        reached = [r or g is not None for r, g in zip(reached, grads, strict=True)]
    combined = strategy.aggregate(torch.stack(rows), names)  # (T, P) -> (P,)

    # The summed loss gives every non-shared parameter its gradient; the shared ones are
    # then reset to what they held before this call plus their aggregated gradient.
    before = [None if p.grad is None else p.grad.clone() for p in shared]
    total = sum_losses([losses[t] for t in names])
    if total.requires_grad:
        torch.autograd.backward(scale(total))
    for p, old, piece, hit in zip(
        shared, before, torch.split(combined, [p.numel() for p in shared]), reached, strict=True
    ):
        if not hit:
            continue
        new = piece.view_as(p).to(p.dtype)
        if old is not None:
            new = old + new
        if p.grad is None:
            p.grad = new.clone()
        else:
            p.grad.copy_(new)
    used = strategy.weights()
    return {t: used[t] for t in names}


def _unique_trainable(parameters: Sequence[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    out: list[nn.Parameter] = []
    for p in parameters:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out
