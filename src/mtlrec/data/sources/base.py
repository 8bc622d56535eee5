"""The interface every data source implements, and helpers shared by the parsers."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TextIO

import polars as pl

from mtlrec.core.registry import Registry
from mtlrec.data.read_report import DataFormatError, FileTally, ReadReport
from mtlrec.data.schema import CanonicalTables


class Source(ABC):
    """Parses the raw files of one dataset family into :class:`CanonicalTables`.

    ``roles`` names the files the source reads (for example ``{"reviews", "meta"}``);
    ``optional_roles`` may be absent. Constructors take explicit keyword arguments and
    store them untouched. ``load`` tallies every row it reads in ``report``.
    """

    roles: ClassVar[tuple[str, ...]] = ()
    optional_roles: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def load(self, files: Mapping[str, Path], report: ReadReport) -> CanonicalTables:
        """Parse ``files`` (role -> local path) into canonical tables."""

    def check_files(self, files: Mapping[str, Path]) -> None:
        """Fail clearly when a required role is missing or a file does not exist."""
        for role in self.roles:
            if role not in files:
                raise DataFormatError(
                    f"<{type(self).__name__}>", role, f"no file given for required role {role!r}"
                )
        for role, path in files.items():
            if role not in self.roles and role not in self.optional_roles:
                known = ", ".join(self.roles + self.optional_roles)
                raise DataFormatError(path, role, f"unknown file role {role!r}; known: {known}")
            if not Path(path).is_file():
                raise DataFormatError(path, role, "file does not exist")


SOURCES: Registry[type[Source]] = Registry("source")
"""Every source class, by name (``mtlrec.data.sources`` imports the modules that fill it)."""


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def open_text(path: Path, encoding: str = "utf-8", errors: str = "strict") -> TextIO:
    """Open a plain or gzip-compressed text file (decided by its magic bytes).

    Lines keep their own line breaks (``newline=""``, as the csv module wants); a UTF-8
    byte order mark at the start is dropped. ``errors`` is the decoding error handler
    (``"surrogateescape"`` keeps undecodable bytes as U+DC80..U+DCFF, see
    :func:`undecodable`).
    """
    if _is_utf8(encoding):
        encoding = "utf-8-sig"  # reads plain UTF-8 too
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding=encoding, errors=errors, newline="")
    return path.open("r", encoding=encoding, errors=errors, newline="")


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def undecodable(text: str) -> bool:
    """Whether ``text`` holds bytes that did not decode (read with ``"surrogateescape"``)."""
    return _ESCAPED_BYTE.search(text) is not None


def has_lone_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value (or Python literal) holds a string with a lone UTF-16
    surrogate (from an escape such as ``"\\ud800"``): such text cannot be stored.

    Walks nested lists, tuples, sets and dict keys/values without recursion.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return False


LONE_SURROGATE = "invalid unicode escape (lone surrogate)"
"""The quarantine reason of a row whose decoded text holds a lone surrogate."""


def may_hold_surrogates(line: str) -> bool:
    """Cheap pre-check: only text with a ``\\u`` or ``\\U`` escape can decode to a surrogate."""
    return "\\u" in line or "\\U" in line


def open_binary(path: Path) -> BinaryIO:
    """Open a plain or gzip-compressed file for binary reading (decided by magic bytes)."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def not_text_reason(encoding: str = "utf-8") -> str:
    """The quarantine reason of a row holding bytes that are not text in ``encoding``."""
    return f"not valid {codecs.lookup(encoding).name} text"


def numbered_lines(
    path: Path,
    encoding: str = "utf-8",
    tally: FileTally | None = None,
    header: bool = False,
) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` pairs (1-based, newline stripped), skipping blank lines.

    Each line is decoded on its own, so an undecodable byte is pinned to its exact line.
    With a ``tally`` that line is quarantined (field ``"<line>"``, reason
    :func:`not_text_reason`, raw text with the bad bytes as ``\\xNN``) and reading goes
    on; without one, or when ``header`` is set and it is the first non-blank line (the
    header, which every other line depends on), :class:`DataFormatError` names the line.
    A UTF-8 byte order mark at the start of the file is dropped.
    """
    utf8 = _is_utf8(encoding)
    need_header = header
    try:
        with open_binary(path) as handle:
            for line_number, raw in enumerate(handle, start=1):
                if line_number == 1 and utf8 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                try:
                    line = raw.decode(encoding).rstrip("\r\n")
                except UnicodeDecodeError as error:
                    if tally is None or need_header:
                        raise DataFormatError(
                            path,
                            None,
                            f"{not_text_reason(encoding)} ({error.reason})",
                            line=line_number,
                        ) from None
                    shown = raw.decode(encoding, errors="backslashreplace").rstrip("\r\n")
                    tally.quarantine(line_number, "<line>", not_text_reason(encoding), shown)
                    continue
                if line.strip():
                    need_header = False
                    yield line_number, line
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataFormatError(path, None, f"broken gzip file ({error})") from None


@dataclass(frozen=True)
class DelimitedRecord:
    """One record of a delimited file as the csv module reads it.

    ``line`` is its first physical line, ``raw`` its physical lines joined by ``"\\n"``.
    Bytes that are not text are kept as U+DC80..U+DCFF (see :func:`undecodable`);
    ``problem`` says why the csv module could not read the record (``fields`` is then
    empty), else ``None``.
    """

    line: int
    raw: str
    fields: list[str]
    problem: str | None = None


def delimited_records(
    path: Path, delimiter: str = ",", encoding: str = "utf-8"
) -> Iterator[DelimitedRecord]:
    """Every record of a delimited file (blank ones included), read with the csv module.

    Quoted fields may hold delimiters, quotes and line breaks; line numbers stay true
    because decoding never fails (an undecodable byte is kept escaped, for the caller to
    quarantine its record). A record the csv module rejects (a field over its size limit)
    comes back with its ``problem`` and reading goes on with the next line.
    """
    physical: list[str] = []
    line_number = 0

    def lines(handle: Iterable[str]) -> Iterator[str]:
        nonlocal line_number
        for text in handle:
            line_number += 1
            physical.append(text.rstrip("\r\n"))
            yield text

    try:
        with open_text(path, encoding, errors="surrogateescape") as handle:
            reader = csv.reader(lines(handle), delimiter=delimiter)
            while True:
                try:
                    fields = next(reader)
                    problem = None
                except StopIteration:
                    break
                except csv.Error as error:
                    fields, problem = [], f"unreadable delimited text ({error})"
                first = line_number - len(physical) + 1
                raw = "\n".join(physical)
                physical.clear()
                yield DelimitedRecord(first, raw, fields, problem)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataFormatError(path, None, f"broken gzip file ({error})") from None


FileParser = Callable[[Path, ReadReport], pl.DataFrame]
"""Parses one raw file of a known format, tallying its rows; used by ``mtlrec data validate``."""

FORMATS: Registry[FileParser] = Registry("file format")
"""Single-file parsers by format name (``amazon-reviews``, ``movielens-100k-data``, ...)."""
