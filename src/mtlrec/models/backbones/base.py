"""The backbone interface: a shared input vector -> one representation per task."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from torch import Tensor, nn

from mtlrec.core.registry import Registry


class Backbone(nn.Module, ABC):
    """Maps the input vector ``(B, in_dim)`` to ``{task: (B, out_dim(task))}``.

    ``shared_parameters()`` are the parameters every task's loss reaches (what gradient
    weighting strategies operate on); the last one is the last shared layer's weight.
    ``compose(logits)`` may rewrite head outputs (ESMM's probability chain); default: none.
    """

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


BACKBONES: Registry[type[Backbone]] = Registry("backbone")
