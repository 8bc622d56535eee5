"""The :class:`Fusion` interface shared by every score-fusion method, and its registry.

A fusion combines the score matrices of several *sources* (recommenders, or the heads of
one multi-task model) for a batch of users over the whole catalogue into one score
matrix. It is fitted on **validation** data only: :meth:`Fusion.fit` takes a
:class:`FusionInput` and the validation positives ``relevant`` ``(b, n_items)``;
:meth:`Fusion.fuse` then scores any other batch with the same sources.

A subclass implements :meth:`Fusion._fit`, :meth:`Fusion._fuse` and the two JSON state
hooks; source-name checks, the exclusion mask, the "never nan" guarantee and
persistence live here, once. Persistence is one JSON file (no pickle)::

    {"format": 1, "fusion": name, "params": {...}, "state": {"sources": [...], ...}}
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from mtlrec.core.params import KeywordParams
from mtlrec.core.registry import Registry

_FORMAT_VERSION = 1
_SOURCES_KEY = "sources"


@dataclass(frozen=True, eq=False)
class FusionInput:
    """Scores of several sources for a batch of ``b`` users over all ``n_items`` items.

    - ``scores``: source name -> ``(b, n_items)`` raw scores (stored as float32; higher is
      better). ``-inf`` means "this source does not score / retrieve this item"; nan and
      ``+inf`` are rejected.
    - ``exclude``: ``(b, n_items)`` bool, items never to recommend (seen in training).
    - ``user_activity``: ``(b,)`` number of training interactions of each user.
    - ``item_popularity``: ``(n_items,)`` number of training interactions of each item.

    The constructor checks every shape and fails naming the offending source.
    """

    scores: Mapping[str, np.ndarray]
    exclude: np.ndarray | None = None
    user_activity: np.ndarray | None = None
    item_popularity: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.scores:
            raise ValueError("FusionInput needs at least one source")
        checked: dict[str, np.ndarray] = {}
        shape: tuple[int, int] | None = None
        first = ""
        for name in sorted(self.scores):
            if not isinstance(name, str) or not name:
                raise ValueError(f"source names must be non-empty strings, got {name!r}")
            arr = np.asarray(self.scores[name], dtype=np.float32)
            if arr.ndim != 2:
                raise ValueError(f"source {name!r}: scores must be (b, n_items), got {arr.shape}")
            if shape is None:
                shape, first = (int(arr.shape[0]), int(arr.shape[1])), name
            elif arr.shape != shape:
                raise ValueError(
                    f"source {name!r}: scores have shape {arr.shape}, "
                    f"but source {first!r} has {shape}"
                )
            if np.isnan(arr).any():
                raise ValueError(f"source {name!r}: scores contain nan")
            if np.isposinf(arr).any():
                raise ValueError(
                    f"source {name!r}: scores contain +inf (only -inf, 'not scored', is allowed)"
                )
            checked[name] = arr
        assert shape is not None
        object.__setattr__(self, "scores", checked)
        if self.exclude is not None:
            exclude = _as_bool(self.exclude, "exclude")
            if exclude.shape != shape:
                raise ValueError(f"exclude has shape {exclude.shape}, scores have {shape}")
            object.__setattr__(self, "exclude", exclude)
        for field_name, expected in (
            ("user_activity", (shape[0],)),
            ("item_popularity", (shape[1],)),
        ):
            value = getattr(self, field_name)
            if value is None:
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != expected:
                raise ValueError(f"{field_name} has shape {arr.shape}, expected {expected}")
            if not np.isfinite(arr).all() or (arr < 0).any():
                raise ValueError(f"{field_name} must be finite and non-negative")
            object.__setattr__(self, field_name, arr)

    @property
    def n_users(self) -> int:
        """``b``, the number of users (rows) in the batch."""
        return int(next(iter(self.scores.values())).shape[0])

    @property
    def n_items(self) -> int:
        """The number of items (columns)."""
        return int(next(iter(self.scores.values())).shape[1])

    @property
    def names(self) -> tuple[str, ...]:
        """The source names, sorted."""
        return tuple(sorted(self.scores))

    def valid(self) -> np.ndarray:
        """``(b, n_items)`` bool: the items that may be recommended (``~exclude``)."""
        if self.exclude is None:
            return np.ones((self.n_users, self.n_items), dtype=bool)
        return ~self.exclude

    def subset(self, rows: np.ndarray) -> FusionInput:
        """The users ``rows`` of the batch (int indices or a ``(b,)`` bool mask)."""
        idx = np.asarray(rows)
        return FusionInput(
            scores={name: s[idx] for name, s in self.scores.items()},
            exclude=None if self.exclude is None else self.exclude[idx],
            user_activity=None if self.user_activity is None else self.user_activity[idx],
            item_popularity=self.item_popularity,
        )


def _as_bool(value: Any, what: str) -> np.ndarray:
    """``value`` as a bool array; integer 0/1 arrays are accepted, anything else fails."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        return arr
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{what} must be boolean (or 0/1), got dtype {arr.dtype}")
    return arr.astype(bool)


def finalize_scores(scores: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    """The fused ``(b, n_items)`` scores as float32 with ``-inf`` exactly at ``exclude``.

    Every other entry is finite: nan and ``-inf`` (an item the fusion cannot score) become
    a value just below the row's smallest finite allowed score, ``+inf`` one just above
    its largest, and finite values are clipped to half the float32 range.
    """
    x = np.array(scores, dtype=np.float64)
    x[np.isnan(x)] = -np.inf
    valid = np.ones(x.shape, dtype=bool) if exclude is None else ~exclude
    finite = np.isfinite(x)
    limit = float(np.finfo(np.float32).max) / 4
    x = np.where(finite, np.clip(x, -limit, limit), x)
    if not (finite | ~valid).all():
        ok = finite & valid
        has = ok.any(axis=1)
        lo = np.where(has, np.where(ok, x, np.inf).min(axis=1), 0.0)
        hi = np.where(has, np.where(ok, x, -np.inf).max(axis=1), 0.0)
        step = 1.0 + 1e-3 * np.maximum(np.abs(lo), np.abs(hi))
        x = np.where(x == -np.inf, (lo - step)[:, None], x)
        x = np.where(x == np.inf, (hi + step)[:, None], x)
    out = x.astype(np.float32)
    out[~valid] = -np.inf
    return out


class Fusion(KeywordParams, ABC):
    """A score-fusion method over named sources.

    Subclasses take explicit keyword arguments in ``__init__`` and store them untouched
    as attributes of the same name (scikit-learn's estimator rule), so :meth:`get_params`
    reads them back; everything learnt lives in attributes ending with ``_``. ``name`` is
    the subclass's name in :data:`FUSIONS`.

    ``extra_sources_ok`` is False for every fusion that weighs all its sources: then
    :meth:`fuse` needs exactly the sources seen at :meth:`fit`. A fusion that reads only
    some sources (``formula``) sets it True and stores in ``sources_`` the ones it needs.

    ``example_params`` are the keyword parameters the contract tests build it with, sized
    for their toy (40 users x 30 items, sources ``good``, ``bad`` and ``anti``); empty:
    the defaults.
    """

    name: ClassVar[str]
    extra_sources_ok: ClassVar[bool] = False
    example_params: ClassVar[dict[str, Any]] = {}
    sources_: tuple[str, ...]

    # ------------------------------------------------------------------ parameters
    def weights(self) -> dict[str, float]:
        """Per-source weights for reporting where meaningful (``{}`` otherwise)."""
        return {}

    # ------------------------------------------------------------------ fitting
    def fit(self, inputs: FusionInput, relevant: np.ndarray) -> Self:
        """Learn the fusion from validation ``inputs`` and the validation positives
        ``relevant`` ``(b, n_items)`` bool. Returns self.

        At least one user must have a relevant item that is not excluded.
        """
        rel = _as_bool(relevant, "relevant")
        shape = (inputs.n_users, inputs.n_items)
        if rel.shape != shape:
            raise ValueError(f"relevant has shape {rel.shape}, scores have {shape}")
        if not (rel & inputs.valid()).any():
            raise ValueError("no user has a relevant item that is not excluded; nothing to fit")
        before = dict(self.__dict__)
        try:
            self.sources_ = inputs.names
            self._fit(inputs, rel)
        except BaseException:  # a failed fit leaves the fusion as it was
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        return self

    @abstractmethod
    def _fit(self, inputs: FusionInput, relevant: np.ndarray) -> None:
        """Learn the state from checked ``inputs`` and bool ``relevant`` ``(b, n_items)``.
        ``self.sources_`` is already set (a subclass may narrow it)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "sources_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def _check_sources(self, inputs: FusionInput) -> None:
        missing = sorted(set(self.sources_) - set(inputs.names))
        extra = [] if self.extra_sources_ok else sorted(set(inputs.names) - set(self.sources_))
        if missing or extra:
            raise ValueError(
                f"{self.name} fusion was fitted on sources {list(self.sources_)}; "
                f"the input lacks {missing} and has unexpected {extra}"
            )

    # ------------------------------------------------------------------ fusing
    def fuse(self, inputs: FusionInput) -> np.ndarray:
        """Fused scores ``(b, n_items)`` float32 for ``inputs`` (same sources as at fit):
        higher is better, ``-inf`` exactly at ``inputs.exclude``, finite elsewhere."""
        self._check_fitted()
        self._check_sources(inputs)
        out = np.asarray(self._fuse(inputs))
        shape = (inputs.n_users, inputs.n_items)
        if out.shape != shape:
            raise AssertionError(f"{self.name} fused {out.shape}, not {shape}")
        return finalize_scores(out, inputs.exclude)

    @abstractmethod
    def _fuse(self, inputs: FusionInput) -> np.ndarray:
        """Raw fused scores ``(b, n_items)`` (any float dtype; excluded entries may hold
        anything, they are set to ``-inf`` by :meth:`fuse`)."""

    # ------------------------------------------------------------------ persistence
    @abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """The learnt state as JSON-able values (no nan or inf)."""

    @abstractmethod
    def _set_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_get_state` returned."""

    def save(self, path: str | Path) -> None:
        """Write the fitted fusion to one JSON file at exactly ``path``."""
        self._check_fitted()
        state = self._get_state()
        if _SOURCES_KEY in state:
            raise ValueError(f"{_SOURCES_KEY!r} is a reserved state key")
        document = {
            "format": _FORMAT_VERSION,
            "fusion": self.name,
            "params": self.get_params(),
            "state": {_SOURCES_KEY: list(self.sources_), **state},
        }
        try:
            text = json.dumps(document, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{self.name} fusion cannot be written as JSON: {err}") from err
        Path(path).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Fusion:
        """Read a fusion written by :meth:`save`; the class comes from the file (on a
        subclass, the file must hold that subclass).

        JSON has no tuples: a list parameter whose constructor default is a tuple is
        turned back into a tuple, so ``get_params()`` compares equal after a round trip.
        """
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if document.get("format") != _FORMAT_VERSION:
            raise ValueError(f"unsupported fusion file format {document.get('format')!r}")
        klass = FUSIONS.get(document["fusion"])
        if not issubclass(klass, cls):
            raise TypeError(f"{path} holds a {klass.__name__}, not a {cls.__name__}")
        defaults = inspect.signature(klass.__init__).parameters
        params = {
            key: tuple(value)
            if isinstance(value, list)
            and key in defaults
            and isinstance(defaults[key].default, tuple)
            else value
            for key, value in document["params"].items()
        }
        fusion = klass(**params)
        state = dict(document["state"])
        fusion.sources_ = tuple(state.pop(_SOURCES_KEY))
        fusion._set_state(state)
        return fusion


FUSIONS: Registry[type[Fusion]] = Registry("fusion")
"""Registered fusions by name (``linear``, ``softmax``, ``rrf``, ``stacking``, ``formula``)."""


def make_fusion(name: str, **params: Any) -> Fusion:
    """The fusion ``name`` built with ``params``; unknown names list the known ones."""
    return FUSIONS.get(name)(**params)
