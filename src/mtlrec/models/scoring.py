"""Turning a multi-task model into scores: batched predictions, the inputs of (user, item)
pairs, one number per pair from a head, and score functions over the whole catalogue.

Training, evaluation, the fusion cascade, export and the service all score through these
functions, so a pair is scored the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from mtlrec.core.types import HeadScorer, Predictions, ScoreFn, TaskSpec
from mtlrec.data.examples import EntityData
from mtlrec.models.multitask import MultiTaskModel


@torch.inference_mode()
def predict(
    model: MultiTaskModel,
    features: Mapping[str, Tensor],
    batch_size: int = 8192,
    device: str = "cpu",
) -> Predictions:
    """Model outputs for every row of ``features`` (each ``(N, ...)``), in batches."""
    model.eval()
    n = int(next(iter(features.values())).shape[0])
    parts: dict[str, list[Tensor]] = {}
    for start in range(0, n, batch_size):
        chunk = {k: v[start : start + batch_size].to(device) for k, v in features.items()}
        for task, value in model(chunk).items():
            parts.setdefault(task, []).append(value.float().cpu())
    return {task: torch.cat(values) for task, values in parts.items()}


def pair_features(entities: EntityData, user_rows: Tensor, item_rows: Tensor) -> dict[str, Tensor]:
    """Model inputs for parallel ``(P,)`` user and item rows (ids, per-user dense stand-ins)."""
    features = {
        "user_row": user_rows,
        "user_idx": entities.user_vocab_index[user_rows],
        "item_row": item_rows,
        "item_idx": entities.item_vocab_index[item_rows],
    }
    for name, table in entities.user_dense.items():  # per-user stand-ins (P, D)
        features[name] = table[user_rows]
    return features


SCORABLE_KINDS: tuple[str, ...] = ("binary", "regression", "multiclass")
"""Task kinds that give one number per (user, item): see :func:`head_value`."""


def head_value(spec: TaskSpec, output: Tensor) -> Tensor:
    """One number per example from a head's output ``(P,)`` or ``(P, C)``: the probability
    for binary tasks, the prediction for regression, and for multiclass the expected class
    position scaled to ``[0, 1]`` (``sum_c p_c * c / (C - 1)``: for ordered classes such as
    negative / neutral / positive sentiment, how positive)."""
    if spec.kind == "binary":
        return torch.sigmoid(output.reshape(-1))
    if spec.kind == "regression":
        return output.reshape(-1)
    if spec.kind == "multiclass":
        n = output.shape[-1]
        position = torch.arange(n, dtype=output.dtype, device=output.device) / max(n - 1, 1)
        return torch.softmax(output, dim=-1) @ position
    raise ValueError(f"task {spec.name!r} ({spec.kind}) gives no score per (user, item)")


@torch.inference_mode()
def pair_scores(
    model: MultiTaskModel,
    entities: EntityData,
    user_rows: Tensor,
    item_rows: Tensor,
    tasks: Sequence[str],
    device: str = "cpu",
    batch_size: int = 65536,
) -> dict[str, Tensor]:
    """:func:`head_value` of each task in ``tasks`` for ``(P,)`` user/item row pairs: ``(P,)``."""
    model.eval()
    outputs = predict(model, pair_features(entities, user_rows, item_rows), batch_size, device)
    return {task: head_value(model.specs[task], outputs[task]) for task in tasks}


def item_scores(
    model: MultiTaskModel,
    task: str,
    entities: EntityData,
    device: str = "cpu",
    batch_size: int = 65536,
) -> ScoreFn:
    """A ``score_fn(user_rows (b,)) -> (b, N_items)`` scoring every item with ``task``'s raw
    output (logit for binary tasks).

    The ``b * N_items`` pairs go through the network ``batch_size`` pairs at a time, in
    user-major order, and each batch's inputs (:func:`pair_features`, including the per-user
    dense stand-ins ``(batch_size, D)``) are built just before it is scored: memory is the
    ``(b, N_items)`` output plus one batch, never ``b * N_items`` rows of features."""
    n_items = len(entities.item_ids)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")

    @torch.inference_mode()
    def score(user_rows: Tensor) -> Tensor:
        model.eval()
        user_rows = user_rows.reshape(-1).long().cpu()
        b = int(user_rows.shape[0])
        total = b * n_items
        out = torch.empty(total, dtype=torch.float32)  # (b * N_items,) user-major
        for start in range(0, total, batch_size):
            pair = torch.arange(start, min(start + batch_size, total))  # (P,) flat pair index
            features = pair_features(entities, user_rows[pair // n_items], pair % n_items)
            batch = {k: v.to(device) for k, v in features.items()}
            value = model(batch)[task].float().reshape(-1)  # (P,)
            out[start : start + value.numel()] = value.cpu()
        return out.view(b, n_items)

    return score


def scorable_tasks(model: MultiTaskModel) -> list[str]:
    """Heads with one number per (user, item) pair at the interaction level (binary,
    regression, multiclass; not item-attribute tasks)."""
    return [
        name
        for name, spec in model.specs.items()
        if spec.kind in SCORABLE_KINDS and spec.level == "interaction"
    ]


def ranking_tasks(model: MultiTaskModel, tasks: Sequence[str] | None) -> list[str]:
    """The heads used as fusion sources: ``tasks`` (checked) or :func:`scorable_tasks`."""
    if tasks is None:
        return scorable_tasks(model)
    unknown = [t for t in tasks if t not in model.specs]
    if unknown:
        raise ValueError(f"tasks {unknown} are not heads of the model: {sorted(model.specs)}")
    bad = [t for t in tasks if model.specs[t].kind not in SCORABLE_KINDS]
    if bad:
        raise ValueError(f"tasks {bad} give no score per (user, item) pair")
    return list(tasks)


def head_scorer(
    model: MultiTaskModel, entities: EntityData, tasks: Sequence[str], device: str = "cpu"
) -> HeadScorer:
    """``model``'s heads ``tasks`` as a :data:`HeadScorer` over (user row, item row) pairs
    (values of :func:`head_value`)."""

    def score(users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        out = pair_scores(
            model,
            entities,
            torch.from_numpy(np.asarray(users, dtype=np.int64)),
            torch.from_numpy(np.asarray(items, dtype=np.int64)),
            tasks,
            device,
        )
        return {t: v.numpy().astype(np.float32) for t, v in out.items()}

    return score
