"""The report as data: sections of tables, plots, key/value lists, notes and folded text.

Both renderers (:mod:`mtlrec.report.html`, :mod:`mtlrec.report.markdown`) read this model,
so the HTML page and its Markdown twin always carry the same tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Cell = str | int | float | None
"""A table cell: text, or a number the renderers format (see :func:`format_cell`)."""


@dataclass(frozen=True)
class Table:
    """A titled table; ``rows`` hold one cell per column."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    notes: Sequence[str] = field(default_factory=tuple)
    kind: Literal["table"] = "table"


@dataclass(frozen=True)
class Plot:
    """A PNG figure; ``kind`` and ``run`` name it (``data-plot="<kind>-<run>"`` in HTML)."""

    plot_kind: str
    run: str
    title: str
    alt: str
    png: bytes
    kind: Literal["plot"] = "plot"

    @property
    def key(self) -> str:
        """``<kind>-<run>`` with anything but letters, digits, ``.``, ``_``, ``-`` as ``-``."""
        return f"{self.plot_kind}-{slug(self.run)}"


@dataclass(frozen=True)
class KeyValues:
    """A short list of ``key: value`` lines."""

    title: str
    items: Sequence[tuple[str, Cell]]
    kind: Literal["keyvalues"] = "keyvalues"


@dataclass(frozen=True)
class Details:
    """Preformatted text folded under a summary line (a run's resolved config)."""

    summary: str
    text: str
    language: str = ""
    kind: Literal["details"] = "details"


@dataclass(frozen=True)
class Note:
    """A sentence of prose."""

    text: str
    kind: Literal["note"] = "note"


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section (one per run, per benchmark file)."""

    text: str
    kind: Literal["heading"] = "heading"


Block = Table | Plot | KeyValues | Details | Note | Heading


@dataclass(frozen=True)
class Section:
    """One numbered section; without blocks it shows ``missing`` ("not available ...")."""

    key: str
    title: str
    blocks: Sequence[Block]
    missing: str = "not available in these runs"


@dataclass(frozen=True)
class Document:
    """The whole report: header facts, then the sections in order."""

    title: str
    header: Sequence[tuple[str, str]]
    sections: Sequence[Section]

    def plots(self) -> list[Plot]:
        """Every plot of every section, in order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, Plot)]


def slug(text: str) -> str:
    """``text`` safe for ids, attributes and file names."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


NUMERIC_TEXT = re.compile(r"-?[\d.,]+(e-?\d+)?( ± [\d.,e-]+)?( \(n=\d+\))?")
"""Text that reads as a number: ``0.8417``, ``0.8417 ± 0.0012``, ``0.8417 (n=3)``."""


def is_numeric(value: Cell) -> bool:
    """Whether a cell reads as a number (right-aligned): a number or numeric text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and NUMERIC_TEXT.fullmatch(value) is not None


def format_cell(value: Cell, digits: int = 4) -> str:
    """Text of a cell: integers (and whole floats from 10 up) with thousands separators;
    other numbers to ``digits`` significant digits (``0.8417``, ``158.3``, ``2.2e-16``);
    missing values as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        if value == 0:
            return "0"
        if abs(value) >= 10**digits or (abs(value) >= 10 and value.is_integer()):
            return f"{value:,.0f}"
        if abs(value) < 1e-4:
            return f"{value:.2g}"
        return f"{value:#.{digits}g}".rstrip(".")
    return str(value)


STD_DIGITS = 2
"""Significant digits of a standard deviation (``0.8417 ± 0.00074``)."""


def plus_minus(mean: float | None, std: float | None) -> str:
    """``mean ± std`` from given numbers (``-`` when the mean is missing); the std to
    :data:`STD_DIGITS` significant digits."""
    if mean is None or mean != mean:
        return "-"
    if std is None or std != std:
        return format_cell(float(mean))
    if abs(std) < 1e-9 * max(1.0, abs(mean)):  # float noise of identical values
        std = 0.0
    return f"{format_cell(float(mean))} ± {format_cell(float(std), STD_DIGITS)}"


def mean_std(values: Sequence[float]) -> str:
    """``mean ± std`` over ``values`` (std with ``n - 1``); just the value when there is one."""
    finite = [v for v in values if v == v]
    if not finite:
        return "-"
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return format_cell(mean)
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return plus_minus(mean, var**0.5)
