"""MMoE (Ma et al., KDD 2018): shared experts mixed by one softmax gate per task."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from mtlrec.models.backbones.base import BACKBONES, Backbone, GateLevel, GateView
from mtlrec.models.layers import MLP, Gate, mix_experts


@BACKBONES.register("mmoe")
class MMoE(Backbone):
    """``n_experts`` expert MLPs; task ``t`` sees ``sum_e gate_t(x)_e * expert_e(x)``."""

    example_params = {"n_experts": 3, "expert": (32,), "tower": (16,), "dropout": 0.0}

    def __init__(
        self,
        in_dim: int,
        tasks: Sequence[str],
        n_experts: int = 4,
        expert: Sequence[int] = (128, 64),
        tower: Sequence[int] = (32,),
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_dim, tasks)
        self.n_experts, self.expert_sizes, self.tower_sizes = n_experts, tuple(expert), tuple(tower)
        self.dropout = dropout
        experts = [MLP(in_dim, expert, dropout) for _ in range(n_experts)]
        self.experts = nn.ModuleList(experts)
        self.gates = nn.ModuleDict({t: Gate(in_dim, n_experts) for t in tasks})
        towers = {t: MLP(experts[0].out_dim, tower, dropout) for t in tasks}
        self.widths = {t: m.out_dim for t, m in towers.items()}
        self.towers = nn.ModuleDict(towers)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (B, E, H)
        return {t: self.towers[t](mix_experts(experts, self.gates[t](x))) for t in self.tasks}

    def out_dim(self, task: str) -> int:
        return self.widths[task]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return self.experts.parameters()

    def gate_levels(self) -> list[GateLevel]:
        experts = tuple(f"expert/{e}" for e in range(self.n_experts))
        columns = tuple(range(self.n_experts))
        gates = {t: GateView(self.gates[t], columns) for t in self.tasks}
        return [GateLevel("experts", experts, gates)]
