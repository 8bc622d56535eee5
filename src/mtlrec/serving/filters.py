"""Request filters -> one boolean exclusion row over the catalogue."""

from __future__ import annotations

import numpy as np

from mtlrec.serving.catalogue import Catalogue
from mtlrec.serving.schemas import Filters


class FilterError(ValueError):
    """A filter the artifact cannot apply (an unknown attribute column): a 422."""


def attribute_mask(catalogue: Catalogue, attributes: dict[str, list[str]]) -> np.ndarray:
    """``(n_items,)`` bool: items whose every named column takes one of its listed values
    (values the vocabulary does not know match nothing)."""
    keep = np.ones(catalogue.n_items, dtype=bool)
    for column, wanted in attributes.items():
        attribute = catalogue.attributes.get(column)
        if attribute is None:
            known = ", ".join(sorted(catalogue.attributes)) or "none"
            raise FilterError(
                f"filters.attributes: {column!r} is not a categorical item attribute of this "
                f"artifact (it has: {known})"
            )
        codes = [attribute.index[v] for v in wanted if v in attribute.index and v != "<unk>"]
        hit = np.isin(attribute.values, np.asarray(codes, dtype=np.int64)).any(axis=1)
        keep &= hit
    return keep


def exclusion(catalogue: Catalogue, filters: Filters, seen: np.ndarray | None = None) -> np.ndarray:
    """``(n_items,)`` bool, True = never recommend: ``seen`` item rows ``(h,)`` when
    ``filters.exclude_seen``, the excluded ids, everything off the allow-list and off the
    attribute filters."""
    out = np.zeros(catalogue.n_items, dtype=bool)
    if filters.exclude_seen and seen is not None and len(seen):
        out[seen] = True
    if filters.exclude_items:
        rows, _ = catalogue.rows_of(filters.exclude_items)
        out[rows] = True
    if filters.include_items is not None:
        rows, _ = catalogue.rows_of(filters.include_items)
        allowed = np.zeros(catalogue.n_items, dtype=bool)
        allowed[rows] = True
        out |= ~allowed
    if filters.attributes:
        out |= ~attribute_mask(catalogue, filters.attributes)
    return out
