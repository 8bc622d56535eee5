"""Leakage-free splits of the interactions table (and row splits of tabular datasets).

Every splitter adds a column ``split`` with values ``"train"``, ``"valid"`` and ``"test"``.
For interaction data the unit that is split is the ``(user_id, item_id)`` *pair*: all
events of one pair (view, cart and purchase of the same item, or a rating and its review)
land in the same split, so no behaviour of a test pair leaks into training.

Strategies live in :data:`SPLITTERS` as frozen dataclasses built with keyword arguments;
each has ``apply(interactions) -> interactions_with_split``::

    splitter = make_splitter("random", ratios=(0.8, 0.1, 0.1), seed=7)
    with_split = mark_cold_start(splitter.apply(tables.interactions))

``kcore_filter`` is usually run before splitting; ``mark_cold_start`` and
``split_summary`` after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import polars as pl

from mtlrec.core.registry import Registry

SPLIT_NAMES: tuple[str, str, str] = ("train", "valid", "test")
"""The values of the ``split`` column, in order."""

SPLIT_COLUMN = "split"
PAIR_KEYS: tuple[str, str] = ("user_id", "item_id")
DEFAULT_RATIOS: tuple[float, float, float] = (0.8, 0.1, 0.1)
NO_TIMESTAMPS_MESSAGE = "dataset has no timestamps; use the random split"

TieRule = Literal["random", "interaction_id"]
TIE_RULES: tuple[TieRule, ...] = ("random", "interaction_id")
"""How leave-one-out orders a user's pairs with equal times (see :class:`LeaveOneOutSplit`)."""


class Splitter(Protocol):
    """What every registered splitting strategy provides."""

    name: ClassVar[str]
    by_time: ClassVar[bool]
    """True when the split orders interactions by time (its boundaries can fall in a tie)."""

    def apply(self, interactions: pl.DataFrame) -> pl.DataFrame:
        """Return ``interactions`` with a ``split`` column, in the same order.

        Rows are kept, except those a strategy's docstring says it drops (leave-one-out:
        earlier repeats of a held-out ``(user, item, event)``).
        """
        ...


SPLITTERS: Registry[type[Splitter]] = Registry("splitter")
"""Splitting strategies by name: ``random``, ``temporal``, ``leave_one_out``."""


# --------------------------------------------------------------------------- helpers


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Validate train/valid/test ratios: three non-negative numbers summing to 1."""
    values = tuple(float(r) for r in ratios)
    if len(values) != 3:
        raise ValueError(f"ratios must be (train, valid, test); got {tuple(ratios)!r}")
    if any(not np.isfinite(r) or r < 0 for r in values):
        raise ValueError(f"ratios must be finite and non-negative; got {values!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1; got {values!r} (sum {sum(values):.6g})")
    return values[0], values[1], values[2]


def _cut_points(n: int, ratios: tuple[float, float, float]) -> tuple[int, int]:
    """Row counts ``(train_end, valid_end)`` for ``n`` ordered units."""
    train_end = int(round(n * ratios[0]))
    valid_end = int(round(n * (ratios[0] + ratios[1])))
    return min(train_end, n), min(max(valid_end, train_end), n)


def _split_labels(positions: np.ndarray, n: int, ratios: tuple[float, float, float]) -> pl.Series:
    """Split names for units at ``positions`` (0-based ranks) out of ``n`` ordered units."""
    train_end, valid_end = _cut_points(n, ratios)
    codes = np.where(positions < train_end, 0, np.where(positions < valid_end, 1, 2))
    return pl.Series(SPLIT_COLUMN, np.asarray(SPLIT_NAMES, dtype=object)[codes], dtype=pl.String)


def _require_columns(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {missing}; frame has {frame.columns}")


def _require_timestamps(interactions: pl.DataFrame) -> None:
    _require_columns(interactions, ["timestamp"], "a time-based split")
    nulls = interactions["timestamp"].null_count()
    if interactions.height and nulls == interactions.height:
        raise ValueError(NO_TIMESTAMPS_MESSAGE)
    if nulls:
        raise ValueError(
            f"{nulls} of {interactions.height} interactions have no timestamp; a time-based "
            "split needs every timestamp (drop those rows or use the random split)"
        )


def _attach_pair_split(interactions: pl.DataFrame, pair_splits: pl.DataFrame) -> pl.DataFrame:
    """Join the pair-level ``split`` back onto every row, keeping row order."""
    base = interactions.drop(SPLIT_COLUMN) if SPLIT_COLUMN in interactions.columns else interactions
    return base.join(
        pair_splits.select([*PAIR_KEYS, SPLIT_COLUMN]),
        on=list(PAIR_KEYS),
        how="left",
        maintain_order="left",
        nulls_equal=True,
    )


# --------------------------------------------------------------------------- k-core


def kcore_filter(
    interactions: pl.DataFrame, user_k: int, item_k: int
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Iteratively drop users with < ``user_k`` rows and items with < ``item_k`` rows.

    Repeats until no row is removed, so in the result every user has at least ``user_k``
    rows and every item at least ``item_k`` rows (a value <= 1 disables that side). Row
    order is kept. Returns ``(filtered, stats)`` where ``stats`` holds ``rows_removed``,
    ``users_removed``, ``items_removed``, ``rows_kept``, ``users_kept``, ``items_kept``
    and ``iterations`` (filter passes run, counting the final pass that changed nothing).
    """
    _require_columns(interactions, PAIR_KEYS, "kcore_filter")
    if user_k < 0 or item_k < 0:
        raise ValueError(f"k must be non-negative; got user_k={user_k}, item_k={item_k}")
    users_before = interactions["user_id"].n_unique()
    items_before = interactions["item_id"].n_unique()
    frame = interactions
    iterations = 0
    while True:
        iterations += 1
        conditions = []
        if user_k > 1:
            conditions.append(pl.len().over("user_id") >= user_k)
        if item_k > 1:
            conditions.append(pl.len().over("item_id") >= item_k)
        if not conditions:
            break
        filtered = frame.filter(pl.all_horizontal(conditions))
        if filtered.height == frame.height:
            break
        frame = filtered
    stats = {
        "rows_removed": interactions.height - frame.height,
        "users_removed": users_before - frame["user_id"].n_unique(),
        "items_removed": items_before - frame["item_id"].n_unique(),
        "rows_kept": frame.height,
        "users_kept": frame["user_id"].n_unique(),
        "items_kept": frame["item_id"].n_unique(),
        "iterations": iterations,
    }
    return frame, stats


# --------------------------------------------------------------------------- strategies


@SPLITTERS.register("random")
@dataclass(frozen=True)
class RandomSplit:
    """Seeded random split of ``(user_id, item_id)`` pairs by ``ratios``.

    Pairs are sorted before the seeded permutation, so the result depends only on the set
    of pairs and the seed, not on the row order of the input. Exactly
    ``round(n_pairs * train_ratio)`` pairs go to train, and so on.
    """

    name: ClassVar[str] = "random"
    by_time: ClassVar[bool] = False
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    seed: int = 0

    def apply(self, interactions: pl.DataFrame) -> pl.DataFrame:
        ratios = check_ratios(self.ratios)
        _require_columns(interactions, PAIR_KEYS, "the random split")
        pairs = interactions.select(PAIR_KEYS).unique().sort(list(PAIR_KEYS))
        rng = np.random.default_rng(self.seed)
        positions = np.empty(pairs.height, dtype=np.int64)
        positions[rng.permutation(pairs.height)] = np.arange(pairs.height)
        pairs = pairs.with_columns(_split_labels(positions, pairs.height, ratios))
        return _attach_pair_split(interactions, pairs)


@SPLITTERS.register("temporal")
@dataclass(frozen=True)
class TemporalSplit:
    """Global time cut: pairs ordered by their first timestamp, cut at ratio quantiles.

    The boundary timestamps are those of the last pair that fits in train (and in valid) by
    count; every pair whose first timestamp is <= a boundary goes to the earlier split, so
    pairs tied at a boundary always land together in the earlier split: no held-out pair
    starts at the time of an earlier-split pair, and there is no tie rule to choose (the
    price: train, then valid, may hold a little more than its ratio). ``seed`` is accepted
    for a uniform interface and unused. Raises ``ValueError`` without timestamps.
    """

    name: ClassVar[str] = "temporal"
    by_time: ClassVar[bool] = True
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    seed: int = 0

    def apply(self, interactions: pl.DataFrame) -> pl.DataFrame:
        ratios = check_ratios(self.ratios)
        _require_columns(interactions, PAIR_KEYS, "the temporal split")
        _require_timestamps(interactions)
        pairs = interactions.group_by(list(PAIR_KEYS)).agg(first_ts=pl.col("timestamp").min())
        times = np.sort(pairs["first_ts"].to_numpy())
        train_end, valid_end = _cut_points(len(times), ratios)
        none = np.iinfo(np.int64).min
        train_cut = int(times[train_end - 1]) if train_end > 0 else none
        valid_cut = int(times[valid_end - 1]) if valid_end > 0 else none
        split = (
            pl.when(pl.col("first_ts") <= train_cut)
            .then(pl.lit("train"))
            .when(pl.col("first_ts") <= valid_cut)
            .then(pl.lit("valid"))
            .otherwise(pl.lit("test"))
            .alias(SPLIT_COLUMN)
        )
        return _attach_pair_split(interactions, pairs.with_columns(split))


@SPLITTERS.register("leave_one_out")
@dataclass(frozen=True)
class LeaveOneOutSplit:
    """Per user, by time: latest pair -> test, second latest -> valid, the rest -> train.

    A pair's time is that of its latest event. Pairs of one user with equal times are
    ordered by the ``ties`` rule:

    - ``"random"`` (default): a random order drawn with ``seed`` over the pairs sorted by
      ``(user_id, item_id)``, so it depends on the pairs, their times and the seed only,
      never on row order or ids (Amazon timestamps are whole days: many users' last two
      reviews share one);
    - ``"interaction_id"``: the pair with the larger ``interaction_id`` (then ``item_id``)
      is the later one, i.e. file order (the rule before ties were a setting).

    Users with one pair keep it in train; users with two pairs get train + test; users
    with three or more get exactly one valid and one test pair. A held-out pair keeps
    one row per event (its latest; then the larger ``interaction_id``): the earlier rows
    of a repeated ``(user_id, item_id, event)`` in a held-out pair are *dropped*, since
    in train they would leak the held-out item and in valid/test they would be a second
    held-out interaction. So with one event type (ratings, reviews) every such user has
    exactly one valid and one test row. ``ratios`` is accepted for a uniform interface
    and unused. Raises ``ValueError`` without timestamps.
    """

    name: ClassVar[str] = "leave_one_out"
    by_time: ClassVar[bool] = True
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    seed: int = 0
    ties: TieRule = "random"

    def apply(self, interactions: pl.DataFrame) -> pl.DataFrame:
        _require_columns(interactions, [*PAIR_KEYS, "interaction_id"], "the leave-one-out split")
        _require_timestamps(interactions)
        if self.ties not in TIE_RULES:
            raise ValueError(f"unknown tie rule {self.ties!r}; known: {list(TIE_RULES)}")
        pairs = (
            interactions.group_by(list(PAIR_KEYS))
            .agg(
                last_ts=pl.col("timestamp").max(),
                last_id=pl.col("interaction_id")
                .filter(pl.col("timestamp") == pl.col("timestamp").max())
                .max(),
            )
            .sort(list(PAIR_KEYS))
        )
        if self.ties == "random":
            tie = pl.Series("tie", np.random.default_rng(self.seed).permutation(pairs.height))
            pairs = pairs.with_columns(tie).sort(["user_id", "last_ts", "tie"])
        else:
            pairs = pairs.sort(["user_id", "last_ts", "last_id", "item_id"])
        from_end = pl.len().over("user_id") - 1 - pl.int_range(pl.len()).over("user_id")
        n_pairs = pl.len().over("user_id")
        split = (
            pl.when((from_end == 0) & (n_pairs >= 2))
            .then(pl.lit("test"))
            .when((from_end == 1) & (n_pairs >= 3))
            .then(pl.lit("valid"))
            .otherwise(pl.lit("train"))
            .alias(SPLIT_COLUMN)
        )
        return _drop_held_out_repeats(_attach_pair_split(interactions, pairs.with_columns(split)))


def _drop_held_out_repeats(frame: pl.DataFrame) -> pl.DataFrame:
    """Keep one row per ``(user_id, item_id, event)`` of held-out pairs: the latest one."""
    keys = [*PAIR_KEYS, "event"] if "event" in frame.columns else list(PAIR_KEYS)
    held_out = pl.col(SPLIT_COLUMN) != "train"
    kept = (
        frame.filter(held_out)
        .sort(["timestamp", "interaction_id"])
        .unique(subset=keys, keep="last")["interaction_id"]
    )
    return frame.filter(~held_out | pl.col("interaction_id").is_in(kept.implode()))


def make_splitter(name: str, **kwargs: Any) -> Splitter:
    """Build the splitter registered as ``name`` with keyword arguments ``kwargs``."""
    cls = SPLITTERS.get(name)
    if "ratios" in kwargs:
        kwargs["ratios"] = check_ratios(kwargs["ratios"])
    return cls(**kwargs)


def split_interactions(interactions: pl.DataFrame, strategy: str, **kwargs: Any) -> pl.DataFrame:
    """Shortcut: ``make_splitter(strategy, **kwargs).apply(interactions)``."""
    return make_splitter(strategy, **kwargs).apply(interactions)


def split_rows(
    frame: pl.DataFrame, ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 0
) -> pl.DataFrame:
    """Seeded random split of the rows of a tabular dataset (e.g. census records).

    Adds a ``split`` column; exactly ``round(n * train_ratio)`` rows go to train, and so on.
    The same frame and seed always give the same split.
    """
    checked = check_ratios(ratios)
    rng = np.random.default_rng(seed)
    positions = np.empty(frame.height, dtype=np.int64)
    positions[rng.permutation(frame.height)] = np.arange(frame.height)
    base = frame.drop(SPLIT_COLUMN) if SPLIT_COLUMN in frame.columns else frame
    return base.with_columns(_split_labels(positions, frame.height, checked))


# --------------------------------------------------------------------------- after split


def attach_split(frame: pl.DataFrame, interactions_with_split: pl.DataFrame) -> pl.DataFrame:
    """Add the ``split`` of each row's interaction to ``frame`` (joined by interaction_id).

    Used for the reviews table, whose rows point at interactions. Rows whose interaction
    is unknown get a null split.
    """
    _require_columns(interactions_with_split, ["interaction_id", SPLIT_COLUMN], "attach_split")
    base = frame.drop(SPLIT_COLUMN) if SPLIT_COLUMN in frame.columns else frame
    return base.join(
        interactions_with_split.select("interaction_id", SPLIT_COLUMN).unique("interaction_id"),
        on="interaction_id",
        how="left",
        maintain_order="left",
    )


def mark_cold_start(interactions_with_split: pl.DataFrame) -> pl.DataFrame:
    """Add boolean ``cold_user`` and ``cold_item`` columns.

    They are True on valid/test rows whose user (item) never occurs in the train split and
    False otherwise. Cold rows are kept, never removed.
    """
    frame = interactions_with_split
    _require_columns(frame, [*PAIR_KEYS, SPLIT_COLUMN], "mark_cold_start")
    train = frame.filter(pl.col(SPLIT_COLUMN) == "train")
    not_train = pl.col(SPLIT_COLUMN) != "train"
    return frame.with_columns(
        cold_user=(
            not_train & ~pl.col("user_id").is_in(train["user_id"].unique().implode())
        ).fill_null(False),
        cold_item=(
            not_train & ~pl.col("item_id").is_in(train["item_id"].unique().implode())
        ).fill_null(False),
    )


def split_summary(frame: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Rows, users, items and pairs per split, plus cold-start counts on valid/test.

    Returns ``{split: {"rows", "users", "items", "pairs", "cold_user_rows",
    "cold_item_rows", "cold_users", "cold_items"}}`` for train, valid and test (zeros for an
    empty split). ``cold_*`` columns are computed when absent.
    """
    if "cold_user" not in frame.columns or "cold_item" not in frame.columns:
        frame = mark_cold_start(frame)
    stats = frame.group_by(SPLIT_COLUMN).agg(
        rows=pl.len(),
        users=pl.col("user_id").n_unique(),
        items=pl.col("item_id").n_unique(),
        pairs=pl.struct(list(PAIR_KEYS)).n_unique(),
        cold_user_rows=pl.col("cold_user").sum(),
        cold_item_rows=pl.col("cold_item").sum(),
        cold_users=pl.col("user_id").filter(pl.col("cold_user")).n_unique(),
        cold_items=pl.col("item_id").filter(pl.col("cold_item")).n_unique(),
    )
    fields = [c for c in stats.columns if c != SPLIT_COLUMN]
    summary: dict[str, dict[str, int]] = {name: dict.fromkeys(fields, 0) for name in SPLIT_NAMES}
    for row in stats.iter_rows(named=True):  # at most three rows
        summary[str(row[SPLIT_COLUMN])] = {f: int(row[f]) for f in fields}
    return summary
