"""``mtlrec recommend``: one user's final list from a fused run, explained item by item."""

from __future__ import annotations

from typing import Any

import numpy as np

from mtlrec.pipeline.fuse import FusedRun


def recommend_rows(fused: FusedRun, user_id: str, k: int) -> list[dict[str, Any]]:
    """The final top-``k`` list of one user (an original user id) with, per item: its id and
    title, every source's score (multi-task heads and retrievers), the fused score, the
    retrievers that proposed it (with their ranks) and its fused rank before re-ranking."""
    entities = fused.run.data.entities
    try:
        row = entities.user_ids.index(user_id)
    except ValueError:
        raise KeyError(
            f"unknown user {user_id!r} (the run knows {len(entities.user_ids)} users)"
        ) from None
    users = np.array([row], dtype=np.int64)
    exclude = fused.run.ranking.excluded("test", users)  # everything train + valid showed
    out = fused.cascade.run(users, exclude, k)
    fused_order = np.argsort(-out.fused[0], kind="stable")
    fused_rank = np.empty_like(fused_order)
    fused_rank[fused_order] = np.arange(1, fused_order.size + 1)
    items = fused.run.data.dataset.tables["items"]
    titles = items["title"].to_list() if "title" in items.columns else [None] * items.height
    rows = []
    for position, item in enumerate(out.items[0]):
        if item < 0:
            continue
        rows.append(
            {
                "rank": position + 1,
                "item_id": entities.item_ids[item],
                "title": titles[item],
                "scores": {
                    name: float(matrix[0, item]) for name, matrix in out.inputs.scores.items()
                },
                "fused": float(out.fused[0, item]),
                "retrieved_by": out.candidates.retrieved_by(0, int(item)),
                "fused_rank": int(fused_rank[item]),
                "stage": "mmr" if out.reranked else "fusion",
            }
        )
    return rows
