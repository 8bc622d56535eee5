"""Feature statistics fitted on the TRAINING split only, and serialisable to JSON.

* :class:`Vocabulary` maps string ids/categories to int64 indices; index 0 is ``"<unk>"``
  for values unseen in train (cold users and items, rare categories).
* :class:`NumericScaler` standardises a numeric column with train mean/std.
* :class:`QuantileBucketizer` maps numbers to buckets cut at train quantiles.
* :class:`FeatureSpace` bundles the user/item vocabularies (and optional attribute
  encoders) of one prepared dataset; :func:`fit_feature_space` builds it from the train
  split, ``save``/``load`` write and read it as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mtlrec.data.schema import CanonicalTables

UNK = "<unk>"
"""The token at index 0 of every vocabulary."""

ArrayLike = pl.Series | np.ndarray | Sequence[Any] | Iterable[Any]


def _as_series(values: ArrayLike, dtype: pl.DataType) -> pl.Series:
    if isinstance(values, pl.Series):
        return values.cast(dtype, strict=False)
    if isinstance(values, np.ndarray):
        if values.dtype == object:
            return pl.Series("values", values.tolist(), dtype=dtype, strict=False)
        return pl.Series("values", values).cast(dtype, strict=False)
    return pl.Series("values", list(values), dtype=dtype, strict=False)


def _as_float_series(values: ArrayLike) -> pl.Series:
    """Float64 series where nulls and NaNs are both null."""
    series = _as_series(values, pl.Float64())
    return series.fill_nan(None)


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Vocabulary:
    """An index for string values: ``tokens[0]`` is ``"<unk>"``, then known values.

    Build with :meth:`fit`; known tokens are ordered by train frequency (descending), ties
    by value, so the first ``n`` tokens are the ``n`` most frequent.
    """

    tokens: tuple[str, ...] = (UNK,)
    counts: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        if not self.tokens or self.tokens[0] != UNK:
            raise ValueError(f"a vocabulary starts with {UNK!r}; got {self.tokens[:1]!r}")
        if len(self.counts) != len(self.tokens):
            raise ValueError("tokens and counts differ in length")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def fit(cls, values: ArrayLike, min_count: int = 1, max_size: int | None = None) -> Vocabulary:
        """Count ``values`` (nulls ignored) and keep those seen at least ``min_count`` times.

        ``max_size`` caps the number of known tokens (the most frequent are kept; ``<unk>``
        is not counted).
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1; got {min_count}")
        series = _as_series(values, pl.String()).drop_nulls()
        counted = (
            series.value_counts(name="count")
            .rename({series.name: "token"})
            .filter((pl.col("count") >= min_count) & (pl.col("token") != UNK))
            .sort(["count", "token"], descending=[True, False])
        )
        if max_size is not None:
            counted = counted.head(max_size)
        return cls(
            tokens=(UNK, *counted["token"].to_list()),
            counts=(0, *(int(c) for c in counted["count"].to_list())),
        )

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, value: object) -> bool:
        return value != UNK and value in self._index

    @property
    def _index(self) -> dict[str, int]:
        cache: dict[str, int] | None = self.__dict__.get("_index_cache")
        if cache is None:
            cache = {token: i for i, token in enumerate(self.tokens)}
            object.__setattr__(self, "_index_cache", cache)
        return cache

    def encode(self, values: ArrayLike) -> np.ndarray:
        """Indices (int64) of ``values``; unseen values and nulls map to 0 (``<unk>``)."""
        series = _as_series(values, pl.String())
        encoded = series.replace_strict(
            list(self.tokens[1:]),
            list(range(1, len(self.tokens))),
            default=0,
            return_dtype=pl.Int64(),
        )
        return encoded.fill_null(0).to_numpy().astype(np.int64, copy=False)

    def encode_expr(self, column: str | pl.Expr) -> pl.Expr:
        """A polars expression that encodes ``column`` like :meth:`encode`."""
        expr = pl.col(column) if isinstance(column, str) else column
        return (
            expr.cast(pl.String())
            .replace_strict(
                list(self.tokens[1:]),
                list(range(1, len(self.tokens))),
                default=0,
                return_dtype=pl.Int64(),
            )
            .fill_null(0)
        )

    def decode(self, indices: ArrayLike) -> list[str]:
        """Tokens for ``indices``; out-of-range indices raise ``IndexError``."""
        array = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
        array = array.astype(np.int64, copy=False)
        if array.size and (array.min() < 0 or array.max() >= len(self.tokens)):
            raise IndexError(f"index out of range for a vocabulary of {len(self.tokens)} tokens")
        tokens = np.asarray(self.tokens, dtype=object)
        return [str(t) for t in tokens[array]]

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": list(self.tokens), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        tokens = tuple(str(t) for t in data["tokens"])
        counts = tuple(int(c) for c in data.get("counts", [0] * len(tokens)))
        return cls(tokens=tokens, counts=counts)


# --------------------------------------------------------------------------- numeric


@dataclass(frozen=True)
class NumericScaler:
    """Standardise numbers with the mean and (population) std of the train values.

    Nulls and NaNs are ignored when fitting; a zero or undefined std becomes 1.0.
    """

    mean: float = 0.0
    std: float = 1.0
    count: int = 0

    @classmethod
    def fit(cls, values: ArrayLike) -> NumericScaler:
        series = _as_float_series(values).drop_nulls()
        if series.len() == 0:
            return cls(mean=0.0, std=1.0, count=0)
        mean = float(series.mean())  # type: ignore[arg-type]
        std = float(series.std(ddof=0))  # type: ignore[arg-type]
        if not np.isfinite(std) or std <= 0.0:
            std = 1.0
        return cls(mean=mean, std=std, count=int(series.len()))

    def transform(self, values: ArrayLike) -> np.ndarray:
        """``(x - mean) / std`` as float64; nulls come back as NaN."""
        series = _as_float_series(values)
        array = series.to_numpy().astype(np.float64, copy=False)
        return (array - self.mean) / self.std

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "count": self.count}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericScaler:
        return cls(mean=float(data["mean"]), std=float(data["std"]), count=int(data["count"]))


@dataclass(frozen=True)
class QuantileBucketizer:
    """Bucket numbers by edges cut at train quantiles.

    ``edges`` are the distinct interior quantiles ``1/n, ..., (n-1)/n`` of the train
    values, so there are ``len(edges) + 1`` buckets (fewer than ``n_buckets`` when values
    repeat). Bucket ``b`` holds ``edges[b-1] <= x < edges[b]``; nulls/NaN map to -1.
    """

    edges: tuple[float, ...] = ()

    @classmethod
    def fit(cls, values: ArrayLike, n_buckets: int = 5) -> QuantileBucketizer:
        if n_buckets < 1:
            raise ValueError(f"n_buckets must be >= 1; got {n_buckets}")
        array = _as_float_series(values).drop_nulls().to_numpy().astype(np.float64)
        if array.size == 0 or n_buckets == 1:
            return cls(edges=())
        quantiles = np.quantile(array, np.arange(1, n_buckets) / n_buckets)
        edges = np.unique(quantiles)
        # an edge at the minimum would leave bucket 0 empty
        edges = edges[edges > array.min()]
        return cls(edges=tuple(float(e) for e in edges))

    @property
    def n_buckets(self) -> int:
        return len(self.edges) + 1

    def transform(self, values: ArrayLike) -> np.ndarray:
        """Bucket indices (int64) in ``[0, n_buckets)``; -1 for nulls and NaN."""
        array = _as_float_series(values).to_numpy().astype(np.float64, copy=False)
        buckets = np.searchsorted(np.asarray(self.edges, dtype=np.float64), array, side="right")
        return np.where(np.isnan(array), -1, buckets).astype(np.int64)

    def labels(self) -> list[str]:
        """Readable bucket names, e.g. ``["<10", "[10, 25)", ">=25"]``."""
        if not self.edges:
            return ["all"]
        names = [f"<{self.edges[0]:g}"]
        names += [f"[{lo:g}, {hi:g})" for lo, hi in zip(self.edges, self.edges[1:], strict=False)]
        names.append(f">={self.edges[-1]:g}")
        return names

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuantileBucketizer:
        return cls(edges=tuple(float(e) for e in data["edges"]))


# --------------------------------------------------------------------------- feature space


@dataclass
class FeatureSpace:
    """The encoders of one prepared dataset, all fitted on the train split.

    ``users``/``items`` index the ids (0 = unseen); ``categorical`` and ``numeric`` hold
    optional attribute encoders keyed ``"<table>.<column>"`` (e.g. ``"users.age"``).
    """

    users: Vocabulary = field(default_factory=Vocabulary)
    items: Vocabulary = field(default_factory=Vocabulary)
    categorical: dict[str, Vocabulary] = field(default_factory=dict)
    numeric: dict[str, NumericScaler] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        """Size of the user index, including ``<unk>``."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Size of the item index, including ``<unk>``."""
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": self.users.to_dict(),
            "items": self.items.to_dict(),
            "categorical": {k: v.to_dict() for k, v in sorted(self.categorical.items())},
            "numeric": {k: v.to_dict() for k, v in sorted(self.numeric.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpace:
        return cls(
            users=Vocabulary.from_dict(data["users"]),
            items=Vocabulary.from_dict(data["items"]),
            categorical={
                k: Vocabulary.from_dict(v) for k, v in data.get("categorical", {}).items()
            },
            numeric={k: NumericScaler.from_dict(v) for k, v in data.get("numeric", {}).items()},
        )

    def save(self, path: str | Path) -> Path:
        """Write the feature space as JSON; returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), "utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpace:
        """Read a feature space written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text("utf-8")))


def _train_rows(frame: pl.DataFrame, what: str) -> pl.DataFrame:
    if "split" not in frame.columns:
        raise ValueError(f"{what} has no 'split' column; split it before fitting features")
    return frame.filter(pl.col("split") == "train")


def _fit_attributes(
    space: FeatureSpace, table: str, frame: pl.DataFrame, columns: Sequence[str], min_count: int
) -> None:
    for column in columns:
        if column not in frame.columns:
            raise ValueError(f"{table} has no column {column!r}; columns: {frame.columns}")
        dtype = frame.schema[column]
        key = f"{table}.{column}"
        if dtype.is_numeric():
            space.numeric[key] = NumericScaler.fit(frame[column])
        elif dtype == pl.String() or dtype == pl.Categorical() or dtype == pl.Boolean():
            space.categorical[key] = Vocabulary.fit(frame[column].cast(pl.String()), min_count)
        elif isinstance(dtype, pl.List):
            space.categorical[key] = Vocabulary.fit(
                frame[column].explode().cast(pl.String()), min_count
            )
        else:
            raise ValueError(f"cannot build an encoder for {key} of type {dtype}")


def fit_feature_space(
    tables: CanonicalTables,
    interactions: pl.DataFrame | None = None,
    *,
    min_count: int = 1,
    user_columns: Sequence[str] = (),
    item_columns: Sequence[str] = (),
) -> FeatureSpace:
    """Fit user/item vocabularies (and optional attribute encoders) on the train split.

    ``interactions`` is the interactions table with its ``split`` column (default:
    ``tables.interactions``, which must then carry one). Only train interactions count:
    a user or item that occurs only in valid/test encodes to 0. Attribute encoders for
    ``user_columns``/``item_columns`` are fitted on the users/items that occur in train
    (strings and lists -> :class:`Vocabulary`, numbers -> :class:`NumericScaler`).

    For ``tables.kind == "tabular"`` the examples are the rows of ``tables.users`` (which
    must carry the ``split`` column); user ids and ``user_columns`` are fitted on its train
    rows and the item vocabulary stays empty.
    """
    space = FeatureSpace()
    if tables.kind == "tabular":
        train_users = _train_rows(tables.users, "users (tabular dataset)")
        space.users = Vocabulary.fit(train_users["user_id"], min_count)
        _fit_attributes(space, "users", train_users, user_columns, min_count)
        _fit_attributes(space, "items", tables.items.head(0), item_columns, min_count)
        return space
    frame = tables.interactions if interactions is None else interactions
    train = _train_rows(frame, "interactions")
    space.users = Vocabulary.fit(train["user_id"], min_count)
    space.items = Vocabulary.fit(train["item_id"], min_count)
    if user_columns:
        users = tables.users.filter(pl.col("user_id").is_in(train["user_id"].unique().implode()))
        _fit_attributes(space, "users", users, user_columns, min_count)
    if item_columns:
        items = tables.items.filter(pl.col("item_id").is_in(train["item_id"].unique().implode()))
        _fit_attributes(space, "items", items, item_columns, min_count)
    return space


ITEM_ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "brand",
    "categories",
    "genres",
    "price",
    "year",
    "main_cat",
)
"""Item columns encoded by default when they hold any value (free text is left to the LM)."""
NOT_FEATURES: frozenset[str] = frozenset({"user_id", "item_id", "name", "split"})


def default_feature_columns(
    tables: CanonicalTables, exclude: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """User and item attribute columns worth an encoder: ``(user_columns, item_columns)``.

    Users: every extra column (age, gender, occupation, census fields, ...) except names and
    ``exclude`` (columns that task labels are built from, which must not become inputs).
    Items: the attribute columns of :data:`ITEM_ATTRIBUTE_COLUMNS` that hold a value.
    """
    skip = NOT_FEATURES | set(exclude)
    users = [
        c
        for c in tables.users.columns
        if c not in skip and tables.users[c].null_count() < tables.users.height
    ]
    items = [
        c
        for c in ITEM_ATTRIBUTE_COLUMNS
        if c in tables.items.columns
        and c not in skip
        and tables.items[c].null_count() < tables.items.height
        and not (
            isinstance(tables.items.schema[c], pl.List)
            and tables.items[c].list.len().fill_null(0).sum() == 0
        )
    ]
    return users, items
