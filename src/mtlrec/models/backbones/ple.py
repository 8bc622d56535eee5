"""PLE (Tang et al., RecSys 2020): progressive layered extraction, task and shared experts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from mtlrec.models.backbones.base import BACKBONES, Backbone, GateLevel, GateView
from mtlrec.models.layers import MLP, Gate, mix_experts


class ExtractionLayer(nn.Module):
    """One CGC level: per-task experts + shared experts, a gate per task (and a shared gate).

    Inputs: one ``(B, D)`` per task plus the shared ``(B, D)``; outputs the same at width H.
    """

    def __init__(
        self,
        in_dim: int,
        tasks: Sequence[str],
        n_task: int,
        n_shared: int,
        expert: Sequence[int],
        dropout: float,
        last: bool,
    ) -> None:
        super().__init__()
        self.tasks, self.last = tuple(tasks), last
        own = {t: [MLP(in_dim, expert, dropout) for _ in range(n_task)] for t in tasks}
        self.own_experts = own  # plain view of the registered modules below, for typing
        self.task_experts = nn.ModuleDict({t: nn.ModuleList(e) for t, e in own.items()})

        shared = [MLP(in_dim, expert, dropout) for _ in range(n_shared)]
        self.shared_experts = nn.ModuleList(shared)
        self.out_dim: int = shared[0].out_dim
        self.task_gates = nn.ModuleDict({t: Gate(in_dim, n_task + n_shared) for t in tasks})
        self.shared_gate = None if last else Gate(in_dim, len(tasks) * n_task + n_shared)

    def forward(
        self, task_in: dict[str, Tensor], shared_in: Tensor
    ) -> tuple[dict[str, Tensor], Tensor]:
        shared = [e(shared_in) for e in self.shared_experts]  # each (B, H)
        own = {t: [e(task_in[t]) for e in self.own_experts[t]] for t in self.tasks}
        task_out = {
            t: mix_experts(torch.stack(own[t] + shared, 1), self.task_gates[t](task_in[t]))
            for t in self.tasks
        }
        if self.shared_gate is None:
            return task_out, shared_in
        everything = torch.stack([e for t in self.tasks for e in own[t]] + shared, 1)
        return task_out, mix_experts(everything, self.shared_gate(shared_in))

    def gate_level(self, name: str) -> GateLevel:
        """This layer's gates over its experts: every task's own experts, then the shared
        ones (the order of the shared gate's weights)."""
        experts: list[str] = []
        own: dict[str, tuple[int, ...]] = {}  # task -> positions of its own experts
        for t in self.tasks:
            count = len(self.own_experts[t])
            own[t] = tuple(range(len(experts), len(experts) + count))
            experts += [f"task:{t}/{e}" for e in range(count)]
        shared = tuple(range(len(experts), len(experts) + len(self.shared_experts)))
        experts += [f"shared/{e}" for e in range(len(self.shared_experts))]
        tasks = {t: GateView(self.task_gates[t], own[t] + shared) for t in self.tasks}
        gate = self.shared_gate
        everything = None if gate is None else GateView(gate, tuple(range(len(experts))))
        return GateLevel(name, tuple(experts), tasks, everything)


@BACKBONES.register("ple")
class PLE(Backbone):
    """``levels`` extraction layers, then a tower per task."""

    example_params = {"levels": 2, "expert": (32,), "tower": (16,), "dropout": 0.0}

    def __init__(
        self,
        in_dim: int,
        tasks: Sequence[str],
        levels: int = 2,
        task_experts: int = 1,
        shared_experts: int = 2,
        expert: Sequence[int] = (128, 64),
        tower: Sequence[int] = (32,),
        dropout: float = 0.1,
    ) -> None:
        super().__init__(in_dim, tasks)
        self.levels, self.n_task_experts, self.n_shared_experts = (
            levels,
            task_experts,
            shared_experts,
        )
        self.expert_sizes, self.tower_sizes, self.dropout = tuple(expert), tuple(tower), dropout
        layers: list[ExtractionLayer] = []
        width = in_dim
        for level in range(levels):
            layer = ExtractionLayer(
                width,
                tasks,
                task_experts,
                shared_experts,
                expert,
                dropout,
                last=level == levels - 1,
            )
            layers.append(layer)
            width = layer.out_dim
        self.extraction = layers
        self.layers = nn.ModuleList(layers)
        towers = {t: MLP(width, tower, dropout) for t in tasks}
        self.widths = {t: m.out_dim for t, m in towers.items()}
        self.towers = nn.ModuleDict(towers)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        task_in, shared = dict.fromkeys(self.tasks, x), x
        for layer in self.extraction:
            task_in, shared = layer(task_in, shared)
        return {t: self.towers[t](task_in[t]) for t in self.tasks}

    def out_dim(self, task: str) -> int:
        return self.widths[task]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        for layer in self.extraction:
            yield from layer.shared_experts.parameters()

    def gate_levels(self) -> list[GateLevel]:
        return [layer.gate_level(f"level {i}") for i, layer in enumerate(self.extraction)]
