"""An exponential moving average of a model's weights (Polyak averaging), for validation,
the best checkpoint and the final model.

The average lives in :class:`torch.optim.swa_utils.AveragedModel`. By default it is
torch's ``get_ema_multi_avg_fn``: after the ``t``-th optimizer step (``t = 1, 2, ...``),
``avg_t = decay * avg_(t-1) + (1 - decay) * w_t`` from ``avg_1 = w_1``, so the first step's
near-random weights keep the share ``decay**(t-1)`` (at decay 0.998: 16 % after 900
steps, 1.8 % after 2,000). With ``debias`` it is the bias-corrected EMA

    avg_t = sum_{s <= t} decay**(t - s) * (1 - decay) * w_s / (1 - decay**t),

updated as ``avg_t = keep_t * avg_(t-1) + (1 - keep_t) * w_t`` with ``keep_t = (decay -
decay**t) / (1 - decay**t)`` (Adam's correction of its moment estimates; early on ``keep_t
~ (t - 1) / t``, a plain mean of the steps so far). The two agree once ``decay**t`` is
small. Either way the average trails a run that is still improving by about ``1 / (1 -
decay)`` steps: in a short run (ML-100K's demo, ~900 steps at 0.998) that costs more than
the smoothing gains. Only parameters are averaged; buffers (index tables, cached text
vectors, item-to-item weights set after construction) are always the live model's.
Evaluating the average swaps it into the live model's parameters and back, so a
validation function that holds the model itself (not the one passed to it) sees the
average too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

ParamList = tuple[Tensor, ...] | list[Tensor]
MultiAvgFn = Callable[[ParamList, ParamList, Tensor | int], None]


def debiased_ema_multi_avg_fn(decay: float) -> MultiAvgFn:
    """The bias-corrected EMA update for ``AveragedModel(multi_avg_fn=...)``: called with the
    averaged and the current parameters (lists of tensors) and the number of updates
    averaged before this one (``n >= 1``; the first update, a copy, is the model's own), it
    moves the average to ``avg_t`` of the module docstring, ``t = n + 1``."""

    @torch.no_grad()
    def update(averaged: ParamList, current: ParamList, n_averaged: Tensor | int) -> None:
        t = int(n_averaged) + 1
        keep = (decay - decay**t) / (1.0 - decay**t)
        torch._foreach_lerp_(averaged, current, 1.0 - keep)

    return update


class WeightAverage:
    """The EMA of ``model``'s parameters with ``decay`` (0 < decay < 1; 0.99 averages over
    about the last 100 steps), bias-corrected with ``debias`` (module docstring)."""

    def __init__(self, model: nn.Module, decay: float, debias: bool = False) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.debias = debias
        ema = (
            debiased_ema_multi_avg_fn(decay) if debias else get_ema_multi_avg_fn(decay)  # type: ignore[no-untyped-call]
        )
        self.averaged = AveragedModel(model, multi_avg_fn=ema)

    @property
    def updates(self) -> int:
        """Optimizer steps averaged so far."""
        return int(self.averaged.n_averaged.item())

    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current parameters into the average (after an optimizer step;
        the first call copies them)."""
        self.averaged.update_parameters(model)

    def _pairs(self, model: nn.Module) -> list[tuple[nn.Parameter, nn.Parameter]]:
        live = list(model.parameters())
        averaged = list(self.averaged.module.parameters())
        if len(live) != len(averaged) or any(
            a.shape != b.shape for a, b in zip(live, averaged, strict=True)
        ):
            raise ValueError("the weight average was built for another model")
        return list(zip(live, averaged, strict=True))

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s parameters with the average (e.g. as the final weights)."""
        if self.updates == 0:
            return  # nothing averaged yet: the live weights are the average
        for live, averaged in self._pairs(model):
            live.copy_(averaged)

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """``model`` carries the averaged parameters inside the block, its own after."""
        with torch.no_grad():
            saved = [p.detach().clone() for p in model.parameters()]
        self.copy_to(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for live, kept in zip(model.parameters(), saved, strict=True):
                    live.copy_(kept)

    def state_dict(self) -> dict[str, Any]:
        """The averaged parameters and the number of updates (for exact resume)."""
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.averaged.load_state_dict(state)
