"""Gate utilisation of mixture-of-experts backbones (MMoE, PLE): how much each task's gate
leans on each expert, averaged over examples.

:func:`gate_utilisation` registers forward hooks on the gates a backbone declares
(:meth:`Backbone.gate_levels`), runs the model over some batches and returns, per level, the
mean weight of every expert in every task's gate (and in PLE's shared gate). A gate's weights
sum to one over the experts it mixes; experts it cannot reach are ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from mtlrec.models.backbones.base import GateView
from mtlrec.models.multitask import MultiTaskModel


@dataclass(frozen=True)
class GateLevelUsage:
    """Mean gate weights of one level: ``tasks[t][e]`` is task ``t``'s mean weight on expert
    ``experts[e]`` (``None`` where the gate does not reach that expert)."""

    name: str
    experts: tuple[str, ...]
    tasks: dict[str, list[float | None]]
    shared_gate: list[float | None] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "experts": list(self.experts)}
        out["tasks"] = {t: list(w) for t, w in self.tasks.items()}
        if self.shared_gate is not None:
            out["shared_gate"] = list(self.shared_gate)
        return out


@dataclass(frozen=True)
class GateUtilisation:
    """Every gated level of a backbone, with the number of examples averaged over."""

    levels: list[GateLevelUsage]
    examples: int = field(default=0)

    def to_json(self) -> dict[str, Any]:
        """``{"examples": n, "levels": [{"name", "experts", "tasks": {task: [w...]}}]}``."""
        return {"examples": self.examples, "levels": [lv.to_json() for lv in self.levels]}


class _MeanOutput:
    """A forward hook that sums a gate's ``(B, E)`` outputs and counts the rows."""

    def __init__(self) -> None:
        self.total: Tensor | None = None
        self.rows = 0

    def __call__(self, module: nn.Module, inputs: Any, output: Tensor) -> None:
        summed = output.detach().double().sum(dim=0).cpu()
        self.total = summed if self.total is None else self.total + summed
        self.rows += int(output.shape[0])

    def spread(self, columns: tuple[int, ...], width: int) -> list[float | None]:
        """The mean weights placed at ``columns`` of a row of ``width`` (others ``None``)."""
        row: list[float | None] = [None] * width
        if self.total is None or not self.rows:
            return row
        for position, value in zip(columns, (self.total / self.rows).tolist(), strict=True):
            row[position] = float(value)
        return row


@torch.inference_mode()
def gate_utilisation(
    model: MultiTaskModel,
    batches: Iterable[Mapping[str, Tensor]],
    device: str = "cpu",
) -> GateUtilisation | None:
    """Mean gate weight per task per expert over ``batches`` (feature dicts, each ``(B, ...)``).

    Returns ``None`` for backbones without gates (shared-bottom, ESMM).
    """
    levels = model.backbone.gate_levels()
    if not levels:
        return None
    hooks: dict[tuple[int, str | None], _MeanOutput] = {}  # (level, task or None: shared)
    handles = []
    for index, level in enumerate(levels):
        views: list[tuple[str | None, GateView]] = list(level.tasks.items())
        if level.shared is not None:
            views.append((None, level.shared))
        for owner, view in views:
            hook = hooks[(index, owner)] = _MeanOutput()
            handles.append(view.gate.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    examples = 0
    try:
        for batch in batches:
            model({k: v.to(device) for k, v in batch.items()})
            examples += int(next(iter(batch.values())).shape[0])
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    usage = []
    for index, level in enumerate(levels):
        width = len(level.experts)
        tasks = {t: hooks[(index, t)].spread(v.columns, width) for t, v in level.tasks.items()}
        shared = None
        if level.shared is not None:
            shared = hooks[(index, None)].spread(level.shared.columns, width)
        usage.append(GateLevelUsage(level.name, level.experts, tasks, shared))
    return GateUtilisation(usage, examples)


def feature_batches(
    features: Mapping[str, Tensor], batch_size: int, limit: int | None = None, seed: int = 0
) -> Iterator[dict[str, Tensor]]:
    """Batches of ``features`` (each ``(N, ...)``): all rows, or a fixed random sample of
    ``limit`` rows (same ``seed``, same sample), in their original order."""
    n = int(next(iter(features.values())).shape[0])
    rows = torch.arange(n)
    if limit is not None and n > limit:
        generator = torch.Generator().manual_seed(seed)
        rows = torch.randperm(n, generator=generator)[:limit].sort().values
    for start in range(0, len(rows), batch_size):
        chosen = rows[start : start + batch_size]
        yield {k: v[chosen] for k, v in features.items()}
