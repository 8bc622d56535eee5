"""Short, human-readable reasons for a recommended item.

A reason names what put the item on the list: the retrievers that proposed it (with their
ranks), the head prediction that ranked it, the history item it is most similar to
("similar to B0002E1G5C in your history": co-occurrence first, LM item embeddings when the
two never co-occurred), or popularity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtlrec.serving.catalogue import Catalogue


def nearest_history(catalogue: Catalogue, history: np.ndarray, items: np.ndarray) -> list[int]:
    """For each item row in ``items`` ``(k,)``: the row of the most similar item of
    ``history`` ``(h,)`` or ``-1`` when none is similar at all."""
    if not len(history) or not len(items):
        return [-1] * len(items)
    similarity = catalogue.similarity[items].toarray()[:, history].T  # (h, k), symmetric
    if catalogue.vectors is not None:
        cosine = catalogue.vectors[history] @ catalogue.vectors[items].T  # (h, k)
        similarity = np.where(similarity > 0, 1.0 + similarity, np.maximum(cosine, 0.0))
    best = similarity.argmax(axis=0)
    found = similarity[best, np.arange(len(items))] > 0
    return [int(history[b]) if ok else -1 for b, ok in zip(best, found, strict=True)]


def similar_to(catalogue: Catalogue, row: int) -> str | None:
    return None if row < 0 else f"similar to {catalogue.item_ids[row]} in your history"


def fused_reason(retrieved_by: Sequence[tuple[str, int]], similar: str | None) -> str:
    """``"retrieved by item_knn #3, als #12; similar to X in your history"``."""
    parts = []
    if retrieved_by:
        parts.append("retrieved by " + ", ".join(f"{n} #{r}" for n, r in retrieved_by[:3]))
    if similar:
        parts.append(similar)
    return "; ".join(parts) or "ranked by the fused cascade"


def model_reason(task: str, value: float, similar: str | None) -> str:
    """``"predicted interest 0.83; similar to X in your history"``."""
    head = f"predicted {task} {value:.2f}"
    return f"{head}; {similar}" if similar else head


def cold_reason(similar: str | None) -> str:
    return similar or "close to your history's items"


def popular_reason(count: float) -> str:
    return f"popular: {int(count)} interactions in training"
