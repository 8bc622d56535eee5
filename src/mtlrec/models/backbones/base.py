"""The backbone interface: a shared input vector -> one representation per task."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn

from mtlrec.core.registry import Registry


@dataclass(frozen=True)
class GateView:
    """One softmax gate: ``gate`` maps its input to ``(B, len(columns))`` weights over the
    experts at positions ``columns`` of its level's expert list."""

    gate: nn.Module
    columns: tuple[int, ...]


@dataclass(frozen=True)
class GateLevel:
    """The gates of one level of experts (MMoE has one level; PLE one per extraction layer).

    ``experts`` labels every expert of the level (``"expert/0"``, ``"task:like/0"``,
    ``"shared/1"``); ``tasks`` holds each task's gate; ``shared`` the gate that feeds the
    next level's shared experts, when there is one.
    """

    name: str
    experts: tuple[str, ...]
    tasks: Mapping[str, GateView]
    shared: GateView | None = field(default=None)


class Backbone(nn.Module, ABC):
    """Maps the input vector ``(B, in_dim)`` to ``{task: (B, out_dim(task))}``.

    ``shared_parameters()`` are the parameters every task's loss reaches (what gradient
    weighting strategies operate on); the last one is the last shared layer's weight.
    ``compose(logits)`` may rewrite head outputs (ESMM's probability chain); default: none.
    ``gate_levels()`` describes the expert gates (MMoE, PLE) for gate-utilisation reports.

    ``example_params`` are the keyword parameters (beside ``in_dim`` and ``tasks``) of a
    tiny instance: the contract tests build every registered backbone with them, for the
    toy tasks ``click`` (binary), ``score`` (regression) and ``tags`` (multilabel).
    """

    example_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, in_dim: int, tasks: Sequence[str]) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.tasks = tuple(tasks)

    @abstractmethod
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``x`` ``(B, in_dim)`` -> per-task representation ``(B, out_dim(task))``."""

    @abstractmethod
    def out_dim(self, task: str) -> int:
        """Width of ``task``'s representation."""

    @abstractmethod
    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters shared by all tasks."""

    def compose(self, logits: dict[str, Tensor]) -> dict[str, Tensor]:
        """Post-process head outputs; the identity unless a backbone ties tasks together."""
        return logits

    def gate_levels(self) -> list[GateLevel]:
        """The backbone's expert gates, level by level; none unless it mixes experts."""
        return []


BACKBONES: Registry[type[Backbone]] = Registry("backbone")
