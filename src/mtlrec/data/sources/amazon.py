"""Amazon product reviews: the McAuley 2014 release and the Ni/Li/McAuley 2018 release.

Files
-----
reviews   ``reviews_<Category>_5.json.gz`` (2014) or ``<Category>_5.json.gz`` (2018): one JSON
          object a line. Both releases share ``reviewerID, asin, reviewerName, reviewText,
          overall, summary, unixReviewTime``; helpfulness is ``helpful: [up, total]`` in 2014
          and ``vote: "1,234"`` (helpful votes only, missing means 0) in 2018.
meta      ``meta_<Category>.json.gz`` (optional): one item a line, a Python-literal dict in
          2014 and JSON in 2018 (each line is tried as JSON first, then as a Python literal,
          never with ``eval``). Titles, descriptions, brands and categories may hold raw HTML.

Review rows are validated one by one: lines with bytes that are not UTF-8, broken JSON,
strings with a lone surrogate escape, missing ids, stars that are missing,
non-numeric or outside 1..5, timestamps that are not whole numbers or fall outside
1970..2100 (the declared ranges of :mod:`mtlrec.data.schema`) and repeated ``(reviewerID,
asin, unixReviewTime)`` events are quarantined; an empty review text is kept (``text`` null,
``has_text`` false) and counted as a note. Metadata rows with an asin seen before in the
file are quarantined as duplicates (the first one is kept), and so are rows with a negative
numeric price.

Only items that appear in the reviews become item rows; the metadata is joined onto them.
"""

from __future__ import annotations

import ast
import html
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from mtlrec.data.read_report import FileTally, ReadReport
from mtlrec.data.schema import (
    COLUMN_RANGES,
    INT64_MAX,
    INTERACTION_SCHEMA,
    ITEM_SCHEMA,
    REVIEW_SCHEMA,
    STARS_RANGE,
    TIMESTAMP_RANGE,
    CanonicalTables,
)
from mtlrec.data.sources.base import (
    FORMATS,
    LONE_SURROGATE,
    SOURCES,
    Source,
    has_lone_surrogate,
    may_hold_surrogates,
    numbered_lines,
)

Release = Literal["2014", "2018"]
RELEASES: tuple[str, ...] = ("2014", "2018")

MIN_STARS = STARS_RANGE.low
MAX_STARS = STARS_RANGE.high
PRICE_RANGE = COLUMN_RANGES["items"]["price"]
PRICE_OUT_OF_RANGE = PRICE_RANGE.reason("price")

USERS_SCHEMA: dict[str, pl.DataType] = {"user_id": pl.String(), "name": pl.String()}
META_COLUMNS: tuple[str, ...] = ("item_id", "title", "description", "categories", "brand", "price")
META_SCHEMA: dict[str, pl.DataType] = {
    **{column: ITEM_SCHEMA[column] for column in META_COLUMNS},
    "main_cat": pl.String(),
}

# A tag starts with a letter, "/" or "!"; an unclosed tag at the end of the text (as in the
# 2018 titles '<span class="a-size-medium a-color-secondary"') is stripped too.
_TAG = re.compile(r"<[A-Za-z/!][^<>]*(?:>|$)")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_AMOUNT = r"\$?\s*(\d[\d,]*(?:\.\d+)?|\.\d+)"
_PRICE = re.compile(rf"^\s*{_AMOUNT}\s*(?:-\s*{_AMOUNT}\s*)?$")


class _Invalid(Exception):
    """A review row that must be quarantined: carries the field and the reason."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field_name = field_name
        self.reason = reason


# --------------------------------------------------------------------------- text helpers


def clean_html(value: object) -> str | None:
    """Strip HTML tags and unescape entities; ``None`` when nothing readable is left.

    Tags become spaces (so ``a<br>b`` stays two words), runs of spaces collapse, line
    breaks are kept and every line is trimmed.
    """
    if not isinstance(value, str):
        return None
    text = html.unescape(_TAG.sub(" ", value)) if ("<" in value or "&" in value) else value
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    cleaned = "\n".join(line for line in lines if line)
    return cleaned or None


def parse_price(value: object) -> tuple[float | None, str | None]:
    """Parse a metadata price; returns ``(price, problem)`` where problem names a note.

    Numbers (2014) are taken as they are; strings (2018) may carry ``$`` and thousands
    separators (``"$1,299.99"`` -> 1299.99); a range ``"$10.00 - $20.00"`` gives its lower
    bound. Missing or blank gives ``(None, "price missing")``; a negative number gives
    ``(None, PRICE_OUT_OF_RANGE)`` (the row is quarantined); anything else (HTML or CSS
    debris, NaN, infinity, a number too large for a float) gives
    ``(None, "price unparseable")``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "price missing"
    if isinstance(value, bool):
        return None, "price unparseable"
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range
            return None, "price unparseable"
        if not math.isfinite(number):
            return None, "price unparseable"
        return (number, None) if PRICE_RANGE.contains(number) else (None, PRICE_OUT_OF_RANGE)
    if isinstance(value, str):
        match = _PRICE.match(value)
        if match:
            bounds = [float(g.replace(",", "")) for g in match.groups() if g is not None]
            if all(math.isfinite(bound) for bound in bounds):
                return min(bounds), None
    return None, "price unparseable"


def flatten_categories(value: object) -> list[str]:
    """Flatten ``categories`` (2014: list of lists) or ``category`` (2018: list of str).

    Every name is HTML-cleaned; empty names are dropped; duplicates are dropped keeping the
    first position.
    """
    names: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, list | tuple):
            for child in node:
                visit(child)
        else:
            name = clean_html(node)
            if name is not None:
                names.append(name)

    visit(value)
    return list(dict.fromkeys(names))


def _description(value: object) -> str | None:
    """A description given as a string or a list of strings, cleaned and newline-joined."""
    parts = value if isinstance(value, list | tuple) else [value]
    cleaned = [text for text in (clean_html(part) for part in parts) if text]
    return "\n".join(cleaned) or None


# ------------------------------------------------------------------------ review parsing


def _require_id(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Invalid(key, f"missing {key}")
    if not isinstance(value, str):
        raise _Invalid(key, f"{key} is not a string")
    return value


def _stars(row: Mapping[str, Any]) -> float:
    value = row.get("overall")
    if value is None:
        raise _Invalid("overall", "missing stars")
    if isinstance(value, bool):
        raise _Invalid("overall", "non-numeric stars")
    if isinstance(value, int) and not STARS_RANGE.contains(value):  # before float(): 10**400
        raise _Invalid("overall", STARS_RANGE.reason("stars"))
    try:
        stars = float(value)
    except (TypeError, ValueError):
        raise _Invalid("overall", "non-numeric stars") from None
    if math.isnan(stars):
        raise _Invalid("overall", "non-numeric stars")
    if not STARS_RANGE.contains(stars):  # also rejects infinities
        raise _Invalid("overall", STARS_RANGE.reason("stars"))
    return stars


def _timestamp(row: Mapping[str, Any]) -> int:
    """Unix seconds of ``unixReviewTime`` (an integer, integral float or digit string).

    Anything else is a ``"bad timestamp"``; a whole number outside
    :data:`~mtlrec.data.schema.TIMESTAMP_RANGE` (negative, in milliseconds, or too large
    for an Int64) is out of range.
    """
    value = row.get("unixReviewTime")
    seconds: int | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str) and _is_digits(value.strip()):
        seconds = int(value.strip())
    if seconds is None:
        raise _Invalid("unixReviewTime", "bad timestamp")
    if not TIMESTAMP_RANGE.contains(seconds):
        raise _Invalid("unixReviewTime", TIMESTAMP_RANGE.reason("timestamp"))
    return seconds


def _is_digits(text: str) -> bool:
    """Decimal digits only, few enough for ``int()`` (longer ones are out of range anyway)."""
    return text.isdecimal() and len(text) <= 30


def _count(value: object) -> int | None:
    """A vote count from an int or a string like ``"1,234"``; ``None`` when it is not one or
    is outside :data:`~mtlrec.data.schema.COUNT_RANGE` (negative, or beyond an Int64)."""
    if isinstance(value, bool):
        return None
    count: int | None = None
    if isinstance(value, int):
        count = value
    elif isinstance(value, str):
        digits = value.strip().replace(",", "")
        count = int(digits) if _is_digits(digits) else None
    return count if count is not None and 0 <= count <= INT64_MAX else None


def _helpful(
    row: Mapping[str, Any], release: Release | None, tally: FileTally
) -> tuple[int | None, int | None]:
    """``(helpful_up, helpful_total)``: 2014 ``helpful [up, total]``, 2018 ``vote``."""
    if release == "2014" or (release is None and "helpful" in row):
        pair = row.get("helpful")
        if isinstance(pair, list) and len(pair) == 2:
            up, total = _count(pair[0]), _count(pair[1])
            if up is not None and total is not None:
                return up, total
        tally.note("helpful votes malformed")
        return None, None
    if "vote" not in row or row["vote"] is None:
        return 0, None
    up = _count(row["vote"])
    if up is None:
        tally.note("vote unparseable")
    return up, None


def _optional_text(value: object) -> str | None:
    """A free-text field, or ``None`` when missing, not a string or only whitespace."""
    return value if isinstance(value, str) and value.strip() else None


@dataclass
class _ReviewColumns:
    """Column lists of the kept review rows, plus the users in order of first appearance."""

    user_id: list[str] = field(default_factory=list)
    item_id: list[str] = field(default_factory=list)
    timestamp: list[int] = field(default_factory=list)
    stars: list[float] = field(default_factory=list)
    text: list[str | None] = field(default_factory=list)
    summary: list[str | None] = field(default_factory=list)
    helpful_up: list[int | None] = field(default_factory=list)
    helpful_total: list[int | None] = field(default_factory=list)
    names: dict[str, str | None] = field(default_factory=dict)
    events: set[tuple[str, str, int]] = field(default_factory=set)

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        n = len(self.user_id)
        ids = list(range(n))
        interactions = pl.DataFrame(
            {
                "interaction_id": ids,
                "user_id": self.user_id,
                "item_id": self.item_id,
                "timestamp": self.timestamp,
                "event": ["review"] * n,
                "value": self.stars,
            },
            schema=INTERACTION_SCHEMA,
        )
        reviews = pl.DataFrame(
            {
                "interaction_id": ids,
                "user_id": self.user_id,
                "item_id": self.item_id,
                "timestamp": self.timestamp,
                "stars": self.stars,
                "text": self.text,
                "summary": self.summary,
                "helpful_up": self.helpful_up,
                "helpful_total": self.helpful_total,
                "has_text": [text is not None for text in self.text],
            },
            schema=REVIEW_SCHEMA,
        )
        users = pl.DataFrame(
            {"user_id": list(self.names), "name": list(self.names.values())},
            schema=USERS_SCHEMA,
        )
        return interactions, reviews, users


def _add_review(
    row: Mapping[str, Any], columns: _ReviewColumns, release: Release | None, tally: FileTally
) -> None:
    """Validate one decoded review and append it to ``columns``; raises :class:`_Invalid`."""
    user = _require_id(row, "reviewerID")
    item = _require_id(row, "asin")
    stars = _stars(row)
    seconds = _timestamp(row)
    event = (user, item, seconds)
    if event in columns.events:
        raise _Invalid("reviewerID+asin+unixReviewTime", "duplicate review")
    columns.events.add(event)

    text = _optional_text(row.get("reviewText"))
    if text is None:
        tally.note("empty review text kept")
    summary = _optional_text(row.get("summary"))
    if summary is None:
        tally.note("summary missing")
    name = _optional_text(row.get("reviewerName"))
    if name is None:
        tally.note("reviewerName missing")
    if columns.names.get(user) is None:  # first name seen (a later one fills a gap)
        columns.names[user] = name
    up, total = _helpful(row, release, tally)

    columns.user_id.append(user)
    columns.item_id.append(item)
    columns.timestamp.append(seconds)
    columns.stars.append(stars)
    columns.text.append(text)
    columns.summary.append(summary)
    columns.helpful_up.append(up)
    columns.helpful_total.append(total)


def parse_reviews(
    path: Path, report: ReadReport, release: Release | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Parse an Amazon review file into ``(interactions, reviews, users)``.

    ``release`` picks where helpfulness is read from (``"2014"``: ``helpful``; ``"2018"``:
    ``vote``); ``None`` decides per line. Interaction ids are 0..n-1 over the kept rows in
    file order; ``users`` has ``user_id`` and ``name`` (the first reviewer name seen).
    Every line is tallied in ``report`` as kept or quarantined.
    """
    path = Path(path)
    tally = report.tally(path)
    columns = _ReviewColumns()
    for line_number, line in numbered_lines(path, tally=tally):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            tally.quarantine(line_number, "<line>", "broken JSON", line)
            continue
        if not isinstance(row, dict):
            tally.quarantine(line_number, "<line>", "not a JSON object", line)
            continue
        if may_hold_surrogates(line) and has_lone_surrogate(row):
            tally.quarantine(line_number, "<line>", LONE_SURROGATE, line)
            continue
        try:
            _add_review(row, columns, release, tally)
        except _Invalid as invalid:
            tally.quarantine(line_number, invalid.field_name, invalid.reason, line)
            continue
        tally.keep()
    tally.check()
    return columns.frames()


# -------------------------------------------------------------------------- meta parsing


def _decode_meta_line(line: str) -> object:
    """Decode a metadata line: JSON (2018) first, then a Python literal (2014)."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(line)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("neither JSON nor a Python literal") from None


def _meta_record(row: Mapping[str, Any], tally: FileTally) -> dict[str, Any]:
    """The cleaned item attributes of one metadata row, noting what is missing.

    A negative price raises :class:`_Invalid` (before any note is counted).
    """
    price, problem = parse_price(row.get("price"))
    if problem == PRICE_OUT_OF_RANGE:
        raise _Invalid("price", problem)
    raw_title = row.get("title")
    title = clean_html(raw_title)
    if title is None:
        has_raw = isinstance(raw_title, str) and raw_title.strip()
        tally.note("title only HTML, set to null" if has_raw else "title missing")
    brand = clean_html(row.get("brand"))
    if brand is None:
        tally.note("brand missing")
    if problem is not None:
        tally.note(problem)
    raw_categories = row["categories"] if "categories" in row else row.get("category")
    return {
        "title": title,
        "description": _description(row.get("description")),
        "categories": flatten_categories(raw_categories),
        "brand": brand,
        "price": price,
        "main_cat": clean_html(row.get("main_cat")),
    }


def parse_meta(path: Path, report: ReadReport) -> pl.DataFrame:
    """Parse an Amazon metadata file into an items frame (one row per distinct asin).

    Columns: ``item_id, title, description, categories, brand, price, main_cat``. Lines
    that decode to nothing usable are quarantined, as are rows repeating an asin seen
    earlier in the file (reason ``"duplicate asin"``; the first row wins) and rows with a
    negative price (``"price out of range (>= 0)"``).
    """
    path = Path(path)
    tally = report.tally(path)
    records: dict[str, dict[str, Any]] = {}
    for line_number, line in numbered_lines(path, tally=tally):
        try:
            row = _decode_meta_line(line)
        except ValueError:
            tally.quarantine(line_number, "<line>", "broken JSON", line)
            continue
        if not isinstance(row, dict):
            tally.quarantine(line_number, "<line>", "not a JSON object", line)
            continue
        if may_hold_surrogates(line) and has_lone_surrogate(row):
            tally.quarantine(line_number, "<line>", LONE_SURROGATE, line)
            continue
        asin = row.get("asin")
        if not isinstance(asin, str) or not asin.strip():
            tally.quarantine(line_number, "asin", "missing asin", line)
            continue
        if asin in records:
            tally.quarantine(line_number, "asin", "duplicate asin", line)
            continue
        try:
            records[asin] = _meta_record(row, tally)
        except _Invalid as invalid:
            tally.quarantine(line_number, invalid.field_name, invalid.reason, line)
            continue
        tally.keep()
    tally.check()
    columns: dict[str, list[Any]] = {"item_id": list(records)}
    for name in list(META_SCHEMA)[1:]:
        columns[name] = [record[name] for record in records.values()]
    return pl.DataFrame(columns, schema=META_SCHEMA)


# ------------------------------------------------------------------------------ joining


def build_items(
    interactions: pl.DataFrame, meta: pl.DataFrame | None, report: ReadReport
) -> pl.DataFrame:
    """One item row per reviewed asin (first-appearance order), with metadata joined on.

    Items without a metadata row are kept with null attributes and counted as the note
    ``"items without metadata"``; metadata rows for items nobody reviewed are not added and
    are counted as ``"metadata rows for unreviewed items"``. Without a metadata file the
    items carry only their ids.
    """
    items = interactions.select(pl.col("item_id").unique(maintain_order=True))
    if meta is None:
        return items
    joined = items.join(meta, on="item_id", how="left", coalesce=True, maintain_order="left")
    covered = items.join(meta.select("item_id"), on="item_id", how="semi").height
    if items.height - covered:
        report.note("items without metadata", items.height - covered)
    if meta.height - covered:
        report.note("metadata rows for unreviewed items", meta.height - covered)
    return joined


@SOURCES.register("amazon")
class AmazonReviewsSource(Source):
    """Amazon reviews (2014 or 2018 release) with optional item metadata.

    ``release`` fixes where helpful votes are read from; ``None`` detects it per line.
    """

    roles = ("reviews",)
    optional_roles = ("meta",)

    def __init__(self, *, release: Release | None = None) -> None:
        if release is not None and release not in RELEASES:
            raise ValueError(f"unknown Amazon release {release!r}; known: {', '.join(RELEASES)}")
        self.release = release

    def load(self, files: Mapping[str, Path], report: ReadReport) -> CanonicalTables:
        """Parse the review file (and the metadata file, if given) into canonical tables."""
        self.check_files(files)
        interactions, reviews, users = parse_reviews(
            Path(files["reviews"]), report, release=self.release
        )
        meta = parse_meta(Path(files["meta"]), report) if "meta" in files else None
        items = build_items(interactions, meta, report)
        return CanonicalTables(users=users, items=items, interactions=interactions, reviews=reviews)


@FORMATS.register("amazon-reviews")
def read_reviews_file(path: Path, report: ReadReport) -> pl.DataFrame:
    """File parser for ``mtlrec data validate``: the reviews frame of a review file."""
    return parse_reviews(path, report)[1]


@FORMATS.register("amazon-meta")
def read_meta_file(path: Path, report: ReadReport) -> pl.DataFrame:
    """File parser for ``mtlrec data validate``: the items frame of a metadata file."""
    return parse_meta(path, report)
