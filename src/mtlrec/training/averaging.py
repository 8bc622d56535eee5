"""An exponential moving average of a model's weights (Polyak averaging), for validation,
the best checkpoint and the final model.

The average lives in :class:`torch.optim.swa_utils.AveragedModel` with its EMA update
(``get_ema_multi_avg_fn``): after each optimizer step ``avg = decay * avg + (1 - decay) *
weights`` (no warm-up: the first update copies the weights, and the average trails the
training weights by about ``1 / (1 - decay)`` steps, which early stopping's patience
absorbs; TensorFlow's warm-up ``min(decay, k / (k + 9))`` would keep a decay of 0.998
under its value for the first 4,500 steps, most of an ML-100K run). Only parameters are
averaged; buffers (index tables, cached text vectors, item-to-item weights set after
construction) are always the live model's. Evaluating the average swaps it into the live
model's parameters and back, so a validation function that holds the model itself (not
the one passed to it) sees the average too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class WeightAverage:
    """The EMA of ``model``'s parameters with ``decay`` (0 < decay < 1; 0.99 averages over
    about the last 100 steps)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        ema = get_ema_multi_avg_fn(decay)  # type: ignore[no-untyped-call]
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
