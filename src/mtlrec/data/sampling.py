"""Negative sampling for implicit-feedback tasks, vectorised with numpy.

:func:`sample_negatives` draws ``num_per_positive`` items per positive ``(user, item)``
row that the user has never interacted with (neither in ``positives`` nor in
``exclude``). Candidates are drawn in bulk and rejected in bulk: known pairs are encoded as
``user * n_items + item`` keys, sorted once, and every round looks all pending candidates
up with one ``np.searchsorted``; only the rejected ones are redrawn.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

SamplingStrategy = Literal["uniform", "popularity"]
STRATEGIES: tuple[str, ...] = ("uniform", "popularity")

MAX_ROUNDS = 64
"""Rejection rounds before the few rows still pending are drawn exactly (per user)."""


def _int_column(frame: pl.DataFrame, name: str, what: str) -> np.ndarray:
    if name not in frame.columns:
        raise ValueError(f"{what} needs a {name!r} column; it has {frame.columns}")
    column = frame[name]
    if not column.dtype.is_integer():
        raise ValueError(f"{what}.{name} must be integers; got {column.dtype}")
    if column.null_count():
        raise ValueError(f"{what}.{name} has {column.null_count()} nulls")
    return column.to_numpy().astype(np.int64, copy=False)


def _known_keys(
    positives: pl.DataFrame, exclude: pl.DataFrame | None, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted unique keys of known pairs, plus positives' user and item arrays."""
    users = _int_column(positives, "user_idx", "positives")
    items = _int_column(positives, "item_idx", "positives")
    all_users, all_items = [users], [items]
    if exclude is not None:
        all_users.append(_int_column(exclude, "user_idx", "exclude"))
        all_items.append(_int_column(exclude, "item_idx", "exclude"))
    known_users = np.concatenate(all_users)
    known_items = np.concatenate(all_items)
    if known_users.size and known_users.min() < 0:
        raise ValueError("user_idx must be non-negative")
    if known_items.size and (known_items.min() < 0 or known_items.max() >= n_items):
        raise ValueError(f"item_idx must lie in [0, n_items={n_items})")
    if known_users.size and int(known_users.max()) >= np.iinfo(np.int64).max // max(n_items, 1):
        raise ValueError("user_idx * n_items overflows int64")
    keys = np.unique(known_users * n_items + known_items)
    return keys, users, items


def _is_known(keys: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Membership of ``keys`` in the sorted array ``known``."""
    if known.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    at = np.searchsorted(known, keys)
    at[at == known.size] = 0
    found: np.ndarray = np.equal(known[at], keys)
    return found


def popularity_distribution(item_idx: np.ndarray, n_items: int, alpha: float) -> np.ndarray:
    """Sampling probabilities ``∝ count ** alpha`` of each item among ``item_idx``.

    Items never seen get probability 0 (``alpha`` 0 gives uniform over seen items).
    """
    counts = np.bincount(item_idx, minlength=n_items).astype(np.float64)
    weights = np.where(counts > 0, counts**alpha, 0.0)
    total = weights.sum()
    if total <= 0:
        raise ValueError("popularity sampling needs at least one positive")
    return np.asarray(weights / total, dtype=np.float64)


def _check_saturated(
    users: np.ndarray, known: np.ndarray, n_items: int, probabilities: np.ndarray | None
) -> None:
    """Fail when a sampled user has no item left to draw as a negative."""
    known_users = known // n_items
    known_items = known % n_items
    if probabilities is None:
        drawable_total = n_items
        drawable_known = np.ones(known.size, dtype=bool)
    else:
        drawable = probabilities > 0
        drawable_total = int(drawable.sum())
        drawable_known = drawable[known_items]
    sampled = np.unique(users)
    counted_users, counts = np.unique(known_users[drawable_known], return_counts=True)
    full = counted_users[counts >= drawable_total]
    full = full[np.isin(full, sampled)]
    if full.size:
        scope = "every item" if probabilities is None else "every item with a positive count"
        shown = ", ".join(str(u) for u in full[:10].tolist())
        raise ValueError(
            f"{full.size} user(s) interacted with {scope}, so no negative can be drawn "
            f"(user_idx: {shown}{', ...' if full.size > 10 else ''})"
        )


def _draw(
    rng: np.random.Generator, size: int, n_items: int, probabilities: np.ndarray | None
) -> np.ndarray:
    if probabilities is None:
        return rng.integers(0, n_items, size=size, dtype=np.int64)
    return rng.choice(n_items, size=size, replace=True, p=probabilities).astype(np.int64)


def sample_negatives(
    positives: pl.DataFrame,
    n_items: int,
    num_per_positive: int,
    strategy: SamplingStrategy = "uniform",
    seed: int = 0,
    exclude: pl.DataFrame | None = None,
    popularity_alpha: float = 0.75,
    popularity_source: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Draw ``num_per_positive`` negatives for every positive row.

    ``positives`` has integer ``user_idx`` and ``item_idx`` columns (items in
    ``[0, n_items)``); ``exclude`` optionally holds more known pairs (e.g. the validation
    and test positives, or index 0 = ``<unk>``). A negative of a user is never an item of
    that user in ``positives`` ∪ ``exclude``.

    ``strategy`` is ``"uniform"`` over all items or ``"popularity"`` with probability
    ``∝ count ** popularity_alpha`` where ``count`` is the item's number of rows in
    ``positives`` (items without positives are never drawn).

    Returns ``user_idx, item_idx, pos_item_idx`` (Int64), ``num_per_positive`` rows per
    positive, in the positives' order. The same inputs and ``seed`` give the same output.
    Raises ``ValueError`` if a user has interacted with every drawable item.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; known: {STRATEGIES}")
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1; got {n_items}")
    if num_per_positive < 0:
        raise ValueError(f"num_per_positive must be >= 0; got {num_per_positive}")
    known, users, items = _known_keys(positives, exclude, n_items)
    schema = {"user_idx": pl.Int64(), "item_idx": pl.Int64(), "pos_item_idx": pl.Int64()}
    if users.size == 0 or num_per_positive == 0:
        return pl.DataFrame(schema=schema)
    probabilities = None
    if strategy == "popularity":
        if popularity_alpha < 0:
            raise ValueError(f"popularity_alpha must be >= 0; got {popularity_alpha}")
        counted = items
        if popularity_source is not None:
            counted = _int_column(popularity_source, "item_idx", "popularity_source")
        probabilities = popularity_distribution(counted, n_items, popularity_alpha)
    _check_saturated(users, known, n_items, probabilities)

    rng = np.random.default_rng(seed)
    out_users = np.repeat(users, num_per_positive)
    out_pos = np.repeat(items, num_per_positive)
    negatives = _draw(rng, out_users.size, n_items, probabilities)
    pending = np.flatnonzero(_is_known(out_users * n_items + negatives, known))
    rounds = 0
    while pending.size and rounds < MAX_ROUNDS:
        rounds += 1
        redrawn = _draw(rng, pending.size, n_items, probabilities)
        negatives[pending] = redrawn
        still = _is_known(out_users[pending] * n_items + redrawn, known)
        pending = pending[still]
    if pending.size:  # users who know almost every drawable item: draw exactly
        _draw_exactly(rng, pending, out_users, negatives, known, n_items, probabilities)
    return pl.DataFrame(
        {"user_idx": out_users, "item_idx": negatives, "pos_item_idx": out_pos}, schema=schema
    )


def _draw_exactly(
    rng: np.random.Generator,
    pending: np.ndarray,
    out_users: np.ndarray,
    negatives: np.ndarray,
    known: np.ndarray,
    n_items: int,
    probabilities: np.ndarray | None,
) -> None:
    """Fill ``negatives[pending]`` from each user's complement (one pass per such user)."""
    order = np.argsort(out_users[pending], kind="stable")
    pending = pending[order]
    user_values, starts = np.unique(out_users[pending], return_index=True)
    bounds = np.append(starts, pending.size)
    for at, user in enumerate(user_values.tolist()):
        rows = pending[bounds[at] : bounds[at + 1]]
        lo = np.searchsorted(known, user * n_items)
        hi = np.searchsorted(known, (user + 1) * n_items)
        allowed = np.ones(n_items, dtype=bool)
        allowed[known[lo:hi] - user * n_items] = False
        candidates = np.flatnonzero(allowed)
        if probabilities is None:
            negatives[rows] = rng.choice(candidates, size=rows.size)
        else:
            weights = probabilities[candidates]
            negatives[rows] = rng.choice(candidates, size=rows.size, p=weights / weights.sum())
