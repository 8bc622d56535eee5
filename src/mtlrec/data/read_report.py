"""Read reports and the quarantine: bad input gets a clear error, and nothing is lost.

Every parser reports each data row it reads as either *kept* or *quarantined* (with file,
line number, field and reason), so ``rows_read == rows_kept + rows_quarantined`` holds for
every file. Soft findings that keep the row (an empty review text, a missing reviewer name)
are counted as *notes*. Problems that make a whole file unusable (missing required column,
wrong format) raise :class:`DataFormatError` naming the file and the field.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RAW_PREVIEW_CHARS = 300

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` as it can be written in UTF-8: bytes kept undecoded by ``"surrogateescape"``
    (U+DC80..U+DCFF) become ``\\xNN``, any other lone surrogate ``\\uNNNN``."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"

    return _SURROGATE.sub(escape, text)


class DataFormatError(ValueError):
    """A fatal problem with an input file: names the file, the field and, if known, the line."""

    def __init__(self, file: str | Path, field: str | None, message: str, line: int | None = None):
        self.file = str(file)
        self.field = field
        self.line = line
        where = self.file + (f", line {line}" if line is not None else "")
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {message}")


@dataclass(frozen=True)
class RowIssue:
    """One quarantined row: where it was and why it was set aside."""

    file: str
    line: int
    field: str
    reason: str
    raw: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
            "raw": self.raw,
        }


@dataclass
class FileTally:
    """Counts for one input file; parsers call :meth:`keep` or :meth:`quarantine` per row."""

    file: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_quarantined: int = 0
    notes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    _issues: list[RowIssue] = field(default_factory=list, repr=False)

    def keep(self) -> None:
        """Count one row as read and kept."""
        self.rows_read += 1
        self.rows_kept += 1

    def quarantine(self, line: int, field_name: str, reason: str, raw: str) -> None:
        """Count one row as read and set aside, recording where and why (the start of its
        raw text, with undecodable bytes written as ``\\xNN``)."""
        self.rows_read += 1
        self.rows_quarantined += 1
        self.reasons[reason] += 1
        raw = storable_text(raw)[:RAW_PREVIEW_CHARS]
        self._issues.append(RowIssue(self.file, line, field_name, reason, raw))

    def unkeep(self, line: int, field_name: str, reason: str, raw: str) -> None:
        """Move a row that was kept into the quarantine (found bad in a later pass)."""
        self.rows_kept -= 1
        self.rows_read -= 1
        self.quarantine(line, field_name, reason, raw)

    def note(self, what: str, count: int = 1) -> None:
        """Count a soft finding on a kept row (for example: empty review text kept)."""
        self.notes[what] += count

    @property
    def issues(self) -> list[RowIssue]:
        return list(self._issues)

    def check(self) -> None:
        """Assert the bookkeeping invariant: read = kept + quarantined."""
        if self.rows_read != self.rows_kept + self.rows_quarantined:
            raise AssertionError(
                f"{self.file}: read {self.rows_read} != kept {self.rows_kept} + "
                f"quarantined {self.rows_quarantined}"
            )

    def summary(self) -> dict[str, Any]:
        self.check()
        return {
            "file": self.file,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_reasons": dict(sorted(self.reasons.items())),
            "notes": dict(sorted(self.notes.items())),
        }


@dataclass
class ReadReport:
    """The tallies of every file read in one run, plus dataset-level notes."""

    files: dict[str, FileTally] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)

    def tally(self, file: str | Path) -> FileTally:
        """The tally for ``file`` (created on first use)."""
        key = str(file)
        if key not in self.files:
            self.files[key] = FileTally(key)
        return self.files[key]

    def note(self, what: str, count: int = 1) -> None:
        """Count a dataset-level finding (for example: items without metadata)."""
        self.notes[what] += count

    @property
    def issues(self) -> list[RowIssue]:
        return [issue for tally in self.files.values() for issue in tally.issues]

    @property
    def rows_read(self) -> int:
        return sum(t.rows_read for t in self.files.values())

    @property
    def rows_kept(self) -> int:
        return sum(t.rows_kept for t in self.files.values())

    @property
    def rows_quarantined(self) -> int:
        return sum(t.rows_quarantined for t in self.files.values())

    def summary(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "files": [tally.summary() for tally in self.files.values()],
            "notes": dict(sorted(self.notes.items())),
        }

    def write_quarantine(self, path: Path) -> int:
        """Write every quarantined row as one JSON line; returns how many were written."""
        issues = self.issues
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for issue in issues:
                handle.write(json.dumps(issue.to_dict(), ensure_ascii=False) + "\n")
        return len(issues)
