"""Shared-Bottom (Caruana 1997): one MLP shared by all tasks, then per-task towers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from torch import Tensor, nn

from mtlrec.models.backbones.base import BACKBONES, Backbone
from mtlrec.models.layers import MLP


@BACKBONES.register("shared_bottom")
class SharedBottom(Backbone):
    """``x -> shared MLP -> tower_t`` for every task ``t``.

    With ``shared=()`` the input itself is shared (used with the LM cross-encoder inputs,
    whose pooled output then feeds every tower directly).
    """

    example_params = {"shared": (32,), "tower": (16,), "dropout": 0.0}

    def __init__(
        self,
        in_dim: int,
        tasks: Sequence[str],
        shared: Sequence[int] = (256, 128),
        tower: Sequence[int] = (64,),
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_dim, tasks)
        self.shared_sizes, self.tower_sizes, self.dropout = tuple(shared), tuple(tower), dropout
        self.bottom = MLP(in_dim, shared, dropout)
        towers = {t: MLP(self.bottom.out_dim, tower, dropout) for t in tasks}
        self.widths = {t: m.out_dim for t, m in towers.items()}
        self.towers = nn.ModuleDict(towers)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        shared = self.bottom(x)  # (B, S)
        return {t: tower(shared) for t, tower in self.towers.items()}  # (B, H_t)

    def out_dim(self, task: str) -> int:
        return self.widths[task]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.bottom.parameters()
