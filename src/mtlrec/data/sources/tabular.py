"""A user's own CSV / TSV / JSONL / Parquet files, read through a column mapping.

Each file role (``interactions`` required; ``items``, ``users``, ``reviews`` optional) gets a
:class:`TableMapping` saying which file column holds which canonical column, for example::

    interactions: {format: csv, columns: {user_id: uid, item_id: iid, value: stars}, event: rating}
    items: {format: jsonl, columns: {item_id: id, title: name, categories: cats}}

Rows are checked one by one: missing ids, a non-numeric number, an unparseable timestamp,
a number outside its column's declared range (:data:`mtlrec.data.schema.COLUMN_RANGES`,
which a mapping's ``ranges`` can change), an unknown event type and a repeated (user, item,
event, timestamp) go to the quarantine with their line number (the physical line for
CSV/TSV/JSONL, row index + 1 for Parquet). A mapped column that the file lacks raises
:class:`DataFormatError` naming the file and the column.
Reviews become interactions too (``event="review"``, ``value`` = stars) so that
``reviews.interaction_id`` points at their row. Extra columns are kept as strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mtlrec.core.registry import did_you_mean
from mtlrec.data.read_report import DataFormatError, FileTally, ReadReport
from mtlrec.data.schema import (
    COLUMN_RANGES,
    EVENT_TYPES,
    INT64_MAX,
    INT64_MIN,
    TABLE_SCHEMAS,
    CanonicalTables,
    ValueRange,
    storage_range,
)
from mtlrec.data.sources.base import (
    FORMATS,
    LONE_SURROGATE,
    SOURCES,
    FileParser,
    Source,
    delimited_records,
    has_lone_surrogate,
    may_hold_surrogates,
    not_text_reason,
    numbered_lines,
    undecodable,
)

TableFormat = Literal["csv", "tsv", "jsonl", "parquet"]

TABLE_ROLES: tuple[str, ...] = ("interactions", "items", "users", "reviews")
"""The file roles of the tabular source, in load order."""

MAPPABLE: dict[str, tuple[str, ...]] = {
    "interactions": ("user_id", "item_id", "timestamp", "event", "value"),
    "items": tuple(TABLE_SCHEMAS["items"]),
    "users": ("user_id",),
    "reviews": (
        "user_id", "item_id", "timestamp", "stars", "text", "summary", "helpful_up",
        "helpful_total",
    ),
}  # fmt: skip
"""Canonical columns a mapping may fill, per role (other columns go in ``extra_columns``)."""

REQUIRED: dict[str, tuple[str, ...]] = {
    "interactions": ("user_id", "item_id"),
    "items": ("item_id",),
    "users": ("user_id",),
    "reviews": ("user_id", "item_id"),
}
"""Canonical columns every mapping of a role must name."""

_EXTENSIONS: dict[str, TableFormat] = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip
_FLOATS = frozenset({"value", "stars", "price"})
_INTS = frozenset({"year", "helpful_up", "helpful_total"})
_LISTS = frozenset({"categories", "genres"})
_NUMBERS = _FLOATS | _INTS | {"timestamp"}
_ROW = "(row)"


class TableMapping(BaseModel):
    """How one file maps onto a canonical table.

    ``columns`` maps canonical column -> file column. ``event`` is a constant event type for
    every row; alternatively map ``columns.event`` to a file column (optionally translating its
    values with ``event_values``). ``timestamp_format`` is ``None`` (unix seconds or ISO 8601),
    ``"unix"``, ``"unix_ms"`` or a ``strptime`` pattern (naive times are read as UTC).
    ``ranges`` replaces the declared range of a numeric canonical column by ``[low, high]``
    (``null`` leaves a side open; integer columns stay within what their type holds), for
    example ``{value: [1, 10]}`` for ratings out of ten.
    """

    model_config = ConfigDict(extra="forbid")

    format: TableFormat | None = None
    columns: dict[str, str]
    extra_columns: list[str] = Field(default_factory=list)
    event: str | None = None
    event_values: dict[str, str] = Field(default_factory=dict)
    list_separator: str = "|"
    timestamp_format: str | None = None
    ranges: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)

    @field_validator("event")
    @classmethod
    def _known_event(cls, value: str | None) -> str | None:
        if value is not None and value not in EVENT_TYPES:
            raise ValueError(f"unknown event type {value!r}; allowed: {', '.join(EVENT_TYPES)}")
        return value

    @field_validator("event_values")
    @classmethod
    def _known_event_values(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(value.values()) - set(EVENT_TYPES))
        if bad:
            raise ValueError(f"unknown event types {bad}; allowed: {', '.join(EVENT_TYPES)}")
        return value

    @field_validator("list_separator")
    @classmethod
    def _separator_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("list_separator must not be empty")
        return value


# -- mappings --------------------------------------------------------------------------------


def check_mapping(role: str, mapping: TableMapping, source: str | Path) -> None:
    """Fail with :class:`DataFormatError` (naming ``source`` and the key) on a bad mapping."""
    if role not in TABLE_ROLES:
        raise DataFormatError(source, role, f"unknown table role; known: {', '.join(TABLE_ROLES)}")
    for key in mapping.columns:
        if key not in MAPPABLE[role]:
            raise DataFormatError(
                source,
                f"{role}.columns.{key}",
                f"not a column of {role} (known: {', '.join(MAPPABLE[role])}); "
                "keep other columns with extra_columns",
            )
    for column in mapping.extra_columns:
        if column in TABLE_SCHEMAS[role]:
            raise DataFormatError(
                source, f"{role}.extra_columns", f"{column!r} is a canonical column; map it"
            )
    for key in REQUIRED[role]:
        if key not in mapping.columns:
            raise DataFormatError(source, f"{role}.columns", f"must map {key!r}")
    has_column = "event" in mapping.columns
    if role != "interactions" and (mapping.event or mapping.event_values):
        raise DataFormatError(source, f"{role}.event", "event settings apply to interactions only")
    if role == "interactions" and has_column == (mapping.event is not None):
        raise DataFormatError(
            source, "interactions.event", "give either event (a constant) or columns.event"
        )
    if mapping.event_values and not has_column:
        raise DataFormatError(source, f"{role}.event_values", "needs columns.event")
    for key, (low, high) in mapping.ranges.items():
        numeric = [name for name in MAPPABLE[role] if name in _NUMBERS]
        if key not in numeric:
            raise DataFormatError(
                source, f"{role}.ranges.{key}", f"not a numeric column of {role} "
                f"(known: {', '.join(numeric) or 'none'})"
            )  # fmt: skip
        if low is not None and high is not None and low > high:
            raise DataFormatError(source, f"{role}.ranges.{key}", f"empty range [{low}, {high}]")


def parse_mappings(
    specs: Mapping[str, TableMapping | Mapping[str, Any]], source: str | Path = "<mapping>"
) -> dict[str, TableMapping]:
    """Validate role -> mapping specs (dicts or :class:`TableMapping`), naming bad keys."""
    mappings: dict[str, TableMapping] = {}
    for role, spec in specs.items():
        if role not in TABLE_ROLES:
            raise DataFormatError(
                source, str(role), f"unknown table role; known: {', '.join(TABLE_ROLES)}"
            )
        try:
            mapping = spec if isinstance(spec, TableMapping) else TableMapping.model_validate(spec)
        except ValidationError as error:
            raise _mapping_error(error, role, source) from None
        check_mapping(role, mapping, source)
        mappings[role] = mapping
    return mappings


def _mapping_error(error: ValidationError, role: str, source: str | Path) -> DataFormatError:
    """One pydantic error (typos first) as a :class:`DataFormatError` with a ``role.key`` field."""
    first = min(error.errors(), key=lambda item: item["type"] != "extra_forbidden")
    loc = [str(part) for part in first["loc"]]
    message = first["msg"]
    if first["type"] == "extra_forbidden" and loc:
        message += did_you_mean(loc[-1], TableMapping.model_fields)
    if error.error_count() > 1:
        more = error.error_count() - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return DataFormatError(source, ".".join([role, *loc]), message)


def load_mapping_yaml(path: str | Path) -> dict[str, TableMapping]:
    """Read a YAML file of role -> mapping; typos fail naming the file and the key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataFormatError(path, None, f"cannot read mapping file ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise DataFormatError(path, None, f"invalid YAML ({problem})", line=line) from None
    if not isinstance(data, dict):
        raise DataFormatError(
            path, None, f"expected a mapping with keys among {', '.join(TABLE_ROLES)}"
        )
    return parse_mappings(data, source=path)


def identity_mapping(role: str, header: list[str], fmt: TableFormat | None) -> TableMapping:
    """A mapping that takes every canonical column found under its own name in ``header``.

    The ids are always mapped (so a file without them fails naming the column). Interactions
    without an ``event`` column get ``"rating"`` when they have a ``value`` column and
    ``"view"`` otherwise.
    """
    columns = {name: name for name in MAPPABLE[role] if name in header or name in REQUIRED[role]}
    event = None
    if role == "interactions" and "event" not in columns:
        event = "rating" if "value" in columns else "view"
    return TableMapping(format=fmt, columns=columns, event=event)


# -- reading rows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One data row of a file: its line number, values by file column, and raw text."""

    line: int
    values: dict[str, Any]
    raw: str


@dataclass(frozen=True)
class RawTable:
    """The column names of a file (JSONL: every key seen) and its well-formed rows."""

    header: list[str]
    records: list[Record]


def infer_format(path: Path) -> TableFormat:
    """The format of ``path`` from its extension (``.gz`` is looked through)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise DataFormatError(
            path, "format", f"cannot tell the format from the file name; set format to one of "
            f"csv, tsv, jsonl, parquet (known extensions: {', '.join(_EXTENSIONS)})"
        )  # fmt: skip
    return fmt


def read_table(path: Path, fmt: TableFormat, tally: FileTally) -> RawTable:
    """Read ``path`` as ``fmt``; malformed rows (field count, bad JSON) are quarantined."""
    if fmt == "parquet":
        return read_parquet(path)
    if fmt == "jsonl":
        return read_jsonl(path, tally)
    return read_delimited(path, "\t" if fmt == "tsv" else ",", tally)


def read_delimited(path: Path, delimiter: str, tally: FileTally) -> RawTable:
    """Read a CSV/TSV file with a header line; rows keep their first physical line number.

    A row with bytes that are not UTF-8 is quarantined (naming its first such column), as
    is one the csv module cannot read or with the wrong number of fields; an undecodable
    header raises :class:`DataFormatError` naming its line.
    """
    header: list[str] | None = None
    records: list[Record] = []
    for record in delimited_records(path, delimiter):
        fields = record.fields
        if record.problem is None and (not fields or (len(fields) == 1 and not fields[0].strip())):
            continue
        if header is None:
            if record.problem is not None or undecodable(record.raw):
                problem = record.problem or not_text_reason()
                raise DataFormatError(path, None, f"header: {problem}", record.line)
            header = _header(path, fields, record.line)
            continue
        if record.problem is not None:
            tally.quarantine(record.line, _ROW, record.problem, record.raw)
            continue
        bad = next((n for n, field in enumerate(fields) if undecodable(field)), None)
        if bad is not None:
            column = header[bad] if bad < len(header) else _ROW
            tally.quarantine(record.line, column, not_text_reason(), record.raw)
            continue
        raw = delimiter.join(fields)
        if len(fields) != len(header):
            tally.quarantine(record.line, _ROW, f"wrong field count (expected {len(header)})", raw)
            continue
        records.append(Record(record.line, dict(zip(header, fields, strict=True)), raw))
    if header is None:
        raise DataFormatError(path, None, "empty file: expected a header line")
    return RawTable(header, records)


def _header(path: Path, fields: list[str], line: int) -> list[str]:
    header = [name.strip() for name in fields]
    for name in header:
        if header.count(name) > 1:
            raise DataFormatError(path, name, "column named twice in the header", line)
    return header


def read_jsonl(path: Path, tally: FileTally) -> RawTable:
    """Read one JSON object per line; lines that are not JSON objects are quarantined.

    So are lines with bytes that are not UTF-8, nesting too deep to decode, and strings
    with a lone surrogate escape (``"\\ud800"``: not text that can be stored).
    """
    header: dict[str, None] = {}
    records: list[Record] = []
    for line, text in numbered_lines(path, tally=tally):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            tally.quarantine(line, _ROW, "invalid JSON", text)
            continue
        if not isinstance(value, dict):
            tally.quarantine(line, _ROW, "not a JSON object", text)
            continue
        if may_hold_surrogates(text) and has_lone_surrogate(value):
            tally.quarantine(line, _ROW, LONE_SURROGATE, text)
            continue
        header.update(dict.fromkeys(value))
        records.append(Record(line, value, text))
    return RawTable(list(header), records)


def read_parquet(path: Path) -> RawTable:
    """Read a Parquet file with polars; a row's "line" is its index + 1."""
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataFormatError(path, None, f"unreadable Parquet file ({error})") from None
    records = [
        Record(index + 1, row, json.dumps(row, default=str, ensure_ascii=False))
        for index, row in enumerate(frame.iter_rows(named=True))
    ]
    return RawTable(frame.columns, records)


# -- values ----------------------------------------------------------------------------------


class BadValue(ValueError):
    """A value that cannot be read; ``reason`` goes to the quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def text_value(value: Any) -> str | None:
    """A string with surrounding spaces stripped; empty -> ``None``; lists/dicts as JSON."""
    if value is None:
        return None
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    text = str(value).strip()
    return text or None


def float_value(value: Any) -> float | None:
    """A finite float; empty -> ``None``; anything else raises :class:`BadValue`.

    NaN, infinities and numbers beyond the float range (``"1e400"``, ``10**400``) are
    ``"non-numeric value"``.
    """
    text = text_value(value) if isinstance(value, str) else value
    if text is None:
        return None
    if isinstance(text, bool):
        raise BadValue("non-numeric value")
    try:
        number = float(text)
    except (TypeError, ValueError, OverflowError):
        raise BadValue("non-numeric value") from None
    if not math.isfinite(number):
        raise BadValue("non-numeric value")
    return number


def _exact_int(value: Any) -> int | None:
    """``value`` as an exact integer when it is one (an int, or text of optionally signed
    decimal digits), without going through a float; else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if digits.isdecimal() and len(digits) <= 30:  # longer: out of every range anyway
            return int(text)
    return None


def int_value(value: Any) -> int | None:
    """An integer (``"3"``, ``3`` or ``3.0``); empty -> ``None``; else :class:`BadValue`.

    Integer text and ints are read exactly (``"9223372036854775807"`` stays that number);
    one too large for an Int64 is ``"integer out of range"``.
    """
    number: int | None = _exact_int(value)
    if number is None:
        try:
            real = float_value(value)
        except BadValue:
            raise BadValue("non-integer value") from None
        if real is None:
            return None
        if not real.is_integer():
            raise BadValue("non-integer value")
        number = int(real)
    if not INT64_MIN <= number <= INT64_MAX:
        raise BadValue("integer out of range")
    return number


def list_value(value: Any, separator: str) -> list[str] | None:
    """A list of strings: JSON/Parquet lists as they are, text split on ``separator``."""
    if value is None:
        return None
    parts = value if isinstance(value, list | tuple) else str(value).split(separator)
    items = [text for text in (text_value(part) for part in parts) if text is not None]
    return items or None


def timestamp_value(value: Any, fmt: str | None) -> int | None:
    """Unix seconds from a number, a date/datetime, or text in ``fmt`` (see TableMapping)."""
    if isinstance(value, datetime | date):
        return _unix(value)
    text = text_value(value) if isinstance(value, str) else value
    if text is None:
        return None
    if fmt in (None, "unix", "unix_ms"):
        number: float | None = _exact_int(text)
        if number is None:
            try:
                number = float_value(text)
            except BadValue:
                number = None
        if number is not None:
            return int(number // 1000) if fmt == "unix_ms" else int(number)
        if fmt is None and isinstance(text, str):
            try:
                return _unix(datetime.fromisoformat(text))
            except ValueError:
                pass
        raise BadValue("bad timestamp")
    try:
        return _unix(datetime.strptime(str(text), fmt))
    except ValueError:
        raise BadValue("bad timestamp") from None


def _unix(moment: date) -> int:
    """Unix seconds of a date (midnight UTC) or a datetime (naive = UTC)."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _converter(name: str, mapping: TableMapping) -> Callable[[Any], Any]:
    """The reader of canonical column ``name`` under ``mapping``."""
    if name in _FLOATS:
        return float_value
    if name in _INTS:
        return int_value
    if name in _LISTS:
        return lambda value: list_value(value, mapping.list_separator)
    if name == "timestamp":
        return lambda value: timestamp_value(value, mapping.timestamp_format)
    return text_value


# -- one file --------------------------------------------------------------------------------


class _BadRow(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


MappedRows = list[tuple[Record, dict[str, Any]]]
"""``(record, canonical values + extras)`` for every row of a file that read cleanly."""


def read_mapped(
    path: Path,
    role: str,
    mapping: TableMapping | None,
    tally: FileTally,
    fmt: TableFormat | None = None,
) -> tuple[TableMapping, MappedRows]:
    """Read ``path`` through ``mapping``: the mapping used and the rows that read cleanly.

    Rows with a bad value are quarantined here; the caller checks duplicates and keeps.
    ``mapping=None`` uses :func:`identity_mapping` on the file's header; ``fmt`` overrides
    the mapping's format and the file extension.
    """
    fmt = fmt or (mapping.format if mapping else None) or infer_format(path)
    table = read_table(path, fmt, tally)
    mapping = mapping or identity_mapping(role, table.header, fmt)
    check_mapping(role, mapping, path)
    wanted = {column: f"mapped to {name}" for name, column in mapping.columns.items()}
    wanted.update({column: "an extra column" for column in mapping.extra_columns})
    for column, use in wanted.items():
        if column not in table.header:
            found = ", ".join(table.header) or "no columns"
            raise DataFormatError(path, column, f"column ({use}) missing from the file ({found})")
    readers = {name: _converter(name, mapping) for name in mapping.columns}
    ranges = value_ranges(role, mapping)
    rows: MappedRows = []
    for record in table.records:
        try:
            rows.append((record, _row_values(record, role, mapping, readers, ranges)))
        except _BadRow as bad:
            tally.quarantine(record.line, bad.field, bad.reason, record.raw)
    return mapping, rows


def value_ranges(role: str, mapping: TableMapping) -> dict[str, ValueRange]:
    """The range each numeric column of ``role`` is checked against under ``mapping``.

    The declared range (:data:`~mtlrec.data.schema.COLUMN_RANGES`), or the mapping's
    ``ranges`` entry in its place, always cut to what an integer column's type can hold.
    """
    ranges: dict[str, ValueRange] = {}
    for name in MAPPABLE[role]:
        if name not in _NUMBERS:
            continue
        declared = COLUMN_RANGES[role].get(name, ValueRange())
        if name in mapping.ranges:
            low, high = mapping.ranges[name]
            declared = ValueRange(low, high, dates=declared.dates)
        stored = storage_range(role, name)
        ranges[name] = declared if stored is None else declared.intersect(stored)
    return ranges


def _row_values(
    record: Record,
    role: str,
    mapping: TableMapping,
    readers: Mapping[str, Callable[[Any], Any]],
    ranges: Mapping[str, ValueRange],
) -> dict[str, Any]:
    """Canonical values and extras of one record; a bad value raises :class:`_BadRow`."""
    values: dict[str, Any] = {}
    for name, column in mapping.columns.items():
        try:
            values[name] = readers[name](record.values.get(column))
        except BadValue as bad:
            raise _BadRow(column, bad.reason) from None
        if values[name] is None and (name in REQUIRED[role] or name in ("value", "stars")):
            raise _BadRow(column, f"missing {name}")
        bounds = ranges.get(name)
        if bounds is not None and values[name] is not None and not bounds.contains(values[name]):
            raise _BadRow(column, bounds.reason(name))
    if role == "interactions":
        event = mapping.event or values["event"]
        if event is None:
            raise _BadRow(mapping.columns["event"], "missing event")
        event = mapping.event_values.get(event, event) if mapping.event_values else event
        if event not in EVENT_TYPES:
            raise _BadRow(mapping.columns.get("event", "event"), "unknown event type")
        values["event"] = event
    for column in mapping.extra_columns:
        values[column] = text_value(record.values.get(column))
    return values


# -- the source ------------------------------------------------------------------------------


@dataclass
class _Tables:
    """Kept rows of the tables being built, plus the event keys seen so far."""

    interactions: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    entities: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    seen_events: set[tuple[Any, ...]] = field(default_factory=set)

    def add_events(
        self, mapping: TableMapping, rows: MappedRows, role: str, tally: FileTally
    ) -> None:
        """Keep interactions (or reviews, each also an interaction); repeats are quarantined."""
        for record, values in rows:
            event = values["event"] if role == "interactions" else "review"
            key = (values["user_id"], values["item_id"], event, values.get("timestamp"))
            if key in self.seen_events:
                tally.quarantine(
                    record.line, mapping.columns["item_id"], "duplicate event", record.raw
                )
                continue
            self.seen_events.add(key)
            tally.keep()
            interaction = {"interaction_id": len(self.interactions), "event": event, "value": 1.0}
            if role == "reviews":
                if "text" in values and values["text"] is None:
                    tally.note("empty review text")
                review = {**values, "interaction_id": interaction["interaction_id"]}
                self.reviews.append({**review, "has_text": values.get("text") is not None})
                stars = values.get("stars")
                values = {k: values.get(k) for k in ("user_id", "item_id", "timestamp")}
                values["value"] = 1.0 if stars is None else stars
            self.interactions.append({**interaction, **values})

    def add_entities(
        self, mapping: TableMapping, rows: MappedRows, role: str, tally: FileTally
    ) -> None:
        """Keep users or items by id; a repeated id is quarantined."""
        id_name = REQUIRED[role][0]
        kept = self.entities.setdefault(role, {})
        for record, values in rows:
            if values[id_name] in kept:
                tally.quarantine(
                    record.line, mapping.columns[id_name], f"duplicate {id_name}", record.raw
                )
                continue
            kept[values[id_name]] = values
            tally.keep()

    def entity_rows(self, role: str, report: ReadReport, has_file: bool) -> list[dict[str, Any]]:
        """Rows of the users/items file, then id-only rows for ids seen only in interactions."""
        id_name = REQUIRED[role][0]
        kept = dict(self.entities.get(role, {}))
        missing = list(
            dict.fromkeys(v[id_name] for v in self.interactions if v[id_name] not in kept)
        )
        if has_file and missing:
            report.note(f"{role} in interactions but not in the {role} file", len(missing))
        kept.update({key: {id_name: key} for key in missing})
        return list(kept.values())


def rows_frame(rows: list[dict[str, Any]], table: str) -> pl.DataFrame:
    """A frame of ``table`` from row dicts: canonical columns typed, extras as strings."""
    schema = dict(TABLE_SCHEMAS[table])
    for row in rows:
        schema.update({name: pl.String() for name in row if name not in schema})
    return pl.DataFrame({name: [row.get(name) for row in rows] for name in schema}, schema=schema)


@SOURCES.register("tabular")
class TabularSource(Source):
    """Your own files with a column mapping per role (``None`` = canonical column names)."""

    roles: ClassVar[tuple[str, ...]] = ("interactions",)
    optional_roles: ClassVar[tuple[str, ...]] = ("items", "users", "reviews")

    def __init__(
        self,
        interactions: TableMapping | Mapping[str, Any] | None = None,
        items: TableMapping | Mapping[str, Any] | None = None,
        users: TableMapping | Mapping[str, Any] | None = None,
        reviews: TableMapping | Mapping[str, Any] | None = None,
    ) -> None:
        given = {"interactions": interactions, "items": items, "users": users, "reviews": reviews}
        specs = {role: spec for role, spec in given.items() if spec is not None}
        self.mappings = parse_mappings(specs, source="<TabularSource>")

    def load(self, files: Mapping[str, Path], report: ReadReport) -> CanonicalTables:
        """Read every given file; users/items seen only in interactions get id-only rows."""
        self.check_files(files)
        tables = _Tables()
        for role in TABLE_ROLES:
            if role in files:
                path = Path(files[role])
                tally = report.tally(path)
                mapping, rows = read_mapped(path, role, self.mappings.get(role), tally)
                add = (
                    tables.add_events
                    if role in ("interactions", "reviews")
                    else tables.add_entities
                )
                add(mapping, rows, role, tally)
        return CanonicalTables(
            users=rows_frame(tables.entity_rows("users", report, "users" in files), "users"),
            items=rows_frame(tables.entity_rows("items", report, "items" in files), "items"),
            interactions=rows_frame(tables.interactions, "interactions"),
            reviews=rows_frame(tables.reviews, "reviews"),
        )


def _interactions_parser(fmt: TableFormat) -> FileParser:
    """A FORMATS parser for interactions files in ``fmt`` with canonical column names."""

    def parse(path: Path, report: ReadReport) -> pl.DataFrame:
        tally = report.tally(path)
        mapping, rows = read_mapped(Path(path), "interactions", None, tally, fmt=fmt)
        tables = _Tables()
        tables.add_events(mapping, rows, "interactions", tally)
        return rows_frame(tables.interactions, "interactions")

    parse.__doc__ = f"Parse a {fmt} interactions file whose columns have the canonical names."
    return parse


for _format in ("csv", "tsv", "jsonl", "parquet"):
    FORMATS.register(_format)(_interactions_parser(_format))
