"""Reading MovieLens rows and validating them into frames: the row readers (headerless
delimited lines, CSV records with quoted fields, tab-separated records, and header-named
columns mapped to canonical keys), the rating validator :class:`_Ratings` shared by every
layout, and the item/user reader :func:`_read_entities` that quarantines missing or
repeated ids and bad values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from mtlrec.data.read_report import DataFormatError, FileTally
from mtlrec.data.schema import INTERACTION_SCHEMA, TIMESTAMP_RANGE, conform
from mtlrec.data.sources.base import (
    delimited_records,
    not_text_reason,
    numbered_lines,
    undecodable,
)
from mtlrec.data.sources.movielens.common import StarScale, _int, _RowError

# -------------------------------------------------------------------------- row readers

Row = tuple[int, str, dict[str, str]]
"""One data row: line number, the raw line, and its fields by canonical name."""


def _split_rows(
    path: Path, tally: FileTally, separator: str, names: Sequence[str], encoding: str = "utf-8"
) -> Iterator[Row]:
    """Rows of a headerless delimited file; a line with the wrong field count, or with bytes
    that are not text in ``encoding``, is quarantined."""
    for line_number, line in numbered_lines(path, encoding, tally=tally):
        parts = line.split(separator)
        if len(parts) != len(names):
            tally.quarantine(line_number, "<line>", "wrong number of fields", line)
            continue
        yield line_number, line, dict(zip(names, (p.strip() for p in parts), strict=True))


def _csv_records(
    path: Path, tally: FileTally, encoding: str = "utf-8"
) -> Iterator[tuple[int, str, list[str]]]:
    """``(first line number, raw text, fields)`` of every non-blank CSV record.

    Quoted fields may contain commas, quotes and newlines; the raw text of a record spanning
    several lines is those lines joined. A record after the first (the header) with bytes
    that are not text in ``encoding``, or that the csv module cannot read, is quarantined;
    such a header raises :class:`DataFormatError` naming its line.
    """
    header_seen = False
    for record in delimited_records(path, ",", encoding):
        problem = record.problem
        if problem is None and undecodable(record.raw):
            problem = not_text_reason(encoding)
        if problem is None and not any(field.strip() for field in record.fields):
            continue
        if problem is not None:
            if not header_seen:
                raise DataFormatError(path, None, f"header: {problem}", line=record.line)
            tally.quarantine(record.line, "<line>", problem, record.raw)
            continue
        header_seen = True
        yield record.line, record.raw, record.fields


def _tab_records(
    path: Path, tally: FileTally, encoding: str = "utf-8"
) -> Iterator[tuple[int, str, list[str]]]:
    """``(line number, line, fields)`` of a tab-separated file with a header line.

    A data line with bytes that are not text in ``encoding`` is quarantined.
    """
    for line_number, line in numbered_lines(path, encoding, tally=tally, header=True):
        yield line_number, line, line.split("\t")


def _header_rows(
    path: Path,
    tally: FileTally,
    records: Iterator[tuple[int, str, list[str]]],
    columns: Mapping[str, str],
    header_name: Callable[[str], str] = str.strip,
) -> Iterator[Row]:
    """Rows of a file whose first record is a header, fields named by ``columns``.

    ``columns`` maps canonical keys to header names; every one is required, in any order.
    A missing column raises :class:`DataFormatError` naming the file and the column; a
    record with a different field count than the header is quarantined.
    """
    header = next(records, None)
    if header is None:
        raise DataFormatError(path, None, "empty file: no header line")
    _, _, fields = header
    names = [header_name(field) for field in fields]
    position = {name: index for index, name in reversed(list(enumerate(names)))}
    for name in columns.values():
        if name not in position:
            found = ", ".join(names)
            raise DataFormatError(path, name, f"required column missing (header has: {found})")
    ignored = [name for name in names if name not in columns.values()]
    if ignored:
        tally.note(f"columns ignored: {', '.join(ignored)}")
    for line_number, raw, parts in records:
        if len(parts) != len(names):
            tally.quarantine(line_number, "<line>", "wrong number of fields", raw)
            continue
        yield (
            line_number,
            raw,
            {key: parts[position[name]].strip() for key, name in columns.items()},
        )


def _atomic_name(field: str) -> str:
    """``"user_id:token"`` -> ``"user_id"``."""
    return field.strip().split(":", 1)[0].strip()


# --------------------------------------------------------------------------- collectors


class _Ratings:
    """Validates rating rows (shared by every layout) and keeps the good ones by column."""

    def __init__(self, tally: FileTally, scale: StarScale) -> None:
        self.tally = tally
        self.scale = scale
        self.users: list[str] = []
        self.items: list[str] = []
        self.values: list[float] = []
        self.timestamps: list[int] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, line_number: int, raw: str, fields: Mapping[str, str]) -> None:
        """Keep or quarantine one row with keys user_id, item_id, rating, timestamp."""
        try:
            user, item, value, timestamp = self._parse(fields)
        except _RowError as error:
            self.tally.quarantine(line_number, error.field, error.reason, raw)
            return
        if (user, item) in self._seen:
            self.tally.quarantine(line_number, "item_id", "duplicate rating", raw)
            return
        self._seen.add((user, item))
        self.users.append(user)
        self.items.append(item)
        self.values.append(value)
        self.timestamps.append(timestamp)
        self.tally.keep()

    def _parse(self, fields: Mapping[str, str]) -> tuple[str, str, float, int]:
        user, item = fields["user_id"], fields["item_id"]
        if not user:
            raise _RowError("user_id", "missing user id")
        if not item:
            raise _RowError("item_id", "missing item id")
        try:
            value = float(fields["rating"])
        except ValueError:
            raise _RowError("rating", "non-numeric rating") from None
        if math.isnan(value):
            raise _RowError("rating", "non-numeric rating")
        problem = self.scale.check(value)
        if problem is not None:
            raise _RowError("rating", problem)
        timestamp = _int(fields["timestamp"])
        if timestamp is None:
            raise _RowError("timestamp", "bad timestamp")
        if not TIMESTAMP_RANGE.contains(timestamp):
            raise _RowError("timestamp", TIMESTAMP_RANGE.reason("timestamp"))
        return user, item, value, timestamp

    def frame(self) -> pl.DataFrame:
        """The kept ratings as a canonical interactions frame."""
        n = len(self.users)
        frame = pl.DataFrame(
            {
                "interaction_id": list(range(n)),
                "user_id": self.users,
                "item_id": self.items,
                "timestamp": self.timestamps,
                "event": ["rating"] * n,
                "value": self.values,
            },
            schema=INTERACTION_SCHEMA,
        )
        return conform(frame, "interactions")


def _read_ratings(rows: Iterable[Row], tally: FileTally, scale: StarScale) -> pl.DataFrame:
    ratings = _Ratings(tally, scale)
    for line_number, raw, fields in rows:
        ratings.add(line_number, raw, fields)
    tally.check()
    return ratings.frame()


Converter = Callable[[Mapping[str, str], FileTally], dict[str, Any]]
"""Turns the fields of an item/user row into column values; raises ``_RowError`` if bad."""


def _read_entities(
    rows: Iterable[Row],
    tally: FileTally,
    id_column: str,
    what: str,
    schema: Mapping[str, pl.DataType],
    convert: Converter,
) -> pl.DataFrame:
    """Items or users: a missing or repeated id, or a bad value, quarantines the row."""
    columns: dict[str, list[Any]] = {name: [] for name in schema}
    seen: set[str] = set()
    for line_number, raw, fields in rows:
        key = fields[id_column]
        if not key:
            tally.quarantine(line_number, id_column, f"missing {what} id", raw)
            continue
        if key in seen:
            tally.quarantine(line_number, id_column, f"duplicate {what} id", raw)
            continue
        try:
            values = convert(fields, tally)
        except _RowError as error:
            tally.quarantine(line_number, error.field, error.reason, raw)
            continue
        seen.add(key)
        columns[id_column].append(key)
        for name, value in values.items():
            columns[name].append(value)
        tally.keep()
    tally.check()
    return pl.DataFrame(columns, schema=dict(schema))
