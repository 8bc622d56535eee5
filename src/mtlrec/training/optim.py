"""Optimizers and learning-rate schedules (linear warm-up, then cosine, linear or constant)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

OptimizerName = Literal["adamw", "sgd"]
ScheduleName = Literal["cosine", "linear", "constant"]


def build_optimizer(
    parameters: Iterable[nn.Parameter],
    name: OptimizerName = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """AdamW or SGD (with momentum) over the parameters that require gradients."""
    params = [p for p in parameters if p.requires_grad]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; known: adamw, sgd")


def schedule_factor(step: int, total: int, warmup: int, name: ScheduleName) -> float:
    """Multiplier of the base learning rate at optimizer ``step`` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if name == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if name == "linear":
        return max(0.0, 1.0 - progress)
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {name!r}; known: cosine, linear, constant")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    name: ScheduleName = "cosine",
) -> LambdaLR:
    """A per-step scheduler: linear warm-up over ``warmup_steps``, then ``name`` decay."""
    schedule_factor(0, total_steps, warmup_steps, name)  # validates the name early
    return LambdaLR(optimizer, lambda step: schedule_factor(step, total_steps, warmup_steps, name))
