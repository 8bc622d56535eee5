"""Pooling of a transformer's token states ``(B, L, D)`` into one vector per text ``(B, D)``.

Both poolers take the same arguments so an encoder can hold either one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor

PoolingName = Literal["mean", "cls"]
Pooler = Callable[[Tensor, Tensor], Tensor]


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Average of the token states where ``mask`` is 1 (padding excluded).

    ``hidden`` is ``(B, L, D)``, ``mask`` is ``(B, L)`` of 0/1; returns ``(B, D)``. A row
    with no tokens at all gives zeros (the denominator is clamped, as sentence-transformers
    does).
    """
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    summed = (hidden * weights).sum(dim=1)  # (B, D)
    counts = weights.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / counts


def cls_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """The state of the first token (``[CLS]``): ``(B, L, D) -> (B, D)``; ``mask`` is unused."""
    del mask
    return hidden[:, 0]


POOLERS: dict[str, Pooler] = {"mean": mean_pool, "cls": cls_pool}
"""Poolers by name."""


def get_pooler(name: str) -> Pooler:
    """The pooler called ``name``; an unknown name fails with the known ones."""
    try:
        return POOLERS[name]
    except KeyError:
        raise ValueError(f"unknown pooling {name!r}; known: {sorted(POOLERS)}") from None
