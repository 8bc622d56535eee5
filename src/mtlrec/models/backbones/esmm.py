"""ESMM (Ma et al., SIGIR 2018) for cascaded behaviours, e.g. view -> cart -> purchase.

Each task has its own tower over shared inputs (the embeddings are the shared part). The
heads' logits are read as *conditional* ones, ``logit P(step_k | step_{k-1})``; ``compose``
turns them into logits of the *joint* probabilities over the whole impression space,
``P(step_1, ..., step_k) = prod_j P(step_j | step_{j-1})``, so every task is trained on all
examples and the sample-selection bias of training conversion on clicks only is avoided.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mtlrec.models.backbones.base import BACKBONES, Backbone
from mtlrec.models.layers import MLP


def logit_of_product(log_probs: Tensor) -> Tensor:
    """``logit(p)`` from ``log p`` (``p < 1``), stably: ``log p - log(1 - p)``."""
    log_p = log_probs.clamp(max=-1e-7)
    return log_p - torch.log(-torch.expm1(log_p))


@BACKBONES.register("esmm")
class ESMM(Backbone):
    """Per-task towers; ``cascade`` lists the tasks in funnel order (others are left alone)."""

    example_params = {"cascade": ("click",), "tower": (32, 16), "dropout": 0.0}

    def __init__(
        self,
        in_dim: int,
        tasks: Sequence[str],
        cascade: Sequence[str] = ("view", "cart", "purchase"),
        tower: Sequence[int] = (128, 64),
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_dim, tasks)
        unknown = [t for t in cascade if t not in tasks]
        if unknown:
            raise ValueError(f"esmm cascade names tasks {unknown} that the model does not have")
        self.cascade, self.tower_sizes, self.dropout = tuple(cascade), tuple(tower), dropout
        towers = {t: MLP(in_dim, tower, dropout) for t in tasks}
        self.widths = {t: m.out_dim for t, m in towers.items()}
        self.towers = nn.ModuleDict(towers)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {t: tower(x) for t, tower in self.towers.items()}

    def out_dim(self, task: str) -> int:
        return self.widths[task]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        # the towers share nothing: the input embeddings are the shared part (see MultiTaskModel)
        return iter(())

    def compose(self, logits: dict[str, Tensor]) -> dict[str, Tensor]:
        out = dict(logits)
        log_joint: Tensor | None = None
        for task in self.cascade:
            step = F.logsigmoid(logits[task])  # log P(step | previous)
            log_joint = step if log_joint is None else log_joint + step
            out[task] = logits[task] if log_joint is step else logit_of_product(log_joint)
        return out
