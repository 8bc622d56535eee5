"""A last training stage: the auxiliary heads refitted on the frozen shared model.

Joint training stops where the monitored task (ranking) peaks; a small auxiliary task may
still be undertrained there (its head learnt from a few epochs at a low task weight). This
stage freezes every parameter but the heads named, trains them on their own losses, and
keeps each head's best epoch by its own validation metric. With the shared part frozen the
heads are independent of each other, so choosing an epoch per head is choosing per task
what a separate fit of that head alone would choose; the monitored task and everything the
shared part computes stay exactly as joint training left them.

::

    result = refit_heads(model, model.heads, specs, ["brand", "rating"], loader,
                         validate, epochs=20, patience=3)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from mtlrec.core.types import TaskSpec
from mtlrec.models.losses import masked_task_loss
from mtlrec.training.trainer import BatchSource

HEAD_MONITORS: dict[str, tuple[str, str]] = {
    "binary": ("auc", "max"),
    "multiclass": ("macro_f1", "max"),
    "multilabel": ("auc", "max"),
    "regression": ("rmse", "min"),
}
"""The validation metric (and direction) that picks each kind of head's epoch."""


@dataclass
class RefitResult:
    """Per head: the chosen epoch of the refit stage (``-1``: none beat the joint model's
    head, which is kept) and its validation value; epochs run."""

    best_epoch: dict[str, int] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    epochs_run: int = 0


def _better(value: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def refit_heads(
    model: nn.Module,
    heads: Mapping[str, nn.Module],
    specs: Mapping[str, TaskSpec],
    tasks: Sequence[str],
    train: BatchSource,
    validate: Callable[[], Mapping[str, float]],
    epochs: int,
    patience: int,
    lr: float = 1e-3,
    prefix: str = "valid",
    log: Callable[[str], None] | None = None,
    forward: Callable[[Mapping[str, Tensor]], Mapping[str, Tensor]] | None = None,
) -> RefitResult:
    """Train the ``heads`` of ``tasks`` alone for up to ``epochs`` epochs over ``train``
    (every other parameter of ``model`` frozen), validating after each; each head keeps
    its best weights by ``<prefix>/<task>/<metric>`` of :data:`HEAD_MONITORS` (the joint
    model's head counts as epoch -1); stops when no head improved for ``patience`` epochs.
    ``validate()`` returns the flat validation metrics of the model as it is;
    ``forward`` (default: ``model``) gives the predictions of a batch's features, at
    least those of ``tasks`` (a model may skip the outputs no head needs)."""
    if not tasks:
        return RefitResult()
    unknown = [t for t in tasks if t not in heads]
    if unknown:
        raise ValueError(f"no head for tasks {unknown}; heads: {sorted(heads)}")
    monitors = {t: HEAD_MONITORS[specs[t].kind] for t in tasks}
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(False)
    params = [p for t in tasks for p in heads[t].parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr)
    predict = forward if forward is not None else model
    result = RefitResult()
    best_state: dict[str, dict[str, Tensor]] = {}
    try:
        metrics = validate()
        for task in tasks:
            metric, _ = monitors[task]
            result.best[task] = metrics.get(f"{prefix}/{task}/{metric}", float("nan"))
            result.best_epoch[task] = -1
            best_state[task] = copy.deepcopy(heads[task].state_dict())
        stale = 0
        for epoch in range(epochs):
            model.train()
            for batch in train.batches(10_000 + epoch):
                predictions = predict(batch.features)
                losses = [
                    loss
                    for task in tasks
                    if task in batch.labels
                    and (
                        loss := masked_task_loss(
                            specs[task],
                            predictions[task].float(),
                            batch.labels[task],
                            batch.masks[task],
                        )
                    )
                    is not None
                ]
                if not losses:
                    continue
                optimizer.zero_grad(set_to_none=True)
                total: Tensor = torch.stack(losses).sum()
                total.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
            result.epochs_run = epoch + 1
            metrics = validate()
            improved = []
            for task in tasks:
                metric, mode = monitors[task]
                value = metrics.get(f"{prefix}/{task}/{metric}", float("nan"))
                previous = result.best[task]
                if _better(value, None if math.isnan(previous) else previous, mode):
                    result.best[task], result.best_epoch[task] = value, epoch
                    best_state[task] = copy.deepcopy(heads[task].state_dict())
                    improved.append(task)
            if log is not None:
                values = ", ".join(f"{t} {result.best[t]:.4f}" for t in tasks)
                log(f"head refit epoch {epoch}: best {values}; improved {improved or 'none'}")
            stale = 0 if improved else stale + 1
            if stale >= patience:
                break
    finally:
        for task in tasks:
            if task in best_state:
                heads[task].load_state_dict(best_state[task])
        for name, p in model.named_parameters():
            p.requires_grad_(trainable[name])
        model.eval()
    return result
