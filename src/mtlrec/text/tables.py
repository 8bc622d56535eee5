"""LM embedding tables for the model's inputs, built from the prepared tables.

* ``items.text`` ``(N_items, D)``: every item's text (cold items too), with the fields
  that an item-attribute task predicts left out (the genres task must not read genres).
* ``history_profile`` ``(N_examples, D)``: a per-example mean of the embeddings of the
  user's TRAINING items, leaving out the example's own item (a training positive must not
  find its target in its own input).
* ``review_profile`` ``(N_examples, D)``: a per-example mean of the embeddings of the
  user's TRAINING reviews, leaving out the example's own review, so the review being
  predicted never enters the inputs of its own example.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import polars as pl
import torch
from torch import Tensor

from mtlrec.text.cache import EmbeddingCache, SupportsEncode
from mtlrec.text.templates import TextTemplates

ITEM_TEXT_FIELDS: tuple[str, ...] = (
    "title",
    "year",
    "genres",
    "categories",
    "brand",
    "price",
    "description",
)


def item_text_table(
    items: pl.DataFrame,
    encoder: SupportsEncode,
    cache: EmbeddingCache,
    exclude_fields: Collection[str] = (),
    templates: TextTemplates | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[Tensor, list[str]]:
    """Embeddings ``(N_items, D)`` of the items' texts in table order, and the texts."""
    templates = templates or TextTemplates()
    blanked = items.with_columns(
        pl.lit(None).alias(f) for f in exclude_fields if f in items.columns
    )
    texts = [
        templates.item_text(row) or "(no description)" for row in blanked.iter_rows(named=True)
    ]
    vectors = cache.get_or_encode(encoder, texts, batch_size=batch_size, progress=progress)
    return torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)), texts


def history_profiles(
    example_users: Tensor,
    example_items: Tensor,
    own_in_history: Tensor,
    history_users: Tensor,
    history_items: Tensor,
    item_table: Tensor,
) -> tuple[Tensor, Tensor]:
    """Per example ``(N, D)``: mean LM embedding of the user's training items, own item out.

    ``example_users`` / ``example_items`` ``(N,)`` are entity rows; ``own_in_history``
    ``(N,)`` marks examples whose (user, item) is itself one of the training pairs listed in
    ``history_users`` / ``history_items`` ``(H,)``, whose item is then left out of its own
    profile (otherwise a training positive would see its target in its input, a shortcut
    that vanishes on held-out items). ``item_table`` ``(N_items, D)`` holds item
    embeddings. Also returns the per-user mean over all training items ``(N_users, D)``,
    used when scoring items outside the examples (full ranking).
    """
    n_users = 1 + max(
        int(history_users.max()) if len(history_users) else -1,
        int(example_users.max()) if len(example_users) else -1,
    )
    dim = item_table.shape[1]
    sums = torch.zeros(n_users, dim, dtype=torch.float64)
    counts = torch.zeros(n_users, dtype=torch.float64)
    sums.index_add_(0, history_users, item_table[history_items].double())
    counts.index_add_(0, history_users, torch.ones(len(history_users), dtype=torch.float64))
    own = item_table[example_items].double() * own_in_history[:, None]
    n = counts[example_users] - own_in_history.double()
    profile = (sums[example_users] - own) / n.clamp(min=1)[:, None] * (n > 0)[:, None]
    per_user = sums / counts.clamp(min=1)[:, None]
    return profile.float(), per_user.float()


def review_profiles(
    example_interaction_ids: np.ndarray,
    example_users: np.ndarray,
    reviews: pl.DataFrame,
    encoder: SupportsEncode,
    cache: EmbeddingCache,
    templates: TextTemplates | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[Tensor, Tensor]:
    """Per example ``(N, D)``: mean embedding of the user's training reviews except its own.

    ``example_interaction_ids`` ``(N,)`` (-1 for examples without a review of their own) and
    ``example_users`` ``(N,)`` user rows. ``reviews`` has ``interaction_id``, ``user_row``,
    ``split``, ``summary`` and ``text``. Users with no other training review get zeros.
    Also returns the per-user mean over all training reviews ``(N_users, D)``, the profile
    used when scoring items a user has not reviewed (full ranking).
    """
    templates = templates or TextTemplates()
    train = reviews.filter(pl.col("split") == "train")
    texts = [templates.review_text(row) or "(empty review)" for row in train.iter_rows(named=True)]
    vectors = cache.get_or_encode(encoder, texts, batch_size=batch_size, progress=progress)
    dim = vectors.shape[1] if len(texts) else 0
    n_users = int(max(example_users.max(initial=-1), train["user_row"].max() or -1)) + 1
    sums = np.zeros((n_users, dim), dtype=np.float64)
    counts = np.zeros(n_users, dtype=np.int64)
    users = train["user_row"].to_numpy()
    np.add.at(sums, users, vectors)
    np.add.at(counts, users, 1)
    own = np.full((len(example_users), dim), 0.0)
    has_own = np.zeros(len(example_users), dtype=bool)
    if len(texts):
        position = {int(i): k for k, i in enumerate(train["interaction_id"].to_list())}
        rows = np.array([position.get(int(i), -1) for i in example_interaction_ids])
        has_own = rows >= 0
        own[has_own] = vectors[rows[has_own]]
    n = counts[example_users] - has_own
    total = sums[example_users] - own
    profile = np.divide(total, np.maximum(n, 1)[:, None]) * (n > 0)[:, None]
    per_user = sums / np.maximum(counts, 1)[:, None]
    return torch.from_numpy(profile.astype(np.float32)), torch.from_numpy(
        per_user.astype(np.float32)
    )
