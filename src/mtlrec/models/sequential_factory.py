"""Building the sequential recommender from a config and its parts, and scoring (user, item)
pairs with it after each user's history.

Both need no dataset: :func:`sequential_model` takes the entities, the task specs and what
the training data summed (the review content per item), so a run (``pipeline``) and an
artifact (``export`` / ``serving``) build the very same model;
:func:`sequential_head_scorer` is the model as a :data:`~mtlrec.core.types.HeadScorer`, for
the fusion cascade and the service alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.core.types import HeadScorer, TaskSpec
from mtlrec.data.examples import EntityData
from mtlrec.models.architectures import Architecture, SequentialArchitecture
from mtlrec.models.heads import HEADS, Head
from mtlrec.models.multitask import MultiTaskModel, TaskModel
from mtlrec.models.scoring import SCORABLE_KINDS, head_scorer, head_value, ranking_tasks
from mtlrec.models.sequential import ItemEncoder, SequentialRecommender, history_tokens


def sequential_params(config: ExperimentConfig) -> SequentialArchitecture:
    """The sequential architecture's settings of ``config.model.params``."""
    params = Architecture.of(config)
    if not isinstance(params, SequentialArchitecture):
        raise ValueError(f"model.name is {config.model.name!r}, not a sequential architecture")
    return params


def item_attributes(
    entities: EntityData, excluded_inputs: set[str]
) -> dict[str, tuple[Tensor, int]]:
    """The item attribute tables the item vectors read: ``name -> (codes, vocab size)``
    (label source columns left out)."""
    return {
        name: (entities.tables[name], size)
        for name, size in entities.categorical.items()
        if name.startswith("items.") and name not in excluded_inputs
    }


def sequential_model(
    config: ExperimentConfig,
    entities: EntityData,
    specs: Mapping[str, TaskSpec],
    excluded_inputs: set[str],
    *,
    review_content: tuple[Tensor, Tensor] | None = None,
    review_dim: int | None = None,
    item_counts: Tensor | None = None,
    item_item_weights: Tensor | None = None,
) -> SequentialRecommender:
    """The untrained sequential model of ``config`` over ``entities``.

    ``specs``: every task, the retrieval task ``multiclass`` over the items;
    ``review_content``: the training reviews' LM embedding sum ``(N_items, D)`` and count
    ``(N_items,)`` per item (with ``item_reviews``); ``review_dim``: the width of a review
    embedding (for tasks that read their own review); ``item_counts`` ``(N_items,)``:
    training interactions per item (the sampled softmax's proposal);
    ``item_item_weights`` ``(N_items, N_items)``: the fixed item-to-item weights of
    ``item_item_ease`` (None: zeros, for weights loaded from a state dict next)."""
    params = sequential_params(config)
    if params.history_len is not None and params.history_len < 1:
        raise ValueError(f"model.params.history_len must be >= 1, got {params.history_len}")
    if params.encoder == "causal" and params.scoring_len > params.max_len:
        raise ValueError(
            f"model.params.history_len {params.scoring_len} > max_len {params.max_len}: the "
            "causal encoder has max_len positions (only the pooled one reads longer histories)"
        )
    text = entities.tables.get("items.text") if params.use_text else None
    n_ids = int(entities.item_vocab_index.max()) + 1 if len(entities.item_ids) else 1
    if params.item_reviews and review_content is None:
        raise ValueError("item_reviews needs the review content per item")
    if params.item_item_ease is not None:
        if not params.item_item:
            raise ValueError("item_item_ease sets the item-to-item term's weights: set item_item")
        n_items = len(entities.item_ids)
        if item_item_weights is None:
            item_item_weights = torch.zeros(n_items, n_items)
    else:
        item_item_weights = None
    items = ItemEncoder(
        entities.item_vocab_index,
        n_ids,
        params.dim,
        text=text,
        attributes=item_attributes(entities, excluded_inputs) if params.use_attributes else None,
        n_experts=params.n_experts,
        dropout=params.dropout,
        use_ids=params.use_ids,
        item_bias=params.item_bias,
        review_content=review_content if params.item_reviews else None,
        norm=params.item_norm,
    )
    inputs = {name: params.inputs_of(name) for name in specs}
    heads: dict[str, Head] = {}
    for name, spec in specs.items():
        if name == params.retrieval_task:
            continue
        chosen = (config.tasks or {}).get(name)
        head = chosen.head if chosen is not None and chosen.head is not None else config.model.head
        width = SequentialRecommender.rep_dim(inputs[name], params.dim)
        heads[name] = HEADS.get(head.name)(width, spec, **head.params)
    return SequentialRecommender(
        items,
        params.dim,
        specs,
        heads,
        params.retrieval_task,
        inputs,
        encoder=params.encoder,
        max_len=params.max_len,
        layers=params.layers,
        n_heads=params.heads,
        dropout=params.dropout,
        review_dim=review_dim,
        temperature=params.temperature,
        item_item=params.item_item,
        item_tokens=entities.tables.get("items.tokens"),
        sampled_negatives=params.sampled_negatives,
        item_counts=item_counts if params.sampled_negatives else None,
        item_item_weights=item_item_weights,
        set_targets=params.history_order == "set",
        exclude_seen=params.exclude_seen,
    )


def sequential_ranking_tasks(
    model: SequentialRecommender, tasks: Sequence[str] | None
) -> list[str]:
    """The tasks used as fusion sources: ``tasks`` (checked) or every task of
    :meth:`SequentialRecommender.pair_tasks` with one number per pair."""
    allowed = [
        t
        for t in model.pair_tasks()
        if t == model.retrieval_task
        or (model.specs[t].kind in SCORABLE_KINDS and model.specs[t].level == "interaction")
    ]
    if tasks is None:
        return allowed
    bad = [t for t in tasks if t not in allowed]
    if bad:
        raise ValueError(
            f"tasks {bad} give no score per (user, item) pair before the interaction; "
            f"the sequential model's are {allowed}"
        )
    return list(tasks)


def sequential_head_scorer(
    model: SequentialRecommender,
    histories: Mapping[int, np.ndarray],
    max_len: int,
    tasks: Sequence[str],
    batch_pairs: int = 65536,
    item_vectors: torch.Tensor | None = None,
) -> HeadScorer:
    """The model as a :data:`HeadScorer` over (user row, item row) pairs: each user is
    encoded from ``histories`` (item rows, oldest first: what is known about the user where
    the pairs are scored; a user without one has the start token alone); the retrieval
    task's value is its logit (what ranking sorts by), every other task's the
    :func:`head_value` of its head. ``item_vectors``: the eval-mode ``model.items()``
    ``(N_items, dim)``, kept by a caller whose model no longer changes (serving); None:
    computed on each call."""
    empty = np.zeros(0, dtype=np.int64)

    @torch.inference_mode()
    def score(users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        if model.training:
            model.eval()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = {t: np.empty(len(users), dtype=np.float32) for t in tasks}
        for start in range(0, len(users), batch_pairs):
            part = slice(start, start + batch_pairs)
            distinct, index = np.unique(users[part], return_inverse=True)
            tokens = np.stack(
                [history_tokens(histories.get(int(u), empty), max_len) for u in distinct]
            )
            outputs = model.pair_outputs(
                torch.from_numpy(tokens),
                torch.from_numpy(index.reshape(-1)),
                torch.from_numpy(items[part]),
                item_vectors,
                tasks,
            )
            for task, value in pair_values(model, outputs, tasks).items():
                out[task][part] = value
        return out

    return score


def pair_values(
    model: SequentialRecommender, outputs: Mapping[str, Tensor], tasks: Sequence[str]
) -> dict[str, np.ndarray]:
    """``{task: (P,)}`` float32 of :meth:`SequentialRecommender.pair_outputs`: the retrieval
    task's logit as it is, every other task's :func:`head_value` of its head output."""
    values = {}
    for task in tasks:
        value = outputs[task].float()
        if task != model.retrieval_task:
            value = head_value(model.specs[task], value)
        values[task] = value.numpy().astype(np.float32, copy=False)
    return values


def model_ranking_tasks(model: TaskModel, tasks: Sequence[str] | None) -> list[str]:
    """The tasks of either architecture used as fusion sources: ``tasks`` (checked) or all
    that give one number per (user, item) pair."""
    if isinstance(model, SequentialRecommender):
        return sequential_ranking_tasks(model, tasks)
    assert isinstance(model, MultiTaskModel)
    return ranking_tasks(model, tasks)


def model_head_scorer(
    model: TaskModel,
    config: ExperimentConfig,
    entities: EntityData,
    histories: Callable[[], Mapping[int, np.ndarray]],
    tasks: Sequence[str],
    device: str = "cpu",
) -> HeadScorer:
    """Either architecture as a :data:`HeadScorer`: the pointwise model from the users'
    ids and profiles, the sequential one from ``histories()`` (asked only for it)."""
    if isinstance(model, SequentialRecommender):
        length = sequential_params(config).scoring_len
        return sequential_head_scorer(model, histories(), length, tasks)
    assert isinstance(model, MultiTaskModel)
    return head_scorer(model, entities, tasks, device)
