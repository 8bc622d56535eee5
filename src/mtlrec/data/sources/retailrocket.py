"""Retailrocket e-commerce events: views, add-to-cart and purchases (no timestamps).

Each of the three files is tab-separated with a header line ``visitorid<TAB>itemid<TAB>event``
(the ``event`` column holds an event count, always ``1`` in the released files). Every kept
row becomes one interaction with ``event`` = the file's role (``view``/``cart``/``purchase``),
``value`` 1.0 and a null ``timestamp``; interaction ids run 0..n-1 over the files in role order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import polars as pl

from mtlrec.data.read_report import DataFormatError, FileTally, ReadReport
from mtlrec.data.schema import INTERACTION_SCHEMA, CanonicalTables, conform
from mtlrec.data.sources.base import FORMATS, SOURCES, Source, numbered_lines

RETAILROCKET_FILES: dict[str, str] = {
    "view": "view_ecommerce.dat",
    "cart": "add_to_cart_ecommerce.dat",
    "purchase": "purchase_ecommerce.dat",
}
"""The file of each role (and event type) in the released data."""

_FILE_PREFIXES: dict[str, str] = {"view_": "view", "add_to_cart_": "cart", "purchase_": "purchase"}
_ID_COLUMNS: tuple[str, ...] = ("visitorid", "itemid")
_INTEGER = re.compile(r"\d+")


@dataclass
class EventRows:
    """The kept rows of one or more event files, in file order."""

    users: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def frame(self) -> pl.DataFrame:
        """The rows as a canonical interactions table (ids 0..n-1, value 1.0, no timestamp)."""
        n = len(self.users)
        return conform(
            pl.DataFrame(
                {
                    "interaction_id": list(range(n)),
                    "user_id": self.users,
                    "item_id": self.items,
                    "timestamp": [None] * n,
                    "event": self.events,
                    "value": [1.0] * n,
                },
                schema=INTERACTION_SCHEMA,
            ),
            "interactions",
        )


def read_event_file(path: Path, event: str, tally: FileTally, rows: EventRows) -> None:
    """Append the valid rows of one event file to ``rows``, quarantining the bad ones.

    Quarantined: a line with bytes that are not UTF-8, a wrong field count, a missing or
    non-integer ``visitorid``/``itemid``, a non-integer ``event`` count, and a repeated
    (visitor, item) pair ("duplicate event"). A header that is not UTF-8 text or lacks
    ``visitorid`` or ``itemid`` raises :class:`DataFormatError`.
    """
    lines = numbered_lines(path, tally=tally, header=True)
    first = next(lines, None)
    if first is None:
        raise DataFormatError(path, "visitorid", "empty file: expected a header line")
    header_line, header_text = first
    header = [name.strip() for name in header_text.split("\t")]
    for name in _ID_COLUMNS:
        if name not in header:
            raise DataFormatError(
                path,
                name,
                f"column missing from the header (found: {', '.join(header)})",
                line=header_line,
            )
    user_at, item_at = header.index("visitorid"), header.index("itemid")
    count_at = header.index("event") if "event" in header else None
    seen: set[tuple[str, str]] = set()
    for line, text in lines:
        fields = [value.strip() for value in text.split("\t")]
        if len(fields) != len(header):
            tally.quarantine(line, "(row)", f"wrong field count (expected {len(header)})", text)
            continue
        problem = _id_problem(fields, user_at, "visitorid") or _id_problem(
            fields, item_at, "itemid"
        )
        if problem is None and count_at is not None and not _INTEGER.fullmatch(fields[count_at]):
            problem = ("event", "non-integer event count")
        key = (fields[user_at], fields[item_at])
        if problem is None and key in seen:
            problem = ("itemid", "duplicate event")
        if problem is not None:
            tally.quarantine(line, problem[0], problem[1], text)
            continue
        if count_at is not None and fields[count_at] != "1":
            tally.note("event count other than 1 (kept as one event)")
        seen.add(key)
        rows.users.append(key[0])
        rows.items.append(key[1])
        rows.events.append(event)
        tally.keep()


def _id_problem(fields: list[str], at: int, name: str) -> tuple[str, str] | None:
    """``(field, reason)`` when the id at ``at`` is missing or not an integer."""
    value = fields[at]
    if not value:
        return name, f"missing {name}"
    if not _INTEGER.fullmatch(value):
        return name, f"non-integer {name}"
    return None


def _id_frame(ids: list[str], column: str) -> pl.DataFrame:
    """One row per distinct id, in order of first appearance."""
    return pl.DataFrame({column: list(dict.fromkeys(ids))}, schema={column: pl.String()})


@SOURCES.register("retailrocket")
class RetailrocketSource(Source):
    """The three Retailrocket event files as view/cart/purchase interactions."""

    roles: ClassVar[tuple[str, ...]] = ("view", "cart", "purchase")

    def load(self, files: Mapping[str, Path], report: ReadReport) -> CanonicalTables:
        """Parse the three files; notes users/items that occur in cart/purchase only."""
        self.check_files(files)
        rows = EventRows()
        for role in self.roles:
            path = Path(files[role])
            read_event_file(path, role, report.tally(path), rows)
        viewed_users = {u for u, e in zip(rows.users, rows.events, strict=True) if e == "view"}
        viewed_items = {i for i, e in zip(rows.items, rows.events, strict=True) if e == "view"}
        users_unviewed = len(set(rows.users) - viewed_users)
        items_unviewed = len(set(rows.items) - viewed_items)
        if users_unviewed:
            report.note("users in cart/purchase files but never in views", users_unviewed)
        if items_unviewed:
            report.note("items in cart/purchase files but never in views", items_unviewed)
        return CanonicalTables(
            users=_id_frame(rows.users, "user_id"),
            items=_id_frame(rows.items, "item_id"),
            interactions=rows.frame(),
        )


@FORMATS.register("retailrocket-events")
def parse_retailrocket_file(path: Path, report: ReadReport) -> pl.DataFrame:
    """Parse one Retailrocket event file; its event type comes from the file name prefix."""
    event = next((e for p, e in _FILE_PREFIXES.items() if Path(path).name.startswith(p)), None)
    if event is None:
        raise DataFormatError(
            path,
            "event",
            "cannot tell the event type from the file name "
            f"(expected a prefix among {', '.join(_FILE_PREFIXES)})",
        )
    rows = EventRows()
    read_event_file(Path(path), event, report.tally(path), rows)
    return rows.frame()
