"""What an artifact of the sequential model holds besides its weights.

The sequential model scores a user from the user's history, so its bundle carries each
known user's history (item rows, oldest first: the training and validation interactions,
what the run ranks test users after) and what the training reviews summed per item (the
review content of ``item_reviews``; the weights hold only learned parameters). One file,
``sequential.safetensors``:

- ``history/offsets`` ``(N_users + 1,)`` and ``history/items`` ``(M,)``: user ``u``'s history
  is ``items[offsets[u]:offsets[u + 1]]``;
- ``content/sum`` ``(N_items, D)`` and ``content/count`` ``(N_items,)`` (with item reviews);
- metadata ``review_dim``: the width of a review embedding (``""`` when none).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtlrec.config.experiment import ExperimentConfig
from mtlrec.export.parts import ModelParts
from mtlrec.models.sequential import SequentialRecommender
from mtlrec.models.sequential_factory import sequential_model

SEQUENTIAL_FILE = "sequential.safetensors"


def save_sequential(
    model: SequentialRecommender,
    histories: Mapping[int, np.ndarray],
    n_users: int,
    review_dim: int | None,
    folder: Path,
) -> dict[str, Any]:
    """Write :data:`SEQUENTIAL_FILE` into ``folder``; returns the manifest's description."""
    from safetensors.torch import save_file

    lengths = np.array([len(histories.get(u, ())) for u in range(n_users)], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    items = (
        np.concatenate([np.asarray(histories.get(u, ()), dtype=np.int64) for u in range(n_users)])
        if n_users
        else np.zeros(0, dtype=np.int64)
    )
    tensors = {
        "history/offsets": torch.from_numpy(offsets),
        "history/items": torch.from_numpy(items.astype(np.int64)),
    }
    encoder = model.items
    if encoder.content_adaptor is not None:
        tensors["content/sum"] = encoder.content_sum.detach().cpu().contiguous()
        tensors["content/count"] = encoder.content_count.detach().cpu().contiguous()
    metadata = {"review_dim": "" if review_dim is None else str(review_dim)}
    save_file(tensors, folder / SEQUENTIAL_FILE, metadata=metadata)
    return {
        "file": SEQUENTIAL_FILE,
        "users_with_history": int((lengths > 0).sum()),
        "history_items": int(lengths.sum()),
        "max_len": model.max_len,
        "retrieval_task": model.retrieval_task,
    }


def load_sequential(
    folder: Path, config: ExperimentConfig, parts: ModelParts
) -> tuple[SequentialRecommender, dict[int, np.ndarray]]:
    """The untrained model of ``config`` over ``parts`` (load the weights next) and the
    users' histories, from :data:`SEQUENTIAL_FILE`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = folder / SEQUENTIAL_FILE
    tensors = load_file(path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    review_dim = int(metadata["review_dim"]) if metadata.get("review_dim") else None
    content = (
        (tensors["content/sum"], tensors["content/count"]) if "content/sum" in tensors else None
    )
    with torch.random.fork_rng(devices=[]):
        model = sequential_model(
            config,
            parts.entities,
            parts.specs,
            parts.excluded_inputs,
            review_content=content,
            review_dim=review_dim,
        )
    offsets = tensors["history/offsets"].numpy()
    items = tensors["history/items"].numpy()
    histories = {
        u: items[offsets[u] : offsets[u + 1]]
        for u in range(len(offsets) - 1)
        if offsets[u + 1] > offsets[u]
    }
    return model, histories
